"""Experiments over training: declarative specs, a cache of trained models, learning curves.

An experiment is a list of :class:`TrainingSpec` (architecture, density, training-set
size, seed, settings). :func:`run_study` trains each one into a directory named by its
key (a hash of its data and settings), so a rerun retrains nothing that is done, a
changed setting retrains only what it affects, and an interrupted training resumes from
its checkpoint.
"""

from .runner import StudyEntry, run_entry, run_study
from .spec import (
    ARCHITECTURES,
    DENSITIES,
    TrainingSpec,
    fit_power_law,
    learning_curve_specs,
    study_settings,
)

__all__ = [
    "ARCHITECTURES",
    "DENSITIES",
    "StudyEntry",
    "TrainingSpec",
    "fit_power_law",
    "learning_curve_specs",
    "run_entry",
    "run_study",
    "study_settings",
]
