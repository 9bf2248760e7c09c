"""The entries of a study: what a cache (and a report's archive) holds, read into one list,
and the learning-curve table made of them.

A cache entry is the directory ``<cache>/<key>`` of one :class:`~.spec.TrainingSpec`:
its model, ``result.json`` (:data:`RESULT`: spec, errors, training curve) and, once the
makeup experiment evaluated it, ``evaluation.json`` (:data:`EVALUATION`). A report keeps
every entry it saw as ``<report>/entries/<key>.json`` (:data:`ARCHIVE`), numbers only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

import ase.io
import numpy as np

from ..expansion import BodyOrderError
from ..io import write_json_atomically
from ..training.reports import set_errors
from .convergence import entry_convergence
from .spec import TrainingSpec, fit_power_law, split_path

__all__ = [
    "ARCHIVE",
    "EVALUATION",
    "RESULT",
    "archive_entries",
    "collect_results",
    "curve_name",
    "curve_results",
    "is_current",
    "learning_curve_table",
    "load_entry_model",
    "settings_text",
    "test_points",
]

#: a finished entry's result in its cache directory
RESULT = "result.json"
#: a cache entry's makeup evaluation (:func:`~.makeup.evaluate_entry`)
EVALUATION = "evaluation.json"
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


def load_entry_model(directory: Path, result: dict):
    """The trained model of a study entry (MACE or metatomic)."""
    path = Path(directory) / result["model"]
    if not path.is_file():
        raise BodyOrderError(f"study entry {directory} has no model file {path.name}")
    if path.suffix == ".model":
        from ..models.mace import MACEModel  # torch model backend: mace-torch (optional)

        return MACEModel(path)
    from ..models.metatomic import MetatomicModel  # torch model backend: metatomic (optional)

    return MetatomicModel(path)


def _evaluate_test_set(directory: Path, result: dict) -> None:
    """Full-precision test errors of a trained entry (see :func:`collect_results`)."""
    model = load_entry_model(directory, result)
    frames = ase.io.read(split_path(result["spec"]["density"], "test"), ":")
    errors = set_errors(model, frames)
    metrics = result["metrics"]
    metrics["test_trainer"] = metrics.get("test", {})
    metrics["test"] = {
        "energy_meV_per_atom": errors.energy_rmse_meV_per_atom,
        "forces_meV_per_A": errors.force_rmse_meV_per_A,
    }


def test_points(rows: list[dict], quantity: str) -> list[tuple[int, float]]:
    """``(size, test error)`` of the rows of a learning curve that have one."""
    points = [(r["size"], r.get(f"test_{quantity}")) for r in rows]
    return [(n, v) for n, v in points if v is not None]


def curve_results(results: list[dict]) -> list[dict]:
    """The entries of the learning curves: no fragments (those are the makeup
    experiment's), trained with today's recipe and data (:func:`is_current`)."""
    return [r for r in results if not r["spec"].get("fragment_fraction") and is_current(r)]


def learning_curve_table(results: list[dict]) -> dict:
    """Per architecture, density and settings (:func:`curve_name`): test RMSE by size
    (mean and spread over seeds) and the fitted log-log slopes of energy and force
    errors. Entries not trained with today's recipe and data (:func:`is_current`) are
    left out."""
    groups: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for result in curve_results(results):
        spec = result["spec"]
        groups[curve_name(spec)][spec["size"]].append(result)
    table = {}
    for name, by_size in sorted(groups.items()):
        first = next(iter(by_size.values()))[0]["spec"]
        architecture, density = first["architecture"], first["density"]
        rows = [_table_row(size, by_size[size]) for size in sorted(by_size)]
        fits = {}
        for quantity in ("energy_meV_per_atom", "forces_meV_per_A"):
            points = test_points(rows, quantity)
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


def _table_row(size: int, entries: list[dict]) -> dict:
    """One size of a learning curve: the errors' mean and spread over its seeds."""
    row: dict = {"size": size, "seeds": [e["spec"]["seed"] for e in entries]}
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
    return row
