"""The ASE calculator: a model's energy and forces, plus its many-body expansion."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from .decompose import BodyOrderResult, decompose
from .expansion import DEFAULT_MAX_SUBCLUSTERS, BodyOrderError
from .models import Model, load_model

__all__ = [
    "BODY_ORDER_PROPERTIES",
    "BodyOrderCalculator",
    "read_body_order_results",
    "store_body_order_results",
]

#: names of the body-order results in ``calc.results`` (all eV or eV/Angstrom)
BODY_ORDER_PROPERTIES = (
    "body_order_energies",  # (K,) E^(n), eV
    "body_order_energies_per_atom",  # (N, K) e_i^(n), eV
    "body_order_forces",  # (K, N, 3) F^(n), eV/Angstrom, when requested
    "body_order_residual",  # E - sum_n E^(n), eV
    "body_order_roundoff",  # (K,) round-off estimate of each order, eV
)


class BodyOrderCalculator(Calculator):
    """Energy, forces and stress of a model, with its body-order decomposition.

    Parameters
    ----------
    model
        A :class:`~ase_bodyorder.models.Model`, or the name of a registered model.
    max_order
        Truncation order K of the expansion.
    r_mbe
        Radius (Angstrom) of each atom's expansion; required for periodic systems,
        ``None`` for a cluster means the whole cluster.
    stride
        Compute the expansion on every ``stride``-th calculation (1: always; 0: only when
        a body-order property is requested). Energy and forces are computed every time.
    body_order_forces
        Also compute forces per order (``results["body_order_forces"]``, shape (K, N, 3)).
    truncated_potential
        Report the K-truncated energy ``E_{<=K}`` and forces ``F_{<=K}`` as ``energy``
        and ``forces`` (to drive dynamics with the truncated model); implies the
        expansion at every step. No stress is available then.
    screening
        Use the model's cutoff for exact screening of vanishing sub-clusters.
    max_subclusters
        Refuse expansions needing more distinct sub-clusters than this.
    min_distance
        Atoms closer than this (Angstrom) are an error.

    The last full result is kept in :attr:`body_order` (a
    :class:`~ase_bodyorder.BodyOrderResult`).
    """

    implemented_properties = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
        *BODY_ORDER_PROPERTIES,
    ]

    def __init__(
        self,
        model: Model | str,
        *,
        max_order: int = 3,
        r_mbe: float | None = None,
        stride: int = 1,
        body_order_forces: bool = False,
        truncated_potential: bool = False,
        screening: bool = True,
        max_subclusters: int = DEFAULT_MAX_SUBCLUSTERS,
        min_distance: float = 0.3,
    ):
        super().__init__()
        self.model = load_model(model) if isinstance(model, str) else model
        if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 0:
            raise BodyOrderError(
                f"stride must be a non-negative integer (0: only on request), got {stride!r}"
            )
        if isinstance(max_order, bool) or int(max_order) != max_order or max_order < 1:
            raise BodyOrderError(f"max_order must be a positive integer, got {max_order!r}")
        self.parameters.update(
            max_order=int(max_order),
            r_mbe=r_mbe,
            stride=int(stride),
            body_order_forces=bool(body_order_forces),
            truncated_potential=bool(truncated_potential),
            screening=bool(screening),
            max_subclusters=int(max_subclusters),
            min_distance=float(min_distance),
        )
        self.body_order: BodyOrderResult | None = None
        self.n_calculations = 0

    def set(self, **kwargs):
        unknown = set(kwargs) - set(self.parameters)
        if unknown:
            raise BodyOrderError(
                f"unknown parameter(s) {sorted(unknown)}; known: {sorted(self.parameters)}"
            )
        return super().set(**kwargs)

    def _expansion_due(self, properties) -> bool:
        p = self.parameters
        if p["truncated_potential"] or any(name in BODY_ORDER_PROPERTIES for name in properties):
            return True
        return p["stride"] > 0 and self.n_calculations % p["stride"] == 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        p = self.parameters
        due = self._expansion_due(properties)
        self.n_calculations += 1
        periodic = bool(atoms.pbc.any())
        self.model.check_species(atoms.numbers)
        system = self.model.system(atoms, forces=True, stress=periodic)
        results = {"energy": system.energy, "free_energy": system.energy}
        if system.energies is not None:
            results["energies"] = system.energies
        if system.forces is not None:
            results["forces"] = system.forces
        if system.stress is not None:
            results["stress"] = system.stress
        if due:
            want_forces = (
                p["body_order_forces"]
                or p["truncated_potential"]
                or "body_order_forces" in properties
            )
            body = decompose(
                atoms,
                self.model,
                max_order=p["max_order"],
                r_mbe=p["r_mbe"],
                forces=want_forces,
                screening=p["screening"],
                max_subclusters=p["max_subclusters"],
                min_distance=p["min_distance"],
                system=system,
            )
            self.body_order = body
            results.update(_body_order_results(body))
            if p["truncated_potential"]:
                results["energy"] = results["free_energy"] = body.truncated_energy_eV
                results["forces"] = body.truncated_forces_eV_per_A
                results.pop("stress", None)
                if body.energies_per_atom_eV is not None:
                    results["energies"] = body.energies_per_atom_eV.sum(axis=1)
                else:
                    results.pop("energies", None)
        self.results = results


def _body_order_results(body: BodyOrderResult) -> dict:
    out = {
        "body_order_energies": body.energies_eV,
        "body_order_residual": body.residual_eV,
        "body_order_roundoff": body.roundoff_eV,
    }
    if body.energies_per_atom_eV is not None:
        out["body_order_energies_per_atom"] = body.energies_per_atom_eV
    if body.forces_eV_per_A is not None:
        out["body_order_forces"] = body.forces_eV_per_A
    return out


def store_body_order_results(atoms, source: BodyOrderCalculator | BodyOrderResult | None = None):
    """Write body-order results into ``atoms.info`` / ``atoms.arrays`` (extxyz keeps them).

    ``info``: ``body_order_energies`` (K,), ``body_order_residual``,
    ``body_order_total_energy``, ``body_order_roundoff`` (K,), all eV;
    ``arrays``: ``body_order_energies_per_atom`` (N, K) and ``body_order_forces_<n>``
    (N, 3) per order n (eV/Angstrom), when present. extxyz writes per-atom arrays with 8
    decimals (1e-8 eV); an ASE trajectory keeps full precision.
    """
    if source is None:
        source = atoms.calc
    body = source.body_order if isinstance(source, BodyOrderCalculator) else source
    if body is None:
        raise BodyOrderError("no body-order result to store: none has been computed yet")
    atoms.info["body_order_energies"] = np.asarray(body.energies_eV)
    atoms.info["body_order_residual"] = float(body.residual_eV)
    atoms.info["body_order_total_energy"] = float(body.energy_eV)
    atoms.info["body_order_roundoff"] = np.asarray(body.roundoff_eV)
    if body.energies_per_atom_eV is not None:
        atoms.arrays["body_order_energies_per_atom"] = np.asarray(body.energies_per_atom_eV)
    if body.forces_eV_per_A is not None:
        for n, forces in enumerate(body.forces_eV_per_A, start=1):
            atoms.arrays[f"body_order_forces_{n}"] = np.asarray(forces)
    return atoms


def read_body_order_results(atoms) -> dict:
    """Read back what :func:`store_body_order_results` wrote, with the calculator's names."""
    if "body_order_energies" not in atoms.info:
        raise BodyOrderError("these atoms carry no body-order results")
    energies = np.atleast_1d(np.asarray(atoms.info["body_order_energies"], dtype=float))
    k = len(energies)
    out = {
        "body_order_energies": energies,
        "body_order_residual": float(atoms.info["body_order_residual"]),
        "body_order_total_energy": float(atoms.info["body_order_total_energy"]),
        "body_order_roundoff": np.atleast_1d(np.asarray(atoms.info["body_order_roundoff"])),
    }
    if "body_order_energies_per_atom" in atoms.arrays:
        per_atom = np.asarray(atoms.arrays["body_order_energies_per_atom"], dtype=float)
        out["body_order_energies_per_atom"] = per_atom.reshape(len(atoms), k)
    if "body_order_forces_1" in atoms.arrays:
        out["body_order_forces"] = np.stack(
            [atoms.arrays[f"body_order_forces_{n}"] for n in range(1, k + 1)]
        )
    return out
