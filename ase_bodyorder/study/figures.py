"""The study report's figures: learning curves, and the validation curves of the largest
training sets (plain, and of the makeup experiment)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .entries import settings_text

__all__ = ["plot_learning_curves", "plot_training_curves", "training_curve_entries"]


def plot_learning_curves(table: dict, path: Path) -> None:
    """Test RMSE against training-set size, log-log, one line per learning curve (dashed:
    low density), energy and forces side by side."""
    import matplotlib  # optional plotting backend (the plot extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    labels = {
        "energy_meV_per_atom": "test energy RMSE / meV per atom",
        "forces_meV_per_A": "test force RMSE / meV per Angstrom",
    }
    for ax, quantity in zip(axes, labels, strict=True):
        for name, group in table.items():
            rows = [r for r in group["rows"] if f"test_{quantity}" in r]
            if not rows:
                continue
            sizes = np.array([r["size"] for r in rows])
            values = np.array([r[f"test_{quantity}"] for r in rows])
            spread = np.array([r.get(f"test_{quantity}_std", 0.0) for r in rows])
            fit = group["slopes"].get(quantity)
            label = name if fit is None else f"{name} (slope {fit['slope']:.2f})"
            style = "-" if group["density"] == "high" else "--"
            ax.errorbar(sizes, values, yerr=spread, marker="o", ls=style, capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes_all = sorted({r["size"] for g in table.values() for r in g["rows"]})
        ax.set_xticks(sizes_all, [str(n) for n in sizes_all])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("training-set size / structures")
        ax.set_ylabel(labels[quantity])
        ax.grid(True, which="both", alpha=0.3)
        # under the panel: inside it hid the low-density points
        ax.legend(
            fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False
        )
    fig.suptitle("Learning curves (H8 test sets of the own density; error bars: seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


_SEED_STYLES = ("-", "--", ":", "-.")
_FRACTION_STYLES = {0.05: "--", 0.2: "-.", 0.5: ":"}
#: line style of entries trained with setting overrides (none of the seeds' styles)
_OVERRIDE_STYLE = (0, (8, 2, 2, 2, 2, 2))


def training_curve_entries(results: list[dict], *, makeup: bool = False) -> list[dict]:
    """The entries of a training-curve figure, sorted by key: those at the largest
    training set of their architecture and density that have a curve; without
    ``makeup`` the plain ones (no fragments, every seed), with it the seed-0 ones of
    every fragment fraction, f = 0 included, or none when no fragment-aware entry has
    a curve."""
    largest: dict[tuple, int] = {}
    for r in results:
        key = (r["spec"]["architecture"], r["spec"]["density"])
        largest[key] = max(largest.get(key, 0), r["spec"]["size"])
    chosen = []
    for r in sorted(results, key=lambda r: r["key"]):
        spec = r["spec"]
        fraction = spec.get("fragment_fraction") or 0.0
        if spec["size"] != largest[(spec["architecture"], spec["density"])]:
            continue
        if not r.get("training_curve"):
            continue  # archived with its numbers only
        if (makeup and spec["seed"] != 0) or (not makeup and fraction):
            continue
        chosen.append(r)
    if makeup and not any(r["spec"].get("fragment_fraction") for r in chosen):
        return []
    return chosen


def plot_training_curves(results: list[dict], path: Path, *, makeup: bool = False) -> bool:
    """Validation curves of the largest training set of each architecture and density:
    one row per density, energy and forces side by side, one colour per architecture.

    Without ``makeup`` the plain entries (no fragments), one line style per seed; with
    it, the seed-0 entries of the makeup experiment, one line style per fragment
    fraction (f = 0 solid). Returns False, writing nothing, when no entry has a curve.
    """
    chosen = training_curve_entries(results, makeup=makeup)
    if not chosen:
        return False

    import matplotlib  # optional plotting backend (the plot extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    densities = sorted({r["spec"]["density"] for r in chosen})
    architectures = sorted({r["spec"]["architecture"] for r in chosen})
    colours = {a: f"C{i}" for i, a in enumerate(architectures)}
    fig, axes = plt.subplots(len(densities), 2, figsize=(10, 3.4 * len(densities)), squeeze=False)
    keys = ("rmse_e_per_atom_meV", "rmse_f_meV_per_A")
    for r in chosen:
        spec = r["spec"]
        fraction = spec.get("fragment_fraction") or 0.0
        if makeup:
            style = "-" if not fraction else _FRACTION_STYLES.get(fraction, (0, (1, 3)))
            label = f"{spec['architecture']} f={fraction:g}"
        else:
            style = _SEED_STYLES[spec["seed"] % len(_SEED_STYLES)]
            label = f"{spec['architecture']} s{spec['seed']}"
            if spec.get("overrides"):  # another recipe: its own style, its settings named
                style = _OVERRIDE_STYLE
                label += f" ({settings_text(spec)})"
        curve = r["training_curve"]
        epochs = [e["epoch"] for e in curve]
        row = axes[densities.index(spec["density"])]
        for ax, key in zip(row, keys, strict=True):
            values = [e.get(key, math.nan) for e in curve]
            ax.plot(
                epochs, values, ls=style, color=colours[spec["architecture"]], lw=1, label=label
            )
    for density, row in zip(densities, axes, strict=True):
        for ax, ylabel in zip(
            row,
            ("validation energy RMSE / meV per atom", "validation force RMSE / meV per Angstrom"),
            strict=True,
        ):
            ax.set_title(f"h8-{density}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
    if makeup:
        title = "Training curves of the makeup experiment (H8 + fragment fraction f, seed 0)"
    else:
        title = "Training curves of the largest training sets (seeds)"
    fig.suptitle(f"{title}: validation set")
    fig.tight_layout()
    # one legend under the panels, each label once: inside them it hid the low-error curves
    legend: dict[str, object] = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    labels = sorted(legend)
    fig.legend(
        [legend[name] for name in labels],
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(architectures),
        fontsize=8,
        frameon=False,
    )
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True
