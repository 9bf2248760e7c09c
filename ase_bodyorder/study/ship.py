"""Ship a study's trained model as a named package model, with its provenance.

The shipped file goes to ``ase_bodyorder/data/models/<name>/`` (``model.model`` for
MACE, ``model.pt`` for metatrain) with ``provenance.json``: the trainer's provenance,
the study spec and key, the training curve, the train/validation/test errors and the
convergence verdict of the validation loss (:func:`~ase_bodyorder.training.convergence`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..expansion import BodyOrderError
from ..io import atomic_path, write_json_atomically
from ..training import convergence, portable_paths
from .entries import RESULT, settings_text
from .spec import TrainingSpec

__all__ = ["MAX_MODEL_BYTES", "MODELS_DIR", "restore_shipped", "ship_entry"]

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
#: the repository stays lean: no shipped model file above this size
MAX_MODEL_BYTES = 5 * 1024 * 1024


def _description(spec: dict, result: dict) -> str:
    text = (
        f"{spec['architecture'].upper()} trained on {spec['size']} {spec['density']}-density "
        "H8 clusters"
    )
    fraction = spec.get("fragment_fraction", 0.0)
    if fraction > 0:
        count = result.get("identity", {}).get("fragments", {}).get("count", "?")
        text += f" plus {count} of their fragments (fraction {fraction:g}; sizes 1-7)"
    changed = settings_text(spec)
    recipe = f"study recipe with {changed}" if changed else "study recipe"
    return text + f", FCI/STO-6G ({recipe})"


def ship_entry(
    cache: str | os.PathLike,
    key: str,
    name: str,
    *,
    description: str | None = None,
    models_dir: str | os.PathLike = MODELS_DIR,
) -> Path:
    """Copy the trained model of study entry ``key`` to ``models_dir/name``; return it."""
    entry = Path(cache) / key
    result_path = entry / RESULT
    if not result_path.is_file():
        raise BodyOrderError(f"study entry {entry} has not finished training (no {RESULT})")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    source = entry / result["model"]
    if not source.is_file():
        raise BodyOrderError(f"study entry {entry} has no model file {source.name}")
    if source.stat().st_size > MAX_MODEL_BYTES:
        raise BodyOrderError(
            f"model {source} is {source.stat().st_size / 2**20:.1f} MiB, over the "
            f"{MAX_MODEL_BYTES / 2**20:.0f} MiB limit of shipped models"
        )
    provenance_path = source.parent / "provenance.json"
    if not provenance_path.is_file() and result.get("restored_from"):
        # restored from a shipped model (restore_shipped): its provenance is the shipped one
        provenance_path = Path(models_dir) / result["restored_from"] / "provenance.json"
    try:
        provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BodyOrderError(
            f"cannot read the trainer's provenance of study entry {entry}: {error}"
        ) from None
    spec = result["spec"]
    target_name = "model.model" if spec["architecture"] == "mace" else "model.pt"
    target_dir = Path(models_dir) / name
    tmp_dir = target_dir.with_name(target_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    shutil.copy(source, tmp_dir / target_name)
    changed = settings_text(spec)
    provenance.update(
        name=name,
        dataset=f"h8-{spec['density']}",
        recipe="ase_bodyorder.study (learning-curve recipe, largest training set"
        + (", makeup experiment" if spec.get("fragment_fraction") else "")
        + (f"; settings changed: {changed})" if changed else ")"),
        study_key=key,
        spec=spec,
        errors_meV=result["metrics"],
        convergence=convergence(result["training_curve"], result.get("epochs_trained")),
        training_curve=result["training_curve"],
        model=target_name,
        description=description or _description(spec, result),
    )
    provenance.pop("log", None)  # stays in the study cache
    provenance = portable_paths(provenance, Path(cache))
    (tmp_dir / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    if target_dir.exists():
        shutil.rmtree(target_dir)
    os.replace(tmp_dir, target_dir)
    return target_dir / target_name


def restore_shipped(
    cache: str | os.PathLike,
    *,
    keys: set[str] | None = None,
    models_dir: str | os.PathLike = MODELS_DIR,
) -> list[str]:
    """Recreate the cache entries of the shipped study models that ``cache`` lacks.

    A study cache lives outside the repository and is lost with its machine; the models
    shipped from it are not. Each shipped model whose provenance names a ``study_key``
    that today's recipe and data still give (the key is recomputed from its spec, so a
    changed recipe or data set restores nothing stale) becomes the finished entry
    ``cache/<key>``: its model file and a ``result.json`` holding the shipped spec,
    errors and training curve (``restored_from`` names the shipped model). ``keys``:
    restore only these. Returns the restored keys; an entry already in the cache is
    left alone.
    """
    restored = []
    for provenance_path in sorted(Path(models_dir).glob("*/provenance.json")):
        try:
            provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise BodyOrderError(f"cannot read {provenance_path}: {error}") from None
        key = provenance.get("study_key")
        if not key or (keys is not None and key not in keys):
            continue
        entry = Path(cache) / key
        if (entry / RESULT).is_file():
            continue
        spec = TrainingSpec(**provenance["spec"])
        if spec.key != key:
            continue  # trained with another recipe or data set than today's
        source = provenance_path.parent / provenance["model"]
        if not source.is_file():
            raise BodyOrderError(f"shipped model {source} is missing")
        curve = provenance.get("training_curve", [])
        result = {
            "key": key,
            "spec": spec.to_dict(),
            "identity": spec.identity(),
            "model": source.name,
            "metrics": provenance["errors_meV"],
            "epochs": convergence(curve, provenance.get("epochs"))["epochs"] if curve else None,
            "epochs_trained": provenance.get("epochs"),
            "training_curve": curve,
            "wall_time_s": provenance.get("wall_time_s"),
            "restored_from": str(provenance_path.parent.name),
        }
        entry.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry / source.name) as tmp:
            shutil.copy(source, tmp)
        write_json_atomically(entry / RESULT, result)
        restored.append(key)
    return restored
