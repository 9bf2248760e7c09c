"""The expansion plan: which sub-clusters to evaluate, and with what Moebius weights.

Pure combinatorics and geometry (numpy and ASE's neighbour list); nothing here knows
what computes energies. Definitions follow ``docs/science.md`` section 2.

Atom-resolved expansion. For atom ``i`` with a pool ``P_i`` of neighbouring bodies
(every other atom of a cluster, or the atoms and periodic images within ``r_mbe``),

    e_i^(n) = sum_{U in F_i, |U| = n-1} eta_i(U),
    eta_i(U) = sum_{V subset U} (-1)^(|U|-|V|) e_i(V + {i}),

where ``F_i`` holds the sets ``U`` whose ``eta_i(U)`` may be non-zero: all subsets of
``P_i`` without screening, and with exact screening only those for which ``U + {i}`` is
connected by edges shorter than the model cutoff with every atom within ``L`` hops of
``i``. Collecting terms, ``e_i(V + {i})`` enters order ``n`` with the weight
``(-1)^(n-1-|V|) * #{U in F_i : |U| = n-1, U superset of V}``, which is
``C(m_i - |V|, n - 1 - |V|)`` in the unscreened case (``m_i = |P_i|``).

Cluster expansion (isolated cluster of N atoms, total energies of sub-clusters):
``E^(n) = sum_T (-1)^(n-|T|) C(N-|T|, n-|T|) E(T)``, available when every subset up to
the truncation order is in the plan (no screening, no ``r_mbe``, every atom a centre).

Centres (the atom-sampled expansion, ``docs/science.md`` section 9). With
``centres`` given, only the rows ``(i, U)`` of the centre atoms ``i`` are enumerated:
the plan yields the exact ``e_i^(n)`` of each centre and nothing for the other atoms
(whose energies are still evaluated where they belong to a centre's sub-cluster).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike

from ._geometry import Structure, check_structure, perpendicular_widths, pools
from .errors import BodyOrderError, PlanTooLargeError, StructureError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_SUBCLUSTERS",
    "ExpansionPlan",
    "available_memory_bytes",
    "default_memory_budget_GiB",
    "estimate_plan_bytes",
    "PackedOffsets",
    "Screening",
    "Subcluster",
    "parse_subcluster_label",
    "plan_expansion",
    "subcluster_label",
]

DEFAULT_MAX_SUBCLUSTERS = 1_000_000

#: share of the memory available at planning time that a plan may use by default
DEFAULT_MEMORY_SHARE = 0.5


def available_memory_bytes() -> int:
    """Memory available to a new allocation now (Linux ``MemAvailable``), in bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def default_memory_budget_GiB() -> float:
    """Default memory budget of a plan: half the memory available now, GiB."""
    return DEFAULT_MEMORY_SHARE * available_memory_bytes() / 2**30


def _row_bytes(size: int, max_order: int) -> int:
    """Peak bytes per (centre atom, sub-cluster) row of size ``size`` while planning.

    Indices and cell shifts of the row (8 + 24 bytes per body), its root and weights,
    about five copies of them during canonicalisation and deduplication, and the weight
    entries it leaves behind with their copies in the chunked force evaluation (96 bytes
    each). Measured on a 64-atom cell at r_mbe = 2 A, K = 4 to 7: the estimate is
    1.1-1.2x the measured peak.
    """
    return 5 * (32 * size + 8 + 8 * max_order) + 96 * (max_order - size + 1)


def estimate_plan_bytes(rows_by_size: dict[int, int], max_order: int) -> int:
    """Estimated peak memory (bytes) of a plan with ``rows_by_size[s]`` rows of size s."""
    return int(sum(rows * _row_bytes(s, max_order) for s, rows in rows_by_size.items()))


@dataclass(frozen=True)
class Screening:
    """Exact screening from a local model: cutoff (Angstrom) and message-passing layers.

    ``eta_i(U)`` vanishes unless ``U + {i}`` is connected by edges shorter than ``cutoff``
    and every atom of ``U`` is within ``layers`` hops of ``i`` (``layers=None``: no hop
    limit). Skipping the other sets is exact for a model with a strict cutoff.
    """

    cutoff: float
    layers: int | None = None

    def __post_init__(self) -> None:
        if not self.cutoff >= 0:
            raise BodyOrderError(f"screening cutoff must be >= 0 (Angstrom), got {self.cutoff}")
        if self.layers is not None and self.layers < 1:
            raise BodyOrderError(f"screening layers must be >= 1, got {self.layers}")


class PackedOffsets:
    """Flat entries packed contiguously per fragment, described by ``self.offsets``."""

    offsets: np.ndarray

    @property
    def n_fragments(self) -> int:
        return len(self.offsets) - 1

    @property
    def sizes(self) -> np.ndarray:
        """Number of entries of every fragment."""
        return np.diff(self.offsets)

    @property
    def fragment(self) -> np.ndarray:
        """Fragment index of every flat entry."""
        return np.repeat(np.arange(self.n_fragments), self.sizes)

    def chunks(self, max_atoms: int | None) -> list[tuple[int, int]]:
        """``(first, stop)`` fragment ranges of at most ``max_atoms`` atoms each (whole
        fragments; a fragment larger than ``max_atoms`` is a chunk of its own)."""
        n_fragments = self.n_fragments
        if max_atoms is None:
            return [(0, n_fragments)]
        chunks, start = [], 0
        while start < n_fragments:
            limit = self.offsets[start] + max_atoms
            stop = int(np.searchsorted(self.offsets, limit, side="right")) - 1
            stop = min(max(stop, start + 1), n_fragments)
            chunks.append((start, stop))
            start = stop
        return chunks


@dataclass(frozen=True, eq=False)
class ExpansionPlan(PackedOffsets):
    """Distinct sub-clusters, packed flat, with the weights that turn energies into orders.

    Sub-cluster ``f`` holds the flat entries ``offsets[f]:offsets[f+1]``; flat entry ``k``
    is atom ``atoms[k]`` displaced by the integer cell shift ``shifts[k]``.
    """

    n_atoms: int
    max_order: int
    periodic: bool
    r_mbe: float
    structure: Structure = field(repr=False)
    atoms: np.ndarray = field(repr=False)
    shifts: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)
    #: atom-resolved weights: flat entry, centre atom, order (1-based), weight
    entry_flat: np.ndarray = field(repr=False)
    entry_atom: np.ndarray = field(repr=False)
    entry_order: np.ndarray = field(repr=False)
    entry_weight: np.ndarray = field(repr=False)
    #: flat entry of each centre atom's one-atom sub-cluster; -1 for the atoms that are
    #: not centres (only ``singleton_flat[entry_atom]`` is ever indexed)
    singleton_flat: np.ndarray = field(repr=False)
    #: (n_subclusters, max_order) weights of sub-cluster total energies, or None (always
    #: None when ``centres`` is given)
    cluster_weights: np.ndarray | None = field(repr=False)
    n_screened_out: int = 0
    n_rows: int = 0
    #: sorted atom indices whose energies are expanded, or None: every atom
    centres: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_subclusters(self) -> int:
        return self.n_fragments

    @property
    def centre_atoms(self) -> np.ndarray:
        """Indices of the atoms whose energies the plan expands (all atoms by default)."""
        return np.arange(self.n_atoms) if self.centres is None else self.centres

    @property
    def n_centres(self) -> int:
        return self.n_atoms if self.centres is None else len(self.centres)

    @overload
    def flat_positions(
        self,
        positions: torch.Tensor,
        cell: ArrayLike | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> torch.Tensor: ...

    @overload
    def flat_positions(
        self,
        positions: np.ndarray | None = None,
        cell: ArrayLike | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> np.ndarray: ...

    def flat_positions(
        self,
        positions: np.ndarray | torch.Tensor | None = None,
        cell: ArrayLike | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Cartesian positions (Angstrom) of the flat entries ``start:stop`` (default: all),
        numpy or torch (differentiable with respect to ``positions``)."""
        positions = self.structure.positions if positions is None else positions
        cell = self.structure.cell if cell is None else cell
        atoms = self.atoms[start:stop]
        shifts = self.shifts[start:stop]
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a core dependency
            torch = None  # type: ignore[assignment]  # the numpy branch below still works
        if torch is not None and isinstance(positions, torch.Tensor):
            index = torch.as_tensor(atoms, device=positions.device)
            out = positions[index]
            if self.periodic:
                cell_t = torch.as_tensor(cell, dtype=positions.dtype, device=positions.device)
                shifts_t = torch.as_tensor(shifts, dtype=positions.dtype)
                out = out + shifts_t @ cell_t
            return out
        out = np.asarray(positions)[atoms]
        if self.periodic:
            out = out + shifts @ np.asarray(cell)
        return out

    def labels(self) -> list[str]:
        """A stable, parseable label per sub-cluster (see :func:`subcluster_label`)."""
        return [
            subcluster_label(self.atoms[a:b], self.shifts[a:b] if self.periodic else None)
            for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]

    def subclusters(self) -> Iterator[Subcluster]:
        """What the expansion computes: every distinct sub-cluster of the plan, in order,
        with its label, atom indices, integer cell shifts and Cartesian positions
        (Angstrom). The seam for anything that computes sub-cluster energies itself (an
        electronic-structure method): compute these, then assemble by label."""
        positions = self.flat_positions()
        for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True):
            shifts = self.shifts[a:b] if self.periodic else np.zeros((b - a, 3), dtype=np.int64)
            yield Subcluster(
                subcluster_label(self.atoms[a:b], shifts), self.atoms[a:b], shifts, positions[a:b]
            )

    @property
    def has_cluster_weights(self) -> bool:
        return self.cluster_weights is not None


class Subcluster(NamedTuple):
    """One sub-cluster of a plan: ``label`` (:func:`subcluster_label`), ``atoms`` (indices
    in the structure), ``shifts`` (integer cell shifts of each atom), ``positions``
    (Angstrom)."""

    label: str
    atoms: np.ndarray
    shifts: np.ndarray
    positions: np.ndarray


def subcluster_label(
    atoms: Sequence[int] | np.ndarray, shifts: Sequence[Sequence[int]] | np.ndarray | None = None
) -> str:
    """Label of a sub-cluster: ``"0-3-5"``, or ``"0-3[1,0,0]-5"`` with periodic images.

    Atom indices are 0-based; a non-zero integer cell shift follows its atom in brackets.
    The model MBE and the reference MBE meet on these keys.
    """
    parts = []
    for k, a in enumerate(atoms):
        s = None if shifts is None else tuple(int(x) for x in shifts[k])
        if s is None or s == (0, 0, 0):
            parts.append(str(int(a)))
        else:
            parts.append(f"{int(a)}[{s[0]},{s[1]},{s[2]}]")
    return "-".join(parts)


_BODY = r"(\d+)(?:\[(-?\d+),(-?\d+),(-?\d+)\])?"
_LABEL = re.compile(rf"{_BODY}(?:-{_BODY})*")


def parse_subcluster_label(label: str) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`subcluster_label`: ``(atoms, shifts)`` arrays."""
    if not _LABEL.fullmatch(label):
        raise ValueError(f"not a sub-cluster label: {label!r}")
    atoms, shifts = [], []
    for match in re.finditer(_BODY, label):
        atoms.append(int(match.group(1)))
        shifts.append([int(x) if x else 0 for x in match.group(2, 3, 4)])
    return np.array(atoms, dtype=np.int64), np.array(shifts, dtype=np.int64).reshape(-1, 3)


@lru_cache(maxsize=512)
def _combinations(m: int, k: int) -> np.ndarray:
    if k == 0:
        return np.zeros((1, 0), dtype=np.int64)
    flat = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(m), k)), dtype=np.int64
    )
    return flat.reshape(-1, k)


def _closed_form_weights(m: int, size: int, max_order: int) -> np.ndarray:
    """Weights (orders 1..K) of ``e_i(V + {i})`` with ``|V| = size - 1``, no screening."""
    w = np.zeros(max_order)
    v = size - 1
    for n in range(size, max_order + 1):
        w[n - 1] = (-1) ** (n - size) * math.comb(m - v, n - size)
    return w


def _screened_sets(
    adjacency: np.ndarray, max_order: int, layers: int | None, limit: int
) -> dict[tuple[int, ...], np.ndarray]:
    """Contributing sets for the root (node 0) and the weights of their subsets.

    Returns ``{V: weights}`` with V a sorted tuple of pool indices (node k -> pool k-1)
    and weights an array over orders 1..K.
    """
    m1 = len(adjacency)
    neighbours = [frozenset(np.flatnonzero(adjacency[a]).tolist()) for a in range(m1)]
    level = {frozenset([0])}
    contributing = [frozenset([0])]
    for size in range(2, max_order + 1):
        grown = set()
        for s in level:
            frontier = set().union(*(neighbours[a] for a in s)) - s
            for a in frontier:
                grown.add(s | {a})
        if len(grown) > limit:
            raise PlanTooLargeError(
                f"the screened expansion needs more than {limit} sub-clusters per atom; "
                "lower max_order or r_mbe, or raise max_subclusters"
            )
        level = grown
        for s in level:
            if layers is None or layers >= size - 1 or _within_hops(s, neighbours, layers):
                contributing.append(s)
    weights: dict[tuple[int, ...], np.ndarray] = {}
    for u in contributing:
        members = sorted(u - {0})
        n = len(members) + 1
        for k in range(len(members) + 1):
            for v in itertools.combinations(members, k):
                w = weights.get(v)
                if w is None:
                    w = weights[v] = np.zeros(max_order)
                w[n - 1] += (-1) ** (n - 1 - k)
    return {tuple(a - 1 for a in v): w for v, w in weights.items()}


def _screened_sets_upto_3(
    adjacency: np.ndarray, max_order: int, layers: int | None, limit: int
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int]:
    """:func:`_screened_sets` for ``max_order <= 3`` in closed form, vectorised, already
    split by size as :func:`_centre_sets` returns it: the same sets and weights (keys in
    sorted order), the same refusals, about 10 times faster.

    Contributing sets of the root 0: ``{0}``; ``{0, a}`` for a neighbour a of 0 (if
    ``layers >= 1``); connected triples ``{0, a, b}`` (at least two of the edges 0a, 0b,
    ab), with both a and b neighbours of 0 when ``layers == 1``. A contributing set U of
    n atoms adds ``(-1)^(n-1-k)`` to the weight of order n of each subset V of ``U - {0}``
    with k atoms; a subset gets a row if any contributing set holds it.
    """
    m = len(adjacency) - 1
    near = adjacency[0, 1:]  # pool atom p is node p + 1
    neighbours = np.flatnonzero(near)
    weight_root = np.zeros((1, max_order))
    weight_root[0, 0] = 1.0
    singles_weight = np.zeros((m, max_order))
    holds_single = np.zeros(m, dtype=bool)
    if max_order >= 2:
        if len(neighbours) > limit:
            raise PlanTooLargeError(
                f"the screened expansion needs more than {limit} sub-clusters per atom; "
                "lower max_order or r_mbe, or raise max_subclusters"
            )
        weight_root[0, 1] = -len(neighbours)
        singles_weight[neighbours, 1] = 1.0
        holds_single[neighbours] = True
    first = second = np.zeros(0, dtype=np.int64)
    if max_order >= 3:
        first, second = np.triu_indices(m, 1)
        edges = near[first].astype(np.int64) + near[second] + adjacency[1:, 1:][first, second]
        connected = edges >= 2
        if int(connected.sum()) > limit:
            raise PlanTooLargeError(
                f"the screened expansion needs more than {limit} sub-clusters per atom; "
                "lower max_order or r_mbe, or raise max_subclusters"
            )
        keep = connected if layers is None or layers >= 2 else near[first] & near[second]
        first, second = first[keep], second[keep]
        weight_root[0, 2] = len(first)
        np.subtract.at(singles_weight[:, 2], first, 1.0)
        np.subtract.at(singles_weight[:, 2], second, 1.0)
        holds_single[first] = True
        holds_single[second] = True
    per_size = {1: (np.zeros((1, 1), dtype=np.int64), weight_root)}
    singles = np.flatnonzero(holds_single)
    if len(singles):
        picked = np.stack([np.zeros(len(singles), dtype=np.int64), singles + 1], axis=1)
        per_size[2] = (picked, singles_weight[singles])
    if len(first):
        picked = np.stack([np.zeros(len(first), dtype=np.int64), first + 1, second + 1], axis=1)
        weights = np.zeros((len(first), max_order))
        weights[:, 2] = 1.0
        per_size[3] = (picked, weights)
    rows = sum(len(picked) for picked, _ in per_size.values())
    return per_size, sum(math.comb(m, k) for k in range(max_order)) - rows


def _within_hops(nodes: frozenset[int], neighbours: list[frozenset[int]], layers: int) -> bool:
    seen = {0}
    front = {0}
    for _ in range(layers):
        front = {b for a in front for b in neighbours[a] & nodes} - seen
        seen |= front
    return len(seen) == len(nodes)


def _canonical(
    atoms: np.ndarray, shifts: np.ndarray, periodic: bool
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, Callable[..., np.ndarray]] | None]:
    """Canonical codes (sorted per row) for sub-clusters, and the encoding parameters.

    Without periodicity the code is the atom index. With it, shifts are taken relative to
    the body of lowest atom index (ties broken by the smallest resulting row), so that
    sub-clusters related by a lattice translation share one code row.
    """
    n_rows, size = atoms.shape
    if not periodic:
        return np.sort(atoms, axis=1), np.zeros((n_rows, 3), dtype=np.int64), None
    bound = int(np.abs(shifts).max(initial=0)) * 2 + 1
    width = 2 * bound + 1

    def encode(a: np.ndarray, s: np.ndarray) -> np.ndarray:
        return (
            a * width**3
            + ((s[..., 0] + bound) * width + (s[..., 1] + bound)) * width
            + (s[..., 2] + bound)
        )

    min_atom = atoms.min(axis=1)
    best: np.ndarray | None = None
    best_anchor = np.zeros((n_rows, 3), dtype=np.int64)
    big = np.iinfo(np.int64).max
    for p in range(size):
        anchor = shifts[:, p, :]
        codes = np.sort(encode(atoms, shifts - anchor[:, None, :]), axis=1)
        codes[atoms[:, p] != min_atom] = big
        if best is None:
            best, best_anchor = codes, anchor.copy()
            continue
        differ = codes != best
        first = np.argmax(differ, axis=1)
        rows = np.arange(n_rows)
        smaller = differ.any(axis=1) & (codes[rows, first] < best[rows, first])
        best[smaller] = codes[smaller]
        best_anchor[smaller] = anchor[smaller]
    assert best is not None  # size >= 1: the loop ran
    return best, best_anchor, (bound, width, encode)


def plan_expansion(
    positions: ArrayLike,
    *,
    max_order: int,
    cell: ArrayLike | None = None,
    pbc: bool | ArrayLike = False,
    r_mbe: float | None = None,
    screening: Screening | None = None,
    max_subclusters: int = DEFAULT_MAX_SUBCLUSTERS,
    min_distance: float = 0.3,
    max_memory_GiB: float | None = None,
    centres: ArrayLike | None = None,
) -> ExpansionPlan:
    """Plan the many-body expansion of a structure up to order ``max_order``.

    Parameters
    ----------
    positions, cell, pbc
        The structure (Angstrom). A structure with any periodic direction is periodic.
    max_order
        Truncation order K (1 = atoms alone). For an isolated cluster K <= N.
    r_mbe
        Radius (Angstrom) within which other atoms (and periodic images) are bodies of an
        atom's expansion. Required for periodic systems; ``None`` for a cluster means
        every atom. Must be smaller than the cell's perpendicular widths.
    screening
        Exact screening from the model's cutoff and layers, or ``None``.
    max_subclusters
        Budget: a plan needing more distinct sub-clusters is refused.
    min_distance
        Atoms closer than this (Angstrom) are reported as overlapping.
    max_memory_GiB
        Memory budget of the plan (GiB); default: half the memory available now. A plan
        whose estimated memory exceeds it is refused before it is allocated, with the
        estimate in the message.
    centres
        Distinct atom indices (0-based) whose energies are expanded (the atom-sampled
        expansion), or ``None``: every atom. Only the centres' rows ``(i, U)`` are
        enumerated and counted against the budgets; ``singleton_flat`` is -1 for the
        other atoms and the plan has no cluster weights.

    Both budgets are checked before enumeration from counts known in closed form (exact
    without screening; with screening a lower bound: every subset of an atom's direct
    neighbours contributes), so a refusal comes in about the time of a neighbour list,
    and again during enumeration.
    """
    budget_bytes = _memory_budget_bytes(max_memory_GiB)
    structure = check_structure(positions, cell, pbc, min_distance=min_distance)
    n = structure.n_atoms
    centre_list = _check_centres(centres, n)
    max_order, r_mbe = _check_order_and_radius(structure, max_order, r_mbe)
    periodic = structure.periodic
    pool_atoms, pool_shifts = pools(structure, r_mbe)
    sizes_m = np.array([len(a) for a in pool_atoms])
    if periodic and max_order > sizes_m.max() + 1:
        raise BodyOrderError(
            f"max_order={max_order} is larger than the system seen within r_mbe={r_mbe} "
            f"Angstrom: no atom has more than {sizes_m.max()} neighbours there"
        )
    budgets = _Budgets(max_order, max_subclusters, budget_bytes)
    if not periodic and math.isinf(r_mbe) and centres is None and screening is None:
        exact = sum(math.comb(n, k) for k in range(1, max_order + 1))
        if exact > max_subclusters:
            raise _too_large(exact, max_subclusters, max_order)
    degrees = (
        sizes_m
        if screening is None
        else _direct_neighbours(structure, pool_atoms, pool_shifts, screening.cutoff)
    )
    rows_known = {
        size: sum(math.comb(int(degrees[i]), size - 1) for i in centre_list)
        for size in range(1, max_order + 1)
    }
    budgets.check(rows_known, exact=screening is None)
    rows = _enumerate_rows(
        structure, centre_list, pool_atoms, pool_shifts, max_order, screening, budgets
    )
    packed = _pack_distinct(rows, periodic, max_order, n)
    if packed.n_subclusters > max_subclusters:
        raise _too_large(packed.n_subclusters, max_subclusters, max_order)
    cluster_weights = None
    if not periodic and math.isinf(r_mbe) and rows.n_screened_out == 0 and centres is None:
        cluster_weights = _cluster_weights(packed.offsets, n, max_order)
    return ExpansionPlan(
        n_atoms=n,
        max_order=max_order,
        periodic=periodic,
        r_mbe=r_mbe,
        structure=structure,
        atoms=packed.atoms,
        shifts=packed.shifts,
        offsets=packed.offsets,
        entry_flat=packed.entry_flat,
        entry_atom=packed.entry_atom,
        entry_order=packed.entry_order,
        entry_weight=packed.entry_weight,
        singleton_flat=packed.singleton_flat,
        cluster_weights=cluster_weights,
        n_screened_out=int(rows.n_screened_out),
        n_rows=int(rows.n_rows),
        centres=None if centres is None else np.array(centre_list, dtype=np.int64),
    )


# ---------------------------------------------------------------- the steps of a plan


def _memory_budget_bytes(max_memory_GiB: float | None) -> float:
    """The memory budget in bytes (default: :func:`default_memory_budget_GiB`)."""
    budget_GiB = default_memory_budget_GiB() if max_memory_GiB is None else max_memory_GiB
    if isinstance(budget_GiB, bool) or not (
        isinstance(budget_GiB, int | float) and budget_GiB > 0 and math.isfinite(budget_GiB)
    ):
        raise BodyOrderError(f"max_memory_GiB must be a positive number, got {max_memory_GiB!r}")
    return float(budget_GiB) * 2**30


def _check_order_and_radius(
    structure: Structure, max_order: int, r_mbe: float | None
) -> tuple[int, float]:
    """``(K, r_mbe)`` checked against the structure; ``r_mbe`` infinite for a whole cluster."""
    n = structure.n_atoms
    if isinstance(max_order, bool) or int(max_order) != max_order or max_order < 1:
        raise BodyOrderError(f"max_order must be a positive integer, got {max_order!r}")
    max_order = int(max_order)
    periodic = structure.periodic
    if r_mbe is None:
        if periodic:
            raise BodyOrderError(
                "a periodic system needs r_mbe: the radius (Angstrom) within which neighbours "
                "and periodic images enter each atom's expansion"
            )
        r_mbe = math.inf
    if not r_mbe > 0:
        raise BodyOrderError(f"r_mbe must be positive (Angstrom), got {r_mbe}")
    if not periodic and max_order > n:
        raise BodyOrderError(
            f"max_order={max_order} is larger than the system: an isolated cluster of {n} "
            f"atom(s) has body orders 1..{n}"
        )
    if periodic:
        widths = perpendicular_widths(structure.cell)[structure.pbc]
        if widths.min() <= r_mbe:
            raise StructureError(
                f"the periodic cell is too small for r_mbe={r_mbe} Angstrom: its narrowest "
                f"width is {widths.min():.3f} Angstrom, so an atom would meet its own periodic "
                "image in its expansion; use a supercell (atoms.repeat) or a smaller r_mbe"
            )
    return max_order, r_mbe


@dataclass(frozen=True)
class _Budgets:
    """The sub-cluster and memory budgets of one plan (see :func:`_check_budgets`)."""

    max_order: int
    max_subclusters: int
    budget_bytes: float

    def check(self, rows_by_size: dict[int, int], *, exact: bool) -> None:
        _check_budgets(
            rows_by_size, self.max_order, self.max_subclusters, self.budget_bytes, exact=exact
        )


@dataclass
class _Rows:
    """Rows ``(centre i, sub-cluster U + {i})`` by sub-cluster size: the bodies' atom
    indices and cell shifts, the centre, and the weights of ``e_i(U + {i})`` per order."""

    atoms: dict[int, list[np.ndarray]] = field(default_factory=dict)
    shifts: dict[int, list[np.ndarray]] = field(default_factory=dict)
    roots: dict[int, list[np.ndarray]] = field(default_factory=dict)
    weights: dict[int, list[np.ndarray]] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    n_rows: int = 0
    n_screened_out: int = 0

    def add(
        self, size: int, atoms: np.ndarray, shifts: np.ndarray, root: int, weights: ArrayLike
    ) -> None:
        self.atoms.setdefault(size, []).append(atoms)
        self.shifts.setdefault(size, []).append(shifts)
        self.roots.setdefault(size, []).append(np.full(len(atoms), root, dtype=np.int64))
        self.weights.setdefault(size, []).append(np.asarray(weights))
        self.counts[size] = self.counts.get(size, 0) + len(atoms)
        self.n_rows += len(atoms)


def _centre_sets(
    body_atoms: np.ndarray,
    body_shifts: np.ndarray,
    structure: Structure,
    max_order: int,
    screening: Screening | None,
    limit: int,
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int]:
    """The sets of one centre (node 0 of ``body_atoms``) by size: ``{size: (picked nodes,
    weights)}``, and how many subsets exact screening removed."""
    m = len(body_atoms) - 1
    per_size: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    complete = True
    if screening is not None and m > 0:
        xyz = structure.positions[body_atoms] + body_shifts @ structure.cell
        d = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
        adjacency = d < screening.cutoff
        np.fill_diagonal(adjacency, False)
        # a complete graph screens nothing, whatever the number of layers
        complete = bool(adjacency[np.triu_indices(m + 1, 1)].all())
    if complete:
        for s in range(1, min(max_order, m + 1) + 1):
            combos = _combinations(m, s - 1) + 1
            picked = np.concatenate([np.zeros((len(combos), 1), dtype=np.int64), combos], axis=1)
            w = np.broadcast_to(_closed_form_weights(m, s, max_order), (len(combos), max_order))
            per_size[s] = (picked, w)
        return per_size, 0
    assert screening is not None  # not complete: screening was given
    if max_order <= 3:
        return _screened_sets_upto_3(adjacency, max_order, screening.layers, limit)
    sets = _screened_sets(adjacency, max_order, screening.layers, limit)
    screened_out = sum(math.comb(m, k) for k in range(max_order)) - len(sets)
    by_size: dict[int, list] = {}
    for v, w in sets.items():
        by_size.setdefault(len(v) + 1, []).append(([0, *(a + 1 for a in v)], w))
    for s, items in by_size.items():
        per_size[s] = (
            np.array([it[0] for it in items], dtype=np.int64).reshape(-1, s),
            np.array([it[1] for it in items]),
        )
    return per_size, screened_out


def _enumerate_rows(
    structure: Structure,
    centre_list: list[int],
    pool_atoms: Sequence[np.ndarray],
    pool_shifts: Sequence[np.ndarray],
    max_order: int,
    screening: Screening | None,
    budgets: _Budgets,
) -> _Rows:
    """Every centre's rows, checking the budgets after each centre."""
    rows = _Rows()
    limit = max(budgets.max_subclusters * max_order, 1)
    for i in centre_list:
        body_atoms = np.concatenate([[i], pool_atoms[i]]).astype(np.int64)
        body_shifts = np.concatenate([np.zeros((1, 3), dtype=np.int64), pool_shifts[i]])
        per_size, screened_out = _centre_sets(
            body_atoms, body_shifts, structure, max_order, screening, limit
        )
        rows.n_screened_out += screened_out
        for s, (picked, w) in per_size.items():
            rows.add(s, body_atoms[picked], body_shifts[picked], i, w)
        budgets.check(rows.counts, exact=False)
    return rows


@dataclass
class _Packed:
    """The distinct sub-clusters packed flat, and the weight entries of the rows."""

    atoms: np.ndarray
    shifts: np.ndarray
    offsets: np.ndarray
    entry_flat: np.ndarray
    entry_atom: np.ndarray
    entry_order: np.ndarray
    entry_weight: np.ndarray
    singleton_flat: np.ndarray
    n_subclusters: int


def _pack_distinct(rows: _Rows, periodic: bool, max_order: int, n_atoms: int) -> _Packed:
    """Each distinct sub-cluster once (canonical up to lattice translation), packed flat,
    with every row's weights pointing at its centre's entry in it."""
    flat_atoms, flat_shifts, offsets = [], [], [0]
    e_flat, e_atom, e_order, e_weight = [], [], [], []
    singleton_flat = np.full(n_atoms, -1, dtype=np.int64)
    n_sub = 0
    n_flat = 0
    for s in sorted(rows.atoms):
        atoms = np.concatenate(rows.atoms[s])
        shifts = np.concatenate(rows.shifts[s])
        roots = np.concatenate(rows.roots[s])
        weights = np.concatenate(rows.weights[s])
        codes, anchors, enc = _canonical(atoms, shifts, periodic)
        unique, inverse = np.unique(codes, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        if periodic:
            assert enc is not None  # _canonical encodes every periodic plan
            bound, width, encode = enc
            root_code = encode(roots, -anchors)
            root_pos = np.argmax(codes == root_code[:, None], axis=1)
            u_atoms = unique // width**3
            rest = unique % width**3
            u_shifts = np.stack(
                [rest // width**2 - bound, (rest // width) % width - bound, rest % width - bound],
                axis=-1,
            )
        else:
            root_pos = np.argmax(codes == roots[:, None], axis=1)
            u_atoms = unique
            u_shifts = np.zeros(unique.shape + (3,), dtype=np.int64)
        flat_atoms.append(u_atoms.reshape(-1))
        flat_shifts.append(u_shifts.reshape(-1, 3))
        offsets.extend((n_flat + s * np.arange(1, len(unique) + 1)).tolist())
        flat_of_row = n_flat + inverse * s + root_pos
        if s == 1:
            singleton_flat[roots] = flat_of_row
        for order in range(s, max_order + 1):
            w = weights[:, order - 1]
            keep = w != 0
            e_flat.append(flat_of_row[keep])
            e_atom.append(roots[keep])
            e_order.append(np.full(int(keep.sum()), order, dtype=np.int64))
            e_weight.append(w[keep].astype(np.float64))
        n_sub += len(unique)
        n_flat += s * len(unique)
    return _Packed(
        atoms=np.concatenate(flat_atoms),
        shifts=np.concatenate(flat_shifts).astype(np.int64),
        offsets=np.array(offsets, dtype=np.int64),
        entry_flat=np.concatenate(e_flat),
        entry_atom=np.concatenate(e_atom),
        entry_order=np.concatenate(e_order),
        entry_weight=np.concatenate(e_weight),
        singleton_flat=singleton_flat,
        n_subclusters=n_sub,
    )


def _cluster_weights(offsets: np.ndarray, n_atoms: int, max_order: int) -> np.ndarray:
    """Weights (sub-cluster, order) of the cluster MBE from sub-cluster total energies:
    ``(-1)^(n - |T|) C(N - |T|, n - |T|)`` for ``|T| <= n``."""
    sizes = np.diff(offsets)
    weights = np.zeros((len(sizes), max_order))
    for order in range(1, max_order + 1):
        valid = sizes <= order
        weights[valid, order - 1] = [
            (-1) ** (order - int(k)) * math.comb(n_atoms - int(k), order - int(k))
            for k in sizes[valid]
        ]
    return weights


def _check_centres(centres: ArrayLike | None, n_atoms: int) -> list[int]:
    """The centre atoms as a sorted list of ints (all atoms for ``None``), or an error."""
    if centres is None:
        return list(range(n_atoms))
    array = np.asarray(centres)
    if array.ndim != 1 or array.size == 0:
        raise BodyOrderError(
            f"centres must be a non-empty 1-D array of atom indices, got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise BodyOrderError(f"centres must be integer atom indices, got dtype {array.dtype}")
    if array.min() < 0 or array.max() >= n_atoms:
        raise BodyOrderError(
            f"centres must be atom indices in 0..{n_atoms - 1}, got {array.min()}..{array.max()}"
        )
    unique = np.unique(array)
    if len(unique) != len(array):
        raise BodyOrderError("centres must be distinct atom indices (no repeats)")
    return [int(i) for i in unique]


def _direct_neighbours(
    structure: Structure,
    pool_atoms: Sequence[np.ndarray],
    pool_shifts: Sequence[np.ndarray],
    cutoff: float,
) -> np.ndarray:
    """Number of each atom's pool bodies closer than ``cutoff`` (Angstrom)."""
    cartesian = structure.positions
    out = np.zeros(len(pool_atoms), dtype=np.int64)
    for i, (atoms, shifts) in enumerate(zip(pool_atoms, pool_shifts, strict=True)):
        if len(atoms):
            xyz = cartesian[atoms] + shifts @ structure.cell
            out[i] = int((np.linalg.norm(xyz - cartesian[i], axis=1) < cutoff).sum())
    return out


def _check_budgets(
    rows_by_size: dict[int, int],
    max_order: int,
    max_subclusters: int,
    budget_bytes: float,
    *,
    exact: bool,
) -> None:
    """Refuse a plan whose rows (all of them if ``exact``, else at least these) exceed the
    sub-cluster or the memory budget.

    A distinct sub-cluster of size s stands for at most s rows (one per centre atom), so
    ``sum_s rows_s / s`` is a lower bound of the number of distinct sub-clusters.
    """
    distinct = sum(rows / s for s, rows in rows_by_size.items())
    if distinct > max_subclusters:
        word = "about" if exact else "at least"
        raise _too_large(f"{word} {math.ceil(distinct)}", max_subclusters, max_order)
    needed = estimate_plan_bytes(rows_by_size, max_order)
    if needed > budget_bytes:
        word = "an estimated" if exact else "at least an estimated"
        raise PlanTooLargeError(
            f"the expansion to order {max_order} needs {word} {needed / 2**30:.1f} GiB of "
            f"memory to plan, over the budget of max_memory_GiB={budget_bytes / 2**30:.1f} "
            "(default: half the memory available); lower max_order or r_mbe, or raise "
            "max_memory_GiB"
        )


def _too_large(count: int | str, budget: int, max_order: int) -> PlanTooLargeError:
    return PlanTooLargeError(
        f"the expansion to order {max_order} needs {count} distinct sub-clusters, over the "
        f"budget of max_subclusters={budget}; raise max_subclusters, or lower max_order or "
        "r_mbe"
    )
