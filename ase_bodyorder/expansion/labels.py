"""Stable, parseable labels of sub-clusters: the keys on which the model MBE and the
reference MBE meet (atom indices, periodic images as integer cell shifts)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    pass

__all__ = ["Subcluster", "parse_subcluster_label", "subcluster_label"]


class Subcluster(NamedTuple):
    """One sub-cluster of a plan: ``label`` (:func:`subcluster_label`), ``atoms`` (indices
    in the structure), ``shifts`` (integer cell shifts of each atom), ``positions``
    (Angstrom)."""

    label: str
    atoms: np.ndarray
    shifts: np.ndarray
    positions: np.ndarray


def subcluster_label(
    atoms: Sequence[int] | np.ndarray, shifts: Sequence[Sequence[int]] | np.ndarray | None = None
) -> str:
    """Label of a sub-cluster: ``"0-3-5"``, or ``"0-3[1,0,0]-5"`` with periodic images.

    Atom indices are 0-based; a non-zero integer cell shift follows its atom in brackets.
    The model MBE and the reference MBE meet on these keys.
    """
    parts = []
    for k, a in enumerate(atoms):
        s = None if shifts is None else tuple(int(x) for x in shifts[k])
        if s is None or s == (0, 0, 0):
            parts.append(str(int(a)))
        else:
            parts.append(f"{int(a)}[{s[0]},{s[1]},{s[2]}]")
    return "-".join(parts)


_BODY = r"(\d+)(?:\[(-?\d+),(-?\d+),(-?\d+)\])?"


_LABEL = re.compile(rf"{_BODY}(?:-{_BODY})*")


def parse_subcluster_label(label: str) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`subcluster_label`: ``(atoms, shifts)`` arrays."""
    if not _LABEL.fullmatch(label):
        raise ValueError(f"not a sub-cluster label: {label!r}")
    atoms, shifts = [], []
    for match in re.finditer(_BODY, label):
        atoms.append(int(match.group(1)))
        shifts.append([int(x) if x else 0 for x in match.group(2, 3, 4)])
    return np.array(atoms, dtype=np.int64), np.array(shifts, dtype=np.int64).reshape(-1, 3)
