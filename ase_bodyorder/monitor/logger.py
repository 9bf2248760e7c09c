"""The ASE route: log body-order statistics along any ASE dynamics."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.md.md import MolecularDynamics

from ..calculator import BodyOrderCalculator
from ..decompose import BodyOrderResult, decompose
from ..models import Model, load_model
from ..summary import body_order_summary, logged_key

__all__ = ["BodyOrderLogger"]


class BodyOrderLogger:
    """Append one JSON line per call with thermodynamics and the body-order expansion.

    Attach it to ASE dynamics: ``dyn.attach(BodyOrderLogger(dyn, atoms, "bo.jsonl"),
    interval=10)``. If the atoms' calculator is a
    :class:`~ase_bodyorder.BodyOrderCalculator`, its expansion is used (computed on
    request when its stride skipped this step); otherwise pass ``model`` (and
    ``max_order``, ``r_mbe``, and for the atom-sampled expansion ``sample_atoms`` and
    ``sample_seed``: a new sample per logged frame from a generator seeded once) and the
    expansion is computed here; ``model`` is a model or a registered model's name. The
    file is read back by :func:`~ase_bodyorder.monitor.read_ase_log` into the same table
    as an i-PI run.

    Columns: ``step``, ``time_fs``, ``temperature_K``, ``potential_eV``,
    ``conserved_eV`` (potential + kinetic), and the expansion's summary
    (:func:`ase_bodyorder.summary.body_order_summary`, the numbers the i-PI driver
    sends as extras), its energies named with their unit
    (:func:`~ase_bodyorder.summary.logged_key`): ``body_order_energies_eV`` (K, per
    cell), ``body_order_energies_per_atom_mean_eV`` (K, E^(n)/N),
    ``body_order_energies_per_atom_stderr_eV`` (K, eV/atom; zeros when every atom is
    expanded), ``body_order_shares`` (K), ``body_order_residual_eV``,
    ``body_order_residual_stderr_eV`` (eV per cell), ``body_order_sample_size`` (atoms
    expanded) and ``body_order_order`` (K). Values that are not finite (the first share,
    a standard error from one sampled atom) are written as null.
    """

    def __init__(
        self,
        dyn: MolecularDynamics | None,
        atoms: Atoms,
        logfile: str | os.PathLike[str],
        *,
        model: Model | str | None = None,
        max_order: int = 3,
        r_mbe: float | None = None,
        mode: str = "a",
        sample_atoms: int | None = None,
        sample_seed: int | None = None,
    ) -> None:
        self.dyn = dyn
        self.atoms = atoms
        if isinstance(model, str):
            model = load_model(model)
        self.model = model
        self.max_order = max_order
        self.r_mbe = r_mbe
        self.sample_atoms = sample_atoms
        self._sample_rng = np.random.default_rng(sample_seed)
        self.path = logfile
        with open(self.path, mode):
            pass

    def _expansion(self) -> BodyOrderResult:
        calc = self.atoms.calc
        if self.model is None and isinstance(calc, BodyOrderCalculator):
            calc.get_property("body_order_energies", self.atoms)
            return calc.body_order_for(self.atoms)
        if self.model is None:
            raise ValueError(
                "BodyOrderLogger needs model= unless the atoms use a BodyOrderCalculator"
            )
        sampling: dict[str, Any] = {}
        if self.sample_atoms is not None:
            seed = int(self._sample_rng.integers(2**63))
            sampling = {"sample_atoms": self.sample_atoms, "seed": seed}
        return decompose(
            self.atoms, self.model, max_order=self.max_order, r_mbe=self.r_mbe, **sampling
        )

    def __call__(self) -> None:
        summary = body_order_summary(self._expansion(), len(self.atoms))
        potential = float(self.atoms.get_potential_energy())
        kinetic = float(self.atoms.get_kinetic_energy())
        record: dict[str, Any] = {
            "step": int(getattr(self.dyn, "nsteps", 0)),
            "time_fs": float(self.dyn.get_time() / units.fs) if self.dyn is not None else 0.0,
            "temperature_K": float(self.atoms.get_temperature()),
            "potential_eV": potential,
            "conserved_eV": potential + kinetic,
        }
        for key, value in summary.items():
            record[logged_key(key)] = _finite_or_none(value)
        with open(self.path, "a") as stream:
            stream.write(json.dumps(record) + "\n")


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN: a float that is not finite becomes None (null), also in lists."""
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
