"""Resumable storage of reference calculations in an ASE database (SQLite).

One row per job, keyed by a stable ``job_key``. A row holds the cluster (as ``Atoms``,
with energy in eV and forces in eV/Angstrom through a single-point calculator), the
status (``done`` or ``failed``), the method, basis, spin policy, <S^2>, convergence
data, wall time and package versions; raw Hartree values are kept in ``data``. Each row
is committed as soon as its job ends, so a killed run loses only the jobs in flight.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import ase.db
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = ["ReferenceStore"]

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


class ReferenceStore:
    """An ASE database of reference jobs (``path`` ends in ``.db``)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = ase.db.connect(str(self.path), type="db", append=True)

    def finished(self, include_failed: bool = True) -> set[str]:
        """Job keys already done (and failed, unless ``include_failed`` is False)."""
        keys = set()
        for row in self.db.select(columns=["key_value_pairs"], include_data=False):
            if include_failed or row.get("status") == "done":
                keys.add(row.job_key)
        return keys

    def write(
        self,
        key: str,
        numbers,
        positions,
        record: dict | None,
        *,
        error: str | None,
        meta: dict | None = None,
    ) -> None:
        """Store the outcome of one job (``record`` on success, ``error`` on failure).

        The caller runs each key once (see :meth:`finished`); a failed job is run again
        only after :meth:`delete_failed`.
        """
        atoms = Atoms(numbers=numbers, positions=positions)
        kvp = {"job_key": key, "status": "done" if error is None else "failed"}
        for name, value in (meta or {}).items():
            if isinstance(value, str | int | float | bool) and not isinstance(value, np.generic):
                kvp[name] = value
        data = {"meta": json.dumps(meta or {})}
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
        self.db.write(atoms, key_value_pairs=kvp, data=data)

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
        """The stored record of a finished job, or None (missing or failed)."""
        for row in self.db.select(job_key=key, status="done"):
            return json.loads(row.data["record"])
        return None

    def records(self, keys) -> dict[str, dict]:
        """Records of the given keys that are done (one pass over the database)."""
        wanted = set(keys)
        out = {}
        for row in self.db.select(status="done"):
            if row.job_key in wanted:
                out[row.job_key] = json.loads(row.data["record"])
        return out

    def counts(self) -> dict[str, int]:
        done = self.db.count(status="done")
        failed = self.db.count(status="failed")
        return {"done": done, "failed": failed}

    @property
    def metadata(self) -> dict:
        return self.db.metadata

    @metadata.setter
    def metadata(self, value: dict) -> None:
        self.db.metadata = value
