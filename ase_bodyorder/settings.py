"""The settings of a body-order expansion: one frozen pydantic model, one name per
parameter, validated once.

The command line (``decompose``, ``md``, ``scan``), :class:`~ase_bodyorder.BodyOrderCalculator`,
:func:`~ase_bodyorder.decompose` and the i-PI driver take these names; the calculator
holds an :class:`ExpansionSettings` as its parameters, and the trajectory runner
hashes its ``to_dict()`` into each frame's fingerprint.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import StrictBool

from ._settings import (
    NonNegativeInt,
    NonNegativeNumber,
    PositiveInt,
    PositiveNumber,
    Rule,
    Settings,
)
from .expansion import DEFAULT_MAX_SUBCLUSTERS

__all__ = ["ExpansionSettings", "Precision"]

#: the precision of the sub-cluster evaluations: the model's own (None), or cast
Precision = Annotated[Literal["float32", "float64"], Rule('"float32" or "float64"')]


class ExpansionSettings(Settings):
    """What an expansion is: order, radius, when, which atoms, and its limits.

    Attributes
    ----------
    order
        Truncation order K; ``None``: N for a cluster of N atoms (the full expansion),
        3 for a periodic cell (:func:`~ase_bodyorder.decompose.default_order`).
    r_mbe
        Radius (Angstrom) of each atom's expansion; required for a periodic cell,
        ``None`` for a cluster means the whole cluster.
    stride
        Expand every ``stride``-th structure of a calculator or an MD run (1: every
        one; 0: only on request, calculator only).
    sample_atoms
        Atom-sampled expansion: expand this many atoms m per structure, drawn
        uniformly without replacement (``docs/science.md`` section 9); ``None``: all.
    seed
        Seed (>= 0) of the atom sampling (used only with ``sample_atoms``). ``None``: a
        fresh seed, drawn and recorded with each result.
    screening
        Skip the sub-clusters that vanish exactly by the model's cutoff and layers.
    precision
        ``"float32"``: evaluate the sub-clusters with the model cast to float32 (sums
        in float64, round-off bounded); ``"float64"`` or ``None``: the model's own.
    max_roundoff_eV
        Refuse a result whose round-off estimate of an order exceeds this (eV);
        ``None``: warn above 0.1 eV.
    max_subclusters
        Refuse expansions needing more distinct sub-clusters than this.
    max_memory_GiB
        Refuse expansions estimated to need more memory (``None``: half the available).
    min_distance
        Atoms closer than this (Angstrom) are an error.
    """

    settings_name: ClassVar[str] = "expansion"

    order: PositiveInt | None = None
    r_mbe: PositiveNumber | None = None
    stride: NonNegativeInt = 1
    sample_atoms: PositiveInt | None = None
    seed: NonNegativeInt | None = None
    screening: StrictBool = True
    precision: Precision | None = None
    max_roundoff_eV: PositiveNumber | None = None
    max_subclusters: PositiveInt = DEFAULT_MAX_SUBCLUSTERS
    max_memory_GiB: PositiveNumber | None = None
    min_distance: NonNegativeNumber = 0.3

    def decompose_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~ase_bodyorder.decompose` for these settings, but
        the order and the atom sampling, which are per structure
        (:func:`~ase_bodyorder.decompose.frame_settings`)."""
        return {
            "r_mbe": self.r_mbe,
            "screening": self.screening,
            "max_subclusters": self.max_subclusters,
            "min_distance": self.min_distance,
            "max_memory_GiB": self.max_memory_GiB,
            "precision": self.precision,
            "max_roundoff_eV": self.max_roundoff_eV,
        }
