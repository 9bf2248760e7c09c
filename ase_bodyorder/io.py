"""Files at the edges: structure files in and out, JSON objects, the shipped examples.

Every failure is a one-line :class:`~ase_bodyorder.expansion.BodyOrderError` naming the
file, raised before any work is done where that can be known in advance.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import ase.io

from .expansion import BodyOrderError

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = [
    "EXAMPLE_CLUSTER",
    "atomic_path",
    "check_writable",
    "example_path",
    "read_json_object",
    "read_structures",
    "sha256_file",
    "write_json_atomically",
    "write_structures",
    "write_text_atomically",
]

#: the shipped example structure of the demo and the docs
EXAMPLE_CLUSTER = "h8_high_density.xyz"


def example_path(name: str = EXAMPLE_CLUSTER) -> Traversable:
    """Path of a shipped example structure (``ase_bodyorder/data/examples/NAME``)."""
    return resources.files("ase_bodyorder") / "data" / "examples" / name


def _read_ase(path: Path, index: str):
    """``ase.io.read``, with gzipped extxyz decompressed into memory first: ASE reads
    ``.xyz.gz`` itself, but seeks back through the gzip stream for every frame, which is
    quadratic in the frames (2,000 frames: 13 s; 25,000: hours)."""
    if path.suffix == ".gz" and path.suffixes[-2:-1] in ([".xyz"], [".extxyz"]):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            text = io.StringIO(handle.read())
        return ase.io.read(text, index=index, format="extxyz")
    return ase.io.read(str(path), index=index)


def read_structures(path, index: str = ":") -> list:
    """The frames ``index`` (ASE syntax, e.g. ``:``, ``0``, ``-1``, ``::2``) of a structure
    file as a list; unreadable, empty or missing files give a one-line error naming it.
    Gzipped extxyz (``.xyz.gz``) is read in linear time (see :func:`_read_ase`)."""

    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise BodyOrderError(f"structure file {path} {what}")
    if path.stat().st_size == 0:
        raise BodyOrderError(f"structure file {path} is empty")
    try:
        frames = _read_ase(path, index)
    except Exception as error:  # ASE raises many kinds for a file it cannot parse
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BodyOrderError(f"cannot read structures from {path}: {detail}") from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise BodyOrderError(f"no structures in {path} at index {index!r}")
    return frames


def check_writable(path) -> None:
    """One-line error unless ``path`` can be written (call it before any work is done)."""
    path = Path(path)
    if path.is_dir():
        raise BodyOrderError(f"output {path} is a directory, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BodyOrderError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BodyOrderError(f"output {path} is not writable")


def write_structures(path, frames: list) -> None:
    """Write ``frames`` to ``path`` as extxyz (with what is in their info/arrays)."""
    try:
        ase.io.write(str(path), frames, format="extxyz")
    except OSError as error:
        raise BodyOrderError(f"cannot write {path}: {error.strerror or error}") from None


def read_json_object(path, what: str) -> dict:
    """A JSON object from a file; a one-line error naming the file (as ``WHAT file``)
    when it is missing, unreadable, not JSON, or not an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BodyOrderError(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BodyOrderError(f"cannot read {what} file {path}: {error}") from None
    if not isinstance(data, dict):
        raise BodyOrderError(f"{what} file {path} must hold a JSON object")
    return data


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that takes a path (``ase.io.write``,
    ``shutil.copy``): renamed onto ``path`` when the block ends, removed when it raises,
    so that ``path`` is never seen half-written."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomically(path: str | os.PathLike, data) -> None:
    """Write ``data`` as JSON (indent 1, a final newline) to ``path`` through a temporary
    file (:func:`atomic_path`)."""
    write_text_atomically(path, json.dumps(data, indent=1) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
