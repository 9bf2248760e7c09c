"""Recipes that train small models for the expansion (heavy backends imported lazily)."""

from ._common import PACKAGE_PARENT, THREADS_VARIABLE, portable_paths, trainer_threads
from .architectures import TRAIN_ARCHITECTURES, recipe, train_settings
from .convergence import convergence
from .mace import MACESettings, train_mace
from .metatrain import MetatrainSettings, train_metatrain

__all__ = [
    "PACKAGE_PARENT",
    "THREADS_VARIABLE",
    "TRAIN_ARCHITECTURES",
    "MACESettings",
    "MetatrainSettings",
    "convergence",
    "portable_paths",
    "recipe",
    "train_mace",
    "train_metatrain",
    "train_settings",
    "trainer_threads",
]
