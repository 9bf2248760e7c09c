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

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

import numpy as np
from numpy.typing import ArrayLike

from ._geometry import Structure, check_structure, perpendicular_widths, pools
from .errors import BodyOrderError, StructureError

if TYPE_CHECKING:
    import torch

from .budget import (
    DEFAULT_MAX_SUBCLUSTERS,
    _Budgets,
    _memory_budget_bytes,
    _too_large,
    available_memory_bytes,
    default_memory_budget_GiB,
    estimate_plan_bytes,
)
from .labels import Subcluster, parse_subcluster_label, subcluster_label
from .rows import _cluster_weights, _enumerate_rows, _pack_distinct
from .screening import Screening, _direct_neighbours

__all__ = [
    "DEFAULT_MAX_SUBCLUSTERS",
    "ExpansionPlan",
    "PackedOffsets",
    "Screening",
    "Subcluster",
    "available_memory_bytes",
    "default_memory_budget_GiB",
    "estimate_plan_bytes",
    "parse_subcluster_label",
    "plan_expansion",
    "subcluster_label",
]


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
            import torch  # torch: expansion imports no torch at import time (pure numpy)
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
