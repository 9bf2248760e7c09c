"""Statistics of correlated series (``monitor/statistics.py``) against independent
references: the plain time average (``math.fsum``), the spread of the means of
independent runs (numpy), and the exact variance of the mean of an AR(1) process.

Each test pins one part of :func:`mean_and_error`'s result, so that changing that part
alone (a robust mean, the sampling variance counted twice, the sampling part dropped,
the autocorrelation floor removed) fails a test of its own.
"""

import math

import numpy as np
import pytest

from ase_bodyorder.monitor import autocorrelation_time, mean_and_error


def _ar1(phi, n, rng):
    """x_t = phi x_{t-1} + N(0, 1), started in its stationary distribution."""
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_the_mean_is_the_time_average_of_the_kept_frames():
    """A skewed series (mean 1, median ln 2): the plain average, NaN frames dropped."""
    rng = np.random.default_rng(3)
    x = rng.exponential(size=501)
    x[[7, 100]] = np.nan
    kept = x[np.isfinite(x)]
    stats = mean_and_error(x, stderr=np.full_like(x, 0.1))
    assert stats.n == 499
    assert stats.mean == pytest.approx(math.fsum(kept) / len(kept), rel=1e-12)
    assert abs(stats.mean - np.median(kept)) > 0.2  # the two differ here by ~0.3
    assert stats.std == pytest.approx(np.std(kept, ddof=1), rel=1e-12)


def test_pure_sampling_noise_is_counted_once():
    """Exact values constant in time, each frame's estimate off by independent noise of
    known standard error: the error of the mean is sqrt(<stderr^2> / n), as the spread
    of the means of independent runs shows, not sqrt(2) times that."""
    rng = np.random.default_rng(11)
    n, runs = 1000, 300
    means, errors, sampling = [], [], []
    for _ in range(runs):
        stderr = rng.uniform(0.5, 1.5, size=n)
        stats = mean_and_error(-2.0 + stderr * rng.normal(size=n), stderr=stderr)
        means.append(stats.mean)
        errors.append(stats.error)
        sampling.append(stats.sampling_error)
        assert stats.sampling_error == pytest.approx(math.sqrt(np.mean(stderr**2) / n))
    spread = np.std(means, ddof=1)  # relative noise 1 / sqrt(2 (runs - 1)) = 4 %
    assert 0.85 < np.mean(errors) / spread < 1.15
    assert 0.85 < np.mean(sampling) / spread < 1.15
    # run by run the error is the sampling part (the floor) or a little above it, from
    # the noise of the autocorrelation estimate; counted twice it would be 1.41 x
    assert np.median(np.array(errors) / np.array(sampling)) < 1.1


def test_the_time_part_is_the_exact_error_of_the_correlated_values():
    """x_t = mu_t + eps_t, mu an AR(1) (phi 0.5), eps sampling noise of stderr 2: the
    time part of the error is that of mu alone, whose exact asymptotic value is
    sqrt(1 / ((1 - phi)^2 n)), and the total is sqrt(time^2 + sampling^2)."""
    rng = np.random.default_rng(5)
    phi, n, sigma = 0.5, 4000, 2.0
    exact_time = math.sqrt(1.0 / ((1 - phi) ** 2 * n))
    exact_sampling = sigma / math.sqrt(n)
    time_errors, errors = [], []
    for _ in range(60):
        stats = mean_and_error(_ar1(phi, n, rng) + sigma * rng.normal(size=n), np.full(n, sigma))
        assert stats.sampling_error == pytest.approx(exact_sampling, rel=1e-12)
        time_errors.append(stats.time_error)
        errors.append(stats.error)
    assert np.mean(time_errors) == pytest.approx(exact_time, rel=0.15)
    assert np.mean(errors) == pytest.approx(math.hypot(exact_time, exact_sampling), rel=0.1)


@pytest.mark.parametrize("phi", [0.5, -0.5])
def test_autocorrelation_time_of_an_ar1_is_exact_and_at_least_one(phi):
    """tau = (1 + phi) / (1 - phi): 3 for phi = 0.5; an anticorrelated series (1/3 for
    phi = -0.5) is reported as 1, the documented floor (the error is never made
    smaller than that of independent samples)."""
    rng = np.random.default_rng(9)
    taus = [autocorrelation_time(_ar1(phi, 20000, rng)) for _ in range(4)]
    expected = max((1 + phi) / (1 - phi), 1.0)
    assert np.mean(taus) == pytest.approx(expected, rel=0.1)
    assert min(taus) >= 1.0
