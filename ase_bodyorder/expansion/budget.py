"""Budgets of an expansion plan: how many sub-clusters and how much memory it may
need, checked before anything is allocated (see :func:`~.plan.plan_expansion`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import BodyOrderError, PlanTooLargeError

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_MAX_SUBCLUSTERS",
    "DEFAULT_MEMORY_SHARE",
    "available_memory_bytes",
    "default_memory_budget_GiB",
    "estimate_plan_bytes",
]


DEFAULT_MAX_SUBCLUSTERS = 1_000_000


#: share of the memory available at planning time that a plan may use by default
DEFAULT_MEMORY_SHARE = 0.5


def available_memory_bytes() -> int:
    """Memory available to a new allocation now (Linux ``MemAvailable``), in bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def default_memory_budget_GiB() -> float:
    """Default memory budget of a plan: half the memory available now, GiB."""
    return DEFAULT_MEMORY_SHARE * available_memory_bytes() / 2**30


def _row_bytes(size: int, max_order: int) -> int:
    """Peak bytes per (centre atom, sub-cluster) row of size ``size`` while planning.

    Indices and cell shifts of the row (8 + 24 bytes per body), its root and weights,
    about five copies of them during canonicalisation and deduplication, and the weight
    entries it leaves behind with their copies in the chunked force evaluation (96 bytes
    each). Measured on a 64-atom cell at r_mbe = 2 A, K = 4 to 7: the estimate is
    1.1-1.2x the measured peak.
    """
    return 5 * (32 * size + 8 + 8 * max_order) + 96 * (max_order - size + 1)


def estimate_plan_bytes(rows_by_size: dict[int, int], max_order: int) -> int:
    """Estimated peak memory (bytes) of a plan with ``rows_by_size[s]`` rows of size s."""
    return int(sum(rows * _row_bytes(s, max_order) for s, rows in rows_by_size.items()))


def _memory_budget_bytes(max_memory_GiB: float | None) -> float:
    """The memory budget in bytes (default: :func:`default_memory_budget_GiB`)."""
    budget_GiB = default_memory_budget_GiB() if max_memory_GiB is None else max_memory_GiB
    if isinstance(budget_GiB, bool) or not (
        isinstance(budget_GiB, int | float) and budget_GiB > 0 and math.isfinite(budget_GiB)
    ):
        raise BodyOrderError(f"max_memory_GiB must be a positive number, got {max_memory_GiB!r}")
    return float(budget_GiB) * 2**30


@dataclass(frozen=True)
class _Budgets:
    """The sub-cluster and memory budgets of one plan (see :func:`_check_budgets`)."""

    max_order: int
    max_subclusters: int
    budget_bytes: float

    def check(self, rows_by_size: dict[int, int], *, exact: bool) -> None:
        _check_budgets(
            rows_by_size, self.max_order, self.max_subclusters, self.budget_bytes, exact=exact
        )


def _check_budgets(
    rows_by_size: dict[int, int],
    max_order: int,
    max_subclusters: int,
    budget_bytes: float,
    *,
    exact: bool,
) -> None:
    """Refuse a plan whose rows (all of them if ``exact``, else at least these) exceed the
    sub-cluster or the memory budget.

    A distinct sub-cluster of size s stands for at most s rows (one per centre atom), so
    ``sum_s rows_s / s`` is a lower bound of the number of distinct sub-clusters.
    """
    distinct = sum(rows / s for s, rows in rows_by_size.items())
    if distinct > max_subclusters:
        word = "about" if exact else "at least"
        raise _too_large(f"{word} {math.ceil(distinct)}", max_subclusters, max_order)
    needed = estimate_plan_bytes(rows_by_size, max_order)
    if needed > budget_bytes:
        word = "an estimated" if exact else "at least an estimated"
        raise PlanTooLargeError(
            f"the expansion to order {max_order} needs {word} {needed / 2**30:.3g} GiB of "
            f"memory to plan, over the budget of max_memory_GiB={budget_bytes / 2**30:.3g} "
            "(default: half the memory available); lower max_order or r_mbe, or raise "
            "max_memory_GiB"
        )


def _too_large(count: int | str, budget: int, max_order: int) -> PlanTooLargeError:
    return PlanTooLargeError(
        f"the expansion to order {max_order} needs {count} distinct sub-clusters, over the "
        f"budget of max_subclusters={budget}; raise max_subclusters, or lower max_order or "
        "r_mbe"
    )
