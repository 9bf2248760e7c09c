"""The makeup experiment: H8 training sets with fragments, and what the models make of it.

    ase-bodyorder study makeup [--architectures mace] [--densities high low]
                               [--fractions 0 0.05 0.2 0.5]

trains (through the study cache, resumably) one model per architecture, density and
fragment fraction (:class:`~.spec.TrainingSpec` with ``fragment_fraction``; fragments
drawn as :mod:`.fragments` describes) on the 800 H8 training clusters plus fragments,
with the study's recipe and stopping rule, then evaluates each model
(:func:`evaluate_entry`, cached next to the model as ``evaluation.json``):

* ``test``: energy and force RMSE on the H8 test set of the model's own density;
* ``mbe``: its many-body expansion of the 50 held-out clusters of its density against
  the shipped FCI/STO-6G MBE of the same clusters: E^(n) per cluster (eV), per-order
  mean error and RMSE, and the RMSE of E_{<=K} against the full FCI energy, K = 1..8;
* ``atom``: E^(1) (the isolated atom, eV) against the exact STO-6G atom;
* ``dimer``: the H2 curve from 0.4 to 4 Angstrom against FCI/STO-6G (singlet);
* ``generalisation``: the H8 test set of the other density and the H12 DMRG clusters
  (12 per density) of the transfer set.

Energies in eV (per cluster unless named per atom), RMSEs in meV/atom and meV/Angstrom.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..decompose import decompose
from ..expansion import BodyOrderError
from ..io import sha256_file, write_json_atomically
from ..reference.electronic import Calculation, compute
from ..training.recipes import H_ATOM_STO6G_EV
from ..training.reports import atom_energy, set_errors
from .entries import EVALUATION, RESULT, is_current, load_entry_model
from .fragments import FRACTIONS
from .spec import ARCHITECTURES, DATA, DENSITIES, TrainingSpec, check_architecture, split_path

__all__ = [
    "DIMER_DISTANCES_A",
    "EVALUATION_VERSION",
    "dimer_reference",
    "dimer_rmse",
    "evaluate_entry",
    "evaluate_model",
    "has_curves",
    "label",
    "load_entry_model",
    "makeup_results",
    "makeup_specs",
    "reference_mbe",
    "truncation_rmse",
]

#: H2 distances of the dimer curves (Angstrom): 0.4 to 4.0
DIMER_DISTANCES_A = tuple(float(x) for x in np.round(np.linspace(0.4, 4.0, 37), 3))
#: version of the evaluation's content: a change re-evaluates cached entries, and
#: leaves archived entries evaluated by another version out of the report
EVALUATION_VERSION = 1
#: the version of an archived evaluation that records none: those recovered from an
#: earlier report's tables, all made while the version was 1
_UNRECORDED_VERSION = 1


def makeup_specs(
    architectures: Sequence[str] = ARCHITECTURES,
    densities: Sequence[str] = DENSITIES,
    fractions: Sequence[float] = FRACTIONS,
    *,
    size: int = 800,
    seed: int = 0,
) -> list[TrainingSpec]:
    """One spec per architecture, density and fraction; per density and architecture the
    largest fraction first (the largest effect), the plain model (f = 0) last (it is the
    learning curve's final model, usually cached)."""
    for architecture in architectures:
        check_architecture(architecture)
    ordered = sorted({float(f) for f in fractions}, reverse=True)
    return [
        TrainingSpec(architecture, density, size, seed, fragment_fraction=fraction)
        for density in dict.fromkeys(densities)
        for architecture in dict.fromkeys(architectures)
        for fraction in ordered
    ]


@cache
def dimer_reference(distances: tuple[float, ...] = DIMER_DISTANCES_A) -> tuple[float, ...]:
    """FCI/STO-6G energies (eV) of H2 (singlet, the 'lowest' spin policy) at ``distances``
    (Angstrom), through the reference pipeline's :func:`~ase_bodyorder.reference.
    electronic.compute` (a few seconds in all)."""
    calc = Calculation(method="fci", basis="sto-6g", spin_policy="lowest", forces=False)
    return tuple(
        float(compute([1, 1], [[0, 0, 0], [0, 0, d]], calc)["energy_eV"]) for d in distances
    )


def reference_mbe(density: str) -> tuple[list, np.ndarray, np.ndarray]:
    """The held-out clusters of a density with an FCI MBE: the clusters, their E^(n)
    (eV, ``[cluster, order]``) and their full FCI energies (eV)."""
    path = DATA / f"h8-{density}_mbe_fci_sto6g.json"
    if not path.is_file():
        raise BodyOrderError(f"no ab initio MBE file {path}")
    records = json.loads(path.read_text(encoding="utf-8"))["clusters"]
    frames = {
        int(a.info["index"]): a for a in ase.io.read(DATA / f"h8-{density}_clusters.xyz", ":")
    }
    clusters = [frames[int(r["cluster"])] for r in records]
    reference = np.array([r["energies_eV"] for r in records])
    total = np.array([r["total_energy_eV"] for r in records])
    return clusters, reference, total


def truncation_rmse(energies: np.ndarray, total: np.ndarray) -> np.ndarray:
    """RMSE over clusters of E_{<=K} - E (eV) for K = 1..n, from per-order energies
    ``energies[cluster, order]`` and the full energies ``total[cluster]``."""
    return np.sqrt(((np.cumsum(energies, axis=1) - total[:, None]) ** 2).mean(0))


def _errors(model, frames) -> dict:
    errors = set_errors(model, frames)
    return {
        "energy_meV_per_atom": errors.energy_rmse_meV_per_atom,
        "forces_meV_per_A": errors.force_rmse_meV_per_A,
        "structures": errors.n_structures,
    }


def evaluate_model(model, density: str) -> dict:
    """Every number of the makeup experiment for one model (see the module doc)."""
    clusters, reference, total = reference_mbe(density)
    energies = np.array([decompose(a, model, max_order=len(a)).energies_eV for a in clusters])
    error = energies - reference
    dimer = [
        float(model.system(Atoms("H2", positions=[[0, 0, 0], [0, 0, d]]), forces=False).energy)
        for d in DIMER_DISTANCES_A
    ]
    other = "low" if density == "high" else "high"
    atom = atom_energy(model)
    return {
        "version": EVALUATION_VERSION,
        "density": density,
        "test": _errors(model, ase.io.read(split_path(density, "test"), ":")),
        "mbe": {
            "clusters": len(clusters),
            "model_energies_eV": energies.tolist(),
            "reference_energies_eV": reference.tolist(),
            "mean_error_eV": error.mean(0).tolist(),
            "rmse_eV": np.sqrt((error**2).mean(0)).tolist(),
            "truncation_rmse_eV": truncation_rmse(energies, total).tolist(),
            "reference_truncation_rmse_eV": truncation_rmse(reference, total).tolist(),
        },
        "atom": {
            "model_eV": atom,
            "reference_eV": H_ATOM_STO6G_EV,
            "error_meV": 1000 * (atom - H_ATOM_STO6G_EV),
        },
        "dimer": {
            "distances_A": list(DIMER_DISTANCES_A),
            "model_eV": dimer,
            "reference_eV": list(dimer_reference()),
        },
        "generalisation": {
            f"h8-{other}": _errors(model, ase.io.read(split_path(other, "test"), ":")),
            **{
                f"h12-{d}": _errors(model, ase.io.read(DATA / f"h12-{d}_dmrg_sto6g.xyz", ":"))
                for d in DENSITIES
            },
        },
    }


def evaluate_entry(directory: Path, result: dict | None = None) -> dict:
    """The evaluation of a study entry, computed once and kept as ``evaluation.json``
    (recomputed when the model file or the evaluation's content changed)."""
    directory = Path(directory)
    if result is None:
        result = json.loads((directory / RESULT).read_text(encoding="utf-8"))
    model_sha = sha256_file(directory / result["model"])
    path = directory / EVALUATION
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            stored = {}
        if stored.get("model_sha256") == model_sha and stored.get("version") == (
            EVALUATION_VERSION
        ):
            return stored
    model = load_entry_model(directory, result)
    evaluation = evaluate_model(model, result["spec"]["density"])
    evaluation["model_sha256"] = model_sha
    evaluation["key"] = result["key"]
    write_json_atomically(path, evaluation)
    return evaluation


def makeup_results(
    results: list[dict], cache_dir: Path, *, size: int = 800, recipe_only: bool = True
) -> list[dict]:
    """The entries of the makeup experiment in a cache (seed 0, ``size`` clusters, any
    fraction, trained with today's recipe and data (:func:`~.entries.is_current`); with
    ``recipe_only`` only those without overrides) with their evaluations, by density,
    architecture and fraction. Archived entries (no model, see
    :func:`~.entries.collect_results`) bring the evaluation they were archived with, which
    may lack the per-cluster energies and the dimer curve; one made by another version
    of the evaluation than today's is returned with ``outdated_evaluation`` set to its
    version (the report lists it and leaves its numbers out)."""
    chosen = [
        r
        for r in results
        if r["spec"]["size"] == size
        and r["spec"]["seed"] == 0
        and not (recipe_only and r["spec"].get("overrides"))
        and is_current(r)
    ]
    out = []
    for r in chosen:
        item = dict(r)
        item["fraction"] = float(r["spec"].get("fragment_fraction", 0.0))
        if r.get("archived"):
            if not r.get("evaluation"):
                continue  # archived before it was evaluated; its model is gone
            version = r["evaluation"].get("version", _UNRECORDED_VERSION)
            if version != EVALUATION_VERSION:
                item["outdated_evaluation"] = version
        else:
            item["evaluation"] = evaluate_entry(Path(cache_dir) / r["key"], r)
        out.append(item)
    rank = {a: k for k, a in enumerate(ARCHITECTURES)}
    out.sort(
        key=lambda r: (
            DENSITIES.index(r["spec"]["density"]),
            rank[r["spec"]["architecture"]],
            r["fraction"],
        )
    )
    return out


def label(item: dict) -> str:
    """``mace-high`` for a plain model, ``mace-high f=0.2`` with fragments."""
    spec = item["spec"]
    name = f"{spec['architecture']}-{spec['density']}"
    return name if item["fraction"] == 0 else f"{name} f={item['fraction']:g}"


def dimer_rmse(dimer: dict) -> float:
    """RMSE of a model's H2 curve against FCI (eV); an archived evaluation without the
    curve keeps its ``rmse_eV``."""
    if "model_eV" not in dimer:
        return float(dimer["rmse_eV"])
    error = np.array(dimer["model_eV"]) - np.array(dimer["reference_eV"])
    return float(np.sqrt(np.mean(error**2)))


def has_curves(item: dict) -> bool:
    """Whether an item's evaluation holds the per-cluster energies and the dimer curve
    (archived entries restored from a report's tables do not)."""
    ev = item["evaluation"]
    return "model_energies_eV" in ev["mbe"] and "model_eV" in ev["dimer"]
