"""Mixed precision: sub-clusters evaluated in float32, the expansion assembled in float64.

``decompose(..., precision="float32")`` evaluates the sub-clusters with the model cast to
float32 (:meth:`~ase_bodyorder.models.Model.with_dtype`; a model that cannot is an error
naming it) and keeps everything else in float64: the whole structure, the Moebius sums,
the forces' accumulation. The round-off reported for each order (``roundoff_eV``) is then

    roundoff_n = eps64 * cancellation_n + sum_k |C[k, n]| * r_s(k) * |e_k|

the float64 assembly term of every result plus a bound on what float32 evaluation changes
(:func:`~ase_bodyorder.expansion.evaluation_roundoff`): ``C[k, n]`` are the coefficients
of flat entry ``k`` in E^(n), ``e_k`` its float32 per-atom energy, and ``r_s`` the
relative error of an entry of a sub-cluster of size ``s``, **measured**:
:data:`CHECK_PER_SIZE` sub-clusters of each size (evenly spaced in the plan's order, so
the same ones every time) are evaluated again in the model's own float64, and ``r_s`` is
:data:`SAFETY` times the largest relative difference seen, and at least float32's
epsilon 2^-24.

Why it bounds the error: E^(n) is linear in the entries' energies, so if no entry is off
by more than ``r_s |e_k|``, the triangle inequality bounds ``|dE^(n)|`` by the sum above,
whatever the signs and correlations of the errors. The a-priori ``eps32 * |e_k|`` alone
does not hold: a network's float32 output is off by more than one rounding (measured on
the shipped models: up to 3 epsilons for MACE and SOAP-BPNN, 44 for PET, larger in
bigger sub-clusters), hence the measurement per size. What remains an assumption is that
the checked sub-clusters show the largest relative error of their size to within
:data:`SAFETY`. The bound is loose by about the square root of the number of terms (the
errors are rather independent): on an 8-atom cluster it is 3-100 times the measured
difference, which is what it costs to be safe.

The check costs up to :data:`CHECK_PER_SIZE` sub-clusters per size evaluated again in
float64: negligible for a cell with thousands of sub-clusters, but 97 of the 255 of an
8-atom full MBE, where float32 then gains nothing (``benchmarks/bench_precision.py``).
"""

from __future__ import annotations

import warnings
from typing import TypeVar

import numpy as np
import torch
from ase import Atoms
from numpy.typing import ArrayLike

from .expansion import BodyOrderError, ExpansionPlan, evaluation_roundoff
from .models.base import AtomicModel, FragmentBatch, Model

__all__ = [
    "CHECK_PER_SIZE",
    "DEFAULT_ROUNDOFF_WARNING_EV",
    "PRECISIONS",
    "SAFETY",
    "RoundoffWarning",
    "check_roundoff",
    "check_subclusters",
    "evaluation_model",
    "mixed_precision_roundoff",
]

ModelT = TypeVar("ModelT", bound=Model)

#: the precisions sub-clusters can be evaluated in
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}

#: sub-clusters of each size evaluated in both precisions to measure the relative error
CHECK_PER_SIZE = 16

#: the largest relative error measured per size is multiplied by this
SAFETY = 2.0

#: without ``max_roundoff_eV``, an order whose round-off estimate exceeds this (eV) is
#: reported by a :class:`RoundoffWarning` (the shipped models' test errors are about
#: 0.1 eV/atom: an order uncertain by more than that from round-off alone says nothing)
DEFAULT_ROUNDOFF_WARNING_EV = 0.1


class RoundoffWarning(UserWarning):
    """An order's round-off estimate is above the warning threshold."""


def evaluation_model(model: ModelT, precision: str | None) -> ModelT:
    """The model that evaluates the sub-clusters: ``model`` itself for ``None`` (its own
    dtype), else ``model`` in ``precision`` (``"float32"`` or ``"float64"``)."""
    if precision is None:
        return model
    if precision not in PRECISIONS:
        raise BodyOrderError(
            f"precision must be one of {', '.join(PRECISIONS)} (or None: the model's own "
            f"dtype), got {precision!r}"
        )
    return model.with_dtype(PRECISIONS[precision])


def check_subclusters(plan: ExpansionPlan, per_size: int = CHECK_PER_SIZE) -> np.ndarray:
    """Indices of the sub-clusters evaluated in both precisions: up to ``per_size`` of each
    size, evenly spaced among those of that size (deterministic)."""
    sizes = plan.sizes
    chosen = []
    for s in np.unique(sizes):
        of_size = np.flatnonzero(sizes == s)
        pick = np.unique(np.linspace(0, len(of_size) - 1, min(per_size, len(of_size))).round())
        chosen.append(of_size[pick.astype(np.int64)])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _size_errors(
    plan: ExpansionPlan, atoms: Atoms, flat_energies: np.ndarray, reference: AtomicModel
) -> dict[int, float]:
    """Relative error of each sub-cluster size: SAFETY x the largest measured one."""
    chosen = check_subclusters(plan)
    starts, stops = plan.offsets[chosen], plan.offsets[chosen + 1]
    flat = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)])
    positions = torch.tensor(atoms.positions, dtype=torch.float64)
    ranges = zip(starts, stops, strict=True)
    batch = FragmentBatch(
        positions=torch.cat([plan.flat_positions(positions, start=a, stop=b) for a, b in ranges]),
        numbers=atoms.numbers[plan.atoms[flat]],
        offsets=np.concatenate([[0], np.cumsum(stops - starts)]),
    )
    with torch.no_grad():
        exact = reference.fragment_energies(batch).to(torch.float64).numpy()
    relative = np.abs(flat_energies[flat] - exact) / np.maximum(np.abs(exact), 1e-300)
    size = plan.sizes[plan.fragment[flat]]
    eps = torch.finfo(torch.float32).eps / 2  # 2^-24, the unit round-off
    return {int(s): max(eps, SAFETY * float(relative[size == s].max())) for s in np.unique(size)}


def mixed_precision_roundoff(
    plan: ExpansionPlan,
    atoms: Atoms,
    flat_energies: ArrayLike,
    reference: AtomicModel,
    cancellation: ArrayLike,
) -> np.ndarray:
    """Round-off (K,) of the orders from ``flat_energies`` evaluated in a lower precision
    than ``reference`` (float64): see the module docstring."""
    flat_energies = np.asarray(flat_energies, dtype=np.float64)
    errors = _size_errors(plan, atoms, flat_energies, reference)
    by_size = np.zeros(int(plan.sizes.max()) + 1)
    for s, r in errors.items():
        by_size[s] = r
    relative = by_size[plan.sizes][plan.fragment]
    assembly = torch.finfo(torch.float64).eps * np.asarray(cancellation)
    return assembly + evaluation_roundoff(plan, flat_energies, relative)


def check_roundoff(roundoff_eV: ArrayLike, max_roundoff_eV: float | None) -> None:
    """Refuse (``BodyOrderError``) a result with an order's round-off estimate above
    ``max_roundoff_eV``; with ``None``, warn (:class:`RoundoffWarning`) above
    :data:`DEFAULT_ROUNDOFF_WARNING_EV`. One line naming the worst order either way."""
    if max_roundoff_eV is not None and not max_roundoff_eV >= 0:
        raise BodyOrderError(f"max_roundoff_eV must be a number >= 0 (eV), got {max_roundoff_eV!r}")
    roundoff = np.asarray(roundoff_eV, dtype=np.float64)
    limit = DEFAULT_ROUNDOFF_WARNING_EV if max_roundoff_eV is None else float(max_roundoff_eV)
    if not np.any(roundoff > limit):
        return
    n = int(np.argmax(roundoff))
    line = (
        f"round-off estimate of E^({n + 1}) is {roundoff[n]:.3g} eV, "
        f"{roundoff[n] / limit:.3g} x the limit of {limit:.3g} eV"
    )
    if max_roundoff_eV is None:
        warnings.warn(line, RoundoffWarning, stacklevel=3)
        return
    raise BodyOrderError(f"{line} (max_roundoff_eV); evaluate in float64 or raise max_roundoff_eV")
