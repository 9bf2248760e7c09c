"""The universal-MLIP study's figures (issue 32), drawn from the report's numbers: the
split of the energy per order (``split.png``), the relative error per order
(``relative.png``), the truncation error against K (``truncation.png``) and the dimer
curves (``dimers.png``). matplotlib is imported inside each function. Energies in eV,
distances in Angstrom.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .universal_stats import REPRODUCES_FRACTION, curve_level, paired, relative_rmse, set_size

__all__ = ["dimer_figure", "model_colors", "relative_figure", "split_figure", "truncation_figure"]


def model_colors(labels: Iterable[str]) -> dict[str, tuple]:
    """One colour per model label (tab20), the same in every figure."""
    cmap = _pyplot().get_cmap("tab20")
    return {label: cmap(k % 20) for k, label in enumerate(labels)}


def _pyplot() -> Any:
    import matplotlib  # matplotlib: figures only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib

    return plt


def _panels(count: int, height: float = 3.8) -> tuple[Any, Any]:
    plt = _pyplot()
    fig, axes = plt.subplots(1, count, figsize=(4.4 * count + 2.2, height), squeeze=False)
    return fig, axes[0]


def _save(fig: Any, axes: Any, path: Path) -> str:
    """One legend right of the panels (the union of their labels), PNG at ``path``; its
    file name."""
    plt = _pyplot()
    labels: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    legend = fig.legend(labels.values(), labels.keys(), loc="center right", fontsize=7)
    # the panels end where the legend begins, whatever its labels' length
    fig.canvas.draw()
    legend_in = legend.get_window_extent().width / fig.dpi + 0.1
    fig.tight_layout(rect=(0, 0, 1 - legend_in / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def split_figure(
    path: Path, sets: dict[str, dict], models: dict[str, dict[str, list]], colors: dict
) -> str:
    """Per set: the mean E^(n)/N (eV/atom) over the clusters for n = 2..K, PBE (black)
    beside each model, the bars' whiskers the standard deviation over the clusters.
    ``models``: per set the rows of each model shown there."""
    fig, axes = _panels(len(sets))
    for ax, (name, reference) in zip(axes, sets.items(), strict=True):
        n_atoms = set_size(reference)
        series = {"PBE/" + reference["calculation"]["basis"]: reference["clusters"]}
        for label, rows in models[name].items():
            series[label] = paired(reference, rows)[1]
        order = len(reference["clusters"][0]["energies_eV"])
        x = np.arange(2, order + 1)
        width = 0.85 / len(series)
        for k, (label, rows) in enumerate(series.items()):
            values = np.array([r["energies_eV"] for r in rows])[:, 1:] / n_atoms
            ax.bar(
                x + (k - (len(series) - 1) / 2) * width,
                values.mean(0),
                width,
                yerr=values.std(0),
                label=label,
                color="black" if k == 0 else colors[label],
                error_kw={"lw": 0.6},
            )
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xticks(x, [f"E^({n})/N" for n in x])
        ax.set_ylabel("body-order energy per atom / eV")
        count = len(reference["clusters"])
        ax.set_title(f"{name}: {count} cluster{'' if count == 1 else 's'} of {n_atoms} atoms")
    return _save(fig, axes, path)


def relative_figure(
    path: Path, stats: dict[str, dict], study_rows: dict[str, dict[str, dict]], colors: dict
) -> str:
    """Per set: each model's RMSE of E^(n) over the RMS of PBE's E^(n) against n (log
    scale), the 'reproduces' threshold dotted; on the H8 sets the study's H8 models
    against FCI/STO-6G (grey: plain, dashed: fragment-aware)."""
    fig, axes = _panels(len(stats))
    for ax, (name, per_model) in zip(axes, stats.items(), strict=True):
        orders = np.arange(2, 5)
        for label, errors in per_model.items():
            values = [relative_rmse(errors, int(n)) for n in orders]
            ax.plot(orders, values, "o-", color=colors[label], label=label, ms=4)
        for row in study_rows.get(name, {}).values():
            plain = row["fraction"] == 0
            ax.plot(
                orders,
                np.asarray(row["relative_rmse"])[orders - 1],
                "-" if plain else "--",
                color="0.4" if plain else "0.7",
                lw=0.8,
                label="study H8, plain (vs FCI)" if plain else "study H8, fragments (vs FCI)",
            )
        ax.axhline(REPRODUCES_FRACTION, color="k", ls=":", lw=0.8, label="'reproduces' below")
        ax.set_yscale("log")
        ax.set_xticks(orders, [f"E^({n})" for n in orders])
        ax.set_ylabel("RMSE(E^(n)) / RMS(reference E^(n))")
        ax.set_title(name)
    return _save(fig, axes, path)


def truncation_figure(path: Path, stats: dict[str, dict], colors: dict) -> str:
    """Per set: the RMSE of E_{<=K} - E (each against its own total) per atom against K,
    PBE black."""
    fig, axes = _panels(len(stats))
    for ax, (name, per_model) in zip(axes, stats.items(), strict=True):
        first = next(iter(per_model.values()))
        n_atoms = first["atoms"]
        ks = np.arange(1, len(first["truncation_rmse_eV"]) + 1)
        ax.plot(
            ks,
            np.asarray(first["reference_truncation_rmse_eV"]) / n_atoms,
            "ko-",
            lw=2,
            label="PBE",
        )
        for label, errors in per_model.items():
            ax.plot(
                ks,
                np.asarray(errors["truncation_rmse_eV"]) / n_atoms,
                "o-",
                color=colors[label],
                ms=3,
                label=label,
            )
        ax.set_yscale("log")
        ax.set_xticks(ks)
        ax.set_xlabel("K (largest order kept)")
        ax.set_ylabel("RMSE of (E_<=K - E)/N / eV per atom")
        ax.set_title(name)
    return _save(fig, axes, path)


def dimer_figure(path: Path, curves: dict, models: dict[str, dict], colors: dict) -> str | None:
    """Per element: the PBE binding curve at both bases, with the GTH pseudopotential, and
    each model's."""
    elements = [e for e, c in curves.items() if c.get("reference", {}).get("distances_A")]
    if not elements:
        return None
    fig, axes = _panels(len(elements), 3.6)
    for ax, element in zip(axes, elements, strict=True):
        for level, style in (("reference", "k-o"), ("check", "k--"), ("pseudo", "k:")):
            curve = curves[element].get(level, {})
            if curve.get("distances_A"):
                note = {"check": " (check)", "pseudo": " (core check)"}.get(level, "")
                ax.plot(
                    curve["distances_A"],
                    curve["binding_eV"],
                    style,
                    ms=3,
                    label=f"PBE/{curve_level(curve)}{note}",
                )
        for label, data in models.items():
            if element in data["dimers"]:
                d = data["dimers"][element]
                ax.plot(d["distances_A"], d["binding_eV"], "-", color=colors[label], label=label)
        ax.axhline(0, color="grey", lw=0.5)
        low = min(curves[element]["reference"]["binding_eV"])
        ax.set_ylim(1.5 * low - 0.5, max(3.0, -low))
        ax.set_xlabel(f"{element}-{element} distance / Angstrom")
        ax.set_ylabel(f"E({element}2) - 2 E({element}) / eV")
        ax.set_title(f"{element}2 binding curve")
    return _save(fig, axes, path)
