"""Exceptions raised for bad input, each with a message that says what to change."""

from __future__ import annotations

__all__ = ["BodyOrderError", "PlanTooLargeError", "StructureError"]


class BodyOrderError(ValueError):
    """Base class of every input error raised by ase_bodyorder."""


class StructureError(BodyOrderError):
    """The structure cannot be expanded: empty, NaN positions, overlapping atoms, bad cell."""


class PlanTooLargeError(BodyOrderError):
    """The expansion would need more sub-clusters than the budget allows."""
