"""The errors a command reports as one line (exit status 2), and that line.

Shared by the command line (:func:`ase_bodyorder.cli.main`) and the i-PI client started
on its own (:func:`ase_bodyorder.ipi.client.main`).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable

from .expansion import BodyOrderError

__all__ = ["EXPECTED_ERRORS", "error_line", "run_reporting_errors"]

#: input, missing-extra, file and database errors: one line, no traceback
EXPECTED_ERRORS = (
    BodyOrderError,
    ImportError,
    OSError,
    json.JSONDecodeError,
    sqlite3.DatabaseError,
)


def error_line(error: Exception) -> str:
    """The one line that reports ``error`` (after ``PROGRAM: error:``)."""
    if isinstance(error, BodyOrderError | ImportError):
        return str(error)
    if isinstance(error, OSError):  # files, directories, permissions, sockets
        reason = error.strerror or str(error) or type(error).__name__
        return f"{reason}: {error.filename}" if error.filename is not None else reason
    if isinstance(error, json.JSONDecodeError | sqlite3.DatabaseError):
        return f"{type(error).__name__}: {error}"
    return str(error)


def run_reporting_errors(
    call: Callable[[], object], runtime_errors: Callable[[], tuple] = tuple
) -> int:
    """Run ``call()`` and return the exit status: 0; 2 after one line on stderr
    (``ase-bodyorder: error: ...``) for an expected error or one of ``runtime_errors()``
    (asked only when something was raised); 130 after ``ase-bodyorder: interrupted`` on
    Ctrl-C."""
    try:
        call()
    except (*EXPECTED_ERRORS, *runtime_errors()) as error:
        print(f"ase-bodyorder: error: {error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ase-bodyorder: interrupted", file=sys.stderr)
        return 130
    return 0
