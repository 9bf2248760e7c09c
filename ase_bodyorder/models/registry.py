"""Models by name: the shipped models and the analytic demos."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..expansion import BodyOrderError
from .analytic import (
    HYDROGEN_ATOM_ENERGY_EV,
    AtomicBaseline,
    AxilrodTellerMuto,
    Morse,
    SumModel,
    hydrogen_demo_model,
)
from .base import Model

__all__ = [
    "DEFAULT_MD_MODEL",
    "DEFAULT_MODEL",
    "available_models",
    "load_model",
    "load_model_spec",
    "shipped_models",
]


@dataclass(frozen=True)
class _Entry:
    factory: Callable[[], Model]
    description: str
    #: a shipped model's provenance record (``provenance.json``); None for the others
    provenance: dict | None = None


_REGISTRY: dict[str, _Entry] = {
    "h-morse-atm": _Entry(
        hydrogen_demo_model,
        "analytic hydrogen demo: H atom energy + Morse (H2) + Axilrod-Teller-Muto, 5 A cutoff",
    ),
    "h-morse": _Entry(
        lambda: SumModel(
            AtomicBaseline({1: HYDROGEN_ATOM_ENERGY_EV}),
            Morse(D_e=4.746, a=1.942, r_e=0.7414, cutoff=5.0),
        ),
        "analytic hydrogen pair potential: H atom energy + Morse (H2), 5 A cutoff",
    ),
    "h-atm": _Entry(
        lambda: AxilrodTellerMuto(C9=1.90, cutoff=5.0),
        "Axilrod-Teller-Muto triple-dipole term alone (a pure 3-body oracle), 5 A cutoff",
    ),
}

_MODELS = Path(__file__).resolve().parent.parent / "data" / "models"
#: file name of a shipped model by loader
_FILES = {"mace": "model.model", "metatomic": "model.pt"}


def _shipped(name: str, loader: str) -> Callable[[], Model]:
    def factory() -> Model:
        path = _MODELS / name / _FILES[loader]
        if not path.is_file():
            raise BodyOrderError(
                f"model {name!r} is not in this installation (missing {path}); train it with "
                "`ase-bodyorder study learning-curves` and `ase-bodyorder study ship`, or "
                f"`python -m ase_bodyorder.training.shipped {name}`"
            )
        if loader == "mace":
            from .mace import MACEModel

            return MACEModel(path)
        from .metatomic import MetatomicModel

        return MetatomicModel(path)

    return factory


def _description(provenance: dict) -> str:
    """One line from a shipped model's provenance (its own, or built from its fields)."""
    text = provenance.get("description") or f"trained on {provenance.get('dataset', '?')}"
    verdict = provenance.get("convergence")
    if verdict is not None:
        state = "converged" if verdict.get("flat") else "NOT converged"
        text += f"; {state} ({verdict.get('epochs')} epochs)"
    return text + " (shipped)"


def _register_shipped() -> None:
    """Every ``data/models/<name>/`` with a provenance file and a model file."""
    if not _MODELS.is_dir():
        return
    for directory in sorted(_MODELS.iterdir()):
        provenance_path = directory / "provenance.json"
        loader = next((k for k, f in _FILES.items() if (directory / f).is_file()), None)
        if loader is None or not provenance_path.is_file():
            continue
        provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        name = provenance.get("name", directory.name)
        _REGISTRY[name] = _Entry(_shipped(name, loader), _description(provenance), provenance)


_register_shipped()

#: the model decompositions use when none is named
DEFAULT_MODEL = "mace-h8-high"

#: the model MD runs use when none is named: MACE trained on periodic LDA cells of
#: hydrogen across the molecular-to-atomic crossover (rs 1.4-3.0 bohr, k-point meshes)
#: together with isolated fragments cut from them at the same level of theory, so that
#: the sub-clusters its monitor evaluates are not extrapolations, with a short-range pair
#: repulsion (mace's ZBL) and its isolated atoms and pairs weighted in the loss (E^(1)
#: 6.4 meV from the isolated LDA atom; ``reports/md_model``,
#: ``reports/monitor_validation``). It replaced ``mace-hcells`` (trained on 134 of the 200
#: cells, 183 meV/atom off on the test cells, attractive H2 below 0.5 Angstrom). The H8
#: models are trained on isolated 8-atom clusters and do not describe bulk hydrogen (in a
#: 64-atom cell at rs = 1.6 bohr ``pet-h8-high`` predicts -33 eV/atom and heats the cell
#: to 1e5 K in ten steps); ``soap-bpnn-hbulk-high``, the first MD model, saw Gamma-point
#: cells only (E^(1) 249 meV off, monitored E^(2)/N 5.5 eV/atom off the ab initio value).
DEFAULT_MD_MODEL = "mace-hcells-zbl"


def available_models() -> dict[str, str]:
    """Names of the models :func:`load_model` knows, with a one-line description each."""
    return {name: entry.description for name, entry in _REGISTRY.items()}


def shipped_models() -> dict[str, str | None]:
    """The shipped models (``data/models/<name>/`` with a provenance file), each with the
    data set it was trained on (``dataset`` of its provenance)."""
    return {
        name: entry.provenance.get("dataset")
        for name, entry in _REGISTRY.items()
        if entry.provenance is not None
    }


def load_model(name: str = DEFAULT_MODEL) -> Model:
    """Load a model by name (see :func:`available_models`)."""
    try:
        entry = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise BodyOrderError(f"unknown model {name!r}; available models: {known}") from None
    return entry.factory()


def load_model_spec(spec: str) -> tuple[str, Model]:
    """``(label, model)`` of ``NAME`` (:func:`load_model`) or ``LABEL=PATH`` (a trained
    file: ``.model`` is MACE, anything else an exported metatomic model)."""
    label, _, path = spec.partition("=")
    if not path:
        return label, load_model(label)
    file = Path(path)
    if not file.is_file():
        raise BodyOrderError(f"model {label}: no file {path}")
    if file.suffix == ".model":
        from .mace import MACEModel

        return label, MACEModel(file)
    from .metatomic import MetatomicModel

    return label, MetatomicModel(file)
