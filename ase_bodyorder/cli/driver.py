"""``ase-bodyorder driver``: an i-PI driver with body-order extras (the socket client of
:mod:`ase_bodyorder.ipi.client`, which MD runs start as ``python -m``)."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    from ..ipi import client

    parser = subparsers.add_parser(
        "driver", help="i-PI driver with body-order extras (socket client)"
    )
    client.add_arguments(parser)
    parser.set_defaults(handler=run, runtime_errors=_runtime_errors)


def run(args) -> None:
    from ..ipi import client

    client.run_from_arguments(args, log=sys.stderr)


def _runtime_errors() -> tuple:
    """Failures of a running driver, reported as one line (exit status 2)."""
    from ..ipi.client import ProtocolError, ServerGoneError

    return (ServerGoneError, ProtocolError)
