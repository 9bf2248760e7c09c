"""How the study's reports write numbers: one formatter for the learning-curve report and
the makeup section."""

from __future__ import annotations

import math

__all__ = ["fixed", "significant"]


def fixed(value, digits: int) -> str:
    """``value`` with ``digits`` decimals; '-' for None, NaN or an infinity (a number
    that was not measured)."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def significant(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits in plain notation (7.90, 0.123), whole
    numbers from ``10**(digits - 1)`` on (1072, not 1.07e+03); '-' for None."""
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    rounded = float(f"{value:.{digits}g}")  # 99.96 -> 100: the digits of the rounded value
    decimals = digits - 1 - math.floor(math.log10(abs(rounded)))
    return f"{value:.0f}" if decimals <= 0 else f"{rounded:.{decimals}f}"
