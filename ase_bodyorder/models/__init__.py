"""Backends that compute energies of sub-clusters, behind one small protocol."""

from .analytic import (
    AtomicBaseline,
    AxilrodTellerMuto,
    LennardJones,
    LocalTorchModel,
    Morse,
    SumModel,
    hydrogen_demo_model,
)
from .ase_calculator import ASEAtomicModel, ASECalculatorModel
from .base import AtomicModel, ClusterModel, FragmentBatch, Model, SpeciesError, SystemResult
from .registry import (
    DEFAULT_MD_MODEL,
    DEFAULT_MODEL,
    as_model,
    available_models,
    load_model,
    resolve_model,
    shipped_models,
)

__all__ = [
    "DEFAULT_MD_MODEL",
    "DEFAULT_MODEL",
    "ASEAtomicModel",
    "ASECalculatorModel",
    "AtomicBaseline",
    "AtomicModel",
    "AxilrodTellerMuto",
    "ClusterModel",
    "FragmentBatch",
    "LennardJones",
    "LocalTorchModel",
    "Model",
    "Morse",
    "SpeciesError",
    "SumModel",
    "SystemResult",
    "as_model",
    "available_models",
    "hydrogen_demo_model",
    "load_model",
    "resolve_model",
    "shipped_models",
]
