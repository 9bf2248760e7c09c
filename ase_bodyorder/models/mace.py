"""A trained MACE model as an atomic backend, evaluated in float64 (or float32).

``fragment_energies`` packs every sub-cluster into one graph batch built directly as
tensors (one one-hot row per atom, only intra-fragment edges shorter than ``r_max``, no
periodic shifts) and calls the model once; ``system`` goes through mace's own data path
(``config_from_atoms`` / ``AtomicData.from_config`` with its neighbour list).

MACE's ``node_energy`` output includes the isolated-atom energies E0 (the
``atomic_energies`` block), so the per-atom energies returned here sum to the model's
total energy and the 1-body term of the expansion is E0.

mace is imported lazily: ``import ase_bodyorder`` does not need it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from ase.stress import full_3x3_to_voigt_6_stress

from ..expansion import BodyOrderError
from .base import AtomicModel, FragmentBatch, SystemResult

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["MACEModel"]


#: what mace prints at import where cuequivariance (GPU kernels) is missing: dropped
_CUEQ_NOTE = "cuequivariance or cuequivariance_torch is not available"


def _import_mace() -> ModuleType:
    # mace prints a note on cuequivariance at import: keep stdout for our output (JSON
    # lines of `decompose --json`) and the note out of one-line errors; anything else
    # it prints goes to stderr
    printed = io.StringIO()
    try:
        with _quiet_third_party(), contextlib.redirect_stdout(printed):
            import mace  # torch model backend: mace-torch (optional)
            import mace.data
            import mace.modules  # noqa: F401
            import mace.tools
            import mace.tools.torch_geometric
    except ImportError as exc:
        raise ImportError("MACE models need mace-torch: pip install 'ase-bodyorder[mace]'") from exc
    finally:
        print_to_stderr_but_notes(printed.getvalue())
    return mace


def _is_metatomic_export(path: Path) -> bool:
    """Whether a TorchScript archive is an exported metatomic model (its ``extra/``
    records the metatomic version)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("extra/metatomic-version") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def print_to_stderr_but_notes(text: str) -> None:
    """What mace printed while importing, on stderr, without its cuequivariance note."""
    kept = [line for line in text.splitlines() if _CUEQ_NOTE not in line]
    if kept:
        print("\n".join(kept), file=sys.stderr)


@contextmanager
def _quiet_third_party() -> Iterator[None]:
    """Silence the warnings torch emits when e3nn/mace import and unpickle themselves.

    e3nn scripts and reloads TorchScript code (``torch.jit.script``/``torch.jit.load``,
    deprecated in recent torch) and loads its constants with ``torch.load`` after mace
    sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``; none of it concerns the user.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"`torch\.jit\.(script|load)` is deprecated",
            category=DeprecationWarning,
        )
        warnings.filterwarnings(
            "ignore", message=r"Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
        )
        yield


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Like ``mace.tools.torch_tools.default_dtype``, but restored on errors too."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class MACEModel(AtomicModel):
    """A MACE model file (``torch.save`` of the model, as ``mace_run_train --save_cpu`` writes).

    Parameters
    ----------
    path
        The ``.model`` file. It is unpickled (``torch.load(weights_only=False)``): load
        only files you trust.
    device
        Torch device to evaluate on; inputs and outputs stay on the CPU.
    head
        Readout head of a multi-head model; default: the only head, else the one named
        ``default`` (case-insensitive), else the last one (as ``MACECalculator``).
    max_atoms_per_call
        Split the packed fragments into model calls of at most this many atoms (whole
        fragments each); ``None``: all fragments in one call. The default, 2048, keeps a
        call's intermediates in the caches: the K=3 expansion of the 64-atom dense cell
        ran 1.4-1.6x (r_mbe 2 Angstrom) and 2.6-3.2x (2.5 Angstrom) faster than in one
        call, with identical energies (``reports/benchmark_mace_cap.md``).
    dtype
        ``"float64"`` (default) or ``"float32"``: the model is converted
        (``module.double()`` / ``module.float()``) whatever dtype it was trained in.
    """

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any], str | None]]:
        """Copies and pickles reload the model file (ASE copies calculators with it)."""
        return (_reload, (self._init_kwargs, self.name))

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str = "cpu",
        head: str | None = None,
        max_atoms_per_call: int | None = 2048,
        dtype: str | torch.dtype = "float64",
    ) -> None:
        if _is_metatomic_export(Path(path)):  # told before mace is imported
            raise BodyOrderError(
                f"{path} is an exported metatomic model, not a MACE model: name it with the "
                "suffix .pt"
            )
        _import_mace()
        dtypes = {"float32": torch.float32, "float64": torch.float64}
        resolved = dtypes.get(dtype) if isinstance(dtype, str) else dtype
        if resolved is None or resolved not in dtypes.values():
            raise BodyOrderError(f"MACE model dtype must be float32 or float64, got {dtype!r}")
        self.dtype = resolved
        self._dtype_copies: dict[torch.dtype, MACEModel] = {}
        #: what the model is rebuilt from when copied or pickled
        self._init_kwargs: dict[str, Any] = {
            "path": str(path),
            "device": device,
            "head": head,
            "max_atoms_per_call": max_atoms_per_call,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        self.path = Path(path)
        if not self.path.is_file():
            raise BodyOrderError(f"MACE model file {self.path} does not exist")
        try:
            with _quiet_third_party():
                warnings.filterwarnings("error", message=r".*looks like a TorchScript archive")
                model = torch.load(self.path, map_location=device, weights_only=False)
        except UserWarning as exc:
            raise BodyOrderError(
                f"{self.path} is a TorchScript (compiled) model; pass the plain model file "
                "that mace_run_train writes next to it (e.g. NAME.model, not "
                "NAME_compiled.model)"
            ) from exc
        except Exception as exc:
            raise BodyOrderError(
                f"cannot load MACE model file {self.path} (corrupt or not a torch file): {exc}"
            ) from exc
        required = ("atomic_energies_fn", "atomic_numbers", "r_max", "num_interactions")
        if not isinstance(model, torch.nn.Module) or not all(hasattr(model, a) for a in required):
            raise BodyOrderError(
                f"{self.path} does not hold a MACE model (found {type(model).__name__})"
            )
        if max_atoms_per_call is not None and max_atoms_per_call < 1:
            raise BodyOrderError(f"max_atoms_per_call must be >= 1, got {max_atoms_per_call}")
        model = model.to(device=device, dtype=self.dtype)
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        #: a mace module: its attributes (r_max, heads, ...) are not typed
        self.model: Any = cast(Any, model)
        self.device = torch.device(device)
        self.max_atoms_per_call = max_atoms_per_call

        zs = [int(z) for z in self.model.atomic_numbers.cpu()]
        self.z_list = zs
        self.atomic_numbers = frozenset(zs)
        self.cutoff = float(self.model.r_max)
        self.interaction_layers = int(self.model.num_interactions)
        self._index = np.full(max(zs) + 1, -1, dtype=np.int64)
        self._index[zs] = np.arange(len(zs))

        self.heads = list(getattr(self.model, "heads", None) or ["Default"])
        if head is not None:
            if head not in self.heads:
                raise BodyOrderError(
                    f"head {head!r} not in {self.path}; its heads are {', '.join(self.heads)}"
                )
            self.head = head
        elif len(self.heads) == 1:
            self.head = self.heads[0]
        else:
            default = [h for h in self.heads if h.lower() == "default"]
            self.head = default[0] if default else self.heads[-1]
        self.head_index = self.heads.index(self.head)

    def with_dtype(self, dtype: torch.dtype) -> MACEModel:
        """This model in ``dtype``: itself, or a copy loaded and converted once (cached)."""
        if dtype == self.dtype:
            return self
        if dtype not in self._dtype_copies:
            kwargs = {**self._init_kwargs, "dtype": dtype}
            self._dtype_copies[dtype] = _reload(kwargs, self.name)
        return self._dtype_copies[dtype]

    # -- helpers -----------------------------------------------------------------------

    def _one_hot(self, numbers: np.ndarray) -> torch.Tensor:
        index = torch.as_tensor(self._index[np.asarray(numbers, dtype=np.int64)])
        one_hot = torch.zeros((len(index), len(self.z_list)), dtype=self.dtype)
        one_hot[torch.arange(len(index)), index] = 1.0
        return one_hot.to(self.device)

    def _packed_call(
        self, positions: torch.Tensor, numbers: np.ndarray, offsets: np.ndarray
    ) -> torch.Tensor:
        """Per-atom energies of fragments ``offsets`` (relative to ``positions``)."""
        batch = FragmentBatch(positions=positions, numbers=numbers, offsets=offsets)
        sizes = batch.sizes
        n_fragments = len(sizes)
        first, second = (torch.as_tensor(a, device=self.device) for a in batch.intra_pairs())
        with torch.no_grad():
            lengths = torch.linalg.vector_norm(positions[second] - positions[first], dim=1)
        keep = lengths < self.cutoff
        edge_index = torch.stack((first[keep], second[keep]))
        n_edges = edge_index.shape[1]
        data = {
            "positions": positions,
            "node_attrs": self._one_hot(numbers),
            "edge_index": edge_index,
            "shifts": torch.zeros((n_edges, 3), dtype=self.dtype, device=self.device),
            "unit_shifts": torch.zeros((n_edges, 3), dtype=self.dtype, device=self.device),
            "cell": torch.zeros((3 * n_fragments, 3), dtype=self.dtype, device=self.device),
            "batch": torch.repeat_interleave(
                torch.arange(n_fragments, device=self.device),
                torch.as_tensor(sizes, device=self.device),
            ),
            "ptr": torch.as_tensor(offsets, dtype=torch.long, device=self.device),
            "head": torch.full(
                (n_fragments,), self.head_index, dtype=torch.long, device=self.device
            ),
        }
        out = self.model(data, compute_force=False, training=False)
        return out["node_energy"]

    # -- the protocol ------------------------------------------------------------------

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        """Per-atom energies (eV, including E0) of all fragments, packed into one call."""
        self.check_species(batch.numbers)
        positions = batch.positions
        if not torch.is_tensor(positions):
            positions = torch.as_tensor(np.asarray(positions))
        grad = positions.requires_grad
        # a fresh tensor: mace calls positions.requires_grad_(True) on its input
        positions = positions.to(device=self.device, dtype=self.dtype)
        positions = positions.view_as(positions) if grad else positions.detach().clone()
        numbers = np.asarray(batch.numbers)
        offsets = np.asarray(batch.offsets, dtype=np.int64)
        if len(numbers) == 0:
            return torch.zeros(0, dtype=self.dtype)
        chunks = batch.chunks(self.max_atoms_per_call)
        with torch.enable_grad() if grad else torch.no_grad():
            parts = []
            for f0, f1 in chunks:
                a, b = offsets[f0], offsets[f1]
                parts.append(
                    self._packed_call(positions[a:b], numbers[a:b], offsets[f0 : f1 + 1] - a)
                )
            energies = parts[0] if len(parts) == 1 else torch.cat(parts)
        return energies.to(device="cpu", dtype=self.dtype)

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        """Energy, per-atom energies (with E0), forces and stress of the whole structure."""
        self.check_species(atoms.numbers)
        mace = _import_mace()
        stress = bool(stress and atoms.pbc.any())
        with _default_dtype(self.dtype):
            config = mace.data.config_from_atoms(
                atoms, key_specification=mace.data.KeySpecification(), head_name=self.head
            )
            graph = mace.data.AtomicData.from_config(
                config,
                z_table=mace.tools.AtomicNumberTable(self.z_list),
                cutoff=self.cutoff,
                heads=self.heads,
            )
            batch = mace.tools.torch_geometric.Batch.from_data_list([graph]).to(self.device)
        data = batch.to_dict()
        # without forces or stress no autograd graph is needed: building one made the
        # 4096-atom frame of bench_monitor's table 2 (this call + the expansion) 77.6 s
        # instead of 63.7 s (reports/benchmark_monitor.md); the energies are identical
        with torch.enable_grad() if forces or stress else torch.no_grad():
            out = self.model(
                data,
                compute_force=forces,
                compute_stress=stress,
                training=False,
            )
        result: dict[str, Any] = {
            "energy": float(out["energy"].detach().sum()),
            "energies": out["node_energy"].detach().cpu().double().numpy().copy(),
        }
        if forces:
            result["forces"] = out["forces"].detach().cpu().double().numpy().copy()
        if stress:
            # virials = -dE/d(strain); ASE's stress is dE/d(strain) / volume
            virial = out["virials"].detach().cpu().double().numpy()[0]
            result["stress"] = full_3x3_to_voigt_6_stress(-virial / atoms.get_volume())
        return SystemResult(**result)

    def isolated_atom_energy(self, z: int) -> float:
        """Energy (eV) of one isolated atom of element ``z``: the model's 1-body term.

        For a plain ``MACE`` model it is E0 (:meth:`e0`); a ``ScaleShiftMACE`` adds its
        shift (and whatever its readout gives an atom without neighbours).
        """
        self.check_species([z])
        batch = FragmentBatch(
            positions=torch.zeros((1, 3), dtype=self.dtype),
            numbers=np.array([int(z)]),
            offsets=np.array([0, 1]),
        )
        return float(self.fragment_energies(batch)[0])

    def e0(self, z: int) -> float:
        """E0 of element ``z`` (eV) from the model's atomic-energies block."""
        self.check_species([z])
        table = torch.atleast_2d(self.model.atomic_energies_fn.atomic_energies)
        return float(table[self.head_index, self.z_list.index(int(z))])

    def __repr__(self) -> str:
        return f"MACEModel({str(self.path)!r})"


def _reload(kwargs: dict[str, Any], name: str | None = None) -> MACEModel:
    """Inverse of :meth:`MACEModel.__reduce__`."""
    model = MACEModel(**kwargs)
    model.name = name
    return model
