"""Universal machine-learning potentials whose packages ship their weights, as plug-ins.

Each function here is the target of an entry point of group ``ase_bodyorder.models``
(see ``pyproject.toml``), so that :func:`~ase_bodyorder.models.resolve_model` opens it
by name in every door (``--model 7net-0``). A plug-in is listed by ``ase-bodyorder
models`` only where its package is importable (``requires``); otherwise resolving it
names the package and the extra to install.

- SevenNet (``sevenn``): ``7net-0`` (SevenNet-0, 11 July 2024), ``7net-0-22may2024``,
  ``7net-l3i5``, and the multi-fidelity ``7net-mf-0-pbe`` / ``7net-mf-0-r2scan``: the
  checkpoints inside the ``sevenn`` wheel, float32, per-atom energies, cutoff and number
  of convolution layers read from the checkpoint.
- CHGNet (``chgnet``): ``chgnet`` (0.3.0), ``chgnet-0.2.0``, ``chgnet-r2scan``: the
  weights inside the ``chgnet`` wheel, float32, site energies. CHGNet fails on a
  non-periodic structure (pymatgen's ``LinAlgError: Singular matrix``), so isolated
  structures are put in a vacuum box whose images are farther apart than the atom-graph
  cutoff (:class:`~ase_bodyorder.models.ase_calculator.ASEAtomicModel`, ``needs_cell``).

``sevenn`` needs e3nn >= 0.5 and ``mace-torch`` pins 0.4.4: these models live in a
second environment, ``make universal-env`` (``.venv-universal``).

Nothing downloads: a checkpoint missing from the installed package is an error, never
a download (``sevenn`` would fetch some of its models from the network).
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from ase.calculators.calculator import Calculator, all_changes

from ..expansion import BodyOrderError
from .ase_calculator import ASEAtomicModel

__all__ = [
    "chgnet",
    "chgnet_0_2_0",
    "chgnet_r2scan",
    "sevennet_0",
    "sevennet_0_22may2024",
    "sevennet_l3i5",
    "sevennet_mf_0_pbe",
    "sevennet_mf_0_r2scan",
]

#: SevenNet checkpoints in the sevenn wheel: (directory, file) under its pretrained_potentials
_SEVENNET_FILES = {
    "7net-0": ("SevenNet_0__11Jul2024", "checkpoint_sevennet_0.pth"),
    "7net-0-22may2024": ("SevenNet_0__22May2024", "checkpoint_sevennet_0.pth"),
    "7net-l3i5": ("SevenNet_l3i5", "checkpoint_l3i5.pth"),
    "7net-mf-0": ("SevenNet_MF_0", "checkpoint_sevennet_mf_0.pth"),
}


@contextmanager
def _quiet() -> Iterator[None]:
    """The MLIP packages print notes (``CHGNet will run on cpu``) and warn about torch
    and e3nn internals when they load: keep stdout for our output (JSON lines of
    ``decompose --json``) and their loading notes out of the user's way (and out of a
    one-line error: they are dropped, not sent to stderr)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _plugin(requires: str, extra: str) -> Callable[[Callable], Callable]:
    """Mark a factory as a plug-in that needs the module ``requires`` (the extra that
    installs it: ``extra``)."""

    def mark(factory: Callable) -> Callable:
        factory.requires = (requires,)  # type: ignore[attr-defined]
        factory.extra = extra  # type: ignore[attr-defined]
        return factory

    return mark


def _sevenn_checkpoint(name: str) -> Path:
    import sevenn  # torch model backend: sevenn (optional)

    directory, file = _SEVENNET_FILES[name]
    path = Path(sevenn.__file__).parent / "pretrained_potentials" / directory / file
    if not path.is_file():
        raise BodyOrderError(
            f"{name}: {path} is not in the installed sevenn package (nothing is downloaded)"
        )
    return path


def sevennet(name: str = "7net-0", modal: str | None = None) -> ASEAtomicModel:
    """A SevenNet model shipped in the ``sevenn`` wheel, on the CPU, packed.

    ``name``: a key of the shipped checkpoints (``7net-0``, ``7net-0-22may2024``,
    ``7net-l3i5``, ``7net-mf-0``); ``modal``: the fidelity of a multi-fidelity model
    (``PBE``, ``R2SCAN`` for ``7net-mf-0``).
    """
    if name not in _SEVENNET_FILES:
        raise BodyOrderError(
            f"unknown SevenNet model {name!r}; shipped: {', '.join(_SEVENNET_FILES)}"
        )
    try:
        with _quiet():
            from sevenn.calculator import SevenNetCalculator  # torch model backend: sevenn
    except ImportError as error:
        raise ImportError(
            f"SevenNet models need sevenn: pip install 'ase-bodyorder[sevennet]' in an "
            f"environment without mace-torch (make universal-env): {error}"
        ) from None
    path = _sevenn_checkpoint(name)
    with _quiet():
        calculator = SevenNetCalculator(
            str(path), file_type="checkpoint", device="cpu", modal=modal
        )
    label = name if modal is None else f"{name}-{modal.lower()}"
    return ASEAtomicModel(
        calculator,
        fragment_calculator=_sevennet_energies(calculator),
        atomic_numbers=[int(z) for z in calculator.type_map],
        cutoff=float(calculator.cutoff),
        interaction_layers=int(calculator.sevennet_config["num_convolution_layer"]),
        dtype=torch.float32,
        name=label,
    )


def _sevennet_energies(calculator: Any) -> Any:
    """A copy of a SevenNet calculator that gives energies and per-atom energies only:
    its model without the force output (the backward pass was half the cost of a
    packed call), for the sub-clusters of an expansion without forces per order."""
    import sevenn._keys as KEY  # torch model backend: sevenn (optional)
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    class SevenNetEnergies(type(calculator)):  # type: ignore[misc]
        def calculate(
            self,
            atoms: Any = None,
            properties: Any = None,
            system_changes: Any = all_changes,
        ) -> None:
            Calculator.calculate(self, atoms, properties, system_changes)
            graph = unlabeled_atoms_to_graph(self.atoms, self.cutoff, with_shift=False)
            data = AtomGraphData.from_numpy_dict(graph)
            if self.modal:
                data[KEY.DATA_MODALITY] = self.modal
            output = self.model(data.to(self.device))
            energy = float(output[KEY.PRED_TOTAL_ENERGY].detach().cpu().item())
            atomic = output[KEY.ATOMIC_ENERGY].detach().cpu().numpy().reshape(-1)
            self.results = {"energy": energy, "free_energy": energy, "energies": atomic}

    energies = copy.copy(calculator)
    energies.__class__ = SevenNetEnergies
    energies.implemented_properties = ["energy", "free_energy", "energies"]
    energies.results = {}
    energies.atoms = None
    energies.model = copy.deepcopy(calculator.model)
    energies.model.delete_module_by_key("force_output")
    return energies


@_plugin("sevenn", "sevennet")
def sevennet_0() -> ASEAtomicModel:
    """SevenNet-0 (11 July 2024; MPtrj, PBE), 5 A cutoff, 5 layers, shipped in sevenn"""
    return sevennet("7net-0")


@_plugin("sevenn", "sevennet")
def sevennet_0_22may2024() -> ASEAtomicModel:
    """SevenNet-0 (22 May 2024 version), shipped in sevenn"""
    return sevennet("7net-0-22may2024")


@_plugin("sevenn", "sevennet")
def sevennet_l3i5() -> ASEAtomicModel:
    """SevenNet-l3i5 (lmax 3, 5 layers; MPtrj, PBE), shipped in sevenn"""
    return sevennet("7net-l3i5")


@_plugin("sevenn", "sevennet")
def sevennet_mf_0_pbe() -> ASEAtomicModel:
    """SevenNet-MF-0, PBE fidelity, shipped in sevenn"""
    return sevennet("7net-mf-0", modal="PBE")


@_plugin("sevenn", "sevennet")
def sevennet_mf_0_r2scan() -> ASEAtomicModel:
    """SevenNet-MF-0, r2SCAN fidelity, shipped in sevenn"""
    return sevennet("7net-mf-0", modal="R2SCAN")


def chgnet_model(version: str = "0.3.0") -> ASEAtomicModel:
    """A CHGNet model shipped in the ``chgnet`` wheel (``0.3.0``, ``0.2.0``, ``r2scan``),
    on the CPU, in a vacuum box where a structure is not periodic, packed."""
    try:
        with _quiet():
            from chgnet.model import CHGNet  # torch model backend: chgnet (optional)
            from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as error:
        raise ImportError(
            f"CHGNet models need chgnet: pip install 'ase-bodyorder[chgnet]' (make "
            f"universal-env): {error}"
        ) from None
    with _quiet():
        model = CHGNet.load(model_name=version, use_device="cpu", verbose=False)
        calculator = CHGNetCalculator(
            model, use_device="cpu", return_site_energies=True, on_isolated_atoms="ignore"
        )
    converter = model.graph_converter
    return ASEAtomicModel(
        calculator,
        atomic_numbers=range(1, 95),
        cutoff=float(converter.atom_graph_cutoff),
        interaction_layers=int(model.n_conv),
        needs_cell=True,
        dtype=torch.float32,
        name=f"chgnet-{version}",
    )


@_plugin("chgnet", "chgnet")
def chgnet() -> ASEAtomicModel:
    """CHGNet 0.3.0 (MPtrj), 6 A atom-graph cutoff, shipped in chgnet"""
    return chgnet_model("0.3.0")


@_plugin("chgnet", "chgnet")
def chgnet_0_2_0() -> ASEAtomicModel:
    """CHGNet 0.2.0 (MPtrj), shipped in chgnet"""
    return chgnet_model("0.2.0")


@_plugin("chgnet", "chgnet")
def chgnet_r2scan() -> ASEAtomicModel:
    """CHGNet r2SCAN (transfer learned on MP-r2SCAN), shipped in chgnet"""
    return chgnet_model("r2scan")
