"""Exact screening: the sub-clusters whose contribution vanishes by a model's cutoff and
message-passing layers (``docs/science.md`` section 2), and the sets that remain."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._geometry import Structure
from .errors import BodyOrderError, PlanTooLargeError

if TYPE_CHECKING:
    pass

__all__ = ["Screening"]


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
