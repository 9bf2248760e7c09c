"""Models by spec: the shipped models and analytic demos by name, plug-ins (entry points),
model files. :func:`resolve_model` is the one way every door opens a model."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

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
    "ENTRY_POINT_GROUP",
    "absolute_spec",
    "as_model",
    "available_models",
    "load_model",
    "load_model_spec",
    "resolve_model",
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
        lambda: _hydrogen_only(AxilrodTellerMuto(C9=1.90, cutoff=5.0)),
        "Axilrod-Teller-Muto triple-dipole term alone (a pure 3-body oracle), 5 A cutoff",
    ),
}


def _hydrogen_only(model: AxilrodTellerMuto) -> AxilrodTellerMuto:
    """The triple-dipole term with hydrogen's C9: refuses other elements (alone it would
    take any element, with hydrogen's coefficient)."""
    model.atomic_numbers = frozenset({1})
    return model


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
            from .mace import MACEModel  # torch model backend: mace-torch (optional)

            return MACEModel(path)
        from .metatomic import MetatomicModel  # torch model backend: metatomic (optional)

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


#: entry-point group of plug-in models: each entry point names a callable of no
#: arguments returning a :class:`~ase_bodyorder.models.Model`
ENTRY_POINT_GROUP = "ase_bodyorder.models"

#: model files by suffix: the loader of each
MODEL_FILE_SUFFIXES = {".model": "MACE", ".pt": "metatomic"}


def _entry_points() -> dict[str, Any]:
    """The plug-in models' entry points by name (group :data:`ENTRY_POINT_GROUP`)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _plugin_missing(factory: object) -> list[str]:
    """The modules a plug-in factory declares in ``requires`` that cannot be imported."""
    requires = getattr(factory, "requires", ())
    return [name for name in requires if importlib.util.find_spec(name) is None]


def _plugins() -> dict[str, str]:
    """Plug-in models whose packages are importable, with a one-line description each
    (a plug-in that cannot be loaded at all is left out: resolving it names why)."""
    found = {}
    for name, ep in _entry_points().items():
        if name in _REGISTRY:
            continue
        try:
            factory = ep.load()
        except Exception:  # noqa: BLE001 - a broken plug-in is reported when resolved
            continue
        if _plugin_missing(factory):
            continue
        doc = (getattr(factory, "description", None) or factory.__doc__ or "").strip()
        found[name] = (doc.splitlines()[0] if doc else ep.value) + " (plug-in)"
    return found


def available_models() -> dict[str, str]:
    """Names :func:`resolve_model` knows, with a one-line description each: the
    registered models, then the plug-ins whose packages are importable."""
    return {
        **{name: entry.description for name, entry in _REGISTRY.items()},
        **_plugins(),
    }


def shipped_models() -> dict[str, str | None]:
    """The shipped models (``data/models/<name>/`` with a provenance file), each with the
    data set it was trained on (``dataset`` of its provenance)."""
    return {
        name: entry.provenance.get("dataset")
        for name, entry in _REGISTRY.items()
        if entry.provenance is not None
    }


def _is_path(spec: str) -> bool:
    return Path(spec).suffix in MODEL_FILE_SUFFIXES or "/" in spec or os.sep in spec


def _from_file(spec: str) -> Model:
    path = Path(spec).expanduser()
    kind = MODEL_FILE_SUFFIXES.get(path.suffix)
    if kind is None:
        raise BodyOrderError(
            f"model {spec!r}: not a model file (a MACE .model or a metatomic .pt file), a "
            "registered name or a plug-in (see `ase-bodyorder models`)"
        )
    if path.is_dir():
        raise BodyOrderError(f"model {spec!r}: a directory, not a {kind} model file")
    if not path.is_file():
        raise BodyOrderError(f"model {spec!r}: no such {kind} model file")
    try:
        if kind == "MACE":
            from .mace import MACEModel  # torch model backend: mace-torch (optional)

            return MACEModel(path)
        from .metatomic import MetatomicModel  # torch model backend: metatomic (optional)

        return MetatomicModel(path)
    except BodyOrderError as error:
        raise BodyOrderError(f"model {spec!r}: {error}") from None


def _from_plugin(spec: str, ep: Any) -> Model:
    try:
        factory = ep.load()
    except ImportError as error:
        raise ImportError(
            f"plug-in model {spec!r} ({ep.value}) cannot be imported: {error}"
        ) from None
    missing = _plugin_missing(factory)
    if missing:
        extra = getattr(factory, "extra", None)
        how = f": pip install 'ase-bodyorder[{extra}]'" if extra else ""
        raise ImportError(
            f"plug-in model {spec!r} needs {', '.join(missing)}, which is not installed "
            f"here{how} (for the universal MLIPs: make universal-env, .venv-universal)"
        )
    model = factory()
    if not isinstance(model, Model):
        raise BodyOrderError(
            f"plug-in model {spec!r} ({ep.value}) gave a {type(model).__name__}, not an "
            "ase_bodyorder Model"
        )
    return model


def resolve_model(spec: str | os.PathLike[str]) -> Model:
    """The model a spec names, the same way in every door: the command line's
    ``--model``, :class:`~ase_bodyorder.BodyOrderCalculator`, the i-PI driver's
    ``model=``, ``reference frames --model``, the trajectory runner
    (:func:`~ase_bodyorder.trajectory.decompose_trajectory`).

    ``spec`` is, in this order:

    - a registered name (``ase-bodyorder models``: the shipped models and analytic demos);
    - a plug-in name: an entry point of group ``ase_bodyorder.models`` (our adapters for
      universal MLIPs register this way, e.g. ``7net-0``, listed only when their package
      is importable);
    - a model file: a MACE ``.model`` or a metatomic ``.pt`` file (a path as a string or
      a :class:`~os.PathLike`).

    The model's ``name`` (in its messages: ``model 'mace-h8-high' does not know element(s)
    O``) is the spec, unless the model names itself. Anything else is a one-line
    :class:`~ase_bodyorder.expansion.BodyOrderError` naming the spec (a plug-in whose
    package is missing: an ``ImportError`` naming it).
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec:
        raise BodyOrderError(f"a model spec is a non-empty string, got {spec!r}")
    model = _resolve(spec)
    if model.name is None:
        model.name = spec
    return model


def _resolve(spec: str) -> Model:
    entry = _REGISTRY.get(spec)
    if entry is not None:
        return entry.factory()
    plugin = _entry_points().get(spec)
    if plugin is not None:
        return _from_plugin(spec, plugin)
    if _is_path(spec) or Path(spec).is_file():
        return _from_file(spec)
    known = ", ".join(sorted(available_models()))
    raise BodyOrderError(
        f"unknown model {spec!r}; available models: {known}; or a model file (MACE .model, "
        "metatomic .pt)"
    )


def as_model(model: Model | str | os.PathLike[str]) -> Model:
    """``model`` itself, or the model a spec names (:func:`resolve_model`): what a door
    that takes either (``decompose``, the calculator) calls. Anything else is one
    :class:`~ase_bodyorder.expansion.BodyOrderError` line naming what was given."""
    if isinstance(model, Model):
        return model
    if isinstance(model, str | os.PathLike):
        return resolve_model(model)
    raise BodyOrderError(
        "a model is an ase_bodyorder Model or a model spec (a registered name, a plug-in, "
        f"a .model/.pt file), got {type(model).__name__} {model!r}"
    )


def absolute_spec(spec: str) -> str:
    """``spec`` with a model file's path made absolute, for a process started in another
    directory (the i-PI drivers run in their run directory); names stay as they are."""
    if spec in _REGISTRY or spec in _entry_points():
        return spec
    path = Path(spec).expanduser()
    if path.suffix in MODEL_FILE_SUFFIXES and path.is_file():
        return str(path.resolve())
    return spec


def load_model(name: str = DEFAULT_MODEL) -> Model:
    """:func:`resolve_model` (kept for existing code): a name, plug-in or model file."""
    return resolve_model(name)


def load_model_spec(spec: str) -> tuple[str, Model]:
    """``(label, model)`` of ``SPEC`` or ``LABEL=SPEC`` (:func:`resolve_model`); the
    label of a bare spec is the spec itself, of a file its name without suffix."""
    label, sep, rest = spec.partition("=")
    if not sep:
        is_file = Path(spec).suffix in MODEL_FILE_SUFFIXES
        return (Path(spec).stem if is_file else spec), resolve_model(spec)
    if not label or not rest:
        raise BodyOrderError(f"model {spec!r}: give NAME, a file, or LABEL=SPEC")
    return label, resolve_model(rest)
