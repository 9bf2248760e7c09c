"""The universal-MLIP study's numbers (issue 32): errors of the body orders against PBE,
the dimer curves, the level-of-theory gap, the size consistency of the reference and the cost.

Everything here is a pure function of the exported reference
(:func:`~.universal.read_reference`) and the model results
(:func:`~.universal.read_models`): the report (:mod:`.universal_report`) only words what
these and :mod:`.universal_claims` return. Energies in eV (per cluster unless named per
atom), distances in Angstrom, CPU time in seconds or hours as named.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..reference.universal import DATASETS

__all__ = [
    "REPRODUCES_FRACTION",
    "basis_cost",
    "basis_gap",
    "curve_level",
    "cost_by_element",
    "dimer_errors",
    "h8_study_rows",
    "order_errors",
    "paired",
    "relative_rmse",
    "separation_failures",
    "set_size",
    "shown_on",
    "unbound_distance",
]

#: a model "reproduces" an order when its RMSE is below this fraction of the RMS of the
#: PBE term over the clusters
REPRODUCES_FRACTION = 0.2
#: the orders compared (E^(1) is an offset only: see the module docstring of .universal)
COMPARED = (2, 3, 4)


# ---------------------------------------------------------------- body orders


def paired(reference: dict, model_rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Reference and model rows of the clusters both have, in the reference's order."""
    by_cluster = {r["cluster"]: r for r in model_rows}
    pairs = [
        (r, by_cluster[r["cluster"]]) for r in reference["clusters"] if r["cluster"] in by_cluster
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def set_size(reference: dict) -> int:
    """Atoms per cluster of a reference set (from the first cluster's sub-cluster labels:
    the largest atom index + 1)."""
    labels = [k for k in reference["clusters"][0]["subcluster_energies_eV"] if k != "full"]
    return 1 + max(int(i) for label in labels for i in label.split("-"))


def order_errors(reference: dict, model_rows: list[dict]) -> dict | None:
    """Per order (index n - 1): mean error and RMSE of E^(n) (eV per cluster) against the
    reference, the reference's RMS and mean; E^(1) as an offset per atom; the RMSE and mean
    of the truncation error E_{<=K} - E for K = 1..4 (each against its own total, model
    and reference); None when no cluster is shared."""
    ref_rows, mod_rows = paired(reference, model_rows)
    if not ref_rows:
        return None
    ref = np.array([r["energies_eV"] for r in ref_rows])
    mod = np.array([r["energies_eV"] for r in mod_rows])
    n_atoms = set_size(reference)
    error = mod - ref
    ref_total = np.array([r["total_energy_eV"] for r in ref_rows])
    mod_total = np.array([r["total_energy_eV"] for r in mod_rows])
    mod_trunc = np.cumsum(mod, axis=1) - mod_total[:, None]
    ref_trunc = np.cumsum(ref, axis=1) - ref_total[:, None]
    return {
        "clusters": len(ref_rows),
        "atoms": n_atoms,
        "mean_error_eV": error.mean(0).tolist(),
        "rmse_eV": np.sqrt((error**2).mean(0)).tolist(),
        "reference_rms_eV": np.sqrt((ref**2).mean(0)).tolist(),
        "reference_mean_eV": ref.mean(0).tolist(),
        "model_mean_eV": mod.mean(0).tolist(),
        "model_std_eV": mod.std(0).tolist(),
        "atom_offset_eV_per_atom": float((error[:, 0] / n_atoms).mean()),
        "residual_mean_eV": float(np.mean([r["residual_eV"] for r in mod_rows])),
        "truncation_rmse_eV": np.sqrt((mod_trunc**2).mean(0)).tolist(),
        "truncation_mean_eV": mod_trunc.mean(0).tolist(),
        "reference_truncation_rmse_eV": np.sqrt((ref_trunc**2).mean(0)).tolist(),
        "reference_truncation_mean_eV": ref_trunc.mean(0).tolist(),
        "interaction_rmse_eV": float(
            np.sqrt((((mod_total - mod[:, 0]) - (ref_total - ref[:, 0])) ** 2).mean())
        ),
    }


def relative_rmse(errors: dict, n: int) -> float:
    """RMSE of E^(n) over the RMS of the reference term (n 1-based; inf for a zero term)."""
    rms = errors["reference_rms_eV"][n - 1]
    return errors["rmse_eV"][n - 1] / rms if rms > 0 else math.inf


def shown_on(name: str, label: str, kind: str) -> bool:
    """Whether a model's results belong on data set ``name``: a universal model on every
    set, a study H8 model (``kind`` ``h8``) only on the H8 set of its density."""
    return kind != "h8" or (name.startswith("h8-") and f"-{name[3:]}" in label)


def h8_study_rows(study_dir: str | Path, data_dir: str | Path, density: str) -> dict[str, dict]:
    """The study's H8 models of one density against FCI/STO-6G: relative RMSE of E^(n)
    (``reports/study/makeup.json``'s RMSE over the RMS of the shipped FCI terms),
    ``{model: {"relative_rmse": [...], "fraction": f}}``; empty when a file is missing."""
    path = Path(study_dir) / "makeup.json"
    fci = Path(data_dir) / f"h8-{density}_mbe_fci_sto6g.json"
    if not path.is_file() or not fci.is_file():
        return {}
    reference = np.array([r["energies_eV"] for r in json.loads(fci.read_text())["clusters"]])
    rms = np.sqrt((reference**2).mean(0))
    return {
        row["model"]: {
            "relative_rmse": (np.asarray(row["mbe_rmse_eV"]) / rms).tolist(),
            "fraction": row["fraction"],
        }
        for row in json.loads(path.read_text())["rows"]
        if row.get("density") == density
    }


# ---------------------------------------------------------------- dimers and basis


def dimer_errors(curves: dict, models: dict[str, dict]) -> dict[str, dict]:
    """Per element: PBE's well (depth eV, distance Angstrom) and per model its well and
    the RMSE of its binding curve against PBE's over the shared distances."""
    out: dict[str, dict] = {}
    for element, levels in curves.items():
        ref = levels.get("reference", {})
        if not ref.get("distances_A"):
            continue
        by_d = dict(zip(ref["distances_A"], ref["binding_eV"], strict=True))
        k = int(np.argmin(ref["binding_eV"]))
        rows = {"PBE": (ref["binding_eV"][k], ref["distances_A"][k], 0.0)}
        for label, data in models.items():
            curve = data["dimers"].get(element)
            if curve is None:
                continue
            diff = [
                b - by_d[d]
                for d, b in zip(curve["distances_A"], curve["binding_eV"], strict=True)
                if d in by_d
            ]
            j = int(np.argmin(curve["binding_eV"]))
            rows[label] = (
                curve["binding_eV"][j],
                curve["distances_A"][j],
                float(np.sqrt(np.mean(np.square(diff)))),
            )
        out[element] = {"basis": ref["basis"], "distances": len(by_d), "rows": rows}
    return out


def basis_gap(reference: dict) -> dict:
    """The level-of-theory gap: per set with a larger-basis cluster, that cluster's
    ``E^(n)[check] - E^(n)[reference]`` (eV, n = 1..K); per element the RMS and largest
    difference of the dimer binding curves over the shared distances: larger basis
    against the reference (``dimers``) and GTH pseudopotential against all electrons at
    the larger basis (``pseudo_dimers``)."""
    clusters = {}
    for name, check in reference["checks"].items():
        main = reference["sets"].get(name)
        if not main:
            continue
        ref_by = {r["cluster"]: r for r in main["clusters"]}
        for row in check["clusters"]:
            if row["cluster"] in ref_by:
                clusters[name] = {
                    "cluster": row["cluster"],
                    "bases": (main["calculation"]["basis"], check["calculation"]["basis"]),
                    "difference_eV": (
                        np.array(row["energies_eV"])
                        - np.array(ref_by[row["cluster"]]["energies_eV"])
                    ).tolist(),
                }
                break
    dimers, pseudo = {}, {}
    for element, curves in reference["dimers"].items():
        gap = _curve_gap(curves.get("reference", {}), curves.get("check", {}))
        if gap:
            dimers[element] = gap
        gap = _curve_gap(curves.get("check", {}), curves.get("pseudo", {}))
        if gap:
            pseudo[element] = gap
    return {"clusters": clusters, "dimers": dimers, "pseudo_dimers": pseudo}


def curve_level(curve: dict) -> str:
    """A dimer curve's level of theory: its basis, and its pseudopotential if any."""
    return curve["basis"] + (f"+{curve['pseudo']}" if curve.get("pseudo") else "")


def _curve_gap(a: dict, b: dict) -> dict | None:
    """``b - a`` of two binding curves over their shared distances: RMS and largest (eV);
    None when they share none."""
    common = sorted(set(a.get("distances_A", [])) & set(b.get("distances_A", [])))
    if not common:
        return None
    da = dict(zip(a["distances_A"], a["binding_eV"], strict=True))
    db = dict(zip(b["distances_A"], b["binding_eV"], strict=True))
    diff = np.array([db[d] - da[d] for d in common])
    return {
        "bases": (curve_level(a), curve_level(b)),
        "distances": len(common),
        "rms_eV": float(np.sqrt((diff**2).mean())),
        "max_eV": float(np.abs(diff).max()),
    }


#: a PBE dimer is unbound from the distance on which every |binding| of its curve is
#: within this (eV); a far atom's increment must vanish within SEPARATION_TOLERANCE_EV
UNBOUND_EV = 0.025
SEPARATION_TOLERANCE_EV = 0.1


def unbound_distance(curve: dict) -> float | None:
    """The shortest distance (Angstrom) of a binding curve from which on every |binding| is
    within :data:`UNBOUND_EV`; None when there is none."""
    out = None
    pairs = sorted(zip(curve["distances_A"], curve["binding_eV"], strict=True), reverse=True)
    for d, b in pairs:
        if abs(b) > UNBOUND_EV:
            break
        out = d
    return out


def separation_failures(reference: dict, distances: dict, separated_A: float) -> dict:
    """Size consistency of a set's sub-cluster energies: for every sub-cluster with an atom
    at least ``separated_A`` from the others, ``E(S) - E(S - i) - E(i)`` must be within
    :data:`SEPARATION_TOLERANCE_EV` (an SCF stuck in an excited state breaks it by eV).
    ``distances``: per cluster index its interatomic distance matrix (Angstrom)."""
    checked, failures = 0, []
    for row in reference["clusters"]:
        energies = row["subcluster_energies_eV"]
        d = distances[row["cluster"]]
        for label, energy in energies.items():
            members = [] if label == "full" else [int(i) for i in label.split("-")]
            for i in members if len(members) > 1 else []:
                rest = [j for j in members if j != i]
                if min(d[i, j] for j in rest) >= separated_A:
                    checked += 1
                    gap = energy - energies["-".join(map(str, rest))] - energies[str(i)]
                    if abs(gap) > SEPARATION_TOLERANCE_EV:
                        failures.append((row["cluster"], label, i, gap))
    return {"separated_A": separated_A, "checked": checked, "failures": failures}


# ---------------------------------------------------------------- cost


def _element(group: str) -> str:
    return DATASETS[group].element if group in DATASETS else group.split("-")[0]


def cost_by_element(rows: list[dict]) -> dict[str, dict]:
    """CPU hours per element: ``measured_h`` (the jobs done), ``projected_h`` (every
    planned job of a type already run at that type's mean; the done jobs where the export
    has no plan), ``unmeasured_jobs`` (planned jobs of types not run yet, not in the
    projection), ``planned`` (whether the export has the plan), and the job counts."""
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(
            _element(row["set"]),
            {
                "measured_h": 0.0,
                "projected_h": 0.0,
                "jobs": 0,
                "planned_jobs": 0,
                "unmeasured_jobs": 0,
                "planned": True,
            },
        )
        planned = row.get("planned_jobs")
        entry["planned"] &= planned is not None
        entry["jobs"] += row["jobs"]
        entry["planned_jobs"] += planned or 0
        if not row["jobs"]:
            entry["unmeasured_jobs"] += planned or 0
            continue
        entry["measured_h"] += row["cpu_s_mean"] * row["jobs"] / 3600
        entry["projected_h"] += row["cpu_s_mean"] * max(planned or 0, row["jobs"]) / 3600
    return out


def basis_cost(rows: list[dict], name: str, basis: str, check_basis: str) -> dict | None:
    """What set ``name``'s planned jobs cost at its own ``basis`` (``own_h``: each job
    size's mean CPU s times its planned jobs) and would cost at ``check_basis``
    (``at_check_h``: the same jobs at the mean CPU s per size of the check cluster), in
    CPU hours; None while a size is not measured at either basis."""
    own = {r["size"]: r for r in rows if r["set"] == name and r["basis"] == basis}
    check = {r["size"]: r for r in rows if r["set"] == name and r["basis"] == check_basis}
    sizes = sorted(own)
    if not sizes or any(not own[n]["jobs"] or not check.get(n, {}).get("jobs") for n in sizes):
        return None
    planned = {n: max(own[n].get("planned_jobs") or 0, own[n]["jobs"]) for n in sizes}
    return {
        "basis": basis,
        "check_basis": check_basis,
        "jobs": sum(planned.values()),
        "own_h": sum(own[n]["cpu_s_mean"] * planned[n] for n in sizes) / 3600,
        "at_check_h": sum(check[n]["cpu_s_mean"] * planned[n] for n in sizes) / 3600,
    }
