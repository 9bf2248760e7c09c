"""The totals and errors of an atom-sampled expansion against brute force (science.md
section 9): the full expansion's per-atom terms of the sampled atoms, and every sample
of a small cluster enumerated.

Each field of a sampled result (the terms E^(n), the residual, their standard errors)
is checked on its own, by a test that does not depend on the spread of many seeds.
"""

import itertools
import math

import numpy as np
import pytest

from ase_bodyorder import decompose
from ase_bodyorder.decompose import sample_mean_and_stderr
from ase_bodyorder.models import hydrogen_demo_model

ORDER = 2  # Morse + ATM: the 3-body part is the residual at order 2, not zero


@pytest.fixture(scope="module")
def model():
    return hydrogen_demo_model()


@pytest.mark.parametrize("seed", [5, 6])
def test_sampled_totals_are_n_times_the_means_of_the_sampled_atoms(cluster8, model, seed):
    n, m = len(cluster8), 3
    full = decompose(cluster8, model, max_order=ORDER)
    sampled = decompose(cluster8, model, max_order=ORDER, sample_atoms=m, seed=seed)
    s = sampled.sample_indices
    terms, residuals = full.energies_per_atom_eV[s], full.residual_per_atom_eV[s]
    assert np.abs(residuals).max() > 1e-3  # eV: a residual that a wrong scale would move
    np.testing.assert_allclose(sampled.energies_eV, n * terms.mean(axis=0), rtol=1e-12)
    assert sampled.residual_eV == pytest.approx(n * residuals.mean(), rel=1e-12)
    # the terms and the residual add up to N x the mean model energy of the sampled atoms
    atom_energies = np.asarray(model.system(cluster8, forces=False).energies)[s]
    assert sum(sampled.energies_eV) + sampled.residual_eV == pytest.approx(
        n * atom_energies.mean(), rel=1e-12
    )
    correction = math.sqrt(1 - m / n)  # sampling without replacement
    np.testing.assert_allclose(
        sampled.energies_per_atom_stderr_eV,
        terms.std(axis=0, ddof=1) / math.sqrt(m) * correction,
        rtol=1e-12,
        atol=1e-15,
    )
    assert sampled.residual_per_atom_stderr_eV == pytest.approx(
        residuals.std(ddof=1) / math.sqrt(m) * correction, rel=1e-12
    )


@pytest.mark.parametrize("m", [2, 3, 6])
def test_squared_errors_average_to_the_exact_variance_over_every_sample(cluster8, model, m):
    """Over all C(N, m) samples, the mean of the reported stderr^2 is the variance of
    the sample mean exactly (s^2 is unbiased under sampling without replacement): a
    missing finite-population factor or a wrong divisor moves it by 10 % or more."""
    full = decompose(cluster8, model, max_order=ORDER)
    rows = np.column_stack([full.energies_per_atom_eV, full.residual_per_atom_eV])
    means, variances = [], []
    for sample in itertools.combinations(range(len(cluster8)), m):
        mean, stderr = sample_mean_and_stderr(rows[list(sample)], len(cluster8))
        means.append(mean)
        variances.append(stderr**2)
    exact = np.var(means, axis=0)  # over every sample, each equally likely
    assert (exact[1:] > 1e-8).all()  # eV^2: orders 2 and the residual vary by atom
    np.testing.assert_allclose(np.mean(variances, axis=0), exact, rtol=1e-9, atol=1e-20)
