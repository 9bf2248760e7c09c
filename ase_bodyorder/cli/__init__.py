"""``ase-bodyorder``: thin parsers over importable functions.

Each subcommand is a module of this package with ``add_parser(subparsers)``, which adds
its parser and sets its ``handler`` (a function of the parsed arguments); :func:`main`
parses, calls the handler, and turns the errors a user can fix into one line.
"""

from __future__ import annotations

import argparse
import os

from .._errors import run_reporting_errors
from ..expansion import BodyOrderError
from ..io import EXAMPLE_CLUSTER, example_path
from . import (
    decompose,
    demo,
    driver,
    increments,
    md,
    models,
    reference,
    report,
    scan,
    study,
    train,
    watch,
)
from .decompose import run_decompose

__all__ = ["EXAMPLE_CLUSTER", "build_parser", "example_path", "main", "run_decompose"]

#: the subcommands, in the order of ``--help``
SUBCOMMANDS = (
    decompose,
    demo,
    models,
    reference,
    train,
    driver,
    md,
    scan,
    increments,
    report,
    watch,
    study,
)


def _no_runtime_errors() -> tuple:
    return ()


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ase-bodyorder`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="ase-bodyorder",
        description="Many-body (body-order) decomposition of interatomic potentials.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of this command and of the trainers it starts (default 1, "
        "trainers: $ASE_BODYORDER_TRAINER_THREADS or 1; see README)",
    )
    # a subcommand whose running simulation can fail sets its own (see driver, md)
    parser.set_defaults(runtime_errors=_no_runtime_errors)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(subparsers)
    return parser


def _set_threads(threads: int | None) -> int:
    """Set torch's threads (1 unless given) and, when given, the trainers' (through
    :data:`~ase_bodyorder.training.THREADS_VARIABLE`); return torch's."""
    if threads is not None and threads < 1:
        raise BodyOrderError(f"--threads must be a positive integer, got {threads}")
    import torch  # torch: the models' backend

    from ..training import THREADS_VARIABLE

    if threads is not None:
        os.environ[THREADS_VARIABLE] = str(threads)
    torch.set_num_threads(threads or 1)
    return threads or 1


def main(argv=None) -> int:
    """Run ``ase-bodyorder ARGV``; return the exit status (0, 2 on an error reported in
    one line, 130 when interrupted)."""
    args = build_parser().parse_args(argv)

    def call() -> None:
        args.threads = _set_threads(args.threads)
        args.handler(args)

    return run_reporting_errors(call, args.runtime_errors)
