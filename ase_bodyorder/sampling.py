"""Atom sampling (``docs/science.md`` section 9): which atoms an atom-sampled expansion
expands, the estimates from their exact terms, and the seed of each frame's sample.

The sample size is checked once, as a setting
(:class:`~ase_bodyorder.ExpansionSettings`, a positive integer); what depends on the
structure (at most its number of atoms) is :func:`check_sample_size`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .expansion import BodyOrderError, ExpansionPlan
from .models.base import SystemResult
from .result import BodyOrderResult

__all__ = [
    "check_sample_size",
    "draw_atom_sample",
    "frame_seeds",
    "fresh_seed",
    "sample_mean_and_stderr",
    "sampled_result",
]


def check_sample_size(sample_atoms: int, n_atoms: int) -> int:
    """``sample_atoms`` as an int in 1..``n_atoms`` (the atoms of this structure), or a
    one-line :class:`BodyOrderError`."""
    integral = isinstance(sample_atoms, numbers.Integral) and not isinstance(sample_atoms, bool)
    if not integral or not 1 <= int(sample_atoms) <= n_atoms:
        raise BodyOrderError(
            f"sample_atoms={sample_atoms!r} is not a number of atoms to expand: it must be "
            f"an integer 1..{n_atoms} (this structure has {n_atoms} atoms)"
        )
    return int(sample_atoms)


def fresh_seed() -> int:
    """A new seed (0..2^63-1) for ``numpy.random.default_rng``, drawn from the system's
    entropy: recorded with what it draws, so that it can be drawn again."""
    return int(np.random.default_rng().integers(2**63))


def draw_atom_sample(n_atoms: int, sample_atoms: int, seed: int | None = None) -> np.ndarray:
    """``sample_atoms`` distinct atom indices in 0..``n_atoms``-1, drawn uniformly without
    replacement by ``numpy.random.default_rng(seed)``, sorted."""
    m = check_sample_size(sample_atoms, n_atoms)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_atoms, size=m, replace=False)).astype(np.int64)


def frame_seeds(seed: int, indices: Sequence[int]) -> list[int]:
    """The seed of each frame's sample in a run seeded with ``seed``: the frame at index
    ``i`` (>= 0) in its file gets the ``i``-th number (counting from 0) that
    ``numpy.random.default_rng(seed).integers(2**63)`` draws, whichever frames are
    selected. So one frame of a file, selected alone with the same run seed, draws the
    same sample as in a run over the whole file."""
    indices = [int(i) for i in indices]
    if not indices:
        return []
    if min(indices) < 0:
        raise BodyOrderError(f"frame indices in a file are >= 0, got {min(indices)}")
    drawn = np.random.default_rng(seed).integers(2**63, size=max(indices) + 1)
    return [int(drawn[i]) for i in indices]


def sample_mean_and_stderr(values: ArrayLike, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the first axis of ``values`` (m sampled atoms, drawn without replacement
    from ``n_atoms``) and its standard error ``s / sqrt(m) * sqrt(1 - m/N)``.

    ``s`` is the sample standard deviation (ddof=1). The error is 0 for m = N (every
    atom: the mean is exact) and NaN for m = 1 < N (no spread to estimate it from).
    """
    values = np.asarray(values, dtype=np.float64)
    m = len(values)
    mean = np.array([math.fsum(c) / m for c in values.reshape(m, -1).T]).reshape(values.shape[1:])
    if m == n_atoms:
        return mean, np.zeros_like(mean)
    if m < 2:
        return mean, np.full_like(mean, np.nan)
    spread = values.std(axis=0, ddof=1)
    return mean, spread / math.sqrt(m) * math.sqrt(1.0 - m / n_atoms)


def sampled_result(
    result: BodyOrderResult, plan: ExpansionPlan, system: SystemResult, seed: int
) -> BodyOrderResult:
    """The estimates of an atom-sampled expansion from the exact terms of its centres.

    ``result`` holds the sums over the centres (the atomic evaluation of a plan with
    centres); see :class:`~ase_bodyorder.BodyOrderResult` for what each field becomes.
    """
    n, sample = plan.n_atoms, plan.centre_atoms
    m = len(sample)
    assert result.energies_per_atom_eV is not None  # the atomic evaluation gives them
    per_atom = result.energies_per_atom_eV[sample]
    mean, stderr = sample_mean_and_stderr(per_atom, n)
    if system.energies is not None:
        atom_energies = np.asarray(system.energies, dtype=np.float64)[sample]
    else:  # no per-atom energies of the whole structure: E/N stands for each e_i
        atom_energies = np.full(m, float(system.energy) / n)
    residuals = atom_energies - per_atom.sum(axis=1)
    residual_mean, residual_stderr = sample_mean_and_stderr(residuals, n)
    residual_per_atom = np.full(n, np.nan)
    residual_per_atom[sample] = residuals
    scale = n / m
    cancellation = result.cancellation_eV * scale
    return BodyOrderResult(
        max_order=result.max_order,
        energy_eV=result.energy_eV,
        energies_eV=result.energies_eV * scale,
        residual_eV=float(residual_mean) * n,
        cancellation_eV=cancellation,
        roundoff_eV=result.roundoff_eV * scale,
        n_subclusters=result.n_subclusters,
        n_screened_out=result.n_screened_out,
        energies_per_atom_eV=result.energies_per_atom_eV,
        residual_per_atom_eV=residual_per_atom,
        forces_eV_per_A=None,
        n_atoms=n,
        energies_per_atom_mean_eV=mean,
        energies_per_atom_stderr_eV=stderr,
        residual_per_atom_mean_eV=float(residual_mean),
        residual_per_atom_stderr_eV=float(residual_stderr),
        sample_indices=np.array(sample, dtype=np.int64),
        sample_size=m,
        sample_seed=int(seed),
    )
