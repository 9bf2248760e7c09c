"""Sharing a sub-cluster's total energy among its atoms (``docs/science.md`` section 10).

An expansion of totals without atom energies (an electronic-structure method, or a
model compared with one under the same definition) needs atom energies e_i(T) that sum
to E(T). :func:`share_energies` makes them from the totals of a batch of sub-clusters:

* ``"increment"`` (the default): every subset S of T contributes its many-body
  increment eps(S) = sum_{R subset of S} (-1)^(|S|-|R|) E(R) in equal parts to its
  members, e_i(T) = sum_{S subset of T, i in S} eps(S)/|S| (the Shapley value). The
  atom-resolved n-body term of atom i is then sum_U eps(U + {i})/n: n-body increments
  only, so a pair potential has no third order at any r_mbe.
* ``"equal"``: E(T)/|T|, the former definition, which puts pair energy into E^(3) at
  finite r_mbe; kept for comparison.

:class:`IncrementShare` applies a sharing to a model's totals. Energies in eV.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..expansion import BodyOrderError
from .base import AtomicModel, FragmentBatch, Model, SystemResult

if TYPE_CHECKING:
    from ase import Atoms

__all__ = [
    "SHARINGS",
    "IncrementShare",
    "check_sharing",
    "increment_share_weights",
    "share_energies",
]

#: the sharings of sub-cluster totals among their atoms: ``"increment"`` (each subset's
#: many-body increment in equal parts to its members; the default, it measures body
#: order) and ``"equal"`` (E(T)/|T|; leaks lower orders into higher ones at finite r_mbe)
SHARINGS = ("increment", "equal")


def check_sharing(sharing: str) -> str:
    """``sharing`` if it is one of :data:`SHARINGS`, else a one-line error."""
    if sharing not in SHARINGS:
        raise BodyOrderError(f"sharing must be one of {', '.join(SHARINGS)}, got {sharing!r}")
    return sharing


@lru_cache(maxsize=16)
def increment_share_weights(m: int) -> np.ndarray:
    """W, shape (m, 2^m - 1): atom i's increment share of a sub-cluster of m atoms is
    ``sum_k W[i, k] E(subset k+1)``, subsets numbered by bit masks (bit b: atom b).

    W[i, R] = sum over S with R subset of S and i in S of (-1)^(|S|-|R|) / |S|: the
    increments eps(S) of every subset S holding i, each in equal parts to S's members.
    """
    if not 1 <= m <= 16:
        raise BodyOrderError(f"increment sharing of a {m}-atom sub-cluster is not supported")
    full = (1 << m) - 1
    popcount = [bin(mask).count("1") for mask in range(full + 1)]
    weights = np.zeros((m, full))
    for s in range(1, full + 1):
        members = [i for i in range(m) if s >> i & 1]
        # eps(S) = sum over R subset of S of (-1)^(|S|-|R|) E(R), R non-empty
        r = s
        while r:
            sign = -1.0 if (popcount[s] - popcount[r]) % 2 else 1.0
            for i in members:
                weights[i, r - 1] += sign / popcount[s]
            r = (r - 1) & s
    return weights


def _subset_rows(sizes: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Every non-empty subset of every fragment: flat rows, offsets, and per fragment size
    ``(m, fragment indices, subset ids (F, 2^m - 1))``."""
    rows, lengths, groups = [], [], []
    next_id = 0
    for m in np.unique(sizes):
        m = int(m)
        fragments = np.nonzero(sizes == m)[0]
        first = starts[fragments]
        ids = np.empty((len(fragments), (1 << m) - 1), dtype=np.int64)
        for mask in range(1, 1 << m):
            bits = np.array([b for b in range(m) if mask >> b & 1], dtype=np.int64)
            rows.append((first[:, None] + bits[None, :]).reshape(-1))
            lengths.append(np.full(len(fragments), len(bits), dtype=np.int64))
            ids[:, mask - 1] = next_id + np.arange(len(fragments))
            next_id += len(fragments)
        groups.append((m, fragments, ids))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    return np.concatenate(rows), offsets, groups


def share_energies(
    batch: FragmentBatch[torch.Tensor],
    totals: Callable[[FragmentBatch[torch.Tensor]], torch.Tensor],
    sharing: str = "increment",
) -> torch.Tensor:
    """Atom energies (eV, float64) of the sub-clusters of ``batch`` from their totals.

    ``totals(sub)`` gives the total energy (eV) of each fragment of the batch ``sub``.
    ``"equal"``: E(T)/|T|. ``"increment"``: every non-empty subset of every fragment is
    packed into one batch, evaluated in one ``totals`` call, and shared by
    :func:`increment_share_weights`. Differentiable where ``totals`` is.
    """
    check_sharing(sharing)
    sizes = batch.sizes
    starts = batch.offsets[:-1]
    if sharing == "equal":
        owner = torch.as_tensor(np.repeat(np.arange(len(sizes)), sizes))
        whole = totals(batch).to(torch.float64)
        return (whole / torch.as_tensor(sizes, dtype=torch.float64))[owner]
    rows, offsets, groups = _subset_rows(sizes, starts)
    index = torch.as_tensor(rows)
    sub = FragmentBatch(
        positions=batch.positions[index], numbers=batch.numbers[rows], offsets=offsets
    )
    subset_totals = totals(sub).to(torch.float64)
    out = torch.zeros(len(batch.numbers), dtype=torch.float64)
    for m, fragments, ids in groups:
        weights = torch.as_tensor(increment_share_weights(m))
        shares = subset_totals[torch.as_tensor(ids)] @ weights.T  # (F, m)
        flat = (starts[fragments][:, None] + np.arange(m)[None, :]).reshape(-1)
        out = out.index_put((torch.as_tensor(flat),), shares.reshape(-1))
    return out


class IncrementShare(AtomicModel):
    """``model`` with each sub-cluster's total shared among its atoms by ``sharing``.

    The model's total energies are unchanged; only the atom energies are replaced (by
    increments, the reference's definition, or ``"equal"``: E(T)/|T|). No screening
    (like the reference), so that both expand the same sub-clusters. The whole
    structure's total is shared equally (E/N per atom: only the residual per atom uses
    it). Forces through autograd where the model has them.
    """

    cutoff = math.inf

    def __init__(self, model: Model, sharing: str = "increment") -> None:
        if not isinstance(model, AtomicModel):
            raise BodyOrderError(f"IncrementShare needs an atomic model, got {model!r}")
        self.model = model
        self.sharing = check_sharing(sharing)
        self.atomic_numbers = model.atomic_numbers
        self.dtype = model.dtype

    def __repr__(self) -> str:
        return f"IncrementShare({self.model!r}, sharing={self.sharing!r})"

    def _totals(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        energies = self.model.fragment_energies(batch).to(torch.float64)
        owner = torch.as_tensor(batch.fragment)
        return torch.zeros(batch.n_fragments, dtype=torch.float64).index_add(0, owner, energies)

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        return share_energies(batch, self._totals, self.sharing)

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        result = self.model.system(atoms, forces=forces, stress=stress)
        share = np.full(len(atoms), result.energy / len(atoms))
        return SystemResult(result.energy, share, result.forces, result.stress)
