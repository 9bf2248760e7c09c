"""Exported metatomic models (``mtt export``/``mtt train`` output: PET, SOAP-BPNN, ...).

:class:`MetatomicModel` evaluates all sub-clusters of an expansion in **one** model call:
the fragments are packed as a disjoint union into a single non-periodic
``metatomic.torch.System`` whose neighbour lists only hold pairs *inside* each fragment,
so no information flows between fragments. Whole structures (periodic or not) go through
metatomic's own neighbour lists (vesin), independently of the packed path.

Loading the model file and reading what it declares (its dtype, energy output, and the
cutoff and layers the expansion's exact screening is told) is
:mod:`ase_bodyorder.models.metatomic_loading`.

metatomic, metatensor and vesin are imported only when a model is created.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ase import Atoms

from ..expansion import BodyOrderError
from .base import AtomicModel, FragmentBatch, SystemResult
from .metatomic_loading import (
    DTYPES,
    dtype_name,
    energy_output_key,
    first_line,
    import_metatomic,
    load_exported_model,
    pet_hops,
    quiet_torchscript,
    screening_parameters,
    to_device,
    wanted_dtype,
)

if TYPE_CHECKING:
    from metatomic.torch import System  # not typed: Any to mypy

__all__ = ["MetatomicModel"]

_NEIGHBOR_SAMPLES = ["first_atom", "second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"]


class MetatomicModel(AtomicModel):
    """An exported metatomic model (``.pt``) as an :class:`AtomicModel`.

    Parameters
    ----------
    path
        The exported model file (``mtt export`` or ``mtt train -o model.pt``).
    extensions_directory
        Where the model's TorchScript extensions live (SOAP-BPNN, ``extensions/`` next
        to the model after ``mtt train``), if they are not installed.
    device
        Torch device, checked against the model's supported devices.
    dtype
        ``None``: the dtype the model declares (``capabilities().dtype``). The other one
        (``"float32"`` for a model exported in float64, or the reverse) casts the
        exported module's parameters and buffers (``module.to(dtype)``) and feeds it
        systems of that dtype; metatomic's check of the declared dtype is skipped (the
        model is called with ``check_consistency=False``), so one isolated atom is
        evaluated on loading and a model that fails in the new dtype is an error naming
        it. (Measured on the shipped PET and SOAP-BPNN models: per-atom energies agree
        with float64 to a few tens of float32 epsilons.)
    variant
        Variant of the ``energy`` output to use (``energy/<variant>``), if any.
    max_atoms_per_call
        Split the packed fragments into model calls of at most this many atoms (whole
        fragments each); ``None``: all fragments in one call. ``"auto"`` (default):
        256 for PET, whose shipped models ran twice as fast in calls of 256 atoms as in
        one call of 4000 atoms (cache effects), and 4096 for other models (SOAP-BPNN:
        25% faster than in calls of 256 atoms, the 3-body expansion of a 64-atom cell
        at r_mbe = 2 Angstrom).
    """

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Copies and pickles reload the model file (ASE copies calculators with it)."""
        return (_reload, (self._init_kwargs,))

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        extensions_directory: str | os.PathLike | None = None,
        device: str | None = "cpu",
        dtype: torch.dtype | str | None = None,
        variant: str | None = None,
        max_atoms_per_call: int | str | None = "auto",
    ) -> None:
        if max_atoms_per_call != "auto" and (
            max_atoms_per_call is not None
            and (
                not isinstance(max_atoms_per_call, int)
                or isinstance(max_atoms_per_call, bool)
                or max_atoms_per_call < 1
            )
        ):
            raise BodyOrderError(
                "max_atoms_per_call must be a positive integer, None or 'auto', "
                f"got {max_atoms_per_call!r}"
            )
        #: what the model is rebuilt from when copied or pickled (TorchScript modules
        #: and the metatomic modules cannot be pickled)
        self._init_kwargs: dict[str, Any] = {
            "path": str(path),
            "extensions_directory": extensions_directory,
            "device": device,
            "dtype": dtype,
            "variant": variant,
            "max_atoms_per_call": max_atoms_per_call,
        }
        mta, mts = import_metatomic()
        self._mta, self._mts = mta, mts
        self.path = Path(path)
        model = load_exported_model(mta, self.path, extensions_directory)

        capabilities = model.capabilities()
        self.dtype = wanted_dtype(self.path, capabilities.dtype, dtype)
        try:
            self.device = torch.device(mta.pick_device(capabilities.supported_devices, device))
        except Exception as exc:
            raise BodyOrderError(
                f"metatomic model {self.path} cannot run on device {device!r}: {first_line(exc)}"
            ) from exc
        self._energy_key = energy_output_key(mta, self.path, capabilities.outputs, variant)
        self._requested_inputs = list(model.requested_inputs(use_new_names=True))
        if self._requested_inputs:
            raise BodyOrderError(
                f"metatomic model {self.path} needs extra inputs "
                f"({', '.join(self._requested_inputs)}), which sub-clusters cannot provide"
            )

        self._model = to_device(model, self.device, self.dtype)
        self._dtype_copies: dict[torch.dtype, MetatomicModel] = {}
        self.capabilities = capabilities
        self.atomic_numbers = frozenset(int(z) for z in capabilities.atomic_types)
        self._nl_options = list(model.requested_neighbor_lists())
        self._nl_cutoffs = [float(o.engine_cutoff("angstrom")) for o in self._nl_options]
        self.interaction_range = float(capabilities.engine_interaction_range("angstrom"))
        self.cutoff, self.interaction_layers = screening_parameters(
            model.module, self.interaction_range, self._nl_cutoffs
        )
        self.max_atoms_per_call: int | None
        if isinstance(max_atoms_per_call, str):  # "auto": the one string accepted above
            is_pet = pet_hops(model.module) is not None
            self.max_atoms_per_call = 256 if is_pet else 4096
        else:
            self.max_atoms_per_call = max_atoms_per_call
        self._isolated: dict[int, float] = {}
        self._nl_calculators: list[Any] | None = None

        self._cell = torch.zeros((3, 3), dtype=self.dtype, device=self.device)
        self._pbc = torch.zeros(3, dtype=torch.bool, device=self.device)
        self._xyz = mts.Labels("xyz", torch.arange(3, device=self.device).reshape(-1, 1))
        self._distance = mts.Labels("distance", torch.zeros((1, 1), dtype=torch.int32))
        self._distance = self._distance.to(device=self.device)
        if self.dtype != DTYPES[capabilities.dtype]:
            self._check_cast(capabilities.dtype)

    def _check_cast(self, declared: str) -> None:
        """Evaluate one isolated atom after casting the model to another dtype."""
        assert self.atomic_numbers is not None  # set from the capabilities on loading
        z = min(self.atomic_numbers)
        try:
            energy = self.isolated_atom_energy(z)
        except Exception as exc:
            raise BodyOrderError(
                f"metatomic model {self.path} (exported in {declared}) cannot run in "
                f"{dtype_name(self.dtype)}: {first_line(exc)}"
            ) from exc
        if not math.isfinite(energy):
            raise BodyOrderError(
                f"metatomic model {self.path} (exported in {declared}) gives a non-finite "
                f"energy in {dtype_name(self.dtype)}"
            )

    def with_dtype(self, dtype: torch.dtype) -> MetatomicModel:
        """This model in ``dtype``: itself, or a copy loaded and cast once (cached)."""
        if dtype == self.dtype:
            return self
        if dtype not in self._dtype_copies:
            kwargs = {**self._init_kwargs, "dtype": dtype_name(dtype)}
            self._dtype_copies[dtype] = _reload(kwargs)
        return self._dtype_copies[dtype]

    def __repr__(self) -> str:
        return (
            f"MetatomicModel({str(self.path)!r}, cutoff={self.cutoff}, "
            f"interaction_layers={self.interaction_layers}, dtype={self.dtype})"
        )

    # ------------------------------------------------------------------ evaluation

    def _run(self, system: System) -> torch.Tensor:
        mta = self._mta
        options = mta.ModelEvaluationOptions(
            length_unit="angstrom",
            outputs={self._energy_key: mta.ModelOutput(unit="eV", sample_kind="atom")},
        )
        # TorchScript's profiling executor re-optimises for the first inputs of every new
        # shape (0.8-2.5 s each for SOAP-BPNN and PET here); sub-cluster batches change
        # shape at every call, and the unoptimised graph is as fast after warm-up
        with quiet_torchscript(), torch.jit.optimized_execution(False):
            outputs = self._model([system], options, check_consistency=False)
        block = outputs[self._energy_key].block()
        values = block.values.reshape(-1)
        atoms = block.samples.column("atom").to(torch.long)
        n_atoms = len(system)
        if values.shape[0] != n_atoms:
            raise BodyOrderError(
                f"metatomic model {self.path} returned {values.shape[0]} per-atom energies "
                f"for {n_atoms} atoms"
            )
        return torch.zeros(n_atoms, dtype=values.dtype, device=values.device).index_add(
            0, atoms, values
        )

    def _packed_system(
        self,
        positions: torch.Tensor,
        numbers: np.ndarray,
        first: torch.Tensor,
        second: torch.Tensor,
    ) -> System:
        """One non-periodic System of many fragments, pairs only inside fragments."""
        mta, mts = self._mta, self._mts
        types = torch.as_tensor(np.asarray(numbers), dtype=torch.int32, device=self.device)
        system = mta.System(types=types, positions=positions, cell=self._cell, pbc=self._pbc)
        vectors = positions[second] - positions[first]
        distances = torch.linalg.vector_norm(vectors.detach(), dim=1)
        for options, cutoff in zip(self._nl_options, self._nl_cutoffs, strict=True):
            keep = distances < cutoff
            if not options.full_list:
                keep &= first < second
            pairs = torch.stack([first[keep], second[keep]], dim=1).to(torch.int32)
            shifts = torch.zeros((pairs.shape[0], 3), dtype=torch.int32, device=self.device)
            neighbors = mts.TensorBlock(
                values=vectors[keep].reshape(-1, 3, 1),
                samples=mts.Labels(
                    _NEIGHBOR_SAMPLES, torch.cat([pairs, shifts], dim=1), assume_unique=True
                ),
                components=[self._xyz],
                properties=self._distance,
            )
            system.add_neighbor_list(options, neighbors)
        return system

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        """Per-atom energies (eV, float64) of all fragments, in one model call.

        (Or one call per ``max_atoms_per_call`` atoms, whole fragments each.)
        Differentiable w.r.t. ``batch.positions``: neighbour vectors are computed from the
        positions (and models such as PET recompute them from positions and pair
        indices), so autograd flows.
        """
        self.check_species(batch.numbers)
        positions = torch.as_tensor(batch.positions)
        numbers = np.asarray(batch.numbers)
        offsets = np.asarray(batch.offsets, dtype=np.int64)
        if positions.shape[0] == 0:
            return torch.zeros(0, dtype=torch.float64)
        positions = positions.to(device=self.device, dtype=self.dtype)
        if not torch.is_grad_enabled():
            # neighbour vectors cannot carry a graph here; metatomic warns otherwise
            positions = positions.detach()
        parts = []
        for f0, f1 in batch.chunks(self.max_atoms_per_call):
            a, b = int(offsets[f0]), int(offsets[f1])
            chunk = FragmentBatch(
                positions=positions[a:b], numbers=numbers[a:b], offsets=offsets[f0 : f1 + 1] - a
            )
            first, second = (
                torch.as_tensor(x, dtype=torch.long, device=self.device)
                for x in chunk.intra_pairs()
            )
            system = self._packed_system(chunk.positions, chunk.numbers, first, second)
            parts.append(self._run(system))
        energies = parts[0] if len(parts) == 1 else torch.cat(parts)
        return energies.to(device="cpu", dtype=torch.float64)

    def _neighbor_calculators(self) -> list[Any]:
        if self._nl_calculators is None:
            with quiet_torchscript():
                import vesin.metatomic  # torch model backend: metatomic (its neighbour lists)

            # skin=0: no Verlet caching, every structure gets a fresh list
            self._nl_calculators = [
                vesin.metatomic.NeighborList(options, "angstrom", skin=0.0)
                for options in self._nl_options
            ]
        return self._nl_calculators

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        """Energy, per-atom energies, forces and (fully periodic cells) stress.

        Through metatomic's own neighbour lists (vesin), as an MD engine would run the
        model. Stress (eV/Angstrom^3, Voigt, ASE sign) only for cells periodic in all
        three directions; otherwise ``stress`` is ``None``.
        """
        self.check_species(atoms.numbers)
        stress = bool(stress and atoms.pbc.all())
        mta = self._mta
        dtype, device = self.dtype, self.device
        types = torch.as_tensor(atoms.numbers, dtype=torch.int32, device=device)
        positions = torch.tensor(atoms.positions, dtype=dtype, device=device)
        pbc = torch.tensor(np.asarray(atoms.pbc, dtype=bool), device=device)
        cell = torch.zeros((3, 3), dtype=dtype, device=device)
        cell[pbc] = torch.tensor(np.asarray(atoms.cell)[atoms.pbc], dtype=dtype, device=device)
        positions.requires_grad_(forces)
        strain = torch.eye(3, dtype=dtype, device=device, requires_grad=stress)
        inputs = [t for t, wanted in ((positions, forces), (strain, stress)) if wanted]
        with torch.enable_grad() if inputs else torch.no_grad():
            system = mta.System(
                types=types,
                positions=positions @ strain if stress else positions,
                cell=cell @ strain if stress else cell,
                pbc=pbc,
            )
            for calculator in self._neighbor_calculators():
                with quiet_torchscript():
                    calculator.add_neighbor_list(system)
            energies = self._run(system)
            energy = energies.sum()
            grads: tuple[torch.Tensor | None, ...] = (None,) * len(inputs)
            if inputs and energy.requires_grad:
                grads = torch.autograd.grad(energy, inputs, allow_unused=True)
        out: dict[str, Any] = {
            "energy": float(energy.detach()),
            "energies": energies.detach().cpu().double().numpy().copy(),
        }
        if forces:
            grad = grads[0]
            out["forces"] = (
                np.zeros((len(atoms), 3)) if grad is None else -grad.detach().cpu().double().numpy()
            )
        if stress:
            grad = grads[-1]
            virial = np.zeros((3, 3)) if grad is None else grad.detach().cpu().double().numpy()
            virial = 0.5 * (virial + virial.T) / atoms.get_volume()
            out["stress"] = virial[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return SystemResult(**out)

    def isolated_atom_energy(self, z: int) -> float:
        """The model's energy (eV) of one isolated atom of element ``z`` (cached)."""
        z = int(z)
        if z not in self._isolated:
            self._isolated[z] = self.system(Atoms(numbers=[z]), forces=False).energy
        return self._isolated[z]


def _reload(kwargs: dict[str, Any]) -> MetatomicModel:
    """Inverse of :meth:`MetatomicModel.__reduce__`."""
    return MetatomicModel(**kwargs)
