"""Statistics of correlated time series: mean and its error from the autocorrelation time.

Series of atom-sampled estimates (``docs/science.md`` section 9) carry a standard
error per frame; :func:`mean_and_error` combines them with the time correlation without
counting the sampling noise twice (see there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SeriesStatistics", "autocorrelation_time", "mean_and_error"]


@dataclass(frozen=True)
class SeriesStatistics:
    """Mean, its statistical error, the integrated autocorrelation time (in samples),
    the standard deviation and the number of samples of a series (NaNs dropped).

    ``sampling_error`` is the part of ``error`` due to atom sampling,
    ``sqrt(mean(stderr^2) / n)`` (0 for series of exact values, NaN where unknown).
    """

    mean: float
    error: float
    tau: float
    std: float
    n: int
    sampling_error: float = 0.0

    @property
    def time_error(self) -> float:
        """The part of ``error`` from the fluctuations of the exact values in time,
        ``sqrt(error^2 - sampling_error^2)``."""
        if not math.isfinite(self.sampling_error):
            return self.error
        return math.sqrt(max(self.error**2 - self.sampling_error**2, 0.0))


def autocorrelation_time(x: np.ndarray, c: float = 5.0) -> float:
    """Integrated autocorrelation time (samples) with Sokal's automatic window.

    ``tau = 1 + 2 sum_{t=1}^{M} rho(t)``, with the smallest window M >= c * tau(M).
    Returns 1 for an uncorrelated series and for series too short to tell.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 4:
        return 1.0
    x = x - x.mean()
    var = x.var()
    if var == 0:
        return 1.0
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, size)
    acf = np.fft.irfft(f * np.conj(f), size)[:n] / (var * n)
    tau = 1.0
    for window in range(1, n):
        tau = 1.0 + 2.0 * acf[1 : window + 1].sum()
        if window >= c * tau:
            break
    return max(float(tau), 1.0)


def mean_and_error(series: ArrayLike, stderr: ArrayLike | None = None) -> SeriesStatistics:
    """Mean and statistical error ``sqrt(tau * var / n)`` of a correlated series.

    ``stderr``: for a series of atom-sampled estimates, the standard error of each
    frame's estimate (same length; frames whose value is NaN are dropped with it). The
    mean is then the plain time average of the estimates, and its error combines the
    atom sampling and the time correlation as follows.

    Write each frame's estimate ``x_t = mu_t + eps_t``: ``mu_t`` the exact value of the
    frame, ``eps_t`` its sampling error, of mean zero and variance ``sigma_t^2`` (the
    square of ``stderr``), independent between frames (each frame draws its own sample)
    and of ``mu``. The autocovariances of x are then ``C_x(0) = C_mu(0) + <sigma^2>``
    and ``C_x(t) = C_mu(t)`` for ``t >= 1``, so that

        tau_x * var_x = var_x + 2 sum_{t>=1} C_x(t) = tau_mu * var_mu + <sigma^2>,

    for any summation window. The error computed from the series itself,
    ``sqrt(tau_x * var_x / n)``, therefore already *is* the total error
    ``sqrt((tau_mu * var_mu + <sigma^2>) / n)``: time correlation and atom sampling,
    the latter once. Adding ``<stderr^2> / n`` to it would count the sampling variance
    twice, so it is not added. The reported error is the series' own, floored at the
    sampling part ``sqrt(<stderr^2> / n)`` (a sum of non-negative parts is not smaller
    than one of them; the floor matters only where the autocorrelation estimate is
    noisy, with few frames); that part is ``sampling_error`` and the rest
    ``time_error``. Frames whose stderr is NaN (a sample of one atom) are left out of
    ``<stderr^2>``.
    """
    x = np.asarray(series, dtype=float)
    keep = np.isfinite(x)
    sigma = None
    if stderr is not None:
        sigma = np.asarray(stderr, dtype=float)
        if sigma.shape != x.shape:
            raise ValueError(f"stderr has shape {sigma.shape}, the series {x.shape}")
        sigma = sigma[keep]
    x = x[keep]
    n = len(x)
    if n == 0:
        nan = math.nan
        return SeriesStatistics(nan, nan, nan, nan, 0, nan if stderr is not None else 0.0)
    tau = autocorrelation_time(x)
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    error = math.sqrt(tau * std**2 / n) if n > 1 else math.nan
    sampling = 0.0
    if sigma is not None:
        known = sigma[np.isfinite(sigma)]
        sampling = math.sqrt(float(np.mean(known**2)) / n) if len(known) else math.nan
        if math.isfinite(error) and math.isfinite(sampling):
            error = max(error, sampling)
    return SeriesStatistics(float(x.mean()), error, tau, std, n, sampling)
