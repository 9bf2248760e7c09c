"""Reports on the shipped models: test-set accuracy and body orders against the reference.

    ase-bodyorder report accuracy  [--models ...] [--output reports/accuracy.md]
    ase-bodyorder report bodyorder [--models ...] [--output reports/bodyorder.md]

Both evaluate every cluster of a set in one packed model call (each cluster one
fragment), which gives the same numbers as one call per cluster (see the contract tests).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase import Atoms

from ..decompose import decompose
from ..expansion import BodyOrderError
from ..models import load_model, shipped_models
from ..models.base import AtomicModel, FragmentBatch
from .architectures import TRAIN_ARCHITECTURES
from .shipped import H_ATOM_LDA_GTH_EV, H_ATOM_LDA_ISOLATED_EV, H_ATOM_STO6G_EV

__all__ = [
    "accuracy_models",
    "accuracy_table",
    "atom_energy",
    "bodyorder_models",
    "bodyorder_table",
    "evaluate_set",
    "reference_atom_energy",
]

DATA = Path(__file__).resolve().parent.parent / "data"
DENSITIES = ("high", "low")
#: the H8 cluster data sets (FCI/STO-6G), with test sets and an ab initio MBE
CLUSTER_DATASETS = tuple(f"h8-{d}" for d in DENSITIES)
#: the periodic data sets (LDA), with test sets: ``hbulk-high`` (Gamma-point cells at
#: 60 Ha) and ``hcells`` (crossover cells on k-meshes at 90 Ha, with isolated fragments)
PERIODIC_DATASETS = ("hbulk-high", "hcells")


def _shipped_on(datasets) -> list[str]:
    """The shipped models trained on one of ``datasets`` (from the registry), by data set
    in that order, then by architecture (pet, soap-bpnn, mace: names ``<arch>-<dataset>``)."""
    rank = {arch: k for k, arch in enumerate(TRAIN_ARCHITECTURES)}
    found = [
        (list(datasets).index(dataset), rank.get(name.removesuffix(f"-{dataset}"), len(rank)), name)
        for name, dataset in shipped_models().items()
        if dataset in datasets
    ]
    return [name for *_, name in sorted(found)]


def bodyorder_models() -> list[str]:
    """The models :func:`bodyorder_table` reports by default: the shipped models trained
    on the H8 clusters (whose reference is the FCI MBE of held-out H8 clusters)."""
    return _shipped_on(CLUSTER_DATASETS)


def accuracy_models() -> list[str]:
    """The models :func:`accuracy_table` reports by default: the shipped cluster models,
    then the shipped periodic ones (each on its own test sets)."""
    return _shipped_on(CLUSTER_DATASETS) + _shipped_on(PERIODIC_DATASETS)


@dataclass(frozen=True)
class SetErrors:
    """Errors of a model on a data set: energy RMSE (meV/atom), force RMSE (meV/Angstrom)."""

    energy_rmse_meV_per_atom: float
    force_rmse_meV_per_A: float
    n_structures: int


def evaluate_set(model: AtomicModel, frames) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies (eV) and forces (eV/Angstrom) of isolated clusters, in one packed call."""
    sizes = np.array([len(a) for a in frames])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    positions = torch.tensor(np.concatenate([a.positions for a in frames]), requires_grad=True)
    numbers = np.concatenate([a.numbers for a in frames])
    model.check_species(numbers)
    per_atom = model.fragment_energies(FragmentBatch(positions, numbers, offsets))
    energies = torch.zeros(len(frames), dtype=torch.float64).index_add(
        0, torch.as_tensor(np.repeat(np.arange(len(frames)), sizes)), per_atom.double()
    )
    (grad,) = torch.autograd.grad(energies.sum(), positions)
    forces = -grad.numpy()
    return energies.detach().numpy(), [
        forces[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)
    ]


def set_errors(model: AtomicModel, frames) -> SetErrors:
    """Test-set errors: isolated clusters in one packed call, periodic cells one by one
    (the packed path treats every structure as an isolated cluster)."""
    if any(a.pbc.any() for a in frames):
        results = [model.system(a, forces=True) for a in frames]
        energies = np.array([r.energy for r in results])
        forces = [r.forces for r in results]
    else:
        energies, forces = evaluate_set(model, frames)
    reference = np.array([a.get_potential_energy() for a in frames])
    n_atoms = np.array([len(a) for a in frames])
    e_err = (energies - reference) / n_atoms
    f_err = np.concatenate([f - a.get_forces() for f, a in zip(forces, frames, strict=True)])
    return SetErrors(
        energy_rmse_meV_per_atom=1000 * math.sqrt(np.mean(e_err**2)),
        force_rmse_meV_per_A=1000 * math.sqrt(np.mean(f_err**2)),
        n_structures=len(frames),
    )


def _load(names):
    models = {}
    for name in names:
        try:
            models[name] = load_model(name)
        except BodyOrderError as error:
            print(f"skipping {name}: {error}")
    if not models:
        raise BodyOrderError("none of the requested models could be loaded")
    return models


def _trained_on(name: str) -> str | None:
    """The data set a model was trained on: its provenance's ``dataset`` for a shipped
    model, else the data set named in it (``<arch>-<dataset>[-suffix]``), else None."""
    dataset = shipped_models().get(name)
    if dataset:
        return dataset
    known = CLUSTER_DATASETS + PERIODIC_DATASETS
    found = [d for d in known if f"-{d}" in name]
    return found[0] if found else None


def accuracy_table(names) -> str:
    """Markdown table: test-set errors of each model.

    Cluster models (``*-h8-*``) on both cluster densities (own and cross); the periodic
    models (``*-hbulk-*``, ``*-hcells``, LDA) on their own test set only: their reference
    is another level of theory (and the two periodic sets differ in k-points and cutoff),
    so errors against another set would measure the methods' difference.
    """
    sets = {name: DATA / "reference" / f"{name}_test.xyz" for name in CLUSTER_DATASETS}
    sets.update({name: DATA / "reference" / f"{name}_test.xyz" for name in PERIODIC_DATASETS})
    loaded = {}
    lines = [
        "| model | tested on | energy RMSE / meV/atom | force RMSE / meV/A | structures |",
        "|---|---|---|---|---|",
    ]
    atoms_lines = [
        "",
        "Isolated H atom: the model's E^(1) against the reference method's atom "
        "(FCI/STO-6G for the cluster models, spin-polarised LDA/GTH for the periodic ones: "
        "in a periodic box at 60 Ha for `hbulk-high`, isolated for `hcells`):",
        "",
        "| model | E^(1) model / eV | reference / eV | model - reference / meV |",
        "|---|---|---|---|",
    ]
    for name, model in _load(names).items():
        model_e1, reference_e1 = atom_energy(model), reference_atom_energy(name)
        atoms_lines.append(
            f"| {name} | {model_e1:.4f} | {reference_e1:.4f} | "
            f"{1000 * (model_e1 - reference_e1):+.1f} |"
        )
        trained_on = _trained_on(name)
        periodic = trained_on in PERIODIC_DATASETS
        for dataset, path in sets.items():
            if (dataset != trained_on) if periodic else (dataset in PERIODIC_DATASETS):
                continue
            if dataset not in loaded:
                loaded[dataset] = ase.io.read(path, ":")
            errors = set_errors(model, loaded[dataset])
            own = "own" if dataset == trained_on else "cross"
            lines.append(
                f"| {name} | {dataset} test ({own}) | {errors.energy_rmse_meV_per_atom:.2f} | "
                f"{errors.force_rmse_meV_per_A:.1f} | {errors.n_structures} |"
            )
    return "\n".join(lines + atoms_lines)


def atom_energy(model) -> float:
    """The model's energy of one isolated H atom (eV): its 1-body term E^(1) per atom."""
    return float(model.system(Atoms("H", positions=[[0.0, 0.0, 0.0]]), forces=False).energy)


def reference_atom_energy(name: str) -> float:
    """Energy (eV) of one H atom at the reference method of the model's training data."""
    periodic = {"hbulk-high": H_ATOM_LDA_GTH_EV, "hcells": H_ATOM_LDA_ISOLATED_EV}
    return periodic.get(_trained_on(name) or "", H_ATOM_STO6G_EV)


def _reference_mbe(density: str) -> list[dict]:
    path = DATA / "reference" / f"h8-{density}_mbe_fci_sto6g.json"
    if not path.exists():
        raise BodyOrderError(f"no ab initio MBE file {path}")
    return json.loads(path.read_text())["clusters"]


def bodyorder_table(names) -> str:
    """Markdown tables: each model's MBE against the ab initio MBE, order by order.

    For each model and density: mean and spread (standard deviation over the clusters)
    of E^(n) per cluster (eV) for the model and the FCI reference, and the RMSE of the
    truncated energies E_{<=K} against the full reference energy, for K = 1..8.
    """
    models = _load(names)
    blocks = []
    for density in DENSITIES:
        records = _reference_mbe(density)
        frames = {
            int(a.info["index"]): a
            for a in ase.io.read(DATA / "reference" / f"h8-{density}_clusters.xyz", ":")
        }
        clusters = [frames[r["cluster"]] for r in records]
        reference = np.array([r["energies_eV"] for r in records])
        total = np.array([r["total_energy_eV"] for r in records])
        k = reference.shape[1]
        rows = {"FCI reference": reference}
        for name, model in models.items():
            rows[name] = np.array(
                [decompose(a, model, max_order=len(a)).energies_eV for a in clusters]
            )
        header = "| | " + " | ".join(f"E^({n})" for n in range(1, k + 1)) + " |"
        lines = [
            f"### h8-{density}: {len(clusters)} held-out clusters with an FCI/STO-6G MBE",
            "",
            "Mean +- spread of E^(n) over the clusters (eV per cluster):",
            "",
            header,
            "|---" * (k + 1) + "|",
        ]
        for label, values in rows.items():
            cells = " | ".join(
                f"{m:+.3f} +- {s:.3f}" for m, s in zip(values.mean(0), values.std(0), strict=True)
            )
            lines.append(f"| {label} | {cells} |")
        lines += [
            "",
            "RMSE of the truncated energy E_{<=K} against the full FCI energy (eV per cluster):",
            "",
            "| | " + " | ".join(f"K={n}" for n in range(1, k + 1)) + " |",
            "|---" * (k + 1) + "|",
        ]
        for label, values in rows.items():
            truncated = np.cumsum(values, axis=1)
            rmse = np.sqrt(np.mean((truncated - total[:, None]) ** 2, axis=0))
            lines.append(f"| {label} | " + " | ".join(f"{x:.3f}" for x in rmse) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
