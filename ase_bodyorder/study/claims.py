"""What the study set out to reach, and what it was said to show: the accuracy targets and
the claims, judged on the learning curves (:func:`~.entries.learning_curve_table`).

The targets and the claims are data (:data:`TARGETS`, :data:`WITHIN_FACTOR`,
:data:`CLAIMS`); the functions here judge a table against them and word the verdicts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import ase.io
import numpy as np

from .convergence import FLAT_WINDOW, entry_convergence
from .entries import curve_results, settings_text, test_points
from .numbers import fixed, significant
from .spec import fit_power_law, split_path

__all__ = [
    "CLAIMS",
    "QUANTITIES",
    "TARGETS",
    "UNITS",
    "WITHIN_FACTOR",
    "AccuracyTarget",
    "claims",
    "settings_lines",
    "target_lines",
    "targets",
]


class AccuracyTarget(NamedTuple):
    """The test RMSE that the best architecture of a density should reach at the largest
    training set (unpacks as ``energy, forces``)."""

    energy_meV_per_atom: float
    forces_meV_per_A: float


#: the study's accuracy targets per density
TARGETS = {
    "high": AccuracyTarget(energy_meV_per_atom=30.0, forces_meV_per_A=500.0),
    "low": AccuracyTarget(energy_meV_per_atom=1.0, forces_meV_per_A=15.0),
}
#: every architecture should be within this factor of the best at its density
WITHIN_FACTOR = 3.0
#: the claims about this study made in summaries of the literature, tested by :func:`claims`
CLAIMS = {
    "density": "High-density models are more accurate than low-density ones",
    "pet": "PET is the most accurate architecture",
}
#: the test errors judged, in the order of :class:`AccuracyTarget`'s fields
QUANTITIES = AccuracyTarget._fields
#: their units, as the report writes them
UNITS = {"energy_meV_per_atom": "meV/atom", "forces_meV_per_A": "meV/A"}


def _data_scale(density: str) -> dict:
    """Spread of the test set: std of the energy per atom (meV), RMS force (meV/A)."""
    frames = ase.io.read(split_path(density, "test"), ":")
    energies = np.array([a.get_potential_energy() / len(a) for a in frames])
    forces = np.concatenate([a.get_forces().ravel() for a in frames])
    return {
        "energy_meV_per_atom": 1000 * float(energies.std()),
        "forces_meV_per_A": 1000 * float(np.sqrt(np.mean(forces**2))),
    }


def _label(group: dict) -> str:
    """The architecture of a learning curve, with its settings hash when it has
    overrides (:func:`curve_name`)."""
    return group.get("label", group["architecture"])


def _recipe_curves(table: dict) -> list[dict]:
    """The learning curves that the targets and the claims judge: per architecture and
    density the recipe's (no setting overrides) where there is one. A curve of changed
    settings beside it is compared with the recipe at its own size and seed instead
    (:func:`settings_lines`); a study trained only with changed settings is judged on
    its own curves."""
    plain = {(g["architecture"], g["density"]) for g in table.values() if not g.get("settings")}
    return [
        g
        for g in table.values()
        if not g.get("settings") or (g["architecture"], g["density"]) not in plain
    ]


def settings_lines(results: list[dict]) -> list[str]:
    """One bullet per entry trained with changed settings (no fragments, today's data):
    its test errors and convergence beside those of the recipe's entry of the same
    architecture, density, size and seed, where the results hold one."""
    current = curve_results(results)
    recipe = {_same_model(r["spec"]): r for r in current if not r["spec"].get("overrides")}

    def describe(result: dict) -> str:
        test = result["metrics"].get("test", {})
        verdict = entry_convergence(result)
        energy, forces = (test.get(q) for q in QUANTITIES)
        flat = "flatness unknown (too short a curve)"
        if verdict["improvement"] is not None:
            flat = (
                f"validation loss {'flat' if verdict['flat'] else 'not flat'} (its best fell "
                f"{verdict['improvement']:.1%} over the last {FLAT_WINDOW} epochs)"
            )
        after = f" after {verdict['epochs']} epochs" if verdict["epochs"] else ""
        return f"test {fixed(energy, 2)} meV/atom, {fixed(forces, 1)} meV/A{after}, {flat}"

    lines = []
    for result in sorted(current, key=lambda r: r["key"]):
        spec = result["spec"]
        if not spec.get("overrides"):
            continue
        line = (
            f"- {spec['architecture']}-{spec['density']}, n={spec['size']}, seed "
            f"{spec['seed']}, {settings_text(spec)}: {describe(result)}"
        )
        base = recipe.get(_same_model(spec))
        line += f"; the recipe: {describe(base)}." if base else "; the recipe's entry is not here."
        lines.append(line)
    return lines


def _same_model(spec: dict) -> tuple:
    return spec["architecture"], spec["density"], spec["size"], spec["seed"]


def claims(table: dict) -> list[str]:
    """Bullets testing two claims made about this study in summaries of the literature:
    high-density models are more accurate than low-density ones; PET is the most
    accurate architecture. Judged on the largest training set of each curve, in absolute
    terms and relative to the spread of the test data."""
    best: dict[str, list[tuple]] = {}
    largest_rows: dict[tuple[str, str], dict] = {}
    for group in _recipe_curves(table):
        largest = group["rows"][-1] if group["rows"] else None
        if largest is None or largest.get("test_energy_meV_per_atom") is None:
            continue
        largest_rows[group["density"], _label(group)] = largest
        best.setdefault(group["density"], []).append(
            (
                largest["test_energy_meV_per_atom"],
                largest.get("test_forces_meV_per_A"),
                _label(group),
                largest["size"],
            )
        )
    out = []
    scales = {density: _data_scale(density) for density in best}
    for density, entries in sorted(best.items()):
        entries.sort(key=lambda e: e[0])
        ranking = ", ".join(
            f"{arch} {e:.2f} meV/atom, {significant(f)} meV/A (n={n})" for e, f, arch, n in entries
        )
        scale = scales[density]
        out.append(
            f"- h8-{density}: test errors at the largest training set, best first: {ranking}; "
            f"the test data's spread is {scale['energy_meV_per_atom']:.0f} meV/atom "
            f"(std of energy per atom) and {scale['forces_meV_per_A']:.0f} meV/A (RMS force)."
        )
    if {"high", "low"} <= set(best):
        high, low = best["high"][0], best["low"][0]
        rel_high = high[0] / scales["high"]["energy_meV_per_atom"]
        rel_low = low[0] / scales["low"]["energy_meV_per_atom"]
        verdict = "holds" if high[0] < low[0] and rel_high < rel_low else "does not hold"
        out.append(
            f"- '{CLAIMS['density']}' {verdict} "
            f"here: the best high-density model errs by {high[0]:.2f} meV/atom "
            f"({100 * rel_high:.1f}% of its data's spread), the best low-density one by "
            f"{low[0]:.2f} meV/atom ({100 * rel_low:.1f}%)."
        )
    for density, entries in sorted(best.items()):
        architectures = [arch for *_, arch, _ in entries]
        if "pet" not in architectures:
            out.append(
                f"- '{CLAIMS['pet']}': not tested at h8-{density} "
                f"(no converged PET in this cache; measured: {', '.join(architectures)})."
            )
        else:
            verdict = "holds" if architectures[0] == "pet" else "does not hold"
            gap = ""
            if len(architectures) > 1:
                gap = _seed_gap(
                    largest_rows[density, architectures[0]],
                    largest_rows[density, architectures[1]],
                    architectures[1],
                )
            out.append(
                f"- '{CLAIMS['pet']}' {verdict} at h8-{density}: "
                f"the most accurate is {architectures[0]}{gap}."
            )
    return out


def _seed_gap(first: dict, second: dict, name: str) -> str:
    """``; over their seeds, the gap to <name> is ...``: how far the runner-up's mean test
    error lies above the best's, in standard errors of the difference of the two means
    (empty unless both rows have several seeds). Under 2, the ranking is within the
    seeds' scatter."""
    bits = []
    for quantity, unit in UNITS.items():
        a, b = first.get(f"test_{quantity}"), second.get(f"test_{quantity}")
        sa, sb = first.get(f"test_{quantity}_std"), second.get(f"test_{quantity}_std")
        if None in (a, b, sa, sb):
            return ""
        error = math.sqrt(sa**2 / len(first["seeds"]) + sb**2 / len(second["seeds"]))
        ratio = (b - a) / error if error > 0 else math.inf
        bits.append(
            f"{significant(b - a)} {unit} ({ratio:.1f} standard errors of the difference"
            + (", within the seeds' scatter)" if ratio < 2 else ")")
        )
    return f"; over their seeds, the gap to {name} is " + " and ".join(bits)


def _size_for(target: float, prefactor: float, slope: float) -> float | None:
    """Training-set size at which ``prefactor * n**slope`` reaches ``target``; None
    when the curve does not fall or would need more than 1e12 structures."""
    if not slope < 0:
        return None
    log_size = math.log(target / prefactor) / slope
    return float(math.exp(log_size)) if log_size <= math.log(1e12) else None


def targets(table: dict) -> dict:
    """The accuracy targets, judged on the largest training set of each curve.

    Per density: the best test RMSE of each quantity and whether it meets
    :data:`TARGETS`; each architecture's ratio to the best (target: within
    :data:`WITHIN_FACTOR`); for a missed target, the training-set size at which each
    curve would reach it, extrapolated from the power law fitted over all its sizes and
    from the two largest sizes alone (the local slope)."""
    out: dict[str, dict] = {}
    for density, goals in TARGETS.items():
        groups = [g for g in _recipe_curves(table) if g["density"] == density and g["rows"]]
        largest = {
            _label(g): g["rows"][-1]
            for g in groups
            if all(f"test_{q}" in g["rows"][-1] for q in QUANTITIES)
        }
        if not largest:
            continue
        entry: dict = {"architectures": {}}
        for quantity, goal in zip(QUANTITIES, goals, strict=True):
            best_arch = min(largest, key=lambda a: largest[a][f"test_{quantity}"])
            best = largest[best_arch][f"test_{quantity}"]
            entry[quantity] = {
                "target": goal,
                "best": best,
                "best_architecture": best_arch,
                "size": largest[best_arch]["size"],
                "met": best <= goal,
            }
        for group in groups:
            arch = _label(group)
            if arch not in largest:
                continue
            row = largest[arch]
            info: dict = {"size": row["size"]}
            for quantity, goal in zip(QUANTITIES, goals, strict=True):
                value = row[f"test_{quantity}"]
                part = {"ratio_to_best": value / entry[quantity]["best"]}
                part["within_factor"] = part["ratio_to_best"] <= WITHIN_FACTOR
                if value > goal:
                    fit = group["slopes"].get(quantity)
                    if fit:
                        part["size_to_target_fit"] = _size_for(goal, fit["prefactor"], fit["slope"])
                    points = test_points(group["rows"], quantity)[-2:]
                    if len(points) == 2:
                        local = fit_power_law(*zip(*points, strict=True))
                        part["local_slope"] = local["slope"]
                        part["size_to_target_local"] = _size_for(
                            goal, local["prefactor"], local["slope"]
                        )
                info[quantity] = part
            entry["architectures"][arch] = info
        by_label = {_label(g): g for g in groups}
        for arch, info in entry["architectures"].items():
            for quantity in QUANTITIES:
                part = info[quantity]
                if part["within_factor"]:
                    continue
                own = by_label[arch]["slopes"].get(quantity)
                best = by_label[entry[quantity]["best_architecture"]]["slopes"].get(quantity)
                if own and best:
                    part["size_to_within_factor"] = _size_to_ratio(
                        part["ratio_to_best"], info["size"], own["slope"] - best["slope"]
                    )
        out[density] = entry
    return out


def _size_to_ratio(ratio: float, size: int, gap: float) -> float | None:
    """Training-set size at which an error ``ratio`` times the best one at ``size`` falls
    to :data:`WITHIN_FACTOR` times it, when both curves keep their fitted log-log slopes
    (``gap``: own slope minus the best's); None when the gap does not close (or would
    need more than 1e12 structures)."""
    # the ratio as a power law of the size: ratio * (n / size)**gap
    return _size_for(WITHIN_FACTOR, ratio * size ** (-gap), gap)


def _size_text(size: float | None) -> str:
    return "beyond 10^12 (the curve falls too slowly)" if size is None else f"{size:,.0f}"


def target_lines(result: dict) -> list[str]:
    """Markdown bullets of :func:`targets`."""
    lines = []
    for density, entry in result.items():
        verdicts = []
        for quantity in QUANTITIES:
            q = entry[quantity]
            verdicts.append(
                f"{quantity.split('_')[0]} <= {q['target']:g} {UNITS[quantity]}: "
                f"{'met' if q['met'] else 'NOT met'} (best {q['best']:.2f}, "
                f"{q['best_architecture']}, n={q['size']})"
            )
        lines.append(f"- h8-{density}: " + "; ".join(verdicts) + ".")
        ratios = []
        for arch, info in entry["architectures"].items():
            e, f = info["energy_meV_per_atom"], info["forces_meV_per_A"]
            ok = e["within_factor"] and f["within_factor"]
            ratios.append(
                f"{arch} {e['ratio_to_best']:.1f}x / {f['ratio_to_best']:.1f}x"
                + ("" if ok else " (outside)")
            )
        all_ok = all(
            info[q]["within_factor"] for info in entry["architectures"].values() for q in QUANTITIES
        )
        lines.append(
            f"- h8-{density}, every architecture within {WITHIN_FACTOR:g}x of the best "
            f"(energy / forces): {'met' if all_ok else 'NOT met'}: {', '.join(ratios)}."
        )
        for arch, info in entry["architectures"].items():
            for quantity in QUANTITIES:
                part = info[quantity]
                if "size_to_target_fit" not in part and "size_to_target_local" not in part:
                    continue
                goal = entry[quantity]["target"]
                text = (
                    f"- h8-{density}, {arch}: {quantity.split('_')[0]} would reach "
                    f"{goal:g} {UNITS[quantity]} at about "
                )
                bits = []
                if "size_to_target_fit" in part:
                    bits.append(
                        f"{_size_text(part['size_to_target_fit'])} clusters (fit over all sizes)"
                    )
                if "size_to_target_local" in part:
                    bits.append(
                        f"{_size_text(part['size_to_target_local'])} (slope "
                        f"{part['local_slope']:.2f} of the two largest sizes)"
                    )
                lines.append(text + ", ".join(bits) + f"; it has {info['size']}.")
        for arch, info in entry["architectures"].items():
            for quantity in QUANTITIES:
                part = info[quantity]
                if "size_to_within_factor" not in part:
                    continue
                what = f"its {quantity.split('_')[0]} error"
                best = entry[quantity]["best_architecture"]
                size = part["size_to_within_factor"]
                when = (
                    f"would come within {WITHIN_FACTOR:g}x of {best}'s at about {size:,.0f} "
                    "clusters, if both curves keep their fitted slopes"
                    if size is not None
                    else f"would not come within {WITHIN_FACTOR:g}x of {best}'s below 10^12 "
                    "clusters along the fitted slopes"
                )
                lines.append(
                    f"- h8-{density}, {arch}: {what} {when}; it is "
                    f"{part['ratio_to_best']:.1f}x at {info['size']}."
                )
    return lines
