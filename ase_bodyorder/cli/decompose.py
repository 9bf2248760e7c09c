"""``ase-bodyorder decompose``: the body-order table of every structure in a file."""

from __future__ import annotations

import itertools
import json
import os
import shlex
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..expansion import BodyOrderError

if TYPE_CHECKING:
    from ..result import BodyOrderResult

#: the options of the expansion's settings (ExpansionSettings field -> option)
OPTIONS = {
    "order": "--order",
    "r_mbe": "--r-mbe",
    "max_memory_GiB": "--max-memory-gib",
    "sample_atoms": "--sample-atoms",
    "seed": "--seed",
    "precision": "--precision",
    "max_roundoff_eV": "--max-roundoff-ev",
}


def add_parser(subparsers) -> None:
    from ..models import DEFAULT_MODEL

    parser = subparsers.add_parser(
        "decompose", help="body-order table of every structure in a file"
    )
    parser.add_argument("file", help="any structure file ASE reads (extxyz, xyz, traj, ...)")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model: a registered name, a plug-in or a .model/.pt file (default {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--order",
        type=int,
        default=None,
        help="truncation order K (default: N for clusters, 3 for periodic cells)",
    )
    parser.add_argument("--r-mbe", type=float, default=None, help="expansion radius, Angstrom")
    parser.add_argument("--index", default=":", help="frames to read (ASE index syntax)")
    parser.add_argument("--forces", action="store_true", help="also compute forces per order")
    parser.add_argument("--output", help="write extxyz with the results in info/arrays")
    parser.add_argument("--json", action="store_true", help="print one JSON line per structure")
    parser.add_argument(
        "--chemiscope",
        default=None,
        metavar="FILE.json.gz",
        help="also write a chemiscope dataset: per-atom terms e_i^(n) as atom properties, "
        "E^(n)/N, residual and shares as structure properties (ase_bodyorder.chemiscope)",
    )
    parser.add_argument(
        "--max-memory-gib",
        type=float,
        default=None,
        help="refuse plans estimated to need more memory (default: half the available)",
    )
    parser.add_argument(
        "--sample-atoms",
        type=int,
        default=None,
        metavar="M",
        help="atom-sampled expansion: expand M random atoms per structure and report "
        "estimates of E^(n)/N with standard errors (no forces)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the atom sampling (with --sample-atoms): the structure at index i of "
        "the file draws its sample from the i-th seed drawn from it, whichever structures "
        "are selected (default: a fresh seed, printed)",
    )
    parser.add_argument(
        "--precision",
        choices=["float64", "float32"],
        default=None,
        help="evaluate the sub-clusters in this precision (float32: faster, sums stay in "
        "float64, the round-off of each order is bounded; default: the model's own)",
    )
    parser.add_argument(
        "--max-roundoff-ev",
        type=float,
        default=None,
        metavar="EV",
        help="refuse a structure whose round-off estimate of an order exceeds EV "
        "(default: warn above 0.1 eV)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="dask.distributed scheduler address: the frames are spread over its workers",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="local worker processes (default 1: this one)"
    )
    parser.add_argument(
        "--store",
        default=None,
        help="directory of finished frames: a rerun computes only the frames missing there",
    )
    parser.set_defaults(handler=run)


def run(args) -> None:
    run_decompose(
        args.file,
        model=args.model,
        order=args.order,
        r_mbe=args.r_mbe,
        output=args.output,
        as_json=args.json,
        index=args.index,
        forces=args.forces,
        max_memory_GiB=args.max_memory_gib,
        progress=not args.json,
        sample_atoms=args.sample_atoms,
        seed=args.seed,
        precision=args.precision,
        max_roundoff_eV=args.max_roundoff_ev,
        scheduler=args.scheduler,
        workers=args.workers,
        store=args.store,
        chemiscope=args.chemiscope,
    )


def run_decompose(
    path,
    *,
    model: str,
    order: int | None = None,
    r_mbe: float | None = None,
    output=None,
    as_json: bool = False,
    index: str = ":",
    forces: bool = False,
    stream=None,
    max_memory_GiB: float | None = None,
    progress: bool = False,
    sample_atoms: int | None = None,
    seed: int | None = None,
    precision: str | None = None,
    max_roundoff_eV: float | None = None,
    scheduler=None,
    workers: int = 1,
    store=None,
    chemiscope=None,
    settings=None,
) -> list:
    """Decompose every structure in ``path``; print tables (or JSON lines); return results.

    ``order``: truncation order K (``None``: :func:`~ase_bodyorder.decompose.default_order`
    of each structure). ``progress``: a progress bar with the time left (stderr) while
    sub-clusters are evaluated. The output file, if any, is checked before anything is
    computed. ``sample_atoms``: the atom-sampled expansion (m atoms per structure,
    estimates with standard errors); each structure draws its own sample, seeded from
    ``seed`` (a fresh one, printed, if none) and its index in the file
    (:func:`~ase_bodyorder.decompose.expansion_per_frame`); the output says how to draw
    each sample again. ``precision``, ``max_roundoff_eV``: as in
    :func:`~ase_bodyorder.decompose.decompose` (mixed precision). ``settings``: these
    settings as one :class:`~ase_bodyorder.ExpansionSettings` instead (then none of
    their keywords). ``scheduler``,
    ``workers``, ``store``: the frames as jobs on a dask cluster or local processes,
    resumable through ``store`` (:func:`~ase_bodyorder.trajectory.decompose_trajectory`;
    the same numbers). ``chemiscope``: a ``.json(.gz)`` file for a chemiscope dataset of
    the frames and their results (:func:`~ase_bodyorder.chemiscope.write_chemiscope`).
    """
    from ..calculator import store_body_order_results
    from ..decompose import decompose_frames
    from ..io import check_writable, read_structures, write_structures
    from ..models import load_model
    from ..sampling import fresh_seed
    from ..settings import resolve_settings
    from ..trajectory import frame_indices

    stream = sys.stdout if stream is None else stream
    given = {
        "order": order,
        "r_mbe": r_mbe,
        "max_memory_GiB": max_memory_GiB,
        "sample_atoms": sample_atoms,
        "seed": seed,
        "precision": precision,
        "max_roundoff_eV": max_roundoff_eV,
    }
    settings = resolve_settings(settings, {OPTIONS[k]: v for k, v in given.items()}, OPTIONS)
    if workers < 1:
        raise BodyOrderError(f"--workers must be a positive integer, got {workers}")
    if output is not None:
        check_writable(output)
        if os.path.realpath(output) == os.path.realpath(path):
            raise BodyOrderError(
                f"--output {output} is the input file: write the results elsewhere"
            )
    if chemiscope is not None:
        from ..chemiscope import check_chemiscope_path

        check_chemiscope_path(chemiscope)
    the_model = load_model(model)
    frames = read_structures(path, index)
    indices = frame_indices(path, index, len(frames))  # each structure named by its place
    if settings.sample_atoms is not None and settings.seed is None and store is None:
        settings = settings.replace(seed=fresh_seed())  # printed: every sample drawn again
    results: Iterable[BodyOrderResult]
    if scheduler is not None or workers > 1 or store is not None:
        from ..trajectory import decompose_trajectory

        results = decompose_trajectory(
            frames,
            model,
            settings,
            scheduler=scheduler,
            workers=workers,
            store=store,
            indices=indices,
            forces=forces,
        )
    else:
        results = decompose_frames(
            frames, the_model, settings=settings, indices=indices, forces=forces, progress=progress
        )
    done = []
    results = _told_as_options(results, path, indices)
    for k, (atoms, body) in enumerate(zip(frames, results, strict=True)):
        done.append(body)
        run_seed = {"run_seed": settings.seed} if body.sampled else {}
        if as_json:
            print(json.dumps({"structure": indices[k], **run_seed, **body.to_dict()}), file=stream)
        else:
            title = f"structure {indices[k]}: {atoms.get_chemical_formula()}, model {model}"
            print(body.table(title), file=stream)
            if body.sampled:
                print(same_sample(path, indices[k], model, settings, body), file=stream)
            print(file=stream)
        if output is not None:
            store_body_order_results(atoms, body)
    if output is not None:
        write_structures(output, frames)
    if chemiscope is not None:
        from ..chemiscope import write_chemiscope

        written = write_chemiscope(
            chemiscope,
            frames,
            done,
            name=f"{Path(path).name}: body orders of {model}",
            description=f"ase-bodyorder decompose {path} --model {model}",
        )
        if not as_json:
            print(f"wrote {written}", file=stream)
    return done


def _told_as_options(results: Iterable, path, indices) -> Iterator:
    """``results`` in turn; an order too large for a structure (found when its expansion
    is planned, as ``max_order=...``) is told as ``--order`` with the structure named."""
    iterator = iter(results)
    for k in itertools.count():
        try:
            body = next(iterator)
        except StopIteration:
            return
        except BodyOrderError as error:
            text = str(error)
            if not text.startswith("max_order="):
                raise
            where = f"structure {indices[k]} of {path}" if k < len(indices) else str(path)
            raise BodyOrderError(f"--order {text[len('max_order=') :]} ({where})") from None
        yield body


def same_sample(path, index: int, model: str, settings, body) -> str:
    """How to draw the sample of structure ``index`` of ``path`` again (``body``: its
    sampled result in a run with ``settings``): the command for that structure alone
    (the run's seed), and the call of :func:`~ase_bodyorder.decompose` (its own seed)."""
    words = ["ase-bodyorder", "decompose", str(path), "--index", str(index), "--model", model]
    python = [f"max_order={body.max_order}"]
    for field in ("order", "r_mbe", "precision", "sample_atoms", "seed"):
        value = getattr(settings, field)
        if value is not None:
            words += [OPTIONS[field], str(value)]
        if value is not None and field in ("r_mbe", "precision"):
            python.append(f"{field}={value!r}")
    python += [f"sample_atoms={body.sample_size}", f"seed={body.sample_seed}"]
    return (
        f"same sample: {shlex.join(words)}\n"
        f"  or in Python, with atoms = structure {index} of the file: "
        f"decompose(atoms, model, {', '.join(python)})"
    )
