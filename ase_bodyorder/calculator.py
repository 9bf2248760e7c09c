"""The ASE calculator: a model's energy and forces, plus its many-body expansion."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from .decompose import BodyOrderResult, decompose
from .expansion import BodyOrderError
from .models import Model, SystemResult, as_model
from .precision import evaluation_model
from .settings import ExpansionSettings

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
    "body_order_energies_per_atom_mean",  # (K,) E^(n)/N (atom sampling: estimate), eV
    "body_order_energies_per_atom_stderr",  # (K,) its standard error (0: all atoms), eV
)


#: the truncation order of a calculator given none
DEFAULT_ORDER = 3
#: the calculator's names of two expansion settings (kept from before the settings)
_CALCULATOR_NAMES = {"order": "max_order", "seed": "sample_seed"}
#: the calculator's own parameters besides the settings
_FLAGS = ("body_order_forces", "truncated_potential")


class BodyOrderCalculator(Calculator):
    """Energy, forces and stress of a model, with its body-order decomposition.

    Parameters
    ----------
    model
        A :class:`~ase_bodyorder.models.Model`, or a model spec
        (:func:`~ase_bodyorder.resolve_model`: a registered name, a plug-in, a file).
    settings
        The expansion's settings (:class:`~ase_bodyorder.ExpansionSettings`, default
        order 3); the keywords below that are given replace their values. The
        calculator holds them (:attr:`settings`) and mirrors them in ``parameters``,
        where ``order`` is called ``max_order`` and ``seed`` ``sample_seed``.
    max_order
        Truncation order K of the expansion (``None`` in ``settings``: N for a cluster,
        3 for a periodic cell).
    r_mbe
        Radius (Angstrom) of each atom's expansion; required for periodic systems,
        ``None`` for a cluster means the whole cluster.
    stride
        Compute the expansion for every ``stride``-th new structure (1: always; 0: only when
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
    max_memory_GiB
        Refuse expansions estimated to need more memory (default: half the available).
    sample_atoms
        Atom-sampled expansion (``docs/science.md`` section 9): expand only this many
        atoms m per structure, drawn uniformly without replacement, and report
        estimates (see :class:`~ase_bodyorder.BodyOrderResult`); ``None``: every atom.
        Then ``body_order_energies`` is N x the sample mean, the per-atom terms
        ``body_order_energies_per_atom`` are NaN for the atoms not sampled, and neither
        ``body_order_forces`` nor ``truncated_potential`` is available.
    sample_seed
        Seed of the generator (``numpy.random.default_rng``), seeded once, from which
        each expanded structure draws the seed of its own sample (recorded as the
        result's ``sample_seed``): the sequence of samples is reproducible. Setting it
        again (``calc.set(sample_seed=...)``) restarts the sequence.
    precision, max_roundoff_eV
        Mixed precision, as in :func:`~ase_bodyorder.decompose`: ``"float32"`` evaluates
        the sub-clusters in float32 (energy, forces and stress stay the model's float64);
        an order's round-off estimate above ``max_roundoff_eV`` is an error (``None``:
        a warning above 0.1 eV).

    ``body_order_energies_per_atom_mean`` and ``body_order_energies_per_atom_stderr``
    (K,), eV, are always given: E^(n)/N and its standard error from atom sampling (zeros
    when every atom is expanded).

    Results are tied to the structure they were computed for. :attr:`body_order` (a
    :class:`~ase_bodyorder.BodyOrderResult`) is the expansion of the structure of the
    last calculation, or ``None`` when that calculation did not expand (stride) or
    failed: never the expansion of an earlier geometry. Asking a body-order property
    at a geometry already evaluated computes only the expansion (the model's energy and
    forces are reused), and the stride counts structures, not calls.
    """

    implemented_properties = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
        *BODY_ORDER_PROPERTIES,
    ]
    #: ``set`` with a changed parameter drops the results (ASE keeps them by default, so
    #: a new ``max_order`` or ``sample_atoms`` would return the old expansion of the
    #: same structure)
    discard_results_on_any_change = True

    def __init__(
        self,
        model: Model | str,
        *,
        settings: ExpansionSettings | None = None,
        max_order: int | None = None,
        r_mbe: float | None = None,
        stride: int | None = None,
        body_order_forces: bool = False,
        truncated_potential: bool = False,
        screening: bool | None = None,
        max_subclusters: int | None = None,
        min_distance: float | None = None,
        max_memory_GiB: float | None = None,
        sample_atoms: int | None = None,
        sample_seed: int | None = None,
        precision: str | None = None,
        max_roundoff_eV: float | None = None,
    ) -> None:
        super().__init__()
        self.model = as_model(model)
        given = {
            "max_order": max_order,
            "r_mbe": r_mbe,
            "stride": stride,
            "screening": screening,
            "max_subclusters": max_subclusters,
            "min_distance": min_distance,
            "max_memory_GiB": max_memory_GiB,
            "sample_atoms": sample_atoms,
            "sample_seed": sample_seed,
            "precision": precision,
            "max_roundoff_eV": max_roundoff_eV,
        }
        given = {name: value for name, value in given.items() if value is not None}
        base = settings if settings is not None else ExpansionSettings(order=DEFAULT_ORDER)
        flags = {"body_order_forces": body_order_forces, "truncated_potential": truncated_potential}
        self._use(base, given, flags)
        #: the generator each expanded structure draws the seed of its sample from
        self._sample_rng = np.random.default_rng(self._settings.seed)
        self._body_order: BodyOrderResult | None = None
        self._body_order_atoms: Atoms | None = None  # the structure _body_order belongs to
        self._system: SystemResult | None = None  # the model's result on self.atoms
        #: structures evaluated so far (the stride counts these)
        self.n_structures = 0

    @property
    def body_order(self) -> BodyOrderResult | None:
        """The expansion of the last calculated structure, or ``None`` (see class doc)."""
        if self._body_order is None or not _same_structure(self._body_order_atoms, self.atoms):
            return None
        return self._body_order

    def body_order_for(self, atoms: Atoms) -> BodyOrderResult:
        """The expansion of ``atoms``; an error unless it was computed for this structure."""
        body = self.body_order
        if body is None:
            reason = (
                "none has been computed yet"
                if self.n_structures == 0
                else "the last calculation did not expand its structure (stride "
                f"{self.parameters['stride']}: every n-th structure, 0: on request) or failed"
            )
            raise BodyOrderError(f"no current body-order result to store: {reason}")
        assert self._body_order_atoms is not None  # set with the current result
        if not _same_structure(self._body_order_atoms, atoms):
            raise BodyOrderError(
                "the calculator's body-order result belongs to another structure "
                f"({len(self._body_order_atoms)} atoms, other positions, cell or species) "
                f"than the {len(atoms)} atoms given"
            )
        return body

    def reset(self) -> None:
        super().reset()
        self._system = None

    @property
    def settings(self) -> ExpansionSettings:
        """The expansion's settings (:class:`~ase_bodyorder.ExpansionSettings`)."""
        return self._settings

    def _use(self, base: object, options: dict[str, Any], flags: dict[str, Any]) -> None:
        """Hold ``base`` (:class:`~ase_bodyorder.ExpansionSettings`) with ``options`` (the
        calculator's names) and ``flags`` applied as the parameters, once every check
        passed: a refused change leaves the parameters as they were. The one path of
        :meth:`__init__` and :meth:`set`."""
        if not isinstance(base, ExpansionSettings):
            raise BodyOrderError(f"settings must be ExpansionSettings, got {type(base).__name__}")
        settings = base.with_options(options, _CALCULATOR_NAMES)
        own = {k: bool(flags.get(k, self.parameters.get(k, False))) for k in _FLAGS}
        if settings.sample_atoms is not None and any(own.values()):
            raise BodyOrderError(
                "atom sampling (sample_atoms) gives estimates of E^(n)/N, not forces: "
                "it cannot be combined with truncated_potential or body_order_forces"
            )
        evaluation_model(self.model, settings.precision)  # a model that cannot: an error now
        self._settings = settings
        values = settings.to_dict()
        self.parameters.update(own)
        self.parameters.update({_CALCULATOR_NAMES.get(k, k): v for k, v in values.items()})

    def set(self, **kwargs: Any) -> dict[str, Any]:
        """Change parameters (the names of :meth:`__init__`, ``settings`` included: then
        the keywords given replace its values), checked as :meth:`__init__` checks them;
        a refused change is a :class:`BodyOrderError` and changes nothing. A changed
        parameter drops the results, and a new ``sample_seed`` or ``settings`` starts
        the sequence of samples over."""
        if not kwargs:  # (ase's Calculator.__init__ calls set() before the settings exist)
            return {}
        restart = "sample_seed" in kwargs or "settings" in kwargs
        base = kwargs.pop("settings", self._settings)
        flags = {k: kwargs.pop(k) for k in _FLAGS if k in kwargs}
        previous = dict(self.parameters)
        self._use(base, kwargs, flags)
        changed = {k: v for k, v in self.parameters.items() if previous.get(k) != v}
        if changed:
            self.reset()  # a changed parameter drops the results
        if restart:  # the sequence of samples starts over
            self._sample_rng = np.random.default_rng(self._settings.seed)
            self.reset()
        return changed

    def _expansion_due(self, properties: Iterable[str], new_structure: bool) -> bool:
        p = self.parameters
        if p["truncated_potential"] or any(name in BODY_ORDER_PROPERTIES for name in properties):
            return True
        # the stride counts structures: n_structures is already this structure's number
        return new_structure and p["stride"] > 0 and (self.n_structures - 1) % p["stride"] == 0

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        # drop the old expansion first: a failure below must not leave it looking current
        self._body_order = self._body_order_atoms = None
        reuse = not system_changes and self._system is not None and "energy" in self.results
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        p = self.parameters
        if not reuse:
            self.n_structures += 1
        due = self._expansion_due(properties, new_structure=not reuse)
        periodic = bool(atoms.pbc.any())
        self.model.check_species(atoms.numbers)
        if reuse:  # same structure: only the expansion is missing
            assert self._system is not None  # part of reuse
            system = self._system
        else:
            self._system = None
            system = self.model.system(atoms, forces=True, stress=periodic)
            self._system = system
        results: dict[str, Any] = {"energy": system.energy, "free_energy": system.energy}
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
            own = self._settings
            if own.sample_atoms is not None:
                if want_forces:
                    raise BodyOrderError(
                        "body_order_forces are not available with atom sampling "
                        "(sample_atoms): the forces need every atom's expansion"
                    )
                # a new sample per expanded structure, from the generator seeded once
                own = own.replace(seed=int(self._sample_rng.integers(2**63)))
            body = decompose(atoms, self.model, settings=own, forces=want_forces, system=system)
            self._body_order, self._body_order_atoms = body, atoms.copy()
            results.update(body.calculator_results())
            if p["truncated_potential"]:
                results["energy"] = results["free_energy"] = body.truncated_energy_eV
                results["forces"] = body.truncated_forces_eV_per_A
                results.pop("stress", None)
                if body.energies_per_atom_eV is not None:
                    results["energies"] = body.energies_per_atom_eV.sum(axis=1)
                else:
                    results.pop("energies", None)
        self.results = results


def _same_structure(a: Atoms | None, b: Atoms | None) -> bool:
    """Same species, positions, cell and periodicity (exactly)."""
    if a is None or b is None or len(a) != len(b):
        return False
    return (
        np.array_equal(a.numbers, b.numbers)
        and np.array_equal(a.positions, b.positions)
        and np.array_equal(np.asarray(a.cell), np.asarray(b.cell))
        and np.array_equal(a.pbc, b.pbc)
    )


def store_body_order_results(
    atoms: Atoms, source: BodyOrderCalculator | BodyOrderResult | None = None
) -> Atoms:
    """Write body-order results into ``atoms.info`` / ``atoms.arrays`` (extxyz keeps them).

    ``source``: a :class:`BodyOrderCalculator` (default: ``atoms.calc``), whose result
    must belong to exactly this structure, or a :class:`~ase_bodyorder.BodyOrderResult`
    with as many atoms. A stale or foreign result is an error, never stored.

    ``info``: ``body_order_energies`` (K,), ``body_order_residual``,
    ``body_order_total_energy``, ``body_order_roundoff`` (K,),
    ``body_order_energies_per_atom_mean`` and ``body_order_energies_per_atom_stderr``
    (K,), all eV, and for an atom-sampled result ``body_order_sample_indices`` (m,) and
    ``body_order_sample_seed``;
    ``arrays``: ``body_order_energies_per_atom`` (N, K) and ``body_order_forces_<n>``
    (N, 3) per order n (eV/Angstrom), when present (per-atom terms of atoms not sampled
    are NaN). extxyz writes per-atom arrays with 8
    decimals (1e-8 eV); an ASE trajectory keeps full precision.
    """
    if source is None:
        source = atoms.calc
    if isinstance(source, BodyOrderCalculator):
        body = source.body_order_for(atoms)
    elif isinstance(source, BodyOrderResult):
        body = source
        per_atom = body.energies_per_atom_eV
        if per_atom is not None and len(per_atom) != len(atoms):
            raise BodyOrderError(
                f"the body-order result has {len(per_atom)} atoms, the structure {len(atoms)}"
            )
    else:
        raise BodyOrderError(
            "no body-order result to store: give a BodyOrderResult or atoms whose calculator "
            f"is a BodyOrderCalculator (got {type(source).__name__})"
        )
    atoms.info["body_order_energies"] = np.asarray(body.energies_eV)
    atoms.info["body_order_residual"] = float(body.residual_eV)
    atoms.info["body_order_total_energy"] = float(body.energy_eV)
    atoms.info["body_order_roundoff"] = np.asarray(body.roundoff_eV)
    summary = body.calculator_results()
    for name in ("body_order_energies_per_atom_mean", "body_order_energies_per_atom_stderr"):
        if name in summary:
            atoms.info[name] = summary[name]
    if body.sampled:
        assert body.sample_seed is not None  # an atom-sampled result records its seed
        atoms.info["body_order_sample_indices"] = np.asarray(body.sample_indices)
        atoms.info["body_order_sample_seed"] = int(body.sample_seed)
    if body.energies_per_atom_eV is not None:
        atoms.arrays["body_order_energies_per_atom"] = np.asarray(body.energies_per_atom_eV)
    if body.forces_eV_per_A is not None:
        for n, forces in enumerate(body.forces_eV_per_A, start=1):
            atoms.arrays[f"body_order_forces_{n}"] = np.asarray(forces)
    return atoms


def read_body_order_results(atoms: Atoms) -> dict[str, Any]:
    """Read back what :func:`store_body_order_results` wrote, with the calculator's names."""
    if "body_order_energies" not in atoms.info:
        raise BodyOrderError("these atoms carry no body-order results")
    energies = np.atleast_1d(np.asarray(atoms.info["body_order_energies"], dtype=float))
    k = len(energies)
    out: dict[str, Any] = {
        "body_order_energies": energies,
        "body_order_residual": float(atoms.info["body_order_residual"]),
        "body_order_total_energy": float(atoms.info["body_order_total_energy"]),
        "body_order_roundoff": np.atleast_1d(np.asarray(atoms.info["body_order_roundoff"])),
    }
    for name in ("body_order_energies_per_atom_mean", "body_order_energies_per_atom_stderr"):
        if name in atoms.info:
            out[name] = np.atleast_1d(np.asarray(atoms.info[name], dtype=float))
    if "body_order_sample_indices" in atoms.info:
        indices = np.atleast_1d(np.asarray(atoms.info["body_order_sample_indices"]))
        out["body_order_sample_indices"] = indices.astype(np.int64)
        out["body_order_sample_seed"] = int(atoms.info["body_order_sample_seed"])
    if "body_order_energies_per_atom" in atoms.arrays:
        per_atom = np.asarray(atoms.arrays["body_order_energies_per_atom"], dtype=float)
        out["body_order_energies_per_atom"] = per_atom.reshape(len(atoms), k)
    if "body_order_forces_1" in atoms.arrays:
        out["body_order_forces"] = np.stack(
            [atoms.arrays[f"body_order_forces_{n}"] for n in range(1, k + 1)]
        )
    return out
