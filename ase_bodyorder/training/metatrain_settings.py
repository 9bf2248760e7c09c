"""The typed settings of the metatrain recipe (PET or SOAP-BPNN), and the ``options.yaml``
they stand for (lengths in Angstrom, energies in eV).

:func:`~ase_bodyorder.training.metatrain.train_metatrain` runs ``mtt train`` on them;
:class:`MetatrainSettings` is importable from there too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .._settings import (
    DeviceName,
    Fraction,
    NonNegativeInt,
    PositiveInt,
    PositiveNumber,
    Rule,
    Settings,
)
from ..expansion import BodyOrderError

__all__ = ["MetatrainSettings"]


def _deep_merge(base: dict, extra: dict, path=()) -> list[str]:
    """Merge ``extra`` into ``base`` in place; return the paths ``extra`` overwrote."""
    clashes = []
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            clashes += _deep_merge(base[key], value, (*path, key))
        else:
            if key in base:
                clashes.append(".".join((*path, str(key))))
            base[key] = copy.deepcopy(value)
    return clashes


class MetatrainSettings(Settings):
    """Architecture, small CPU-friendly hyper-parameters and training (Angstrom, eV).

    ``architecture`` is ``"pet"`` or ``"soap_bpnn"``. ``cutoff`` (Angstrom) is PET's
    ``model.cutoff`` or SOAP-BPNN's ``model.soap.cutoff.radius``. The ``d_*``,
    ``num_heads`` and ``num_*_layers`` fields are PET's (``None``: metatrain's default);
    ``soap_*``/``bpnn_*`` are SOAP-BPNN's. ``learning_rate=None`` keeps the
    architecture's default. ``base_precision`` 64 trains and exports in float64.
    ``validation_fraction`` is used when no validation file is given.
    ``extra_hypers`` is merged into the ``architecture`` section of ``options.yaml``
    (``{"model": {...}, "training": {...}}``); it may not set what a field sets.
    """

    settings_name: ClassVar[str] = "metatrain"

    architecture: Annotated[Literal["pet", "soap_bpnn"], Rule("one of pet, soap_bpnn")] = "pet"
    num_epochs: PositiveInt = 100
    batch_size: PositiveInt = 8
    learning_rate: PositiveNumber | None = None
    seed: NonNegativeInt = 123
    cutoff: PositiveNumber = 4.5
    base_precision: Annotated[Literal[32, 64], Rule("32 or 64")] = 64
    device: DeviceName = "cpu"
    num_workers: NonNegativeInt | None = 0
    validation_fraction: Fraction = 0.1
    # PET
    d_pet: PositiveInt | None = 64
    d_node: PositiveInt | None = 128
    d_head: PositiveInt | None = None
    d_feedforward: PositiveInt | None = None
    num_heads: PositiveInt | None = None
    num_attention_layers: PositiveInt | None = 1
    num_gnn_layers: PositiveInt | None = 2
    # SOAP-BPNN
    soap_max_angular: NonNegativeInt | None = None
    soap_max_radial: PositiveInt | None = None
    bpnn_num_hidden_layers: NonNegativeInt | None = None
    bpnn_num_neurons_per_layer: PositiveInt | None = None
    extra_hypers: Annotated[dict, Rule("a dict")] = Field(default_factory=dict)

    @field_validator("extra_hypers")
    @classmethod
    def _known_sections(cls, value: dict) -> dict:
        unknown = sorted(set(value) - {"model", "training", "atomic_types"})
        if unknown:
            raise BodyOrderError(
                f"extra_hypers may only hold 'model', 'training' and 'atomic_types', "
                f"got {', '.join(map(repr, unknown))}"
            )
        return value

    @model_validator(mode="after")
    def _no_clash(self) -> MetatrainSettings:
        self.architecture_options()  # fail now, not in the subprocess, on a repeated field
        return self

    def architecture_options(self) -> dict:
        """The ``architecture`` section of ``options.yaml`` these settings stand for."""
        model: dict = {}
        training: dict = {"num_epochs": self.num_epochs, "batch_size": self.batch_size}
        if self.learning_rate is not None:
            training["learning_rate"] = float(self.learning_rate)
        if self.num_workers is not None:
            training["num_workers"] = self.num_workers
        if self.architecture == "pet":
            model["cutoff"] = float(self.cutoff)
            for name in (
                "d_pet",
                "d_node",
                "d_head",
                "d_feedforward",
                "num_heads",
                "num_attention_layers",
                "num_gnn_layers",
            ):
                if getattr(self, name) is not None:
                    model[name] = getattr(self, name)
        else:
            soap: dict = {"cutoff": {"radius": float(self.cutoff)}}
            if self.soap_max_angular is not None:
                soap["max_angular"] = self.soap_max_angular
            if self.soap_max_radial is not None:
                soap["max_radial"] = self.soap_max_radial
            model["soap"] = soap
            bpnn = {}
            if self.bpnn_num_hidden_layers is not None:
                bpnn["num_hidden_layers"] = self.bpnn_num_hidden_layers
            if self.bpnn_num_neurons_per_layer is not None:
                bpnn["num_neurons_per_layer"] = self.bpnn_num_neurons_per_layer
            if bpnn:
                model["bpnn"] = bpnn
        options = {"name": self.architecture, "model": model, "training": training}
        clashes = _deep_merge(options, self.extra_hypers)
        if clashes:
            raise BodyOrderError(
                f"extra_hypers may not set {', '.join(clashes)}: the recipe sets them "
                "(use the MetatrainSettings fields)"
            )
        return options

    def options(self, train: Path, validation: Path | None, test: Path | None) -> dict:
        """The whole ``options.yaml`` for these data files."""

        def dataset(path: Path) -> dict:
            return {
                "systems": {"read_from": str(path), "reader": "ase", "length_unit": "angstrom"},
                "targets": {
                    "energy": {
                        "key": "energy",
                        "unit": "eV",
                        "forces": {"key": "forces"},
                    }
                },
            }

        return {
            "seed": self.seed,
            "base_precision": self.base_precision,
            "device": self.device,
            "architecture": self.architecture_options(),
            "training_set": dataset(train),
            "validation_set": (
                float(self.validation_fraction) if validation is None else dataset(validation)
            ),
            "test_set": 0.0 if test is None else dataset(test),
        }
