"""The study report: the learning curves, their targets and claims, and the makeup
experiment, written as Markdown, PNG and JSON.

The parts it renders come from :mod:`.entries` (collecting the cache and the archive
into entries and a learning-curve table), :mod:`.convergence` (flat or not),
:mod:`.figures`, :mod:`.claims` (targets and claims, judged) and :mod:`.makeup_report`
(the makeup section); :func:`write_study_report` puts them together.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..expansion import BodyOrderError
from .claims import claims, settings_lines, target_lines, targets
from .convergence import FLAT_FRACTION, FLAT_WINDOW, unconverged_lines
from .entries import (
    ARCHIVE,
    archive_entries,
    collect_results,
    is_current,
    learning_curve_table,
)
from .figures import plot_learning_curves, plot_training_curves
from .makeup import makeup_results
from .makeup_report import makeup_section
from .numbers import fixed
from .spec import split_size

__all__ = ["write_study_report"]


def _split_sizes(table: dict, part: str) -> str:
    """'100 clusters', or per density where they differ, for the densities of a table."""
    sizes = {d: split_size(d, part) for d in sorted({g["density"] for g in table.values()})}
    if len(set(sizes.values())) == 1:
        return f"{next(iter(sizes.values()))} clusters"
    return ", ".join(f"h8-{d}: {n} clusters" for d, n in sizes.items())


def _figures(results: list[dict], table: dict, out_dir: Path) -> list[Path]:
    """The learning curves and the training curves (plain, makeup) as PNG; a training
    figure with no curve to draw is not written (nor left from an earlier report)."""
    curves_png = out_dir / "learning_curves.png"
    plot_learning_curves(table, curves_png)
    figures = [curves_png]
    for name, fragments in (("training_curves.png", False), ("training_curves_makeup.png", True)):
        png = out_dir / name
        if plot_training_curves(results, png, makeup=fragments):
            figures.append(png)
        else:
            png.unlink(missing_ok=True)  # not left stale from an earlier report
    return figures


def _header_lines(command: str, json_name: str, table: dict, figures: list[Path]) -> list[str]:
    return [
        "# Training study: learning curves",
        "",
        f"Made by `{command}` (numbers: `{json_name}`).",
        "",
        "Test RMSE on the shipped H8 test set of the model's own density "
        f"({_split_sizes(table, 'test')}); the validation set "
        f"({_split_sizes(table, 'validation')}) is the same for every size. Train/validation "
        "RMSE from the trainer's final evaluation (MACE's to 0.1 meV/atom, as it prints "
        "them; the test RMSE is recomputed at full precision). 'flat': the best validation loss "
        f"improved by less than {FLAT_FRACTION:.0%} over the last {FLAT_WINDOW} epochs.",
        "",
        *(f"![{png.stem.replace('_', ' ')}]({png.name})\n" for png in figures),
    ]


def _curve_table_lines(table: dict) -> list[str]:
    """The learning curves' table: one row per curve and size."""
    lines = [
        "| model | size | seeds | epochs | flat | train E | val E | test E / meV/atom "
        "| train F | val F | test F / meV/A |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, group in table.items():
        # mace prints its train/validation errors to 0.1 meV/atom
        digits = 1 if group["architecture"] == "mace" else 2
        for row in group["rows"]:
            flat = ", ".join(
                "yes" if c["flat"] else ("no" if c["improvement"] is not None else "?")
                for c in row["convergence"]
            )
            test_e = fixed(row.get("test_energy_meV_per_atom"), 2)
            if "test_energy_meV_per_atom_std" in row:
                test_e += f" +- {row['test_energy_meV_per_atom_std']:.2f}"
            test_f = fixed(row.get("test_forces_meV_per_A"), 1)
            if "test_forces_meV_per_A_std" in row:
                test_f += f" +- {row['test_forces_meV_per_A_std']:.1f}"
            lines.append(
                f"| {name} | {row['size']} | {', '.join(map(str, row['seeds']))} "
                f"| {', '.join(map(str, row['epochs']))} | {flat} "
                f"| {fixed(row.get('training_energy_meV_per_atom'), digits)} "
                f"| {fixed(row.get('validation_energy_meV_per_atom'), digits)} | {test_e} "
                f"| {fixed(row.get('training_forces_meV_per_A'), 1)} "
                f"| {fixed(row.get('validation_forces_meV_per_A'), 1)} | {test_f} |"
            )
    return lines


def _note_lines(results: list[dict], table: dict) -> list[str]:
    """What the table does not say by itself: curves of changed settings (against the
    recipe), entries left out, trainings not flat, entries known from the archive only."""
    lines: list[str] = []
    varied = {name: g["settings"] for name, g in table.items() if g["settings"]}
    if varied:
        lines += ["", "Curves trained with settings changed from the study's recipe:", ""]
        lines += [f"- {name}: {text}." for name, text in sorted(varied.items())]
        lines += [
            "",
            "Each against the recipe's model of the same size and seed (the targets and "
            "claims below judge the recipe's curves only):",
            "",
            *settings_lines(results),
        ]
    stale = sorted(
        r["key"] for r in results if not r["spec"].get("fragment_fraction") and not is_current(r)
    )
    if stale:
        lines += [
            "",
            "Left out of the curves, trained with another recipe or data set than today's "
            f"(their spec no longer gives their key): {', '.join(stale)}.",
        ]
    unflat = unconverged_lines(table)
    if unflat:
        lines += [
            "",
            "Not flat when training ended (the error at these points may still be an "
            "overestimate of what the recipe reaches; a longer schedule would tell"
            + (", and the comparison above shows where one was run" if varied else "")
            + "):",
            "",
            *unflat,
        ]
    archived = sorted(r["key"] for r in results if r.get("archived"))
    if archived:
        lines += [
            "",
            f"Entries kept in `{ARCHIVE}/` by an earlier report whose models are not in this "
            f"cache (numbers as archived; those without a training curve are not in the "
            f"training-curve figure): {', '.join(archived)}.",
        ]
    return lines


def _slope_lines(table: dict) -> list[str]:
    lines = ["", "Fitted log-log slopes (test RMSE against training-set size):", ""]
    lines += ["| model | energy slope | force slope | sizes |", "|---|---|---|---|"]
    for name, group in table.items():
        slopes = group["slopes"]
        energy = slopes.get("energy_meV_per_atom", {}).get("slope")
        forces = slopes.get("forces_meV_per_A", {}).get("slope")
        sizes = ", ".join(str(r["size"]) for r in group["rows"])
        lines.append(f"| {name} | {fixed(energy, 2)} | {fixed(forces, 2)} | {sizes} |")
    return lines


def _verdict_lines(table: dict, target_result: dict) -> list[str]:
    return [
        "",
        "## Accuracy targets",
        "",
        "Test RMSE at the largest training set of each curve (the recipe's, where a curve "
        "of changed settings is beside it); a missed target is "
        "extrapolated along the power law of the test errors (an extrapolation: the curves "
        "may bend).",
        "",
        *target_lines(target_result),
        "",
        "## Claims about this study, as measured here",
        "",
        *claims(table),
    ]


def write_study_report(
    cache: str | os.PathLike, out_dir: str | os.PathLike, *, command: str, makeup: bool = True
) -> list[Path]:
    """Write ``README.md``, ``learning_curves.json`` and the figures into ``out_dir``;
    with ``makeup``, also the body-order and makeup section of the models trained on 800
    clusters with seed 0 (:mod:`.makeup`: each model evaluated once, kept in its entry).

    Works on whatever the cache holds (a study in progress gives a partial report, and
    says so by listing what each curve has). Every cache entry is kept in
    ``out_dir/entries/`` (:func:`~.entries.archive_entries`), and archived entries the
    cache lacks (a report made on another machine) stay in the report, marked as archived.
    """
    out_dir = Path(out_dir)
    archive = out_dir / ARCHIVE
    results = collect_results(cache, archive=archive)
    if not results:
        raise BodyOrderError(f"study cache {cache} holds no finished training yet")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = learning_curve_table(results)
    target_result = targets(table)
    data = {"command": command, "curves": table, "targets": target_result}
    json_path = out_dir / "learning_curves.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    figures = _figures(results, table, out_dir)
    lines = [
        *_header_lines(command, json_path.name, table, figures),
        *_curve_table_lines(table),
        *_note_lines(results, table),
        *_slope_lines(table),
        *_verdict_lines(table, target_result),
    ]
    written = [json_path, *figures]
    if makeup:
        items = makeup_results(results, Path(cache))
        if items:
            section, paths = makeup_section(items, out_dir, command)
            lines += ["", *section]
            written += paths
    written += archive_entries(results, cache, archive)
    readme = out_dir / "README.md"
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [readme, *written]
