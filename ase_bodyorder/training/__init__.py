"""Recipes that train small models for the expansion (heavy backends imported lazily)."""

from .mace import MACESettings, train_mace

__all__ = ["MACESettings", "train_mace"]
