"""The architectures by name: each one's recipe, and its settings from a JSON file.

Names are spelt as on the command line (``soap-bpnn``); the recipes' own spelling
(metatrain's ``soap_bpnn``) is accepted in settings files too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..expansion import BodyOrderError
from ..io import read_json_object
from .mace import MACESettings
from .metatrain import MetatrainSettings

__all__ = ["TRAIN_ARCHITECTURES", "recipe", "train_settings"]

#: architecture names (command-line spelling) and the recipes' names for them
TRAIN_ARCHITECTURES = {"pet": "pet", "soap-bpnn": "soap_bpnn", "mace": "mace"}


def _recipe_name(architecture: str) -> str:
    if architecture not in TRAIN_ARCHITECTURES:
        raise BodyOrderError(
            f"architecture must be one of {', '.join(TRAIN_ARCHITECTURES)}, got {architecture!r}"
        )
    return TRAIN_ARCHITECTURES[architecture]


def train_settings(
    architecture: str, settings_file=None, epochs: int | None = None
) -> MetatrainSettings | MACESettings:
    """The recipe's settings for ``architecture`` (pet, soap-bpnn, mace): the fields of
    ``settings_file`` (a JSON object; unknown keys are an error), with ``epochs`` (if given)
    as the number of epochs.

    A settings file may name its architecture (``"architecture"``, also in a MACE
    file); it must then be the one asked for. The settings classes' ``from_dict`` checks
    every field.
    """
    name = _recipe_name(architecture)
    data: dict = {}
    if settings_file is not None:
        path = Path(settings_file)
        data = read_json_object(path, "settings")
        named = data.pop("architecture", name)
        if TRAIN_ARCHITECTURES.get(named, named) != name:
            raise BodyOrderError(
                f"settings file {path} is for architecture {named!r}, "
                f"but --architecture is {architecture!r}"
            )
    if name == "mace":
        if epochs is not None:
            data["max_num_epochs"] = epochs
        return MACESettings.from_dict(data)
    if epochs is not None:
        data["num_epochs"] = epochs
    return MetatrainSettings.from_dict({**data, "architecture": name})


def recipe(architecture: str) -> Callable:
    """The training function of ``architecture``: :func:`~ase_bodyorder.training.train_mace`
    or :func:`~ase_bodyorder.training.train_metatrain` (looked up when called, so that
    they can be replaced in tests)."""
    from .. import training  # the package, looked up when called: tests replace its trainers

    if _recipe_name(architecture) == "mace":
        return training.train_mace
    return training.train_metatrain
