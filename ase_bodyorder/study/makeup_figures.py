"""The makeup experiment's figures: E^(n) distributions, truncation errors, errors against
the fragment fraction, H2 curves and generalisation, one colour per architecture."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .makeup import has_curves, label, reference_mbe, truncation_rmse
from .spec import ARCHITECTURES, DENSITIES

__all__ = [
    "plot_dimers",
    "plot_distributions",
    "plot_fraction_errors",
    "plot_generalisation",
    "plot_truncation",
    "style",
]


#: colour map per architecture: a model's colour is its architecture's, darker with
#: more fragments
_COLOURS = {"pet": "Blues", "soap-bpnn": "Greens", "mace": "Oranges"}


def style(item: dict) -> dict:
    """Line colour and style of a model in every makeup figure: the architecture's colour
    map, darker with the fragment fraction; dashed for the plain model (no fragments)."""
    import matplotlib  # optional plotting backend (the plot extra)

    shade = 0.45 + min(item["fraction"], 0.5)  # 0.45 (plain) to 0.95 (f = 0.5)
    colour = matplotlib.colormaps[_COLOURS.get(item["spec"]["architecture"], "Greys")](shade)
    return {"color": colour, "linestyle": "--" if item["fraction"] == 0 else "-"}


def _legend_below(ax, ncol: int = 3) -> None:
    """The legend under the axes, where it hides no data (save with bbox_inches='tight')."""
    ax.legend(fontsize=7, ncol=ncol, loc="upper center", bbox_to_anchor=(0.5, -0.16))


def _plt():
    import matplotlib  # optional plotting backend (the plot extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _held_out_panel(ax, density: str, xlabel: str, ylabel: str) -> None:
    """A log-scale panel of one density's held-out clusters, with its labels and grid."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"h8-{density} held-out clusters")
    ax.grid(True, which="both", alpha=0.3)


def _save(plt, fig, path: Path) -> None:
    """Write a figure with the legend under its axes inside (``bbox_inches="tight"``)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_distributions(items: list[dict], density: str, path: Path) -> None:
    """E^(n) per order: the FCI distribution over the held-out clusters against each model's."""
    plt = _plt()
    chosen = [i for i in items if i["spec"]["density"] == density and has_curves(i)]
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
        _, fci, total = reference_mbe(density)
        reference = truncation_rmse(fci, total)
        orders = np.arange(1, len(reference) + 1)
        ax.plot(orders[:-1], reference[:-1], "k-o", lw=2, label="FCI (exact at K=8)")
        for item in chosen:
            values = item["evaluation"]["mbe"]["truncation_rmse_eV"]
            ax.plot(orders, values, marker=".", label=label(item), **style(item))
        _held_out_panel(
            ax, density, "truncation order K", "RMSE of E_{<=K} - E_FCI / eV per cluster"
        )
        _legend_below(ax)
    _save(plt, fig, path)


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
        _held_out_panel(
            ax,
            density,
            "fragment fraction f of the training structures",
            "RMSE of E^(n) against FCI / eV per cluster",
        )
        if ax.lines:
            _legend_below(ax)
    _save(plt, fig, path)


def plot_dimers(items: list[dict], path: Path) -> None:
    """The H2 curves of the models against FCI/STO-6G, per density."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    for ax, density in zip(axes, DENSITIES, strict=True):
        chosen = [i for i in items if i["spec"]["density"] == density and has_curves(i)]
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
    _save(plt, fig, path)


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
    _save(plt, fig, path)
