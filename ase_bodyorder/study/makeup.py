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
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from ..expansion import BodyOrderError
from .fragments import FRACTIONS
from .runner import RESULT, write_json_atomically
from .spec import ARCHITECTURES, DATA, DENSITIES, TrainingSpec, check_architecture, split_path

__all__ = [
    "DIMER_DISTANCES_A",
    "dimer_reference",
    "evaluate_entry",
    "evaluate_model",
    "load_entry_model",
    "makeup_specs",
]

EVALUATION = "evaluation.json"
#: H2 distances of the dimer curves (Angstrom): 0.4 to 4.0
DIMER_DISTANCES_A = tuple(float(x) for x in np.round(np.linspace(0.4, 4.0, 37), 3))
#: version of the evaluation's content: a change re-evaluates cached entries, and
#: leaves archived entries evaluated by another version out of the report
_EVALUATION_VERSION = 1
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


def load_entry_model(directory: Path, result: dict):
    """The trained model of a study entry (MACE or metatomic)."""
    path = Path(directory) / result["model"]
    if not path.is_file():
        raise BodyOrderError(f"study entry {directory} has no model file {path.name}")
    if path.suffix == ".model":
        from ..models.mace import MACEModel

        return MACEModel(path)
    from ..models.metatomic import MetatomicModel

    return MetatomicModel(path)


@cache
def dimer_reference(distances: tuple[float, ...] = DIMER_DISTANCES_A) -> tuple[float, ...]:
    """FCI/STO-6G energies (eV) of H2 (singlet, the 'lowest' spin policy) at ``distances``
    (Angstrom), through the reference pipeline's :func:`~ase_bodyorder.reference.
    electronic.compute` (a few seconds in all)."""
    from ..reference.electronic import Calculation, compute

    calc = Calculation(method="fci", basis="sto-6g", spin_policy="lowest", forces=False)
    return tuple(
        float(compute([1, 1], [[0, 0, 0], [0, 0, d]], calc)["energy_eV"]) for d in distances
    )


def _reference_mbe(density: str) -> tuple[list, np.ndarray, np.ndarray]:
    import ase.io

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


def _truncation_rmse(energies: np.ndarray, total: np.ndarray) -> np.ndarray:
    """RMSE over clusters of E_{<=K} - E (eV) for K = 1..n, from per-order energies
    ``energies[cluster, order]`` and the full energies ``total[cluster]``."""
    return np.sqrt(((np.cumsum(energies, axis=1) - total[:, None]) ** 2).mean(0))


def _errors(model, frames) -> dict:
    from ..training.reports import set_errors

    errors = set_errors(model, frames)
    return {
        "energy_meV_per_atom": errors.energy_rmse_meV_per_atom,
        "forces_meV_per_A": errors.force_rmse_meV_per_A,
        "structures": errors.n_structures,
    }


def evaluate_model(model, density: str) -> dict:
    """Every number of the makeup experiment for one model (see the module doc)."""
    import ase.io

    from ..decompose import decompose
    from ..training.reports import atom_energy
    from ..training.shipped import H_ATOM_STO6G_EV

    clusters, reference, total = _reference_mbe(density)
    energies = np.array([decompose(a, model, max_order=len(a)).energies_eV for a in clusters])
    error = energies - reference
    from ase import Atoms

    dimer = [
        float(model.system(Atoms("H2", positions=[[0, 0, 0], [0, 0, d]]), forces=False).energy)
        for d in DIMER_DISTANCES_A
    ]
    other = "low" if density == "high" else "high"
    atom = atom_energy(model)
    return {
        "version": _EVALUATION_VERSION,
        "density": density,
        "test": _errors(model, ase.io.read(split_path(density, "test"), ":")),
        "mbe": {
            "clusters": len(clusters),
            "model_energies_eV": energies.tolist(),
            "reference_energies_eV": reference.tolist(),
            "mean_error_eV": error.mean(0).tolist(),
            "rmse_eV": np.sqrt((error**2).mean(0)).tolist(),
            "truncation_rmse_eV": _truncation_rmse(energies, total).tolist(),
            "reference_truncation_rmse_eV": _truncation_rmse(reference, total).tolist(),
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


def _model_sha256(path: Path) -> str:
    from ..training._common import sha256

    return sha256(path)


def evaluate_entry(directory: Path, result: dict | None = None) -> dict:
    """The evaluation of a study entry, computed once and kept as ``evaluation.json``
    (recomputed when the model file or the evaluation's content changed)."""
    directory = Path(directory)
    if result is None:
        result = json.loads((directory / RESULT).read_text(encoding="utf-8"))
    model_sha = _model_sha256(directory / result["model"])
    path = directory / EVALUATION
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            stored = {}
        if stored.get("model_sha256") == model_sha and stored.get("version") == (
            _EVALUATION_VERSION
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
    fraction, trained with today's recipe and data (:func:`~.report.is_current`); with
    ``recipe_only`` only those without overrides) with their evaluations, by density,
    architecture and fraction. Archived entries (no model, see
    :func:`~.report.collect_results`) bring the evaluation they were archived with, which
    may lack the per-cluster energies and the dimer curve; one made by another version
    of the evaluation than today's is returned with ``outdated_evaluation`` set to its
    version (the report lists it and leaves its numbers out)."""
    from .report import is_current

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
            if version != _EVALUATION_VERSION:
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


def _has_curves(item: dict) -> bool:
    """Whether an item's evaluation holds the per-cluster energies and the dimer curve
    (archived entries restored from a report's tables do not)."""
    ev = item["evaluation"]
    return "model_energies_eV" in ev["mbe"] and "model_eV" in ev["dimer"]


def summary_table(items: list[dict]) -> dict:
    """The numbers of the makeup figures, JSON-ready (eV, meV/atom, meV/Angstrom)."""
    rows = []
    for item in items:
        ev = item["evaluation"]
        rows.append(
            {
                "model": label(item),
                "key": item["key"],
                "architecture": item["spec"]["architecture"],
                "density": item["spec"]["density"],
                "fraction": item["fraction"],
                "epochs": item.get("epochs"),
                "test": ev["test"],
                "atom_error_meV": ev["atom"]["error_meV"],
                "mbe_mean_error_eV": ev["mbe"]["mean_error_eV"],
                "mbe_rmse_eV": ev["mbe"]["rmse_eV"],
                "truncation_rmse_eV": ev["mbe"]["truncation_rmse_eV"],
                "dimer_rmse_eV": dimer_rmse(ev["dimer"]),
                "generalisation": ev["generalisation"],
            }
        )
    return {"rows": rows}


#: colour map per architecture: a model's colour is its architecture's, darker with
#: more fragments
_COLOURS = {"pet": "Blues", "soap-bpnn": "Greens", "mace": "Oranges"}


def style(item: dict) -> dict:
    """Line colour and style of a model in every makeup figure: the architecture's colour
    map, darker with the fragment fraction; dashed for the plain model (no fragments)."""
    import matplotlib

    shade = 0.45 + min(item["fraction"], 0.5)  # 0.45 (plain) to 0.95 (f = 0.5)
    colour = matplotlib.colormaps[_COLOURS.get(item["spec"]["architecture"], "Greys")](shade)
    return {"color": colour, "linestyle": "--" if item["fraction"] == 0 else "-"}


def _legend_below(ax, ncol: int = 3) -> None:
    """The legend under the axes, where it hides no data (save with bbox_inches='tight')."""
    ax.legend(fontsize=7, ncol=ncol, loc="upper center", bbox_to_anchor=(0.5, -0.16))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_distributions(items: list[dict], density: str, path: Path) -> None:
    """E^(n) per order: the FCI distribution over the held-out clusters against each model's."""
    plt = _plt()
    chosen = [i for i in items if i["spec"]["density"] == density and _has_curves(i)]
    if not chosen:
        return
    reference = np.array(chosen[0]["evaluation"]["mbe"]["reference_energies_eV"])
    k = reference.shape[1]
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5))
    names = ["FCI"] + [label(i) for i in chosen]
    data = [reference] + [np.array(i["evaluation"]["mbe"]["model_energies_eV"]) for i in chosen]
    for n, ax in zip(range(k), axes.flat, strict=False):
        parts = ax.violinplot([d[:, n] for d in data], showmedians=True, widths=0.8)
        for body in parts["bodies"][:1]:
            body.set_facecolor("black")
        ax.axhline(np.median(reference[:, n]), color="black", lw=0.6, ls=":")
        ax.set_title(f"E^({n + 1})", fontsize=10)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("E^(n) / eV per cluster", fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(
        f"h8-{density}: E^(n) over {reference.shape[0]} held-out clusters, FCI/STO-6G "
        "(black) against each model"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_truncation(items: list[dict], path: Path) -> None:
    """RMSE of E_{<=K} against the full FCI energy, by K, per density."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, density in zip(axes, DENSITIES, strict=True):
        chosen = [i for i in items if i["spec"]["density"] == density]
        if not chosen:
            ax.set_visible(False)
            continue
        _, fci, total = _reference_mbe(density)
        reference = _truncation_rmse(fci, total)
        orders = np.arange(1, len(reference) + 1)
        ax.plot(orders[:-1], reference[:-1], "k-o", lw=2, label="FCI (exact at K=8)")
        for item in chosen:
            values = item["evaluation"]["mbe"]["truncation_rmse_eV"]
            ax.plot(orders, values, marker=".", label=label(item), **style(item))
        ax.set_yscale("log")
        ax.set_xlabel("truncation order K")
        ax.set_ylabel("RMSE of E_{<=K} - E_FCI / eV per cluster")
        ax.set_title(f"h8-{density} held-out clusters")
        ax.grid(True, which="both", alpha=0.3)
        _legend_below(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_fraction_errors(items: list[dict], path: Path) -> None:
    """RMSE of E^(2), E^(3), E^(4) (and |E^(1) error|) against the fragment fraction."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, density in zip(axes, DENSITIES, strict=True):
        chosen = [i for i in items if i["spec"]["density"] == density]
        # colour: the order; line style and marker: the architecture
        for architecture, (style, marker) in zip(
            ARCHITECTURES, ((":", "^"), ("--", "s"), ("-", "o")), strict=True
        ):
            rows = sorted(
                (i for i in chosen if i["spec"]["architecture"] == architecture),
                key=lambda i: i["fraction"],
            )
            if len(rows) < 2:
                continue
            fractions = [i["fraction"] for i in rows]
            for n in (1, 2, 3, 4):
                values = [i["evaluation"]["mbe"]["rmse_eV"][n - 1] for i in rows]
                ax.plot(
                    fractions,
                    values,
                    linestyle=style,
                    marker=marker,
                    color=f"C{n - 1}",
                    label=f"{architecture} E^({n})",
                )
        ax.set_yscale("log")
        ax.set_xlabel("fragment fraction f of the training structures")
        ax.set_ylabel("RMSE of E^(n) against FCI / eV per cluster")
        ax.set_title(f"h8-{density} held-out clusters")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            _legend_below(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_dimers(items: list[dict], path: Path) -> None:
    """The H2 curves of the models against FCI/STO-6G, per density."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    for ax, density in zip(axes, DENSITIES, strict=True):
        chosen = [i for i in items if i["spec"]["density"] == density and _has_curves(i)]
        if not chosen:
            continue
        dimer = chosen[0]["evaluation"]["dimer"]
        ax.plot(dimer["distances_A"], dimer["reference_eV"], "k-", lw=2, label="FCI/STO-6G")
        for item in chosen:
            model = item["evaluation"]["dimer"]["model_eV"]
            ax.plot(dimer["distances_A"], model, label=label(item), **style(item))
        ax.set_xlabel("H-H distance / Angstrom")
        ax.set_ylabel("E(H2) / eV")
        ax.set_title(f"models trained on h8-{density}")
        ax.set_ylim(-40, -15)
        ax.grid(True, alpha=0.3)
        _legend_below(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_generalisation(items: list[dict], path: Path) -> None:
    """Energy RMSE on the own and other density's H8 test sets and on H12, per model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 4.3))
    sets = ["own H8"] + ["other H8", "h12-high", "h12-low"]
    width = 0.8 / max(len(items), 1)
    for k, item in enumerate(items):
        ev = item["evaluation"]
        other = "low" if item["spec"]["density"] == "high" else "high"
        values = [
            ev["test"]["energy_meV_per_atom"],
            ev["generalisation"][f"h8-{other}"]["energy_meV_per_atom"],
            ev["generalisation"]["h12-high"]["energy_meV_per_atom"],
            ev["generalisation"]["h12-low"]["energy_meV_per_atom"],
        ]
        # hatched: trained on the low-density set
        ax.bar(
            np.arange(len(sets)) + k * width,
            values,
            width,
            label=label(item),
            color=style(item)["color"],
            hatch="///" if item["spec"]["density"] == "low" else None,
            edgecolor="white",
            linewidth=0,
        )
    ax.set_xticks(np.arange(len(sets)) + 0.4 - width / 2, sets)
    ax.set_yscale("log")
    ax.set_ylabel("energy RMSE / meV per atom")
    ax.set_xlabel("test set")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    _legend_below(ax, ncol=5)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _fmt(value, digits=2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _fragment_parents(item: dict) -> int:
    """How many training clusters the fragment file of an item's density was cut from."""
    from .fragments import fragment_parents, fragments_path

    return len(set(fragment_parents(fragments_path(item["spec"]["density"])).tolist()))


def _counts(items: list[dict], count) -> str:
    """'800', or '800 / 400' where the items differ, for a count of each item (items
    that do not record it, archived without it, are left out)."""
    counts = {count(i) for i in items} - {None}
    return " / ".join(str(n) for n in sorted(counts)) if counts else "?"


def makeup_section(items: list[dict], out_dir: Path, command: str) -> tuple[list[str], list[Path]]:
    """Markdown lines and written files (PNG, JSON) of the makeup part of the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outdated = [i for i in items if "outdated_evaluation" in i]
    items = [i for i in items if "outdated_evaluation" not in i]
    outdated_note = []
    if outdated:
        names = [
            f"{label(i)} ({i['spec']['density']}, version {i['outdated_evaluation']})"
            for i in outdated
        ]
        outdated_note = [
            "Archived with another version of the evaluation than today's "
            f"({_EVALUATION_VERSION}), left out until retrained: {', '.join(names)}.",
            "",
        ]
    if not items:
        return ["## Body orders against FCI, and the training set's makeup", "", *outdated_note], []
    table = summary_table(items)
    table["command"] = command
    json_path = out_dir / "makeup.json"
    write_json_atomically(json_path, table)
    paths = [json_path]
    figures = {
        "truncation.png": plot_truncation,
        "fraction_errors.png": plot_fraction_errors,
        "dimers.png": plot_dimers,
        "generalisation.png": plot_generalisation,
    }
    for name, plot in figures.items():
        plot(items, out_dir / name)
        paths.append(out_dir / name)
    for density in DENSITIES:
        path = out_dir / f"distributions_{density}.png"
        path.unlink(missing_ok=True)  # an earlier report's figure is not this one's
        plot_distributions(items, density, path)
        if path.exists():
            paths.append(path)
    lines = [
        "## Body orders against FCI, and the training set's makeup",
        "",
        f"Made by `{command}` (numbers: `{json_path.name}`). Models: the study's recipe "
        f"on the {_counts(items, lambda i: i['spec']['size'])} H8 training clusters of one "
        "density, plain (no `f`) or with fragments (FCI/STO-6G sub-clusters of "
        f"{_counts(items, _fragment_parents)} training clusters: the atom once, the "
        "rest evenly over sizes 2-7) making up the fraction `f` of the structures. MBE "
        "errors: the model's expansion of the "
        f"{_counts(items, lambda i: i['evaluation']['mbe'].get('clusters'))} held-out clusters "
        "with an FCI MBE against that MBE, eV per cluster.",
        "",
    ]
    for density in DENSITIES:
        if (out_dir / f"distributions_{density}.png").exists():
            lines += [f"![E^(n) distributions, h8-{density}](distributions_{density}.png)", ""]
    lines += [
        "![truncation error](truncation.png)",
        "",
        "![errors against fragment fraction](fraction_errors.png)",
        "",
        "![dimer curves](dimers.png)",
        "",
        "![generalisation](generalisation.png)",
        "",
    ]
    partial = [label(i) + f" ({i['spec']['density']})" for i in items if not _has_curves(i)]
    if partial:
        lines += [
            "Archived without their per-cluster energies and H2 curves (in the table and the "
            "truncation, fraction and generalisation figures; not in the distribution and "
            f"dimer figures): {', '.join(partial)}.",
            "",
        ]
    lines += outdated_note
    lines += [
        "| model | epochs | test E / meV/atom | test F / meV/A | E^(1) - atom / meV "
        "| RMSE E^(2) | RMSE E^(3) | RMSE E^(4) / eV | H2 curve RMSE / eV "
        "| other H8 E | H12 high E | H12 low E / meV/atom |",
        "|---" * 12 + "|",
    ]
    for row in table["rows"]:
        other = "low" if row["density"] == "high" else "high"
        gen = row["generalisation"]
        rmse = row["mbe_rmse_eV"]
        lines.append(
            f"| {row['model']} | {row['epochs']} | {_fmt(row['test']['energy_meV_per_atom'])} "
            f"| {_fmt(row['test']['forces_meV_per_A'], 1)} | {_fmt(row['atom_error_meV'], 1)} "
            f"| {_fmt(rmse[1])} | {_fmt(rmse[2])} | {_fmt(rmse[3])} "
            f"| {_fmt(row['dimer_rmse_eV'])} "
            f"| {_fmt(gen[f'h8-{other}']['energy_meV_per_atom'], 1)} "
            f"| {_fmt(gen['h12-high']['energy_meV_per_atom'], 1)} "
            f"| {_fmt(gen['h12-low']['energy_meV_per_atom'], 1)} |"
        )
    lines += ["", "Measured (this cache):", "", *makeup_conclusions(table["rows"])]
    return lines, paths


def makeup_conclusions(rows: list[dict]) -> list[str]:
    """One bullet per architecture and density with fragments: what adding them did to
    E^(1), E^(2), E^(3), the H2 curve and the H8 test error (plain against the largest
    fraction trained)."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["architecture"], row["density"]), []).append(row)
    for (architecture, density), group in groups.items():
        group = sorted(group, key=lambda r: r["fraction"])
        plain, most = group[0], group[-1]
        if plain["fraction"] != 0 or most is plain:
            continue
        out.append(
            f"- {architecture}, h8-{density}, f = 0 -> {most['fraction']:g}: E^(1) - atom "
            f"{plain['atom_error_meV']:+.0f} -> {most['atom_error_meV']:+.0f} meV; RMSE of "
            f"E^(2) {plain['mbe_rmse_eV'][1]:.2f} -> {most['mbe_rmse_eV'][1]:.2f} eV, E^(3) "
            f"{plain['mbe_rmse_eV'][2]:.2f} -> {most['mbe_rmse_eV'][2]:.2f} eV per cluster; "
            f"H2 curve RMSE {plain['dimer_rmse_eV']:.2f} -> {most['dimer_rmse_eV']:.2f} eV; "
            f"H8 test energy {plain['test']['energy_meV_per_atom']:.2f} -> "
            f"{most['test']['energy_meV_per_atom']:.2f} meV/atom, forces "
            f"{plain['test']['forces_meV_per_A']:.0f} -> {most['test']['forces_meV_per_A']:.0f}"
            " meV/A."
        )
    if not out:
        out.append("- no architecture has both a plain and a fragment-aware model yet.")
    return out
