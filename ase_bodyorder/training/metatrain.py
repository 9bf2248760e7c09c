"""Train a small metatrain model (PET or SOAP-BPNN) from typed settings, with provenance.

The recipe writes ``options.yaml``, runs ``mtt train options.yaml -o model.pt`` in a
subprocess on one CPU thread (its output streamed to ``mtt_train.log``) and writes
``provenance.json`` next to the model: hashes of the data, the settings, the options,
package versions, wall time and the final error metrics parsed from the log.

``mtt train -o model.pt`` already exports the best-validation model as a metatomic
``.pt`` file (and its checkpoint as ``model.ckpt``): no separate ``mtt export`` is
needed. Models with TorchScript extensions (SOAP-BPNN: sphericart) also get an
``extensions/`` folder next to the model; load them with
``MetatomicModel(path, extensions_directory=path.parent / "extensions")``.

Data: extxyz files with energies (eV) under the key ``energy`` and forces
(eV/Angstrom) under ``forces`` (in ``atoms.info``/``atoms.arrays`` or an ASE
single-point calculator), lengths in Angstrom.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import ase.io
import torch

try:  # PyYAML: metatrain needs it; without it the options are written as JSON
    import yaml
except ImportError:
    yaml = None

from ..expansion import BodyOrderError
from ..io import sha256_file
from ..models.metatomic_loading import import_metatomic
from ._common import package_versions, run_logged, total_wall_time
from .metatrain_settings import MetatrainSettings

__all__ = ["MetatrainSettings", "train_metatrain", "trained_epochs", "training_curve"]

_MODEL_NAME = "model.pt"
_LOG_NAME = "mtt_train.log"


def _count_structures(path: Path) -> int:
    try:
        frames = ase.io.read(path, index=":")
    except Exception as exc:
        raise BodyOrderError(f"cannot read data file {path}: {exc}") from exc
    if not frames:
        raise BodyOrderError(f"data file {path} holds no structures")
    for index, atoms in enumerate(frames):
        results = atoms.calc.results if atoms.calc is not None else {}
        if "energy" not in atoms.info and "energy" not in results:
            raise BodyOrderError(f"structure {index} of {path} has no 'energy'")
    return len(frames)


def _versions() -> dict:
    return package_versions(
        (
            "metatrain",
            "metatomic-torch",
            "metatensor-torch",
            "torch",
            "sphericart-torch",
            "torch-spex",
            "vesin",
            "ase",
            "numpy",
        )
    )


#: epochs between metatrain's resumable checkpoints (its defaults, 100 for PET and 25
#: for SOAP-BPNN, lost up to 40 minutes of a killed one-core PET training)
CHECKPOINT_INTERVAL_EPOCHS = 10

_EPOCH_CHECKPOINT = re.compile(r"model_(\d+)\.ckpt")


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The checkpoint of the latest epoch that metatrain wrote under
    ``output_dir/outputs/<date>/<time>/model_<epoch>.ckpt``, or None.

    By epoch, not by file time as ``mtt train --restart auto`` picks: that would take the
    ``scaler.ckpt`` or ``composition_model.ckpt`` written before epoch 0 ends, which are
    not checkpoints to restart from.
    """
    found = []
    for path in Path(output_dir, "outputs").glob("*/*/model_*.ckpt"):
        match = _EPOCH_CHECKPOINT.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path.stat().st_mtime, path))
    return max(found)[2] if found else None


_EVALUATING = re.compile(r"Evaluating (training|validation|test) dataset")
_METRIC = re.compile(r"^\s*(?P<name>[^|:]+?):\s*(?P<value>[-+0-9.eE]+|nan|inf)\s*(?P<unit>\S*)\s*$")


def trained_epochs(checkpoint: str | os.PathLike) -> dict:
    """``{"epochs": epochs trained, "best_epoch": 0-based epoch of the exported model}``
    from metatrain's final checkpoint (which holds the last and best epoch, 0-based);
    ``{}`` when it cannot be read. The training curve cannot say this: metatrain logs
    every ``log_interval`` epochs, and a restarted run logs its first epoch too."""
    # outside the try: an import failing half-way (torch's TorchScript deprecation
    # warning under ``-W error``) left metatensor half-imported, and the next import of
    # metatensor.torch in the process failed on it; import_metatomic quiets that warning
    import_metatomic()  # registers the classes the checkpoint holds
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        last, best = state["epoch"], state.get("best_epoch")
    except Exception:  # an older or foreign checkpoint: the caller falls back to the curve
        return {}
    if not isinstance(last, int):
        return {}
    return {"epochs": last + 1, "best_epoch": best if isinstance(best, int) else None}


def _final_metrics(log: str) -> dict:
    """``{"training"|"validation"|"test": {metric: {"value", "unit"}}}`` from the log.

    metatrain's final evaluation logs ``Evaluating <set> dataset`` and then one line
    ``energy RMSE (per atom): 12.3 meV | energy MAE (per atom): ...``.
    """
    metrics: dict = {}
    current = None
    for line in log.splitlines():
        match = _EVALUATING.search(line)
        if match:
            current = match.group(1)
            continue
        if current is None or "RMSE" not in line:
            continue
        text = line.split("] - ", 1)[-1]
        entry = {}
        for part in text.split("|"):
            found = _METRIC.match(part)
            if found:
                entry[found.group("name").strip()] = {
                    "value": float(found.group("value")),
                    "unit": found.group("unit"),
                }
        if entry:
            metrics[current] = entry
            current = None
    return metrics


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def training_curve(output_dir: str | os.PathLike) -> list[dict]:
    """Train and validation loss per epoch from metatrain's ``outputs/*/*/train.csv``.

    Each entry: ``epoch``, ``train_loss``, ``validation_loss`` and the validation
    ``rmse_e_per_atom_meV``/``rmse_f_meV_per_A`` where logged. A restarted run writes a
    new CSV; later files win for the epochs they repeat.
    """
    by_epoch: dict[int, dict] = {}
    files = sorted(Path(output_dir, "outputs").glob("*/*/train.csv"), key=lambda p: p.parent)
    for path in files:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
        if len(rows) < 3:
            continue
        header, units = rows[0], rows[1]
        for row in rows[2:]:
            if len(row) != len(header):  # cut off by a killed run
                continue
            values = dict(zip(header, row, strict=True))
            epoch = _number(values.get("Epoch", ""))
            if epoch is None:
                continue
            entry = {"epoch": int(epoch), "train_loss": None, "validation_loss": None}
            for name, unit, text in zip(header, units, row, strict=True):
                value = _number(text)
                lowered = name.lower()
                if value is None or not lowered.startswith("validation"):
                    if value is not None and lowered == "training loss":
                        entry["train_loss"] = value
                    continue
                if "loss" in lowered:
                    entry["validation_loss"] = value
                elif "energy rmse (per atom)" in lowered:
                    scale = 1.0 if unit.startswith("meV") else 1e3
                    entry["rmse_e_per_atom_meV"] = value * scale
                elif "gradients rmse" in lowered or "forces rmse" in lowered:
                    scale = 1.0 if unit.startswith("meV") else 1e3
                    entry["rmse_f_meV_per_A"] = value * scale
            by_epoch[entry["epoch"]] = entry
    return [by_epoch[e] for e in sorted(by_epoch)]


def _write_options(path: Path, options: dict) -> None:
    if yaml is None:  # JSON is YAML too
        path.write_text(json.dumps(options, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(options, sort_keys=False))


def train_metatrain(
    train_xyz: str | os.PathLike,
    val_xyz: str | os.PathLike | None,
    test_xyz: str | os.PathLike | None,
    settings: MetatrainSettings,
    output_dir: str | os.PathLike,
    *,
    timeout: float | None = None,
    resume: bool = False,
    progress=None,
) -> Path:
    """Train a metatrain model on extxyz files and return the exported model (``.pt``).

    ``resume``: continue from the checkpoint of the latest epoch under
    ``output_dir/outputs`` when there is one (:func:`latest_checkpoint`, written every
    :data:`CHECKPOINT_INTERVAL_EPOCHS`; the log is appended to). ``progress``: a
    text stream for a tqdm bar with the epoch reached and the time left.

    Without ``val_xyz`` metatrain holds out ``settings.validation_fraction`` of the
    training set; without ``test_xyz`` there is no test set. ``output_dir`` receives
    ``options.yaml``, ``mtt_train.log``, ``model.pt`` (exported, best validation
    epoch), ``model.ckpt``, ``extensions/`` (if the model needs any), metatrain's
    ``outputs/`` folder and ``provenance.json``.
    """
    if not isinstance(settings, MetatrainSettings):
        raise BodyOrderError(f"settings must be MetatrainSettings, got {type(settings).__name__}")
    if importlib.util.find_spec("metatrain") is None:
        raise ImportError(
            "training metatrain models needs metatrain: pip install 'ase-bodyorder[metatomic]'"
        )
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)

    sources = {"train": train_xyz, "validation": val_xyz, "test": test_xyz}
    paths: dict[str, Path | None] = {}
    data = {}
    for role, source in sources.items():
        if source is None:
            paths[role] = None
            continue
        path = Path(source).resolve()
        if not path.is_file():
            raise BodyOrderError(f"{role} data file {path} does not exist")
        data[role] = {
            "path": str(path),
            "sha256": sha256_file(path),
            "structures": _count_structures(path),
        }
        paths[role] = path
    if paths["train"] is None:
        raise BodyOrderError("train_metatrain needs a training set")

    options = settings.options(paths["train"], paths["validation"], paths["test"])
    # how often metatrain writes a checkpoint to resume from: not part of the settings
    # (nor of a study's cache key), since the trained numbers do not depend on it
    options["architecture"]["training"].setdefault(
        "checkpoint_interval", CHECKPOINT_INTERVAL_EPOCHS
    )
    options_path = output_dir / "options.yaml"
    _write_options(options_path, options)

    command = [sys.executable, "-m", "metatrain", "train", options_path.name, "-o", _MODEL_NAME]
    checkpoint = latest_checkpoint(output_dir) if resume else None
    resuming = checkpoint is not None
    if checkpoint is not None:
        command += ["--restart", str(checkpoint.relative_to(output_dir))]
    log_path = output_dir / _LOG_NAME
    model_path = output_dir / _MODEL_NAME
    if model_path.exists():
        model_path.unlink()
    returncode, wall_time, log_text, _ = run_logged(
        command,
        cwd=output_dir,
        log_path=log_path,
        timeout=timeout,
        what="mtt train",
        append=resuming,
        progress=progress,
        max_epochs=settings.num_epochs,
    )
    if returncode != 0 or not model_path.is_file():
        lines = [line for line in log_text.splitlines() if "warn" not in line.lower()]
        tail = "\n".join(lines[-20:])
        raise BodyOrderError(
            f"mtt train failed (exit status {returncode}); log {log_path}:\n{tail}"
        )

    # the resumable checkpoints served only an interrupted run (PET: 24 MB each)
    for path in (output_dir / "outputs").glob("*/*/*.ckpt"):
        path.unlink()
    extensions = output_dir / "extensions"
    provenance = {
        "model": model_path.name,
        "model_sha256": sha256_file(model_path),
        "extensions_directory": extensions.name if extensions.is_dir() else None,
        "recipe": "ase_bodyorder.training.metatrain.train_metatrain",
        "data": data,
        "settings": settings.to_dict(),
        "options": options,
        "command": ["mtt", *command[3:]],
        "versions": _versions(),
        "wall_time_s": total_wall_time(output_dir),
        "wall_time_last_run_s": wall_time,
        "metrics": _final_metrics(log_text),
        "training_curve": training_curve(output_dir),
        **trained_epochs(output_dir / Path(_MODEL_NAME).with_suffix(".ckpt")),
        "log": log_path.name,
    }
    (output_dir / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return model_path
