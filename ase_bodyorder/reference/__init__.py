"""Reference data (electronic structure with pyscf/block2); the cluster samplers are those of
:mod:`ase_bodyorder.structures`, importable from here."""

from .clusters import HighDensity, LowDensity, sample_clusters

__all__ = ["HighDensity", "LowDensity", "sample_clusters"]
