"""The study report: learning curves, training curves, fitted slopes; markdown, PNG, JSON."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..expansion import BodyOrderError
from .runner import RESULT, write_json_atomically
from .spec import fit_power_law

__all__ = [
    "ARCHIVE",
    "archive_entries",
    "collect_results",
    "convergence",
    "curve_name",
    "is_current",
    "learning_curve_table",
    "targets",
    "unconverged_lines",
    "write_study_report",
]

#: a validation loss is called flat when its best value improved by less than this
#: fraction over the last ``_FLAT_WINDOW`` epochs of training
_FLAT_FRACTION = 0.05
_FLAT_WINDOW = 20


#: subdirectory of a study report holding one JSON per trained entry (its result and
#: makeup evaluation, no model): what the report keeps when the cache is gone
ARCHIVE = "entries"


def collect_results(
    cache: str | os.PathLike, *, evaluate: bool = True, archive: str | os.PathLike | None = None
) -> list[dict]:
    """Every finished entry (``result.json``) of a study cache, then every entry of
    ``archive`` (a report's ``entries/``, see :func:`archive_entries`) that the cache
    lacks, marked ``"archived": True`` (numbers, curves and evaluation as the report that
    archived them had them; no model).

    With ``evaluate``, each cache entry's test errors are computed here at full precision
    (the trainers print them rounded: mace to 0.1 meV) on the shipped test set, once,
    and kept in its ``result.json`` (``metrics["test"]``; the trainer's own numbers stay
    under ``metrics["test_trainer"]``).
    """
    cache = Path(cache)
    if not cache.is_dir():
        raise BodyOrderError(f"study cache {cache} does not exist")
    results = []
    for path in sorted(cache.glob(f"*/{RESULT}")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise BodyOrderError(f"cannot read study result {path}: {error}") from None
        _check_entry(result, path)
        if evaluate and "test_trainer" not in result["metrics"]:
            _evaluate_test_set(path.parent, result)
            write_json_atomically(path, result)
        if result.get("training_curve"):
            # entries written before the runner counted epochs by number hold the number
            # of logged points (metatrain logs every 5 epochs: 60 for 300 epochs)
            result["epochs"] = entry_convergence(result)["epochs"]
        results.append(result)
    if archive is not None and Path(archive).is_dir():
        have = {r["key"] for r in results}
        for path in sorted(Path(archive).glob("*.json")):
            try:
                result = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as error:
                raise BodyOrderError(f"cannot read archived study entry {path}: {error}") from None
            _check_entry(result, path)
            if result.get("key") in have:
                continue
            result["archived"] = True
            if result.get("training_curve"):
                result["epochs"] = entry_convergence(result)["epochs"]
            results.append(result)
    return results


def _check_entry(result, path: Path) -> None:
    """One clear error when ``path`` does not hold a study entry (a stray JSON file in
    an archive, a hand-edited result)."""
    problem = None
    if not isinstance(result, dict):
        problem = f"a JSON {type(result).__name__}, not an object"
    elif not isinstance(result.get("key"), str):
        problem = "no 'key'"
    elif not isinstance(result.get("spec"), dict) or not all(
        name in result["spec"] for name in ("architecture", "density", "size", "seed")
    ):
        problem = "no 'spec' with architecture, density, size and seed"
    elif not isinstance(result.get("metrics"), dict):
        problem = "no 'metrics'"
    if problem:
        raise BodyOrderError(f"{path} is not a study entry: {problem}")


def is_current(result: dict) -> bool:
    """Whether an entry was trained with today's recipe and data: its spec, resolved
    today, gives the key it was trained under (a changed recipe, data file or fragment
    set gives another key, and the entry's numbers describe something else)."""
    from .spec import TrainingSpec

    try:
        return TrainingSpec(**result["spec"]).key == result["key"]
    except (BodyOrderError, TypeError):
        return False  # a spec today's code does not accept: an earlier recipe's


def curve_name(spec: dict) -> str:
    """Name of the learning curve an entry belongs to: ``<architecture>-<density>``, and
    for entries trained with setting overrides a hash of them (``mace-low settings
    1a2b3c``): models trained with other settings are another curve, not more seeds."""
    name = f"{spec['architecture']}-{spec['density']}"
    overrides = spec.get("overrides") or {}
    if overrides:
        text = json.dumps(overrides, sort_keys=True, default=str)
        name += f" settings {hashlib.sha256(text.encode()).hexdigest()[:6]}"
    return name


def settings_text(spec: dict) -> str:
    """The setting overrides of an entry as ``key=value`` pairs, nested keys joined by
    dots (``num_epochs=600``, ``extra_args.patience=5``); empty without overrides."""

    def pairs(value, prefix=""):
        if isinstance(value, dict) and value:
            for key in sorted(value):
                yield from pairs(value[key], f"{prefix}{key}.")
        else:
            yield f"{prefix.rstrip('.')}={json.dumps(value, default=str)}"

    overrides = spec.get("overrides")
    return ", ".join(pairs(overrides)) if overrides else ""


def archive_entries(results: list[dict], cache: str | os.PathLike, archive: Path) -> list[Path]:
    """Keep each cache entry of ``results`` as ``archive/<key>.json``: its result (spec,
    errors, training curve) and, where computed, its makeup evaluation. Archived entries
    stay as they are. Returns the files written."""
    from .makeup import EVALUATION

    archive.mkdir(parents=True, exist_ok=True)
    written = []
    for result in results:
        if result.get("archived"):
            continue
        data = {k: v for k, v in result.items() if k != "evaluation"}
        evaluation = Path(cache) / result["key"] / EVALUATION
        if evaluation.is_file():
            data["evaluation"] = json.loads(evaluation.read_text(encoding="utf-8"))
        path = archive / f"{result['key']}.json"
        write_json_atomically(path, data)
        written.append(path)
    return written


def entry_convergence(result: dict) -> dict:
    """:func:`convergence` of an entry's training curve; an archived entry without one
    keeps the verdict it was archived with."""
    if result.get("training_curve"):
        return convergence(result["training_curve"], result.get("epochs_trained"))
    return result.get("convergence") or {
        "epochs": result.get("epochs"),
        "improvement": None,
        "flat": False,
    }


def _evaluate_test_set(directory: Path, result: dict) -> None:
    """Full-precision test errors of a trained entry (see :func:`collect_results`)."""
    import ase.io

    from ..training.reports import set_errors
    from .makeup import load_entry_model
    from .spec import split_path

    model = load_entry_model(directory, result)
    frames = ase.io.read(split_path(result["spec"]["density"], "test"), ":")
    errors = set_errors(model, frames)
    metrics = result["metrics"]
    metrics["test_trainer"] = metrics.get("test", {})
    metrics["test"] = {
        "energy_meV_per_atom": errors.energy_rmse_meV_per_atom,
        "forces_meV_per_A": errors.force_rmse_meV_per_A,
    }


def convergence(curve: list[dict], epochs: int | None = None) -> dict:
    """How flat the validation loss is at the end of a training curve.

    ``improvement``: relative drop of the best validation loss over the last
    ``_FLAT_WINDOW`` epochs; ``flat``: below ``_FLAT_FRACTION``. ``epochs``: the number
    of epochs trained where known (metatrain's final checkpoint holds it); without it,
    the last logged epoch plus the logging interval (exact for mace, which logs every
    epoch, and for metatrain runs whose length is a multiple of its interval).
    """
    points = [
        (e["epoch"], e["validation_loss"]) for e in curve if e.get("validation_loss") is not None
    ]
    if epochs is None:
        step = points[-1][0] - points[-2][0] if len(points) > 1 else 1
        epochs = points[-1][0] + step if points else 0
    before = [loss for epoch, loss in points if epoch < epochs - _FLAT_WINDOW]
    if not before:
        return {"epochs": epochs, "improvement": None, "flat": False}
    best_before, best = min(before), min(loss for _, loss in points)
    improvement = (best_before - best) / best_before if best_before > 0 else 0.0
    return {
        "epochs": epochs,
        "improvement": float(improvement),
        "flat": bool(improvement < _FLAT_FRACTION),
    }


def unconverged_lines(table: dict) -> list[str]:
    """One line per trained entry of a learning curve whose validation loss was not flat
    (or could not be judged) when its training ended, with the size of the last drop."""
    lines = []
    for name, group in table.items():
        for row in group["rows"]:
            for seed, verdict in zip(row["seeds"], row["convergence"], strict=True):
                if verdict["flat"]:
                    continue
                if verdict["improvement"] is None:
                    why = "no training curve long enough to judge"
                else:
                    why = (
                        f"best validation loss still fell {verdict['improvement']:.1%} over the "
                        f"last {_FLAT_WINDOW} of its {verdict['epochs']} epochs"
                    )
                lines.append(f"- {name}, n={row['size']}, seed {seed}: {why}.")
    return lines


def _test_points(rows: list[dict], quantity: str) -> list[tuple[int, float]]:
    """``(size, test error)`` of the rows of a learning curve that have one."""
    points = [(r["size"], r.get(f"test_{quantity}")) for r in rows]
    return [(n, v) for n, v in points if v is not None]


def _curve_results(results: list[dict]) -> list[dict]:
    """The entries of the learning curves: no fragments (those are the makeup
    experiment's), trained with today's recipe and data (:func:`is_current`)."""
    return [r for r in results if not r["spec"].get("fragment_fraction") and is_current(r)]


def learning_curve_table(results: list[dict]) -> dict:
    """Per architecture, density and settings (:func:`curve_name`): test RMSE by size
    (mean and spread over seeds) and the fitted log-log slopes of energy and force
    errors. Entries not trained with today's recipe and data (:func:`is_current`) are
    left out."""
    groups: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for result in _curve_results(results):
        spec = result["spec"]
        groups[curve_name(spec)][spec["size"]].append(result)
    table = {}
    for name, by_size in sorted(groups.items()):
        first = next(iter(by_size.values()))[0]["spec"]
        architecture, density = first["architecture"], first["density"]
        rows = []
        for size in sorted(by_size):
            entries = by_size[size]
            row = {"size": size, "seeds": [e["spec"]["seed"] for e in entries]}
            for quantity in ("energy_meV_per_atom", "forces_meV_per_A"):
                for part in ("training", "validation", "test"):
                    values = [
                        e["metrics"].get(part, {}).get(quantity)
                        for e in entries
                        if e["metrics"].get(part, {}).get(quantity) is not None
                    ]
                    if values:
                        row[f"{part}_{quantity}"] = float(np.mean(values))
                        if len(values) > 1:
                            row[f"{part}_{quantity}_std"] = float(np.std(values, ddof=1))
            row["convergence"] = [entry_convergence(e) for e in entries]
            row["epochs"] = [c["epochs"] for c in row["convergence"]]
            rows.append(row)
        fits = {}
        for quantity in ("energy_meV_per_atom", "forces_meV_per_A"):
            points = _test_points(rows, quantity)
            if len({n for n, _ in points}) >= 2:
                fits[quantity] = fit_power_law(*zip(*points, strict=True))
        table[name] = {
            "architecture": architecture,
            "density": density,
            "label": architecture + name.removeprefix(f"{architecture}-{density}"),
            "settings": settings_text(first),
            "rows": rows,
            "slopes": fits,
        }
    return table


def _plot_learning_curves(table: dict, path: Path) -> None:
    import matplotlib

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


def _plot_training_curves(results: list[dict], path: Path, *, makeup: bool = False) -> bool:
    """Validation curves of the largest training set of each architecture and density:
    one row per density, energy and forces side by side, one colour per architecture.

    Without ``makeup`` the plain entries (no fragments), one line style per seed; with
    it, the seed-0 entries of the makeup experiment, one line style per fragment
    fraction (f = 0 solid). Returns False, writing nothing, when no entry has a curve.
    """
    chosen = training_curve_entries(results, makeup=makeup)
    if not chosen:
        return False

    import matplotlib

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


def _data_scale(density: str) -> dict:
    """Spread of the test set: std of the energy per atom (meV), RMS force (meV/A)."""
    import ase.io

    from .spec import split_path

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
    current = _curve_results(results)
    recipe = {_same_model(r["spec"]): r for r in current if not r["spec"].get("overrides")}

    def describe(result: dict) -> str:
        test = result["metrics"].get("test", {})
        verdict = entry_convergence(result)
        energy, forces = (test.get(q) for q in _QUANTITIES)
        flat = "flatness unknown (too short a curve)"
        if verdict["improvement"] is not None:
            flat = (
                f"validation loss {'flat' if verdict['flat'] else 'not flat'} (its best fell "
                f"{verdict['improvement']:.1%} over the last {_FLAT_WINDOW} epochs)"
            )
        after = f" after {verdict['epochs']} epochs" if verdict["epochs"] else ""
        return f"test {_fmt(energy, 2)} meV/atom, {_fmt(forces)} meV/A{after}, {flat}"

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
            f"{arch} {e:.2f} meV/atom, {_significant(f)} meV/A (n={n})" for e, f, arch, n in entries
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
            f"- 'High-density models are more accurate than low-density ones' {verdict} "
            f"here: the best high-density model errs by {high[0]:.2f} meV/atom "
            f"({100 * rel_high:.1f}% of its data's spread), the best low-density one by "
            f"{low[0]:.2f} meV/atom ({100 * rel_low:.1f}%)."
        )
    for density, entries in sorted(best.items()):
        architectures = [arch for *_, arch, _ in entries]
        if "pet" not in architectures:
            out.append(
                f"- 'PET is the most accurate architecture': not tested at h8-{density} "
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
                f"- 'PET is the most accurate architecture' {verdict} at h8-{density}: "
                f"the most accurate is {architectures[0]}{gap}."
            )
    return out


def _seed_gap(first: dict, second: dict, name: str) -> str:
    """``; over their seeds, the gap to <name> is ...``: how far the runner-up's mean test
    error lies above the best's, in standard errors of the difference of the two means
    (empty unless both rows have several seeds). Under 2, the ranking is within the
    seeds' scatter."""
    units = {"energy_meV_per_atom": "meV/atom", "forces_meV_per_A": "meV/A"}
    bits = []
    for quantity, unit in units.items():
        a, b = first.get(f"test_{quantity}"), second.get(f"test_{quantity}")
        sa, sb = first.get(f"test_{quantity}_std"), second.get(f"test_{quantity}_std")
        if None in (a, b, sa, sb):
            return ""
        error = math.sqrt(sa**2 / len(first["seeds"]) + sb**2 / len(second["seeds"]))
        ratio = (b - a) / error if error > 0 else math.inf
        bits.append(
            f"{_significant(b - a)} {unit} ({ratio:.1f} standard errors of the difference"
            + (", within the seeds' scatter)" if ratio < 2 else ")")
        )
    return f"; over their seeds, the gap to {name} is " + " and ".join(bits)


#: the study's accuracy targets per density (test RMSE of the best architecture at the
#: largest training set): energy in meV/atom, forces in meV/A
TARGETS = {"high": (30.0, 500.0), "low": (1.0, 15.0)}
#: every architecture should be within this factor of the best at its density
WITHIN_FACTOR = 3.0
_QUANTITIES = ("energy_meV_per_atom", "forces_meV_per_A")


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
            if all(f"test_{q}" in g["rows"][-1] for q in _QUANTITIES)
        }
        if not largest:
            continue
        entry: dict = {"architectures": {}}
        for quantity, goal in zip(_QUANTITIES, goals, strict=True):
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
            for quantity, goal in zip(_QUANTITIES, goals, strict=True):
                value = row[f"test_{quantity}"]
                part = {"ratio_to_best": value / entry[quantity]["best"]}
                part["within_factor"] = part["ratio_to_best"] <= WITHIN_FACTOR
                if value > goal:
                    fit = group["slopes"].get(quantity)
                    if fit:
                        part["size_to_target_fit"] = _size_for(goal, fit["prefactor"], fit["slope"])
                    points = _test_points(group["rows"], quantity)[-2:]
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
            for quantity in _QUANTITIES:
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
    units = {"energy_meV_per_atom": "meV/atom", "forces_meV_per_A": "meV/A"}
    lines = []
    for density, entry in result.items():
        verdicts = []
        for quantity in _QUANTITIES:
            q = entry[quantity]
            verdicts.append(
                f"{quantity.split('_')[0]} <= {q['target']:g} {units[quantity]}: "
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
            info[q]["within_factor"]
            for info in entry["architectures"].values()
            for q in _QUANTITIES
        )
        lines.append(
            f"- h8-{density}, every architecture within {WITHIN_FACTOR:g}x of the best "
            f"(energy / forces): {'met' if all_ok else 'NOT met'}: {', '.join(ratios)}."
        )
        for arch, info in entry["architectures"].items():
            for quantity in _QUANTITIES:
                part = info[quantity]
                if "size_to_target_fit" not in part and "size_to_target_local" not in part:
                    continue
                goal = entry[quantity]["target"]
                text = (
                    f"- h8-{density}, {arch}: {quantity.split('_')[0]} would reach "
                    f"{goal:g} {units[quantity]} at about "
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
            for quantity in _QUANTITIES:
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


def _split_sizes(table: dict, part: str) -> str:
    """'100 clusters', or per density where they differ, for the densities of a table."""
    from .spec import split_size

    sizes = {d: split_size(d, part) for d in sorted({g["density"] for g in table.values()})}
    if len(set(sizes.values())) == 1:
        return f"{next(iter(sizes.values()))} clusters"
    return ", ".join(f"h8-{d}: {n} clusters" for d, n in sizes.items())


def _fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _significant(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits in plain notation (7.90, 0.123), whole
    numbers from ``10**(digits - 1)`` on (1072, not 1.07e+03); '-' for None."""
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    rounded = float(f"{value:.{digits}g}")  # 99.96 -> 100: the digits of the rounded value
    decimals = digits - 1 - math.floor(math.log10(abs(rounded)))
    return f"{value:.0f}" if decimals <= 0 else f"{rounded:.{decimals}f}"


def write_study_report(
    cache: str | os.PathLike, out_dir: str | os.PathLike, *, command: str, makeup: bool = True
) -> list[Path]:
    """Write ``README.md``, ``learning_curves.json`` and the figures into ``out_dir``;
    with ``makeup``, also the body-order and makeup section of the models trained on 800
    clusters with seed 0 (:mod:`.makeup`: each model evaluated once, kept in its entry).

    Works on whatever the cache holds (a study in progress gives a partial report, and
    says so by listing what each curve has). Every cache entry is kept in
    ``out_dir/entries/`` (:func:`archive_entries`), and archived entries the cache lacks
    (a report made on another machine) stay in the report, marked as archived.
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
    curves_png = out_dir / "learning_curves.png"
    training_png = out_dir / "training_curves.png"
    makeup_png = out_dir / "training_curves_makeup.png"
    _plot_learning_curves(table, curves_png)
    figures = [curves_png]
    for png, fragments in ((training_png, False), (makeup_png, True)):
        if _plot_training_curves(results, png, makeup=fragments):
            figures.append(png)
        else:
            png.unlink(missing_ok=True)  # not left stale from an earlier report

    lines = [
        "# Training study: learning curves",
        "",
        f"Made by `{command}` (numbers: `{json_path.name}`).",
        "",
        "Test RMSE on the shipped H8 test set of the model's own density "
        f"({_split_sizes(table, 'test')}); the validation set "
        f"({_split_sizes(table, 'validation')}) is the same for every size. Train/validation "
        "RMSE from the trainer's final evaluation (MACE's to 0.1 meV/atom, as it prints "
        "them; the test RMSE is recomputed at full precision). 'flat': the best validation loss "
        f"improved by less than {_FLAT_FRACTION:.0%} over the last {_FLAT_WINDOW} epochs.",
        "",
        *(f"![{png.stem.replace('_', ' ')}]({png.name})\n" for png in figures),
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
            test_e = _fmt(row.get("test_energy_meV_per_atom"), 2)
            if "test_energy_meV_per_atom_std" in row:
                test_e += f" +- {row['test_energy_meV_per_atom_std']:.2f}"
            test_f = _fmt(row.get("test_forces_meV_per_A"))
            if "test_forces_meV_per_A_std" in row:
                test_f += f" +- {row['test_forces_meV_per_A_std']:.1f}"
            lines.append(
                f"| {name} | {row['size']} | {', '.join(map(str, row['seeds']))} "
                f"| {', '.join(map(str, row['epochs']))} | {flat} "
                f"| {_fmt(row.get('training_energy_meV_per_atom'), digits)} "
                f"| {_fmt(row.get('validation_energy_meV_per_atom'), digits)} | {test_e} "
                f"| {_fmt(row.get('training_forces_meV_per_A'))} "
                f"| {_fmt(row.get('validation_forces_meV_per_A'))} | {test_f} |"
            )
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
    lines += ["", "Fitted log-log slopes (test RMSE against training-set size):", ""]
    lines += ["| model | energy slope | force slope | sizes |", "|---|---|---|---|"]
    for name, group in table.items():
        slopes = group["slopes"]
        energy = slopes.get("energy_meV_per_atom", {}).get("slope")
        forces = slopes.get("forces_meV_per_A", {}).get("slope")
        sizes = ", ".join(str(r["size"]) for r in group["rows"])
        lines.append(f"| {name} | {_fmt(energy, 2)} | {_fmt(forces, 2)} | {sizes} |")
    lines += [
        "",
        "## Accuracy targets",
        "",
        "Test RMSE at the largest training set of each curve (the recipe's, where a curve "
        "of changed settings is beside it); a missed target is "
        "extrapolated along the power law of the test errors (an extrapolation: the curves "
        "may bend).",
        "",
        *target_lines(target_result),
    ]
    lines += ["", "## Claims about this study, as measured here", "", *claims(table)]
    written = [json_path, *figures]
    if makeup:
        from .makeup import makeup_results, makeup_section

        items = makeup_results(results, Path(cache))
        if items:
            section, paths = makeup_section(items, out_dir, command)
            lines += ["", *section]
            written += paths
    written += archive_entries(results, cache, archive)
    readme = out_dir / "README.md"
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [readme, *written]
