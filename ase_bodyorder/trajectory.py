"""The body orders of every frame of a trajectory, on local processes or a dask cluster.

:func:`decompose_trajectory` sends the frames of a long trajectory as independent jobs to
the executors of the reference pipeline (:mod:`ase_bodyorder.reference.executor`: local
processes, or a ``dask.distributed`` cluster given its scheduler address or a
``Client``), and returns the results in frame order. Each job loads the model by name
once per worker process and runs :func:`~ase_bodyorder.decompose.decompose` on one
thread, so a distributed run gives the same numbers as a local one (the tests check
them to the last bit).

With ``store`` (a directory) every finished frame is written at once to
``store/frame-<k>-<fingerprint>.json``, ``k`` its index in the file and the fingerprint a
digest of the frame, the model and the frame's own
:class:`~ase_bodyorder.ExpansionSettings` (:func:`frame_fingerprint`): a rerun of an
interrupted (or finished) run, of another selection of the same file, or with other
settings, reuses exactly the frames computed for the same structure and settings,
computes the others, and overwrites nothing (files of other settings stay beside).
:func:`frame_indices` gives the indices in the file of a selection.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ase.io.formats import string2index

from .decompose import BodyOrderResult, decompose, expansion_per_frame, split_settings
from .expansion import BodyOrderError
from .io import read_structures
from .models import resolve_model
from .models.registry import absolute_spec
from .reference.executor import DaskExecutor, LocalExecutor
from .settings import ExpansionSettings

if TYPE_CHECKING:
    from ase import Atoms

    from .models import Model

__all__ = ["decompose_trajectory", "frame_fingerprint", "frame_indices"]


@lru_cache(maxsize=4)
def _cached_model(spec: str) -> Model:
    return resolve_model(spec)


def frame_fingerprint(
    atoms: Atoms, settings: ExpansionSettings, model: str, options: dict[str, Any] | None = None
) -> str:
    """Hex digest of a structure (species, positions, cell, periodicity), the ``settings``
    of its expansion (``to_dict()``: the frame's own order and sample seed), the model
    spec and the further :func:`~ase_bodyorder.decompose` ``options`` (``forces``): a
    stored frame is reused only for exactly this job."""
    if not isinstance(settings, ExpansionSettings):
        raise BodyOrderError(f"settings must be ExpansionSettings, got {type(settings).__name__}")
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(atoms.cell), dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(atoms.pbc, dtype=bool).tobytes())
    job = {"model": model, "settings": settings.to_dict(), "options": options or {}}
    digest.update(json.dumps(job, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def frame_indices(path: str | os.PathLike, index: str, count: int) -> list[int]:
    """The indices in the structure file ``path`` of the ``count`` frames that
    :func:`~ase_bodyorder.io.read_structures` gave for ``index`` (ASE syntax): where the
    selection counts from the end or backwards, the file's frames are counted."""
    selection = string2index(index)
    if isinstance(selection, int):
        if selection >= 0:
            return [selection]
    elif not isinstance(selection, slice):
        raise BodyOrderError(f"--index {index!r} is not an index or a slice")
    elif (selection.step or 1) > 0 and all(
        end is None or end >= 0 for end in (selection.start, selection.stop)
    ):
        start, step = selection.start or 0, selection.step or 1
        return [start + k * step for k in range(count)]
    positions = range(len(read_structures(path, ":")))
    found = [positions[selection]] if isinstance(selection, int) else list(positions[selection])
    if len(found) != count:
        raise BodyOrderError(f"{path} changed while it was read: {len(found)} frames at {index!r}")
    return found


def _run_frame(
    job: tuple[int, Atoms, str, dict[str, Any]],
) -> tuple[int, dict[str, Any] | None, str | None]:
    """One frame in a worker: ``(index, result as a dict, None)`` or ``(index, None, error)``."""
    torch.set_num_threads(1)
    index, atoms, model_name, kwargs = job
    try:
        body = decompose(atoms, _cached_model(model_name), **kwargs)
    except BodyOrderError as error:
        return index, None, str(error)
    return index, body.to_dict(), None


def _frame_path(store: Path, index: int, fingerprint: str) -> Path:
    return store / f"frame-{index:06d}-{fingerprint[:16]}.json"


def _load_stored(path: Path, fingerprint: str) -> BodyOrderResult | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):  # missing, or cut off by a killed run
        return None
    if data.get("fingerprint") != fingerprint:
        return None
    return BodyOrderResult.from_dict(data["result"])


def _write_stored(path: Path, fingerprint: str, result: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "result": result}), encoding="utf-8")
    os.replace(tmp, path)


def decompose_trajectory(
    frames: Sequence[Atoms],
    model: str,
    settings: ExpansionSettings | None = None,
    *,
    order: int | None = None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    scheduler: object = None,
    workers: int = 1,
    store: str | os.PathLike | None = None,
    indices: Sequence[int] | None = None,
    **options: Any,
) -> list[BodyOrderResult]:
    """The expansion of every frame, in frame order (see the module doc).

    ``model``: a model spec (:func:`~ase_bodyorder.resolve_model`: a registered name, a
    plug-in or a model file, whose path is made absolute; each worker resolves it once).
    ``settings``: the expansion (:class:`~ase_bodyorder.ExpansionSettings`), or as
    keywords ``order``, ``sample_atoms``, ``seed`` and the settings among ``options``
    (``r_mbe``, ``precision``, ...), as in
    :func:`~ase_bodyorder.decompose.decompose_frames` (the same per-frame orders and
    seeds, so sampled results match a local run). ``scheduler``: a dask scheduler
    address or ``distributed.Client``; otherwise ``workers`` local processes (1: in this
    process). ``store``: a directory that makes the run resumable (with ``sample_atoms``,
    only with a ``seed``: an unseeded sample is new on every run, so nothing could be
    reused). ``indices``: the frames' indices in their file (:func:`frame_indices`;
    default 0, 1, ...), which name the stored frames and seed their samples.
    ``options``: further keyword arguments of :func:`~ase_bodyorder.decompose.decompose`
    (``forces``, ...).
    A frame that cannot be expanded is a :class:`BodyOrderError` naming it, raised after
    the other frames are done (and stored).
    """
    if not isinstance(model, str):
        raise BodyOrderError(
            "decompose_trajectory needs a model spec (a registered name, a plug-in or a "
            f"model file), got {type(model).__name__}"
        )
    run, options = split_settings(
        settings, {"order": order, "sample_atoms": sample_atoms, "seed": seed, **options}
    )
    if store is not None and run.sample_atoms is not None and run.seed is None:
        raise BodyOrderError(
            "a store of atom-sampled frames needs a seed: an unseeded sample is drawn anew "
            "on every run, so no stored frame could be reused"
        )
    indices = list(range(len(frames))) if indices is None else [int(i) for i in indices]
    own_settings = expansion_per_frame(frames, run, indices)
    model = absolute_spec(model)  # workers may run in another directory
    _cached_model(model)  # an unknown spec fails here, before any job starts
    jobs = [
        (k, atoms, model, {**options, "settings": own})
        for k, (atoms, own) in enumerate(zip(frames, own_settings, strict=True))
    ]
    store_dir = None if store is None else Path(store)
    if store_dir is not None:
        store_dir.mkdir(parents=True, exist_ok=True)
    results: dict[int, BodyOrderResult] = {}
    fingerprints: dict[int, str] = {}
    todo = []
    for job in jobs:
        k, atoms, _, _ = job
        fingerprints[k] = frame_fingerprint(atoms, own_settings[k], model, options)
        stored = None
        if store_dir is not None:
            for path in (  # the name of earlier versions, found only by its fingerprint
                _frame_path(store_dir, indices[k], fingerprints[k]),
                store_dir / f"frame-{indices[k]:06d}.json",
            ):
                stored = stored or _load_stored(path, fingerprints[k])
        if stored is None:
            todo.append(job)
        else:
            results[k] = stored
    errors: dict[int, str] = {}

    def finish(index: int, data: dict[str, Any] | None, error: str | None) -> None:
        if error is not None:
            errors[index] = error
            return
        assert data is not None  # _run_frame gives a result or an error
        results[index] = BodyOrderResult.from_dict(data)
        if store_dir is not None:
            path = _frame_path(store_dir, indices[index], fingerprints[index])
            _write_stored(path, fingerprints[index], data)

    if scheduler is None and workers <= 1:
        for job in todo:
            finish(*_run_frame(job))
    elif todo:
        executor = DaskExecutor(scheduler) if scheduler is not None else LocalExecutor(workers)
        try:
            in_flight = {executor.submit(_run_frame, job): job for job in todo}
            while in_flight:
                done, _ = executor.wait_first(set(in_flight))
                for future in done:
                    in_flight.pop(future)
                    finish(*future.result())
        finally:
            executor.close()
    if errors:
        first = min(errors)
        raise BodyOrderError(
            f"{len(errors)} frame(s) could not be expanded; frame {first}: {errors[first]}"
        )
    return [results[k] for k in range(len(jobs))]
