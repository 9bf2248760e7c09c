"""Reference data: hydrogen-cluster sampling (electronic structure comes with pyscf/block2)."""

from .clusters import HighDensity, LowDensity, sample_clusters

__all__ = ["HighDensity", "LowDensity", "sample_clusters"]
