"""Train the specs of a study into a cache keyed by their data and settings, resumably."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..expansion import BodyOrderError
from ..io import write_json_atomically, write_text_atomically
from ..training import MACESettings, train_mace, train_metatrain, trainer_threads
from .convergence import convergence
from .entries import RESULT
from .fragments import fragment_frames, fragments_path, split_frames
from .ship import restore_shipped
from .spec import TrainingSpec

__all__ = ["RESULT", "StudyEntry", "run_entry", "run_study", "test_metrics"]


@dataclass
class StudyEntry:
    """One spec of a study and what became of it.

    ``status``: ``cached`` (trained before), ``trained`` (now), ``busy`` (another process
    holds its lock) or ``failed`` (``error`` says why).
    """

    spec: TrainingSpec
    directory: Path
    status: str
    result: dict | None = None
    error: str | None = None


def _write_training_subset(spec: TrainingSpec, target: Path) -> None:
    """The spec's H8 clusters, then its fragments (if any), copied byte for byte."""
    train = spec.files()["train"]
    frames = split_frames(train.read_text(encoding="utf-8"), train)
    text = "".join(frames[i] for i in spec.training_indices())
    if spec.fragment_fraction > 0:
        fragments = fragment_frames(fragments_path(spec.density))
        text += "".join(fragments[i] for i in spec.fragment_indices())
    write_text_atomically(target, text)


def test_metrics(provenance: dict) -> dict:
    """``{"training"|"validation"|"test": {"energy_meV_per_atom", "forces_meV_per_A"}}``
    from a trainer's provenance (metatrain's final evaluation or mace's error tables)."""
    metrics = provenance.get("metrics", {})
    out: dict = {}
    if "TEST" in metrics or "TRAIN and VALID" in metrics:  # mace
        rows = [*metrics.get("TRAIN and VALID", []), *metrics.get("TEST", [])]
        for row in rows:
            kind = str(row.get("config_type", ""))
            part = (
                "training"
                if kind.startswith("train")
                else "validation"
                if kind.startswith("valid")
                else "test"
            )
            out[part] = {
                "energy_meV_per_atom": row.get("RMSE E / meV / atom"),
                "forces_meV_per_A": row.get("RMSE F / meV / A"),
            }
        return out
    for part, entry in metrics.items():  # metatrain
        energy = entry.get("energy RMSE (per atom)", {})
        forces = entry.get("energy_positions_gradients RMSE", {})
        scale_e = 1.0 if energy.get("unit", "meV").startswith("meV") else 1e3
        scale_f = 1.0 if forces.get("unit", "meV").startswith("meV") else 1e3
        out[part] = {
            "energy_meV_per_atom": None if not energy else energy["value"] * scale_e,
            "forces_meV_per_A": None if not forces else forces["value"] * scale_f,
        }
    return out


def _train(spec: TrainingSpec, directory: Path, timeout: float | None, progress=None) -> dict:
    train_file = directory / "train.xyz"
    if not train_file.is_file():
        _write_training_subset(spec, train_file)
    files = spec.files()
    settings = spec.settings()
    work = directory / "training"
    trainer = train_mace if isinstance(settings, MACESettings) else train_metatrain
    model = trainer(
        train_file,
        files["validation"],
        files["test"],
        settings,
        work,
        resume=True,
        timeout=timeout,
        progress=progress,
    )
    provenance = json.loads((work / "provenance.json").read_text(encoding="utf-8"))
    curve = provenance.get("training_curve", [])
    return {
        "key": spec.key,
        "spec": spec.to_dict(),
        "identity": spec.identity(),
        "model": str(model.relative_to(directory)),
        "metrics": test_metrics(provenance),
        # metatrain logs every few epochs: count epochs by number, not by entries
        "epochs": convergence(curve, provenance.get("epochs"))["epochs"],
        # exact where the trainer's checkpoint says it (metatrain), else None
        "epochs_trained": provenance.get("epochs"),
        "training_curve": curve,
        "wall_time_s": provenance.get("wall_time_s"),
    }


def run_entry(
    spec: TrainingSpec,
    cache: str | os.PathLike,
    *,
    timeout: float | None = None,
    progress=None,
) -> StudyEntry:
    """Train one spec into ``cache/<key>`` unless it is there already (``progress``: a
    text stream for the trainer's epoch line).

    A directory holding a training that was killed part-way resumes from its checkpoint.
    An entry another process is training (its lock is held) is reported ``busy``. A
    training that fails (the trainer's error, or an OS or data error such as a full disk
    or an unreadable trainer output) is reported ``failed`` with one line saying why.
    """
    directory = Path(cache).resolve() / spec.key
    result_path = directory / RESULT
    if result_path.is_file():
        return StudyEntry(spec, directory, "cached", json.loads(result_path.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return StudyEntry(spec, directory, "busy")
        if result_path.is_file():  # finished by the lock's previous holder
            return StudyEntry(spec, directory, "cached", json.loads(result_path.read_text()))
        write_json_atomically(directory / "spec.json", spec.identity())
        try:
            result = _train(spec, directory, timeout, progress)
        except BodyOrderError as error:
            return StudyEntry(spec, directory, "failed", error=str(error))
        except (OSError, ValueError) as error:
            # a full disk, an unreadable or half-written trainer output: this entry
            # fails, the study goes on with the next (its checkpoints stay to resume)
            return StudyEntry(spec, directory, "failed", error=f"{type(error).__name__}: {error}")
        write_json_atomically(result_path, result)
    return StudyEntry(spec, directory, "trained", result)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def run_study(
    specs: Sequence[TrainingSpec],
    cache: str | os.PathLike,
    *,
    timeout: float | None = None,
    stream=None,
) -> list[StudyEntry]:
    """Run every spec (see :func:`run_entry`), printing progress with the time left.

    Specs whose model is shipped with the package (and trained with today's recipe and
    data) are restored into the cache first, not retrained
    (:func:`~.ship.restore_shipped`).

    The time left is the mean wall time of the trainings done in this call times the
    number still to train (a rough guide: sizes differ).
    """
    stream = sys.stderr if stream is None else stream
    cache = Path(cache)
    threads = trainer_threads()  # a bad value fails here, before any training
    entries: list[StudyEntry] = []
    start = time.perf_counter()
    trained_time: list[float] = []
    restored = restore_shipped(cache, keys={s.key for s in specs})
    if restored:
        print(
            f"study: restored {len(restored)} finished model(s) from the shipped models: "
            f"{', '.join(restored)}",
            file=stream,
            flush=True,
        )
    todo = [s for s in specs if not (cache / s.key / RESULT).is_file()]
    print(
        f"study: {len(specs)} model(s), {len(specs) - len(todo)} cached, "
        f"{len(todo)} to train in {cache} ({threads} thread(s) per training)",
        file=stream,
        flush=True,
    )
    remaining = len(todo)
    for number, spec in enumerate(specs, 1):
        cached = (cache / spec.key / RESULT).is_file()
        if not cached:
            print(
                f"[{number}/{len(specs)}] training {spec.key} (log: "
                f"{cache / spec.key / 'training'})",
                file=stream,
                flush=True,
            )
        began = time.perf_counter()
        entry = run_entry(spec, cache, timeout=timeout, progress=stream)
        entries.append(entry)
        if entry.status in ("trained", "failed"):
            trained_time.append(time.perf_counter() - began)
        if not cached:
            remaining -= 1
            left = sum(trained_time) / len(trained_time) * remaining if trained_time else 0.0
            detail = entry.error if entry.status == "failed" else _summary(entry.result)
            print(
                f"[{number}/{len(specs)}] {spec.key}: {entry.status} {detail or ''}; "
                f"{_minutes(time.perf_counter() - start)} elapsed, about {_minutes(left)} "
                f"left ({remaining} to train)",
                file=stream,
                flush=True,
            )
    return entries


def _summary(result: dict | None) -> str:
    if not result:
        return ""
    test = result.get("metrics", {}).get("test", {})
    return (
        f"test RMSE {test.get('energy_meV_per_atom')} meV/atom, "
        f"{test.get('forces_meV_per_A')} meV/A after {result.get('epochs')} epochs"
    )
