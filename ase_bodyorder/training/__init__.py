"""Recipes that train small models for the expansion (heavy backends imported lazily)."""

from .mace import MACESettings, train_mace
from .metatrain import MetatrainSettings, train_metatrain

__all__ = ["MACESettings", "MetatrainSettings", "train_mace", "train_metatrain"]
