"""The makeup section of the study report: its table, figures and conclusions (the numbers
are :func:`~.makeup.evaluate_entry`'s)."""

from __future__ import annotations

from pathlib import Path

from ..io import write_json_atomically
from .fragments import fragment_parents, fragments_path
from .makeup import EVALUATION_VERSION, dimer_rmse, has_curves, label
from .makeup_figures import (
    plot_dimers,
    plot_distributions,
    plot_fraction_errors,
    plot_generalisation,
    plot_truncation,
)
from .numbers import fixed
from .spec import DENSITIES

__all__ = ["makeup_conclusions", "makeup_section", "summary_table"]


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


def _fragment_parents(item: dict) -> int:
    """How many training clusters the fragment file of an item's density was cut from."""
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
            f"({EVALUATION_VERSION}), left out until retrained: {', '.join(names)}.",
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
    partial = [label(i) + f" ({i['spec']['density']})" for i in items if not has_curves(i)]
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
            f"| {row['model']} | {row['epochs']} | {fixed(row['test']['energy_meV_per_atom'], 2)} "
            f"| {fixed(row['test']['forces_meV_per_A'], 1)} | {fixed(row['atom_error_meV'], 1)} "
            f"| {fixed(rmse[1], 2)} | {fixed(rmse[2], 2)} | {fixed(rmse[3], 2)} "
            f"| {fixed(row['dimer_rmse_eV'], 2)} "
            f"| {fixed(gen[f'h8-{other}']['energy_meV_per_atom'], 1)} "
            f"| {fixed(gen['h12-high']['energy_meV_per_atom'], 1)} "
            f"| {fixed(gen['h12-low']['energy_meV_per_atom'], 1)} |"
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
