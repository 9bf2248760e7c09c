"""The settings of a body-order expansion: one frozen pydantic model, one name per
parameter, validated once.

The command line (``decompose``, ``md``, ``scan``), :class:`~ase_bodyorder.BodyOrderCalculator`,
:func:`~ase_bodyorder.decompose` and the i-PI driver take these names; the calculator
holds an :class:`ExpansionSettings` as its parameters, and the trajectory runner
hashes its ``to_dict()`` into each frame's fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import StrictBool

from ._settings import (
    NonNegativeInt,
    NonNegativeNumber,
    PositiveInt,
    PositiveNumber,
    Rule,
    Settings,
)
from .expansion import DEFAULT_MAX_SUBCLUSTERS, BodyOrderError

__all__ = ["ExpansionSettings", "Precision", "resolve_settings"]

#: the precision of the sub-cluster evaluations: the model's own (None), or cast
Precision = Annotated[
    Literal["float32", "float64"],
    Rule("one of float32, float64 (or None: the model's own dtype)"),
]


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

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], names: Mapping[str, str] | None = None
    ) -> ExpansionSettings:
        """Settings from a door's options (a command line, keyword arguments), where
        ``None`` means not given (the default): see :meth:`with_options`."""
        return cls().with_options({k: v for k, v in options.items() if v is not None}, names)

    def with_options(
        self, options: Mapping[str, Any], names: Mapping[str, str] | None = None
    ) -> ExpansionSettings:
        """These settings with ``options`` applied, validated once.

        ``options`` are keyed by the door's names: ``names`` maps a field to the name a
        door gives it (``{"order": "max_order"}``, ``{"sample_atoms": "--sample-atoms"}``),
        and a bad value is one :class:`~ase_bodyorder.BodyOrderError` line naming it as
        the door does; the field's own name is then unknown there. numpy scalars count as
        the Python numbers they hold.
        """
        names = dict(names or {})
        fields = {name: field for field, name in names.items()}
        renamed = sorted(repr(k) for k in options if k in names and names[k] != k)
        if renamed:
            raise BodyOrderError(
                f"unknown {self.settings_name} setting(s) {', '.join(renamed)} here; "
                + ", ".join(f"{field} is called {names[field]}" for field in sorted(names))
            )
        values = {
            fields.get(k, k): v.item() if isinstance(v, np.generic) else v
            for k, v in options.items()
        }
        try:
            return self.replace(**values)
        except BodyOrderError as error:
            text = str(error)
            for field, name in names.items():
                if text.startswith(f"{field} must be "):
                    text = name + text[len(field) :]
                    break
            raise BodyOrderError(text) from None

    def decompose_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~ase_bodyorder.decompose` for these settings, but
        the order and the atom sampling, which are per structure
        (:func:`~ase_bodyorder.decompose.expansion_per_frame`)."""
        return {
            "r_mbe": self.r_mbe,
            "screening": self.screening,
            "max_subclusters": self.max_subclusters,
            "min_distance": self.min_distance,
            "max_memory_GiB": self.max_memory_GiB,
            "precision": self.precision,
            "max_roundoff_eV": self.max_roundoff_eV,
        }


def resolve_settings(
    settings: ExpansionSettings | None,
    keywords: Mapping[str, Any],
    names: Mapping[str, str] | None = None,
) -> ExpansionSettings:
    """The one :class:`ExpansionSettings` of a door that takes them as ``settings`` or as
    ``keywords`` (keyed by the door's names, ``names`` mapping a field to its name there,
    as in :meth:`ExpansionSettings.with_options`; ``None`` or a field's default: not
    given), never both; validated once, errors naming the door's names.

    A seed without a sample size is an error among keywords (it would seed nothing).
    """
    names = dict(names or {})
    defaults = ExpansionSettings()
    fields = {name: field for field, name in names.items()}

    def is_given(name: str, value: Any) -> bool:
        field = fields.get(name, name)
        if value is None or field not in ExpansionSettings.model_fields:
            return value is not None  # an unknown name is reported by with_options
        return bool(value != getattr(defaults, field))

    given = {name: value for name, value in keywords.items() if is_given(name, value)}
    if settings is not None:
        if given:
            raise BodyOrderError(
                f"give the expansion as settings or as keywords, not both: {', '.join(given)}"
            )
        if not isinstance(settings, ExpansionSettings):
            raise BodyOrderError(f"settings must be ExpansionSettings, got {settings!r}")
        return settings
    seed, sample = names.get("seed", "seed"), names.get("sample_atoms", "sample_atoms")
    if given.get(seed) is not None and given.get(sample) is None:
        raise BodyOrderError(f"{seed} is the seed of atom sampling: give {sample} too")
    return defaults.with_options(given, names)
