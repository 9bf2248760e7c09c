"""Resumable storage of reference calculations in an ASE database (SQLite).

Jobs are keyed by content. The content key (:func:`content_key`) is a SHA-256 digest of
the species, the positions quantized to :data:`POSITION_PRECISION_A` (1e-6 Angstrom;
each coordinate is first written with 8 decimals, the precision of extxyz files, so a
frame and its extxyz copy get the same key) and the calculation settings that change the
result (method, basis, spin policy, forces, finite-difference step, minimum distance,
and the DMRG settings except the thread count for DMRG; for periodic DFT, every setting
of :class:`~.periodic.PeriodicDFT`) and, for a periodic cell only, its lattice vectors
quantized like the positions. A changed geometry, cell or setting is a new job. Each
row also keeps the readable ``job_key`` (e.g.
``{dataset}/{index}/{method}/{basis}/{spin_policy}``, see
:mod:`ase_bodyorder.reference.pipeline`), which is not unique: the same readable key
with other positions is another job, stored in its own row.

A row holds the cluster or cell (as ``Atoms``, with energy in eV and forces in eV/Angstrom
through a single-point calculator), the status (``done`` or ``failed``), the method,
basis, spin policy, <S^2>, convergence data, wall time and package versions; raw Hartree
values are kept in ``data``. Each row is committed as soon as its job ends, so a killed
run loses only the jobs in flight. Rows written before content keys existed have no
``content_key`` and are not found by content (their jobs run again).

Several runs may share one database: before a job is submitted its run claims it in the
``reference_claims`` table (in a SQLite ``BEGIN IMMEDIATE`` transaction, with host, pid,
process start time, run id and time); other runs skip keys claimed by a live process and
take over claims of dead ones, and :meth:`ReferenceStore.write` replaces the claim by the
row in one transaction, never storing a content key twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import ase.db
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..expansion import BodyOrderError

__all__ = [
    "CLAIM_TIMEOUT_S",
    "POSITION_PRECISION_A",
    "Claimant",
    "ReferenceStore",
    "content_key",
]

#: positions are compared and hashed to this precision (Angstrom)
POSITION_PRECISION_A = 1e-6
#: a claim made on another host (whose process cannot be checked) is taken over after this
CLAIM_TIMEOUT_S = 24 * 3600.0
#: version of the content-key recipe (part of the digest)
_KEY_VERSION = 1

_SCALARS = (
    "method",
    "basis",
    "spin_policy",
    "two_s",
    "spin_square",
    "iterations",
    "discarded_weight",
    "wall_time_s",
    "energy_Ha",
    "forces_method",
)

_CLAIMS_TABLE = """CREATE TABLE IF NOT EXISTS reference_claims (
    content_key TEXT PRIMARY KEY,
    job_key TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    process_start TEXT,
    run_id TEXT NOT NULL,
    claimed_at_s REAL NOT NULL
)"""


def _quantized_positions(positions) -> np.ndarray:
    """Positions as integers in units of :data:`POSITION_PRECISION_A`.

    Each coordinate is first rounded to 8 decimals as text (what extxyz writes), so that
    in-memory positions and their extxyz copy give the same integers.
    """
    flat = np.asarray(positions, dtype=float).reshape(-1)
    eight = np.array([float(f"{value:.8f}") for value in flat])
    return np.rint(eight / POSITION_PRECISION_A).astype(np.int64).reshape(-1, 3)


def _result_settings(calculation) -> dict:
    """The settings of a calculation (:class:`~.electronic.Calculation`,
    :class:`~.periodic.PeriodicDFT`) that change its result, with its ``method``."""
    settings = {"method": calculation.method, **calculation.to_dict()}
    dmrg = settings.pop("dmrg", None)
    if settings.get("method") == "dmrg" and dmrg is not None:
        settings["dmrg"] = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dmrg.items()
            if name != "n_threads"
        }
    return settings


def content_key(numbers, positions, calculation, cell=None) -> str:
    """The content key of a job: a SHA-256 hex digest (64 characters).

    Digest of the species, the positions quantized to :data:`POSITION_PRECISION_A`
    (Angstrom), the result-changing calculation settings (see the module docstring) and,
    for a periodic cell, its lattice vectors (``cell``, 3 x 3, Angstrom, quantized like
    the positions). ``cell=None`` (a cluster) leaves the recipe of the cluster keys as
    it was.
    """
    content = {
        "version": _KEY_VERSION,
        "numbers": [int(z) for z in np.asarray(numbers).reshape(-1)],
        "positions_per_1e-6_A": _quantized_positions(positions).tolist(),
        "calculation": _result_settings(calculation),
    }
    if cell is not None:
        content["cell_per_1e-6_A"] = _quantized_positions(cell).tolist()
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _process_start(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot, Linux), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _process_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class Claimant:
    """The run that claims jobs: host, process id, process start time and a run id."""

    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    process_start: str | None = field(default_factory=lambda: _process_start(os.getpid()))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def _claim_alive(host: str, pid: int, process_start: str | None, claimed_at_s: float) -> bool:
    """Whether the process that made a claim still runs (on another host: not timed out)."""
    if host != socket.gethostname():
        return time.time() - claimed_at_s < CLAIM_TIMEOUT_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _process_state(pid) in ("Z", "X"):
        return False
    current = _process_start(pid)
    return process_start is None or current is None or current == process_start


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class ReferenceStore:
    """An ASE database of reference jobs (``path`` ends in ``.db``)."""

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_dir():
            raise BodyOrderError(f"reference database {self.path} is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = ase.db.connect(str(self.path), type="db", append=True, use_lock_file=False)
            with self._transaction() as con:
                self.db.count()  # creates the ASE tables of a new database
                con.execute(_CLAIMS_TABLE)
        except (sqlite3.DatabaseError, OSError) as error:
            raise BodyOrderError(
                f"{self.path} is not a usable ASE SQLite database: {_one_line(error)}"
            ) from None

    @contextmanager
    def _transaction(self):
        """One write transaction (``BEGIN IMMEDIATE``): other processes wait for it."""
        with self.db:
            con = self.db.connection
            con.execute("BEGIN IMMEDIATE")
            yield con

    def finished(self, include_failed: bool = True) -> set[str]:
        """Content keys of jobs done (and failed, unless ``include_failed`` is False)."""
        keys = set()
        for row in self.db.select(columns=["key_value_pairs"], include_data=False):
            key = row.get("content_key")
            if key is not None and (include_failed or row.get("status") == "done"):
                keys.add(key)
        return keys

    def claim(self, job, claimant: Claimant) -> str:
        """Claim ``job`` for ``claimant`` before it is submitted.

        Returns ``"claimed"`` (run it; also when a dead process's claim was taken over),
        ``"finished"`` (a row exists) or ``"busy"`` (claimed by another live run).
        """
        key = job.content_key
        with self._transaction() as con:
            if self.db.count(content_key=key):
                return "finished"
            row = con.execute(
                "SELECT host, pid, process_start, run_id, claimed_at_s FROM reference_claims "
                "WHERE content_key = ?",
                (key,),
            ).fetchone()
            if row is not None and row[3] != claimant.run_id and _claim_alive(*row[:3], row[4]):
                return "busy"
            con.execute(
                "INSERT OR REPLACE INTO reference_claims VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    job.key,
                    claimant.host,
                    claimant.pid,
                    claimant.process_start,
                    claimant.run_id,
                    time.time(),
                ),
            )
        return "claimed"

    def release(self, claimant: Claimant) -> int:
        """Drop the claims of ``claimant`` that were not written; return how many."""
        with self._transaction() as con:
            cursor = con.execute(
                "DELETE FROM reference_claims WHERE run_id = ?", (claimant.run_id,)
            )
            return cursor.rowcount

    def claims(self) -> list[dict]:
        """Open claims: content and job key, host, pid, run id, time (Unix, s)."""
        with self.db.managed_connection() as con:
            rows = con.execute(
                "SELECT content_key, job_key, host, pid, run_id, claimed_at_s FROM reference_claims"
            ).fetchall()
        names = ("content_key", "job_key", "host", "pid", "run_id", "claimed_at_s")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def write(self, job, record: dict | None, *, error: str | None) -> bool:
        """Store the outcome of one job (``record`` on success, ``error`` on failure).

        Replaces the job's claim by its row in one transaction. Returns False (and
        stores nothing) when a row with the job's content key exists already: a failed
        job runs again only after :meth:`delete_failed`.
        """
        key = job.content_key
        atoms = Atoms(numbers=job.numbers, positions=job.positions)
        if job.cell is not None:
            atoms.set_cell(job.cell)
            atoms.pbc = True
        kvp = {
            "job_key": job.key,
            "content_key": key,
            "status": "done" if error is None else "failed",
        }
        for name, value in (job.meta or {}).items():
            if isinstance(value, str | int | float | bool) and not isinstance(value, np.generic):
                kvp.setdefault(name, value)
        data = {
            "meta": json.dumps(job.meta or {}),
            "calculation": json.dumps(job.calculation.to_dict()),
        }
        if error is not None:
            kvp["error"] = error[:2000]
        else:
            for name in _SCALARS:
                value = record.get(name)
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    kvp[name] = value
            data["record"] = json.dumps(record)
            forces = record.get("forces_eV_per_A")
            atoms.calc = SinglePointCalculator(
                atoms,
                energy=record["energy_eV"],
                forces=None if forces is None else np.asarray(forces),
            )
        with self._transaction() as con:
            stored = self.db.count(content_key=key) == 0
            if stored:
                self.db.write(atoms, key_value_pairs=kvp, data=data)
            con.execute("DELETE FROM reference_claims WHERE content_key = ?", (key,))
        return stored

    def delete_failed(self) -> int:
        """Remove failed rows (so that their jobs run again); return how many."""
        ids = [row.id for row in self.db.select(status="failed", include_data=False)]
        if ids:
            self.db.delete(ids)
        return len(ids)

    def rows(self, **selection) -> Iterator:
        """Rows matching ``selection`` (ASE db keyword selection)."""
        yield from self.db.select(**selection)

    def record(self, key: str) -> dict | None:
        """The stored record of a finished job, or None (missing or failed).

        ``key``: a content key, or a readable job key naming a single calculation (an
        error if the database holds several calculations under that readable key).
        """
        return self.records([key]).get(key)

    def records(self, keys: Iterable[str]) -> dict[str, dict]:
        """Records of the given content keys (or readable job keys) that are done.

        One pass over the database. A readable key under which the database holds more
        than one calculation (other positions or settings) is an error: look those up by
        content key.
        """
        wanted = set(keys)
        out: dict[str, dict] = {}
        by_readable: dict[str, set] = {}
        for row in self.db.select(status="done"):
            content = row.get("content_key")
            if content in wanted:
                out[content] = json.loads(row.data["record"])
            if row.get("job_key") in wanted:
                by_readable.setdefault(row.job_key, set()).add(content or f"row {row.id}")
                out[row.job_key] = json.loads(row.data["record"])
        for readable, contents in by_readable.items():
            if len(contents) > 1:
                raise BodyOrderError(
                    f"{self.path}: job key {readable} names {len(contents)} calculations "
                    "(other positions or settings); look it up by content key"
                )
        return out

    def matching_records(self, jobs) -> dict[str, dict]:
        """Records of ``jobs`` that are done, by content key, checked against the jobs.

        Raises :class:`BodyOrderError` (naming the database and the frame) if a stored
        row's species or positions differ from its job's by more than
        :data:`POSITION_PRECISION_A` (plus the 1e-8 Angstrom of the text rounding); for a
        periodic job, the cell too.
        """
        wanted = {job.content_key: job for job in jobs}
        tolerance_A = POSITION_PRECISION_A + 1e-8
        out = {}
        for row in self.db.select(status="done"):
            job = wanted.get(row.get("content_key"))
            if job is None:
                continue
            same_species = np.array_equal(row.numbers, np.asarray(job.numbers))
            difference_A = (
                float(np.abs(row.positions - np.asarray(job.positions)).max())
                if same_species
                else math.inf
            )
            if job.cell is not None:
                cell_difference_A = float(np.abs(row.cell - np.asarray(job.cell)).max())
                difference_A = max(difference_A, cell_difference_A)
            if difference_A > tolerance_A:
                meta = job.meta or {}
                index = meta.get("cluster", meta.get("frame", "?"))
                frame = f"frame {index} of {meta.get('dataset', '?')}"
                raise BodyOrderError(
                    f"{self.path}: stored row {row.id} ({row.get('job_key')}) does not hold "
                    f"the atoms of {frame} ({job.key}): positions differ by "
                    f"{difference_A:.2e} Angstrom (tolerance {tolerance_A:.2e})"
                )
            out[job.content_key] = json.loads(row.data["record"])
        return out

    def counts(self) -> dict[str, int]:
        """Rows done and failed, and open claims."""
        done = self.db.count(status="done")
        failed = self.db.count(status="failed")
        return {"done": done, "failed": failed, "claimed": len(self.claims())}

    @property
    def metadata(self) -> dict:
        return self.db.metadata

    @metadata.setter
    def metadata(self, value: dict) -> None:
        self.db.metadata = value
