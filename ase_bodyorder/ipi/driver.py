"""An i-PI driver: a model's energy, forces and virial, with body-order extras.

A driver in i-PI's own style (``ipi.pes``): this file is a plugin for i-PI's client,

    i-pi-py_driver -u -a ADDRESS -m custom -P <path of this file> \\
        -o template=init.extxyz,model=h-morse-atm,order=3,stride=5,r_mbe=2.0

(``ase_bodyorder.ipi.driver_plugin_path()`` gives the path), and the class behind
``ase-bodyorder driver``, whose client exits when the server goes away. Imports are
absolute so that i-PI can load the file on its own.

The driver is a subclass of i-PI's ``ASEDriver`` (``ipi.pes._ase``), which reads the
template (``check_parameters``) and converts the energy, forces and stress to i-PI's
atomic units and virial (``post_process``, in i-PI's electronvolt: the potential i-PI
reports is the model's energy). What is ours: the calculator (a
:class:`~ase_bodyorder.BodyOrderCalculator` of a model), the stride, and the extras.
Three of ``ASEDriver``'s steps are replaced. ``convert_units``: it turns bohr into i-PI's
"angstrom" (1.4e-8 off ASE's), but i-PI reads the template and writes its extxyz
trajectories in its "ase" units (ASE's constants); this driver uses those, so that it
sees the positions i-PI writes. ``compute_structure``: it asks the calculator for a
stress, which a cluster has not (and ``post_process`` fails on the zeros it puts in its
place: shape (9,), not Voigt's (6,) nor (3, 3)); this driver asks for the stress of a
periodic cell only, and gives ``post_process`` a zero Voigt stress for a cluster. And
``compute``: it takes each structure of a batch as a step of its own, where this one
counts the batch as one step (below). i-PI's force unit is 1e-7 off its energy per
length in these units: the forces are the energy's gradient to that.

Every ``stride``-th step the driver expands the energy into body orders 1..``order``
and returns the result as JSON extras (see :mod:`ase_bodyorder.ipi.extras`); between
those steps it computes energy and forces only, and the extras carry the same keys with
NaN values. A step is one call of :meth:`BodyOrderDriver.compute`: a single structure,
or the list of structures of a batched request (all beads of a path-integral step when
i-PI's ``batch_size`` equals the number of beads), which are then expanded together.

The expansion is one :class:`~ase_bodyorder.ExpansionSettings` (``settings=``, as the
runner's drivers get it), or its parameters one by one as above. With
``sample_atoms=m`` (and optionally ``sample_seed``) each expanded structure expands only
m atoms drawn at random (a new sample per structure, from a generator seeded once), and
the extras carry estimates of E^(n)/N with their standard errors
(``body_order_energies_per_atom_mean``, ``body_order_energies_per_atom_stderr``).
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ase_bodyorder.calculator import BodyOrderCalculator
from ase_bodyorder.decompose import plan_for
from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.ipi.extras import expansion_extras, placeholder_extras
from ase_bodyorder.models import DEFAULT_MD_MODEL, resolve_model
from ase_bodyorder.settings import ExpansionSettings

try:
    from ipi.pes._ase import ASEDriver
    from ipi.utils.units import unit_to_user
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("the i-PI driver needs i-PI: pip install 'ase-bodyorder[ipi]'") from error

if TYPE_CHECKING:
    from ase_bodyorder.runs import DriverSettings

__DRIVER_NAME__ = "bodyorder"
__DRIVER_CLASS__ = "BodyOrderDriver"

__all__ = ["BodyOrderDriver"]

#: the stress of a structure without one (a cluster), in Voigt order (eV/Angstrom^3)
_NO_STRESS = np.zeros(6)


class BodyOrderDriver(ASEDriver):
    """i-PI driver for a model of :mod:`ase_bodyorder`, with body-order extras.

    On i-PI's command line the parameters are ``-o key=value,...``.

    Parameters
    ----------
    template
        Structure file (any format ASE reads) giving the species, in i-PI's atom order,
        and the periodicity.
    model
        A model spec (:func:`~ase_bodyorder.resolve_model`): a registered name (``ase-bodyorder
        models``), a plug-in, or a MACE ``.model`` / metatomic ``.pt`` file.
    order
        Truncation order K of the expansion (>= 1).
    stride
        Expand every ``stride``-th step (>= 1); the first step is always expanded.
    r_mbe
        Radius (Angstrom) of each atom's expansion; required for a periodic template,
        and smaller than the narrowest width of the cell.
    threads
        torch threads (1 is fastest on a loaded machine).
    first_call
        Value of the step counter at the first step (a restarted run passes the step it
        restarts from, so that the stride stays aligned with i-PI's steps).
    sample_atoms
        Atom-sampled expansion: expand only this many atoms m (1..N) of each expanded
        structure, drawn uniformly without replacement, and report estimates of
        E^(n)/N with standard errors (``docs/science.md`` section 9); ``None``: every
        atom. The cost per expansion scales with m, not N.
    sample_seed
        Seed (>= 0) of the generator of the samples, seeded once when the driver starts
        (``None``: fresh entropy). A restarted run with the same seed repeats the
        sequence of samples from its start, not where the earlier run stopped.
    settings
        The expansion as one :class:`~ase_bodyorder.ExpansionSettings` (or its
        dictionary, or JSON): its order, stride, r_mbe, sample_atoms and seed replace
        the parameters above (``order`` None: 3), and its other fields (screening,
        precision, limits) reach the calculator. The driver holds the settings it uses
        as ``settings``.
    verbose
        Passed to i-PI's base class.
    """

    def __init__(
        self,
        template,
        model=DEFAULT_MD_MODEL,
        order=3,
        stride=1,
        r_mbe=None,
        threads=1,
        first_call=0,
        verbose=False,
        sample_atoms=None,
        sample_seed=None,
        settings=None,
    ):
        self.settings = settings
        self.model_name = model
        self.order = order
        self.stride = stride
        self.r_mbe = r_mbe
        self.threads = threads
        self.first_call = first_call
        self.sample_atoms = sample_atoms
        self.sample_seed = sample_seed
        self.n_calls = 0
        super().__init__(template, verbose=verbose)

    @classmethod
    def from_settings(cls, settings: DriverSettings, template=None) -> BodyOrderDriver:
        """The driver of a run's :class:`~ase_bodyorder.runs.DriverSettings` (model,
        expansion, threads, first step), on ``template`` (default: the settings')."""
        return cls(
            str(settings.template if template is None else template),
            model=settings.model,
            threads=settings.threads,
            first_call=settings.first_call,
            settings=settings.expansion,
        )

    def check_parameters(self):
        """Validate the parameters, read the template (i-PI's ``ASEDriver``), load the
        model, plan once, and build the calculator."""
        given = self._take_settings(self.settings) if _given(self.settings) else None
        self.order = _integer("order", self.order, minimum=1)
        self.stride = _integer("stride", self.stride, minimum=1, what="expand every stride-th step")
        self.threads = _integer("threads", self.threads, minimum=1)
        self.first_call = _integer("first_call", self.first_call, minimum=0)
        if _given(self.sample_atoms):
            self.sample_atoms = _integer(
                "sample_atoms", self.sample_atoms, minimum=1, what="atoms expanded per structure"
            )
        else:
            self.sample_atoms = None
        if _given(self.sample_seed):
            self.sample_seed = _integer("sample_seed", self.sample_seed, minimum=0)
        else:
            self.sample_seed = None
        torch.set_num_threads(self.threads)
        model = resolve_model(str(self.model_name))
        path = Path(str(self.template))
        if not path.is_file():
            raise BodyOrderError(f"template structure file {str(path)!r} not found")
        super().check_parameters()  # reads the template into self.template_ase
        model.check_species(self.template_ase.numbers)
        self.periodic = bool(self.template_ase.pbc.any())
        if _given(self.r_mbe):
            self.r_mbe = float(self.r_mbe)
        elif self.periodic:
            raise BodyOrderError(
                f"the template {path.name} is periodic: give r_mbe (Angstrom), smaller than "
                "the narrowest width of the cell"
            )
        else:
            self.r_mbe = None
        n_atoms = len(self.template_ase)
        if self.sample_atoms is not None and self.sample_atoms > n_atoms:
            raise BodyOrderError(
                f"sample_atoms={self.sample_atoms} is larger than the template's {n_atoms} "
                f"atoms: it must be 1..{n_atoms}"
            )
        # fails early on a bad r_mbe, order or budget, with the library's message
        centres = None if self.sample_atoms is None else np.arange(self.sample_atoms)
        plan_for(self.template_ase, model, max_order=self.order, r_mbe=self.r_mbe, centres=centres)
        self.settings = (given or ExpansionSettings()).replace(
            order=self.order,
            r_mbe=self.r_mbe,
            stride=self.stride,
            sample_atoms=self.sample_atoms,
            seed=self.sample_seed,
        )
        # the driver decides which steps expand: the calculator expands on request
        self.ase_calculator = BodyOrderCalculator(model, settings=self.settings.replace(stride=0))

    @property
    def calculator(self) -> BodyOrderCalculator:
        """The :class:`~ase_bodyorder.BodyOrderCalculator` that evaluates each structure."""
        return self.ase_calculator

    def _take_settings(self, settings) -> ExpansionSettings:
        """The expansion's parameters from one :class:`~ase_bodyorder.ExpansionSettings`
        (or its dictionary, or that as JSON: ``-o settings='{"order": 3, ...}'``);
        returns the settings."""
        if isinstance(settings, str):
            try:
                settings = json.loads(settings)
            except json.JSONDecodeError as error:
                raise BodyOrderError(f"settings is not JSON ({error}): {settings!r}") from None
        if isinstance(settings, dict):
            settings = ExpansionSettings.from_dict(settings)
        if not isinstance(settings, ExpansionSettings):
            raise BodyOrderError(f"settings must be ExpansionSettings, got {settings!r}")
        self.order = 3 if settings.order is None else settings.order
        self.stride = settings.stride
        self.r_mbe = settings.r_mbe
        self.sample_atoms = settings.sample_atoms
        self.sample_seed = settings.seed
        return settings

    def expansion_due(self, call: int) -> bool:
        """Whether step ``call`` (the driver's step counter) is expanded."""
        return (call - self.first_call) % self.stride == 0

    def compute(self, cell, pos):
        """One step: a single structure, or the lists of a batched request (atomic units).

        Returns ``(pot, force, vir, extras)`` or a list of them, in atomic units
        (Hartree, Hartree/bohr, Hartree); the extras are a JSON string (eV).
        """
        batched = isinstance(cell, list | tuple)
        if batched and (not isinstance(pos, list | tuple) or len(pos) != len(cell)):
            raise ValueError("batched mode needs lists of cells and positions of equal length")
        call = self.first_call + self.n_calls
        expand = self.expansion_due(call)
        pairs = zip(cell, pos, strict=True) if batched else [(cell, pos)]
        results = [self._evaluate(c, p, expand, call) for c, p in pairs]
        self.n_calls += 1
        return results if batched else results[0]

    def compute_structure(self, cell, pos):
        """One structure as one step (i-PI's single-structure interface)."""
        return self.compute(cell, pos)

    def convert_units(self, cell, pos):
        """i-PI's cell (bohr, vectors as columns) and positions (bohr) in Angstrom (cell
        vectors as rows), in i-PI's "ase" units: those of its extxyz files."""
        cell = unit_to_user("length", "ase", np.asarray(cell, dtype=float).reshape(3, 3).T)
        return cell, unit_to_user("length", "ase", np.asarray(pos, dtype=float))

    def _atoms(self, cell, pos):
        """i-PI's cell (bohr, vectors as columns) and positions (bohr) as ``ase.Atoms``."""
        cell, positions = self.convert_units(cell, pos)
        positions = np.asarray(positions, dtype=float).reshape(-1, 3)
        atoms = self.template_ase.copy()
        if len(positions) != len(atoms):
            raise BodyOrderError(f"i-PI sent {len(positions)} atoms, the template has {len(atoms)}")
        atoms.cell[:] = cell
        atoms.positions[:] = positions
        return atoms

    def _evaluate(self, cell, pos, expand: bool, call: int):
        """Energy, forces and virial of one structure in atomic units (i-PI's
        ``post_process``), and its extras (eV)."""
        atoms = self._atoms(cell, pos)
        calc = self.calculator
        if expand:
            calc.get_property("body_order_energies", atoms)
        properties = {
            "energy": calc.get_property("energy", atoms),
            "forces": calc.get_property("forces", atoms),
            "stress": calc.get_property("stress", atoms) if self.periodic else _NO_STRESS,
        }
        pot, force, virial, _ = self.post_process(properties, atoms)
        if expand:
            extras = expansion_extras(calc.body_order, len(atoms), call)
        else:
            extras = placeholder_extras(self.order, call)
        # i-PI's post_process flattens a Voigt stress's virial: (3, 3) as before
        return pot, force, np.reshape(virial, (3, 3)), json.dumps(extras)


def _given(value) -> bool:
    """Whether an optional parameter was given (i-PI's ``-o key=None`` reads ``None`` or
    the string ``"None"``)."""
    return value is not None and not (isinstance(value, str) and value.strip() == "None")


def _integer(name: str, value, *, minimum: int, what: str = "") -> int:
    """``value`` as an int >= ``minimum``, or a :class:`BodyOrderError` naming it."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not (integral or (isinstance(value, float) and value.is_integer())):
        raise BodyOrderError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        reason = f" ({what})" if what else ""
        raise BodyOrderError(f"{name} must be >= {minimum}{reason}, got {value!r}")
    return int(value)
