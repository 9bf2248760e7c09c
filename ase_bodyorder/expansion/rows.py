"""The rows of an expansion plan: each centre atom's neighbour sets with their Moebius
weights, and their packing into distinct sub-clusters (see :func:`~.plan.plan_expansion`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ._geometry import Structure
from .budget import _Budgets
from .screening import Screening, _screened_sets, _screened_sets_upto_3

if TYPE_CHECKING:
    pass

__all__ = []


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
