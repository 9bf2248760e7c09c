"""Loading an exported metatomic model and reading what it declares.

The parts of :class:`~ase_bodyorder.models.metatomic.MetatomicModel` that run once, when
a model is created: importing metatomic and metatensor (:func:`import_metatomic`, also
used to read metatrain's checkpoints), loading the ``.pt`` file with its TorchScript
extensions (:func:`load_exported_model`), the dtype and energy output it is run with,
and the cutoff (Angstrom) and layers the expansion's exact screening is told
(:func:`screening_parameters`):

* ``cutoff``: the largest cutoff of the neighbour lists the model requests (Angstrom),
  the range of one message-passing step; the model is assumed to see other atoms only
  through its neighbour lists.
* ``interaction_layers``: how many hops away an atom's energy sees. metatrain PET:
  ``num_gnn_layers + 1`` for the default "feedforward" featurizer, ``num_gnn_layers``
  for "residual" (read from the exported module; see :func:`pet_hops`: the declared
  ``interaction_range = num_gnn_layers * cutoff`` is too short for "feedforward"). A
  model whose ``interaction_range`` equals its cutoff (SOAP-BPNN): 1. Anything else:
  ``None`` (screening by connectivity only, exact for any message passing through the
  neighbour lists).
* A model without neighbour lists: ``cutoff = interaction_range`` and one layer. A
  model with an infinite interaction range is not screened.

metatomic and metatensor are imported only by :func:`import_metatomic`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import re
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ..expansion import BodyOrderError

__all__ = [
    "DTYPES",
    "drop_cuda_only_warnings",
    "dtype_name",
    "energy_output_key",
    "first_line",
    "import_metatomic",
    "load_exported_model",
    "pet_hops",
    "quiet_cuda_only_dependencies",
    "quiet_torchscript",
    "screening_parameters",
    "to_device",
    "wanted_dtype",
]

#: metatensor/metatomic script their modules and the exported model is TorchScript;
#: torch >= 2.10 flags every ``torch.jit`` entry point as deprecated
_TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"

#: the dtypes a metatomic model may declare, by name
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence torch's deprecation warnings about TorchScript (and only those)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=_TORCHSCRIPT_DEPRECATION, category=DeprecationWarning
        )
        yield


#: metatomic's native warning that a CUDA-only dependency of an extension (sphericart's
#: ``sphericart_torch_cuda_stream``) did not load: four lines on stderr per model load,
#: meaningless without CUDA
_CUDA_ONLY_DEPENDENCY = re.compile(
    r"\[W[^\]\n]*\] Warning: failed to load extension dependency \w*cuda\w*\."
    r".*?\(function load_library\)\n?",
    re.DOTALL,
)


def drop_cuda_only_warnings(text: str) -> str:
    """``text`` (native stderr) without metatomic's warnings about CUDA-only extension
    dependencies that did not load."""
    return _CUDA_ONLY_DEPENDENCY.sub("", text)


@contextlib.contextmanager
def quiet_cuda_only_dependencies() -> Iterator[None]:
    """On a machine without CUDA, drop metatomic's native warnings about CUDA-only
    extension dependencies written to stderr meanwhile; everything else written there is
    passed on when the block ends."""
    if torch.cuda.is_available():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 to borrow
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = drop_cuda_only_warnings(capture.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def import_metatomic() -> tuple[ModuleType, ModuleType]:
    """``(metatomic.torch, metatensor.torch)``, with a helpful error if not installed."""
    try:
        with quiet_torchscript():
            import metatensor.torch as mts  # torch model backend: metatomic
            import metatomic.torch as mta  # torch model backend: metatomic
    except ImportError as exc:
        raise ImportError(
            "metatomic models need metatomic-torch (and metatensor-torch, vesin): "
            "pip install 'ase-bodyorder[metatomic]'"
        ) from exc
    return mta, mts


#: TorchScript extensions whose autograd formulas are registered by their Python package
#: (``torch.library.register_autograd``), not by the shared library an exported model
#: ships: ``{extension: (python module, an operator that must be differentiable)}``.
#: Loading only the library (``extensions_directory``) gives silently wrong forces, and
#: importing the package after the library aborts the process, so it is imported first.
_AUTOGRAD_IN_PYTHON = {
    "sphericart_torch": ("sphericart.torch", "sphericart_torch::spherical_harmonics"),
}


def _model_extensions(path: Path) -> list[str]:
    """Names of the TorchScript extensions an exported model declares (``[]`` if unknown)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith("/extra/extensions"):
                    return [str(e["name"]) for e in json.loads(archive.read(name))]
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        pass
    return []


def _op_registered(op: str) -> bool:
    return bool(torch._C._dispatch_has_kernel(op))


def _register_python_autograd(extensions: list[str]) -> None:
    """Import the Python side of the model's extensions before their libraries load."""
    for name in extensions:
        if name not in _AUTOGRAD_IN_PYTHON:
            continue
        module, op = _AUTOGRAD_IN_PYTHON[name]
        if module in sys.modules or _op_registered(op):
            continue  # imported already, or loaded without it (checked after loading)
        with contextlib.suppress(ImportError), quiet_torchscript():
            importlib.import_module(module)


def _check_python_autograd(path: Path, extensions: list[str]) -> None:
    for name in extensions:
        if name not in _AUTOGRAD_IN_PYTHON:
            continue
        module, op = _AUTOGRAD_IN_PYTHON[name]
        if _op_registered(op) and not torch._C._dispatch_has_kernel_for_dispatch_key(
            op, "Autograd"
        ):
            raise BodyOrderError(
                f"metatomic model {path} uses the {name} extension, but its gradients are "
                f"not registered (the Python package {module} must be imported before any "
                "model using it is loaded); forces would be wrong. Install it "
                f"(pip install 'ase-bodyorder[metatomic]') and load the model in a fresh "
                "process"
            )


def load_exported_model(
    mta: ModuleType, path: Path, extensions_directory: str | os.PathLike | None
) -> Any:
    """The exported model at ``path`` (``metatomic.torch.AtomisticModel``), its
    extensions loaded from ``extensions_directory`` (or where they are installed) after
    the Python side that registers their gradients."""
    if not path.is_file():
        raise BodyOrderError(f"metatomic model file {path} does not exist")
    if extensions_directory is not None and not Path(extensions_directory).is_dir():
        raise BodyOrderError(
            f"extensions directory {extensions_directory} of metatomic model {path} does not exist"
        )
    if not zipfile.is_zipfile(path):
        raise BodyOrderError(
            f"metatomic model file {path} is not an exported model (TorchScript archives are "
            "zip files; 'mtt export' writes one)"
        )
    extensions = _model_extensions(path)
    _register_python_autograd(extensions)
    try:
        with quiet_torchscript(), quiet_cuda_only_dependencies():
            model = mta.load_atomistic_model(
                str(path),
                extensions_directory=(
                    None if extensions_directory is None else str(extensions_directory)
                ),
            )
    except Exception as exc:
        hint = ""
        if path.suffix == ".ckpt":
            hint = " (a metatrain checkpoint: export it with 'mtt export' first)"
        raise BodyOrderError(
            f"cannot load metatomic model {path}{hint}: {first_line(exc)}"
        ) from exc
    _check_python_autograd(path, extensions)
    return model


def wanted_dtype(path: Path, declared: str, dtype: torch.dtype | str | None) -> torch.dtype:
    """The dtype the model at ``path`` runs in: ``dtype``, or the ``declared`` one."""
    if declared not in DTYPES:
        raise BodyOrderError(f"metatomic model {path} declares an unknown dtype {declared!r}")
    if dtype is None:
        return DTYPES[declared]
    wanted = DTYPES.get(dtype) if isinstance(dtype, str) else dtype
    if wanted is None or wanted not in DTYPES.values():
        raise BodyOrderError(
            f"metatomic model {path}: dtype must be float32 or float64, got {dtype!r}"
        )
    return wanted


def energy_output_key(mta: ModuleType, path: Path, outputs: Any, variant: str | None) -> str:
    """The key of the model's per-atom energy output (``energy`` or ``energy/<variant>``)
    among its declared ``outputs``; an error unless it has one with a unit."""
    if not any(key == "energy" or key.startswith("energy/") for key in outputs):
        raise BodyOrderError(f"metatomic model {path} has no energy output")
    try:
        key: str = mta.pick_output("energy", outputs, variant)
    except Exception as exc:
        raise BodyOrderError(f"metatomic model {path}: {first_line(exc)}") from exc
    energy_output = outputs[key]
    if energy_output.unit == "":
        raise BodyOrderError(f"metatomic model {path} does not declare the unit of its energy")
    if energy_output.sample_kind != "atom":
        raise BodyOrderError(
            f"metatomic model {path} gives no per-atom energies "
            f"(sample kind {energy_output.sample_kind!r}); the atom-resolved expansion "
            "needs them"
        )
    return key


def pet_hops(module: object) -> int | None:
    """Hops an atom's energy sees in a metatrain PET module, ``None`` if not PET.

    The "residual" featurizer reads out every GNN layer: ``num_gnn_layers`` hops. The
    "feedforward" one (metatrain's default) mixes each edge with its reversed message
    once more after the last layer before the readout: ``num_gnn_layers + 1`` hops.
    (Measured on metatrain 2026.4.1: an atom's energy changes when an atom 3 hops away
    moves in a 2-layer feedforward PET, 7.5 Angstrom away with a 3 Angstrom cutoff,
    beyond the declared ``interaction_range`` of ``num_gnn_layers * cutoff``.)
    """
    layers = getattr(module, "num_gnn_layers", None)
    featurizer = getattr(module, "featurizer_type", None)
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 1:
        return None
    if featurizer == "residual":
        return layers
    if featurizer == "feedforward":
        return layers + 1
    return None


def screening_parameters(
    module: object, interaction_range: float, nl_cutoffs: list[float]
) -> tuple[float, int | None]:
    """``(cutoff, layers)`` for the exact screening (see the module docstring) of a
    model's ``module`` with its ``interaction_range`` and neighbour-list cutoffs
    (Angstrom)."""
    if not math.isfinite(interaction_range):
        return math.inf, None
    if not nl_cutoffs or max(nl_cutoffs) <= 0:
        # no neighbour list: whatever the model does, it is local within its range
        return interaction_range, 1
    cutoff = max(nl_cutoffs)
    layers = pet_hops(module)
    if layers is not None:
        return cutoff, layers
    if abs(interaction_range - cutoff) <= 1e-9 * cutoff:
        # metatomic: "for a short range model, this is the largest neighbour list
        # cutoff"; an atom's energy depends on atoms within one cutoff
        return cutoff, 1
    # message passing with an unknown number of hops: connectivity only
    return cutoff, None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def dtype_name(dtype: torch.dtype) -> str:
    """``"float32"`` for ``torch.float32``, and so on."""
    return str(dtype).removeprefix("torch.")


def to_device(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Move ``model`` to ``device`` and its floating-point tensors to ``dtype``, unless
    they are there already.

    metatensor-torch warns about its own TorchScript modules on every ``.to()`` of an
    exported SOAP-BPNN (``_mts_buffer_names``): moving is skipped when not needed, and
    that warning is silenced when it is.
    """
    tensors = list(model.parameters()) + list(model.buffers())
    floats = [t for t in tensors if t.is_floating_point()]
    if all(t.device == device for t in tensors) and all(t.dtype == dtype for t in floats):
        return model
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="module does not have '_mts_buffer_names'", category=UserWarning
        )
        return model.to(device=device, dtype=dtype)
