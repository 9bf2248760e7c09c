"""The run manifest, ``run.json``: now :mod:`ase_bodyorder.runs`, which the monitor
imports too (without importing this package); its classes are importable from here as
before."""

from ..runs import DriverSettings, MDRun, MDRunError

__all__ = ["DriverSettings", "MDRun", "MDRunError"]
