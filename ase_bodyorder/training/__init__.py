"""Recipes that train small models for the expansion (heavy backends imported lazily)."""

from .architectures import TRAIN_ARCHITECTURES, recipe, train_settings
from .mace import MACESettings, train_mace
from .metatrain import MetatrainSettings, train_metatrain

__all__ = [
    "TRAIN_ARCHITECTURES",
    "MACESettings",
    "MetatrainSettings",
    "recipe",
    "train_mace",
    "train_metatrain",
    "train_settings",
]
