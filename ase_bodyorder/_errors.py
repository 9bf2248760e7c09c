"""The errors a command reports as one line (exit status 2), and that line.

Shared by the command line (:func:`ase_bodyorder.cli.main`) and the i-PI client started
on its own (:func:`ase_bodyorder.ipi.client.main`).
"""

from __future__ import annotations

import json
import sqlite3

from .expansion import BodyOrderError

__all__ = ["EXPECTED_ERRORS", "error_line"]

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
