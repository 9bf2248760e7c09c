"""Sampling hydrogen clusters at high ("metallic") and low ("molecular") density.

The protocol of ``docs/science.md`` section 4; the samplers live in
:mod:`ase_bodyorder.structures` (with every other hydrogen sampler) and are importable
from here as before.
"""

from __future__ import annotations

from ..structures import HighDensity, LowDensity, sample_clusters

__all__ = ["HighDensity", "LowDensity", "sample_clusters"]
