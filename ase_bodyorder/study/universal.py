"""How universal MLIPs split energy into body orders, against the PBE expansion (issue 32).

Three steps, each resumable, each a ``study universal`` subcommand:

1. **reference** (:func:`run_reference`): the PBE jobs of
   :mod:`ase_bodyorder.reference.universal` through the content-keyed store (a killed run
   keeps every finished job), then :func:`export_reference`: per data set, the
   expansions of the clusters that are complete, the dimer curves, the larger-basis
   check and the measured cost per job type, as compact JSON under
   ``ase_bodyorder/data/reference/universal/`` (``complete`` says whether a set is done).
2. **models** (:func:`evaluate_model`): a model's expansion (K = 4 and the whole cluster)
   of the same clusters, its free atoms and its dimer curves, one JSON per model. The
   universal MLIPs run in ``.venv-universal``, the study's H8 models in ``.venv``.
3. **report** (:func:`write_report`): tables, figures and claims from those files only.

E^(1) is each model's own isolated-atom energy: universal MLIPs fit a per-element
energy to periodic PAW data, whose zero is not the all-electron atom's, so E^(1) is
compared as an offset per atom only; every order n >= 2 is a difference of energies and
is compared directly. Energies in eV, distances in Angstrom.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

__all__ = [
    "DATA_DIR",
    "evaluate_model",
    "export_reference",
    "read_models",
    "read_reference",
    "run_reference",
    "write_report",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "reference" / "universal"
#: a model "reproduces" an order when its RMSE is below this fraction of the RMS of the
#: PBE term over the clusters
REPRODUCES_FRACTION = 0.2
#: the study's H8 models compared with the universal ones (plain and fragment-aware)
H8_MODEL_ROWS = ("pet-high", "pet-high f=0.5", "mace-high", "soap-bpnn-high")


# ---------------------------------------------------------------- reference


def run_reference(store, *, names=None, workers: int = 1, checks: bool = True, progress=True):
    """Compute every missing PBE job (resumable; failed jobs are retried)."""
    from ..reference.executor import run_jobs
    from ..reference.universal import ordered_jobs

    return run_jobs(
        ordered_jobs(names, checks=checks),
        store,
        workers=workers,
        label="universal PBE",
        retry_failed=True,
        progress=progress,
    )


def _cost_table(store) -> list[dict]:
    """CPU time (s) per job: mean, median and count by data set/kind, basis and size."""
    groups: dict[tuple, list[float]] = {}
    for row in store.rows(status="done"):
        record = json.loads(row.data["record"])
        if record.get("method") != "molecular-dft" or "cpu_time_s" not in record:
            continue
        meta = json.loads(row.data["meta"])
        group = meta.get("dataset") or f"{meta.get('element', '?')}-{meta.get('kind', '?')}"
        key = (group, record["basis"], int(meta.get("size", len(row.numbers))))
        groups.setdefault(key, []).append(float(record["cpu_time_s"]))
    return [
        {
            "set": group,
            "basis": basis,
            "size": size,
            "jobs": len(times),
            "cpu_s_mean": float(np.mean(times)),
            "cpu_s_median": float(np.median(times)),
            "cpu_s_max": float(np.max(times)),
        }
        for (group, basis, size), times in sorted(groups.items())
    ]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1) + "\n")
    partial.replace(path)


def export_reference(store, out_dir=DATA_DIR, *, command: str = "") -> dict:
    """Write the finished PBE results as compact JSON into ``out_dir``; return a summary.

    ``{set}_pbe.json``: each complete cluster's E^(1)..E^(4), total, residual, sub-cluster
    energies by label and spin (2S) by label, the settings, ``complete`` and the missing
    clusters; ``dimers_pbe.json``: the binding curves per element at the reference and
    the check basis; ``{set}_check.json``: the first cluster at the check basis;
    ``costs_pbe.json``: CPU time per job type.
    """
    from ..reference.universal import (
        DATASETS,
        LEVEL_OF_THEORY,
        REFERENCE,
        cluster_expansion,
        dimer_curve,
        dimer_jobs,
        expansion_jobs,
        load_clusters,
    )

    out_dir = Path(out_dir)
    summary = {}
    for name, spec in DATASETS.items():
        clusters = load_clusters(name)
        for calc, suffix, chosen in (
            (spec.calculation, "pbe", clusters),
            (spec.check, "check", clusters[:1]),
        ):
            records = store.matching_records(expansion_jobs(chosen, name, calc))
            done = [cluster_expansion(records, a, name, calc) for a in chosen]
            results = [r for r in done if r is not None]
            if suffix == "check" and not results:
                continue
            missing = [int(a.info["index"]) for a, r in zip(chosen, done, strict=True) if r is None]
            _write_json(
                out_dir / f"{name}_{suffix}.json",
                {
                    "dataset": name,
                    "element": spec.element,
                    "calculation": {"method": calc.method, **calc.to_dict()},
                    "sampler": None
                    if spec.sampler is None
                    else {
                        "protocol": spec.sampler.kind,
                        **{
                            k: getattr(spec.sampler, k)
                            for k in ("element", "n_atoms", "density_per_A3", "min_distance")
                        },
                        "seed": spec.seed,
                    },
                    "complete": not missing,
                    "missing_clusters": missing,
                    "units": "eV; sub-cluster labels are 0-based atom indices of the cluster",
                    "command": command,
                    "clusters": results,
                },
            )
            summary[f"{name}_{suffix}"] = f"{len(results)}/{len(chosen)} clusters"
    curves: dict[str, dict] = {}
    for element in REFERENCE:
        for level, calc in (("reference", REFERENCE[element]), ("check", LEVEL_OF_THEORY[element])):
            jobs = dimer_jobs(element, calc)
            curve = dimer_curve(store.matching_records(jobs), element, calc)
            curve["basis"] = calc.basis
            curve["complete"] = len(curve["distances_A"]) == len(jobs) - 1
            curves.setdefault(element, {})[level] = curve
            summary[f"{element}2 {level}"] = f"{len(curve['distances_A'])}/{len(jobs) - 1}"
    _write_json(
        out_dir / "dimers_pbe.json",
        {"units": "binding energy E(X2) - 2 E(X), eV; distances Angstrom", "curves": curves},
    )
    _write_json(out_dir / "costs_pbe.json", {"units": "CPU s per job", "rows": _cost_table(store)})
    return summary


def read_reference(data_dir=DATA_DIR) -> dict:
    """The exported reference: ``sets`` (by name), ``checks``, ``dimers``, ``costs``
    (whatever files exist)."""
    data_dir = Path(data_dir)
    out: dict = {"sets": {}, "checks": {}, "dimers": {}, "costs": []}
    for path in sorted(data_dir.glob("*_pbe.json")):
        data = json.loads(path.read_text())
        if path.name == "dimers_pbe.json":
            out["dimers"] = data["curves"]
        elif path.name == "costs_pbe.json":
            out["costs"] = data["rows"]
        else:
            out["sets"][data["dataset"]] = data
    for path in sorted(data_dir.glob("*_check.json")):
        data = json.loads(path.read_text())
        out["checks"][data["dataset"]] = data
    return out


# ---------------------------------------------------------------- models


def _knows(model, element: str) -> bool:
    known = model.atomic_numbers
    return known is None or atomic_numbers[element] in known


def evaluate_model(
    label: str, model, *, names=None, count: int | None = None, max_order: int | None = None
) -> dict:
    """A model's expansions of the study's clusters, its free atoms and dimer curves.

    Per data set whose element the model knows: per cluster ``energies_eV`` (E^(1)..E^(K)),
    ``total_energy_eV`` and ``residual_eV``; per element the atom energy and the dimer
    binding curve ``E(X2) - 2 E(X)`` at :data:`~ase_bodyorder.reference.universal.
    DIMER_DISTANCES_A`. ``names``: data sets (default all); ``count``: the first clusters
    of each (default all).
    """
    from ..decompose import decompose
    from ..reference.universal import DATASETS, DIMER_DISTANCES_A, MAX_ORDER, load_clusters

    order = MAX_ORDER if max_order is None else max_order
    start = time.perf_counter()
    sets, atoms_eV, dimers = {}, {}, {}
    for name in DATASETS if names is None else names:
        element = DATASETS[name].element
        if not _knows(model, element):
            continue
        rows = []
        for atoms in load_clusters(name) if count is None else load_clusters(name, count):
            result = decompose(atoms, model, max_order=order)
            rows.append(
                {
                    "cluster": int(atoms.info["index"]),
                    "energies_eV": [float(e) for e in result.energies_eV],
                    "total_energy_eV": float(result.energy_eV),
                    "residual_eV": float(result.residual_eV),
                }
            )
        sets[name] = rows
    for element in dict.fromkeys(DATASETS[n].element for n in sets):
        atom = float(model.system(Atoms(element), forces=False).energy)
        atoms_eV[element] = atom
        distances = DIMER_DISTANCES_A[element]
        binding = [
            float(
                model.system(
                    Atoms(f"{element}2", positions=[[0, 0, 0], [0, 0, d]]), forces=False
                ).energy
            )
            - 2 * atom
            for d in distances
        ]
        dimers[element] = {"distances_A": list(distances), "binding_eV": binding}
    return {
        "model": label,
        "max_order": order,
        "sets": sets,
        "atom_eV": atoms_eV,
        "dimers": dimers,
        "wall_time_s": time.perf_counter() - start,
    }


def read_models(models_dir) -> dict[str, dict]:
    """Every model result (``*.json``) of ``models_dir`` by label."""
    out = {}
    for path in sorted(Path(models_dir).glob("*.json")):
        data = json.loads(path.read_text())
        out[data["model"]] = data
    return out


# ---------------------------------------------------------------- statistics


def _paired(reference: dict, model_rows: list[dict]):
    """Reference and model rows of the clusters both have, in the reference's order."""
    by_cluster = {r["cluster"]: r for r in model_rows}
    pairs = [
        (r, by_cluster[r["cluster"]]) for r in reference["clusters"] if r["cluster"] in by_cluster
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def order_errors(reference: dict, model_rows: list[dict]) -> dict | None:
    """Per order n >= 2: mean error and RMSE of E^(n) (eV) against the reference, and the
    RMS of the reference term; E^(1) as an offset per atom; truncation RMSE of
    E_{<=K} - E for K = 1..4 (model against its own total, and the reference's)."""
    ref_rows, mod_rows = _paired(reference, model_rows)
    if not ref_rows:
        return None
    ref = np.array([r["energies_eV"] for r in ref_rows])
    mod = np.array([r["energies_eV"] for r in mod_rows])
    n_atoms = np.array([_cluster_size(r) for r in ref_rows], dtype=float)
    error = mod - ref
    ref_total = np.array([r["total_energy_eV"] for r in ref_rows])
    mod_total = np.array([r["total_energy_eV"] for r in mod_rows])
    return {
        "clusters": len(ref_rows),
        "mean_error_eV": error.mean(0).tolist(),
        "rmse_eV": np.sqrt((error**2).mean(0)).tolist(),
        "reference_rms_eV": np.sqrt((ref**2).mean(0)).tolist(),
        "reference_mean_eV": ref.mean(0).tolist(),
        "model_mean_eV": mod.mean(0).tolist(),
        "atom_offset_eV_per_atom": float((error[:, 0] / n_atoms).mean()),
        "truncation_rmse_eV": np.sqrt(
            ((np.cumsum(mod, axis=1) - mod_total[:, None]) ** 2).mean(0)
        ).tolist(),
        "reference_truncation_rmse_eV": np.sqrt(
            ((np.cumsum(ref, axis=1) - ref_total[:, None]) ** 2).mean(0)
        ).tolist(),
        "interaction_rmse_eV": float(
            np.sqrt((((mod_total - mod[:, 0]) - (ref_total - ref[:, 0])) ** 2).mean())
        ),
    }


def _cluster_size(record: dict) -> int:
    """Atoms of a cluster from its sub-cluster labels (the largest atom index + 1)."""
    labels = [k for k in record["subcluster_energies_eV"] if k != "full"]
    return 1 + max(int(i) for label in labels for i in label.split("-"))


def _relative(errors: dict, n: int) -> float:
    """RMSE of E^(n) over the RMS of the reference term (n 1-based)."""
    rms = errors["reference_rms_eV"][n - 1]
    return errors["rmse_eV"][n - 1] / rms if rms > 0 else math.inf


def _h8_study_rows(study_dir) -> dict[str, dict]:
    """The study's H8 models' MBE errors against FCI (``reports/study/makeup.json``) and
    the RMS of the FCI terms of the same clusters (the shipped FCI MBE), relative per
    order: ``{model: {"relative_rmse": [...], "fraction": f}}``."""
    path = Path(study_dir) / "makeup.json"
    fci = (
        Path(__file__).resolve().parent.parent / "data" / "reference" / "h8-high_mbe_fci_sto6g.json"
    )
    if not path.is_file() or not fci.is_file():
        return {}
    reference = np.array([r["energies_eV"] for r in json.loads(fci.read_text())["clusters"]])
    rms = np.sqrt((reference**2).mean(0))
    rows = {}
    for row in json.loads(path.read_text())["rows"]:
        if row["model"] in H8_MODEL_ROWS:
            rmse = np.asarray(row["mbe_rmse_eV"])
            rows[row["model"]] = {
                "relative_rmse": (rmse / rms).tolist(),
                "fraction": row["fraction"],
            }
    return rows


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _set_table(name: str, reference: dict, models: dict[str, dict]) -> tuple[list[str], dict]:
    """Markdown lines of one data set: the PBE terms and each model's errors."""
    order = len(reference["clusters"][0]["energies_eV"]) if reference["clusters"] else 0
    stats = {}
    lines = [
        f"### {name}: {len(reference['clusters'])} clusters, "
        f"PBE/{reference['calculation']['basis']}"
        + ("" if reference["complete"] else f" (missing: {reference['missing_clusters']})"),
        "",
    ]
    if not order:
        return [*lines, "No complete cluster yet.", ""], stats
    ref = np.array([r["energies_eV"] for r in reference["clusters"]])
    residual = np.array([r["residual_eV"] for r in reference["clusters"]])
    header = " | ".join(f"E^({n})" for n in range(2, order + 1))
    lines += [
        f"| | E^(1) offset / atom | {header} | residual | E_<=K - E (K=1..{order}) |",
        "|---|---|" + "---|" * (order - 1) + "---|---|",
        "| PBE mean (RMS) | 0 | "
        + " | ".join(
            f"{ref[:, n].mean():+.3f} ({np.sqrt((ref[:, n] ** 2).mean()):.3f})"
            for n in range(1, order)
        )
        + f" | {residual.mean():+.3f} | "
        + ", ".join(
            f"{v:.3f}"
            for v in np.sqrt(
                (
                    (
                        np.cumsum(ref, 1)
                        - np.array([r["total_energy_eV"] for r in reference["clusters"]])[:, None]
                    )
                    ** 2
                ).mean(0)
            )
        )
        + " |",
    ]
    for label, data in models.items():
        rows = data["sets"].get(name)
        errors = None if rows is None else order_errors(reference, rows)
        if errors is None:
            continue
        stats[label] = errors
        lines.append(
            f"| {label}: mean error (RMSE) | {errors['atom_offset_eV_per_atom']:+.3f} | "
            + " | ".join(
                f"{errors['mean_error_eV'][n]:+.3f} ({errors['rmse_eV'][n]:.3f})"
                for n in range(1, order)
            )
            + f" | {np.mean([r['residual_eV'] for r in rows]):+.3f} | "
            + ", ".join(f"{v:.3f}" for v in errors["truncation_rmse_eV"])
            + " |"
        )
    lines += [
        "",
        "E^(n) in eV per cluster; mean error = model - PBE over the clusters, RMSE in "
        "brackets. E^(1) offset: (model's atom energy - PBE atom energy) per atom. "
        "Residual: E - sum_{n<=4} E^(n), the model's own. Last column: RMSE of the "
        "truncated sum against each one's own total energy, K = 1..4.",
        "",
    ]
    return lines, stats


def _claims(stats: dict, h8_rows: dict, kinds: dict[str, str]) -> list[str]:
    """Claims as measured, from the per-set statistics."""
    lines = []
    universal = [m for m, k in kinds.items() if k == "universal"]
    for name, per_model in stats.items():
        measured = [m for m in universal if m in per_model]
        if not measured:
            continue
        two = {m: _relative(per_model[m], 2) for m in measured}
        three = {m: _relative(per_model[m], 3) for m in measured}
        holds = all(v < REPRODUCES_FRACTION for v in two.values()) and all(
            v >= REPRODUCES_FRACTION for v in three.values()
        )
        detail = "; ".join(f"{m}: E^(2) {two[m]:.2f}, E^(3) {three[m]:.2f}" for m in measured)
        lines.append(
            f"- **{name}**: \"universal MLIPs reproduce DFT's 2-body terms but not its 3-body "
            f'terms" is **{"true" if holds else "false"}** (RMSE / RMS of the PBE term; '
            f"'reproduce' means below {REPRODUCES_FRACTION}: {detail})."
        )
        if name == "h8-high" and h8_rows:
            plain = [v["relative_rmse"] for v in h8_rows.values() if v["fraction"] == 0]
            aware = [v["relative_rmse"] for v in h8_rows.values() if v["fraction"] > 0]
            if plain and aware:
                for m in measured:
                    mine = np.log([two[m], three[m]])
                    d_plain = np.mean([np.abs(mine - np.log(p[1:3])).sum() for p in plain])
                    d_aware = np.mean([np.abs(mine - np.log(a[1:3])).sum() for a in aware])
                    like = "plain" if d_plain < d_aware else "fragment-aware"
                    lines.append(
                        f"  - {m} on h8-high behaves like the **{like}** H8 models: its "
                        f"relative RMSE of E^(2), E^(3) ({two[m]:.2f}, {three[m]:.2f}) against "
                        + ", ".join(
                            f"{k} ({v['relative_rmse'][1]:.2f}, {v['relative_rmse'][2]:.2f})"
                            for k, v in h8_rows.items()
                        )
                        + " (H8 models against FCI/STO-6G, reports/study/makeup.json; "
                        "mean log-distance)."
                    )
    return lines


def _figures(out_dir: Path, reference: dict, models: dict[str, dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    sets = [n for n, s in reference["sets"].items() if s["clusters"]]
    if sets:
        fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.8), squeeze=False)
        for ax, name in zip(axes[0], sets, strict=True):
            ref_set = reference["sets"][name]
            ref = np.array([r["energies_eV"] for r in ref_set["clusters"]])
            order = ref.shape[1]
            series = {"PBE": ref}
            for label, data in models.items():
                rows = data["sets"].get(name)
                if rows:
                    _, mod_rows = _paired(ref_set, rows)
                    series[label] = np.array([r["energies_eV"] for r in mod_rows])
            width = 0.8 / len(series)
            x = np.arange(2, order + 1)
            for k, (label, values) in enumerate(series.items()):
                ax.bar(
                    x + (k - (len(series) - 1) / 2) * width,
                    values[:, 1:].mean(0),
                    width,
                    yerr=values[:, 1:].std(0),
                    label=label,
                    color="black" if label == "PBE" else None,
                )
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_xticks(x, [f"E^({n})" for n in x])
            ax.set_ylabel("mean E^(n) per cluster / eV")
            ax.set_title(f"{name} ({len(ref)} clusters)")
        made.append(_save(fig, axes, out_dir / "split.png"))
    curves = reference["dimers"]
    elements = [e for e, c in curves.items() if c["reference"]["distances_A"]]
    if elements:
        fig, axes = plt.subplots(
            1, len(elements), figsize=(4.2 * len(elements), 3.6), squeeze=False
        )
        for ax, element in zip(axes[0], elements, strict=True):
            for level, style in (("reference", "k-o"), ("check", "k--")):
                curve = curves[element].get(level, {})
                if curve.get("distances_A"):
                    ax.plot(
                        curve["distances_A"],
                        curve["binding_eV"],
                        style,
                        ms=3,
                        label=f"PBE/{curve['basis']}",
                    )
            for label, data in models.items():
                if element in data["dimers"]:
                    d = data["dimers"][element]
                    ax.plot(d["distances_A"], d["binding_eV"], "-", label=label)
            ax.axhline(0, color="grey", lw=0.5)
            low = min(curves[element]["reference"]["binding_eV"])
            ax.set_ylim(1.5 * low - 0.5, max(3.0, -low))
            ax.set_xlabel(f"{element}-{element} distance / Angstrom")
            ax.set_ylabel(f"E({element}2) - 2 E({element}) / eV")
            ax.set_title(f"{element}2 binding curve")
        made.append(_save(fig, axes, out_dir / "dimers.png"))
    return made


def _save(fig, axes, path: Path) -> str:
    """Legend in the first panel, tight layout, PNG at ``path``; its file name."""
    import matplotlib.pyplot as plt

    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.name


def _dimer_table(curves: dict, models: dict[str, dict]) -> list[str]:
    """Per element and model: well depth and position, RMSE of the binding curve (eV)."""
    lines = []
    for element, levels in curves.items():
        ref = levels.get("reference", {})
        if not ref.get("distances_A"):
            continue
        by_d = dict(zip(ref["distances_A"], ref["binding_eV"], strict=True))
        k = int(np.argmin(ref["binding_eV"]))
        lines += [
            f"### {element}2 binding curve (PBE/{ref['basis']}, {len(by_d)} distances)",
            "",
            "| | well depth / eV | at / Angstrom | RMSE vs PBE / eV |",
            "|---|---|---|---|",
            f"| PBE | {ref['binding_eV'][k]:.3f} | {ref['distances_A'][k]:.2f} | 0 |",
        ]
        for label, data in models.items():
            curve = data["dimers"].get(element)
            if curve is None:
                continue
            pairs = [
                (b, by_d[d])
                for d, b in zip(curve["distances_A"], curve["binding_eV"], strict=True)
                if d in by_d
            ]
            rmse = float(np.sqrt(np.mean([(b - r) ** 2 for b, r in pairs])))
            j = int(np.argmin(curve["binding_eV"]))
            lines.append(
                f"| {label} | {curve['binding_eV'][j]:.3f} | {curve['distances_A'][j]:.2f} | "
                f"{rmse:.3f} |"
            )
        lines.append("")
    return lines


def _level_of_theory(reference: dict) -> list[str]:
    lines = []
    for name, check in reference["checks"].items():
        main = reference["sets"].get(name)
        if not main or not check["clusters"]:
            continue
        ref_by = {r["cluster"]: r for r in main["clusters"]}
        for row in check["clusters"]:
            if row["cluster"] not in ref_by:
                continue
            diff = np.array(row["energies_eV"]) - np.array(ref_by[row["cluster"]]["energies_eV"])
            lines.append(
                f"- {name} cluster {row['cluster']}: PBE/{check['calculation']['basis']} - "
                f"PBE/{main['calculation']['basis']}: "
                + ", ".join(f"E^({n + 1}) {d:+.4f}" for n, d in enumerate(diff))
                + " eV"
            )
    for element, curves in reference["dimers"].items():
        a, b = curves.get("reference", {}), curves.get("check", {})
        common = sorted(set(a.get("distances_A", [])) & set(b.get("distances_A", [])))
        if common:
            da = dict(zip(a["distances_A"], a["binding_eV"], strict=True))
            db = dict(zip(b["distances_A"], b["binding_eV"], strict=True))
            diff = np.array([db[d] - da[d] for d in common])
            lines.append(
                f"- {element}2 binding curve, {b['basis']} - {a['basis']} over {len(common)} "
                f"distances: RMS {np.sqrt((diff**2).mean()):.4f} eV, largest "
                f"{np.abs(diff).max():.4f} eV"
            )
    return lines or ["- No larger-basis result yet."]


def write_report(
    out_dir, *, data_dir=DATA_DIR, models_dir=None, study_dir="reports/study", command: str = ""
) -> Path:
    """``README.md``, ``split.png``, ``dimers.png`` and ``universal.json`` in ``out_dir``
    from the exported reference and the model results; returns the README's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models_dir = out_dir / "models" if models_dir is None else Path(models_dir)
    reference = read_reference(data_dir)
    models = read_models(models_dir)
    kinds = {label: data.get("kind", "universal") for label, data in models.items()}
    lines = [
        "# How universal MLIPs split energy into body orders (issue 32)",
        "",
        f"Made by `{command}` from the shipped PBE expansions "
        f"(`{Path(data_dir).name}/`) and the model results (`{models_dir.name}/`).",
        "",
        "E^(1) is each model's own isolated-atom energy: a universal MLIP's per-element "
        "energy is fitted to periodic PAW data whose zero is not the all-electron atom's, so "
        "E^(1) is compared as an offset per atom only; every E^(n), n >= 2, is a difference "
        "of energies and is compared directly.",
        "",
        "## Data sets",
        "",
    ]
    from ..reference.universal import DATASETS

    for name in DATASETS:
        data = reference["sets"].get(name)
        if data is None:
            lines.append(f"- {name}: no PBE result exported yet")
        else:
            state = (
                "complete"
                if data["complete"]
                else f"{len(data['missing_clusters'])} clusters missing"
            )
            calc = data["calculation"]
            lines.append(
                f"- {name}: {len(data['clusters'])} clusters ({state}); PBE/{calc['basis']}, "
                f"spin policy {calc['spin_policy']}, grid level {calc['grid_level']}"
            )
    lines += ["", "## Body orders against PBE", ""]
    stats = {}
    for name, data in reference["sets"].items():
        block, stats[name] = _set_table(name, data, models)
        lines += block
    lines += _dimer_table(reference["dimers"], models)
    made = _figures(out_dir, reference, models)
    for figure in made:
        lines += [f"![{figure}]({figure})", ""]
    lines += ["## Level of theory (larger basis)", "", *_level_of_theory(reference), ""]
    lines += ["## Cost of the reference (CPU seconds per job, one thread)", ""]
    if reference["costs"]:
        lines += [
            "| set | basis | size | jobs | mean | median | max |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['set']} | {r['basis']} | {r['size']} | {r['jobs']} | {r['cpu_s_mean']:.2f} | "
            f"{r['cpu_s_median']:.2f} | {r['cpu_s_max']:.2f} |"
            for r in reference["costs"]
        ]
        total = sum(r["cpu_s_mean"] * r["jobs"] for r in reference["costs"]) / 3600
        lines += ["", f"Total so far: {total:.2f} CPU hours.", ""]
    h8_rows = _h8_study_rows(study_dir)
    lines += [
        "## Claims as measured",
        "",
        *(
            _claims(stats, h8_rows, kinds)
            or ["- No set has both a reference and a universal model yet."]
        ),
        "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines))
    _write_json(out_dir / "universal.json", {"stats": stats, "command": command})
    return out_dir / "README.md"
