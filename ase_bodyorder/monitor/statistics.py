"""Statistics of correlated time series: mean and its error from the autocorrelation time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SeriesStatistics", "autocorrelation_time", "mean_and_error"]


@dataclass(frozen=True)
class SeriesStatistics:
    """Mean, its statistical error, the integrated autocorrelation time (in samples),
    the standard deviation and the number of samples of a series (NaNs dropped)."""

    mean: float
    error: float
    tau: float
    std: float
    n: int


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


def mean_and_error(series) -> SeriesStatistics:
    """Mean and statistical error ``sqrt(tau * var / n)`` of a correlated series."""
    x = np.asarray(series, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        nan = math.nan
        return SeriesStatistics(nan, nan, nan, nan, 0)
    tau = autocorrelation_time(x)
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    error = math.sqrt(tau * std**2 / n) if n > 1 else math.nan
    return SeriesStatistics(float(x.mean()), error, tau, std, n)
