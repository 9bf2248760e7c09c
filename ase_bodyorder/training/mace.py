"""Train a small MACE model with ``mace_run_train``, from typed settings, with provenance.

The recipe rewrites copies of the data with the keys ``REF_energy``/``REF_forces`` (mace
0.3.16 warns that the ASE keys ``energy``/``forces`` are unsafe: ASE moves them into a
``SinglePointCalculator``), runs ``mace_run_train`` in a subprocess on one CPU thread and
writes ``provenance.json`` next to the model: hashes of the data, the settings, package
versions, wall time and the error tables of the training log.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import ase.io
import numpy as np
from annotated_types import MinLen
from pydantic import Field, StrictInt, field_validator

from .._settings import (
    NonNegativeInt,
    NonNegativeNumber,
    PositiveInt,
    PositiveNumber,
    Rule,
    Settings,
)
from ..expansion import BodyOrderError
from ..io import sha256_file
from ._common import package_versions, run_logged, total_wall_time

__all__ = ["MACESettings", "train_mace", "training_curve"]

#: command-line options the recipe sets itself (``extra_args`` may not override them)
_RESERVED = frozenset(
    {
        "name",
        "work_dir",
        "model_dir",
        "log_dir",
        "checkpoints_dir",
        "results_dir",
        "train_file",
        "valid_file",
        "test_file",
        "energy_key",
        "forces_key",
        "device",
        "save_cpu",
    }
)

_MODEL_NAME = "mace"


class MACESettings(Settings):
    """Hyper-parameters of a small MACE model and its training (Angstrom, eV).

    ``E0s`` is ``"average"`` (least-squares isolated-atom energies from the training set)
    or a dictionary ``{atomic number: isolated-atom energy in eV}``. ``model``:
    ``ScaleShiftMACE`` (default; learns the mean interaction energy as a shift) or
    ``MACE``; ``energy_weight``/``forces_weight``: the loss weights. ``extra_args`` are
    further ``mace_run_train`` options, ``{"option_name": value}`` (without ``--``).
    """

    settings_name: ClassVar[str] = "MACE"

    r_max: PositiveNumber = 4.5
    num_interactions: PositiveInt = 2
    hidden_irreps: str = "16x0e+16x1o"
    correlation: PositiveInt = 2
    max_L: NonNegativeInt = 1
    max_num_epochs: PositiveInt = 50
    batch_size: PositiveInt = 8
    lr: PositiveNumber = 0.01
    seed: Annotated[StrictInt, Rule("an integer")] = 123
    #: atomic numbers and energies are read as numbers (``{"1": -13}`` is ``{1: -13.0}``)
    E0s: Annotated[
        Literal["average"] | Annotated[dict[int, float], MinLen(1)],
        Rule("'average' or a non-empty dict {Z: energy}"),
    ] = "average"
    default_dtype: Annotated[Literal["float32", "float64"], Rule("'float32' or 'float64'")] = (
        "float64"
    )
    model: Annotated[Literal["MACE", "ScaleShiftMACE"], Rule("'MACE' or 'ScaleShiftMACE'")] = (
        "ScaleShiftMACE"
    )
    energy_weight: NonNegativeNumber = 1.0
    forces_weight: NonNegativeNumber = 100.0
    extra_args: Annotated[dict, Rule("a dict")] = Field(default_factory=dict)

    @field_validator("extra_args")
    @classmethod
    def _not_reserved(cls, value: dict) -> dict:
        clash = sorted(set(str(k).lstrip("-") for k in value) & (_RESERVED | set(cls.model_fields)))
        if clash:
            raise BodyOrderError(
                f"extra_args may not set {', '.join(clash)}: the recipe sets them "
                "(use the MACESettings fields)"
            )
        return value

    def command_line(self) -> list[str]:
        """The ``mace_run_train`` options these settings stand for."""
        e0s = self.E0s if self.E0s == "average" else repr(dict(self.E0s))
        args = [
            f"--model={self.model}",
            f"--r_max={self.r_max}",
            f"--num_interactions={self.num_interactions}",
            f"--hidden_irreps={self.hidden_irreps}",
            f"--correlation={self.correlation}",
            f"--max_L={self.max_L}",
            f"--max_num_epochs={self.max_num_epochs}",
            f"--batch_size={self.batch_size}",
            f"--valid_batch_size={self.batch_size}",
            f"--lr={self.lr}",
            f"--seed={self.seed}",
            f"--E0s={e0s}",
            f"--default_dtype={self.default_dtype}",
            f"--energy_weight={self.energy_weight}",
            f"--forces_weight={self.forces_weight}",
        ]
        for key, value in self.extra_args.items():
            key = str(key).lstrip("-")
            args.append(f"--{key}" if value is None else f"--{key}={value}")
        return args


def _rewrite_with_ref_keys(source: Path, target: Path) -> int:
    """Copy an extxyz file with energies/forces under ``REF_energy``/``REF_forces``."""
    if not source.is_file():
        raise BodyOrderError(f"training data file {source} does not exist")
    try:
        frames = ase.io.read(source, index=":")
    except Exception as exc:
        raise BodyOrderError(f"cannot read training data file {source}: {exc}") from exc
    if not frames:
        raise BodyOrderError(f"training data file {source} holds no structures")
    out = []
    for index, atoms in enumerate(frames):
        energy = atoms.info.get("energy", atoms.info.get("REF_energy"))
        forces = atoms.arrays.get("forces", atoms.arrays.get("REF_forces"))
        if atoms.calc is not None:
            results = atoms.calc.results
            energy = results.get("energy", energy)
            forces = results.get("forces", forces)
        if energy is None:
            raise BodyOrderError(f"structure {index} of {source} has no energy")
        copy = atoms.copy()
        copy.calc = None
        for key in ("energy", "free_energy", "REF_energy"):
            copy.info.pop(key, None)
        for key in ("forces", "REF_forces"):
            if key in copy.arrays:
                del copy.arrays[key]
        copy.info["REF_energy"] = float(energy)
        if forces is not None:
            copy.arrays["REF_forces"] = np.asarray(forces, dtype=float).reshape(len(atoms), 3)
        out.append(copy)
    ase.io.write(target, out, format="extxyz")
    return len(out)


def _versions() -> dict:
    return package_versions(("mace-torch", "torch", "e3nn", "ase", "numpy"))


def _error_tables(log: str) -> dict:
    """``{"TRAIN and VALID": [...rows...], "TEST": [...]}`` from mace's error tables."""
    tables = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if "Error-table on" not in line:
            continue
        section = line.split("Error-table on", 1)[1].strip().rstrip(":").strip()
        rows, header = [], None
        for row in lines[i + 1 :]:
            row = row.strip()
            if row.startswith("+"):
                continue
            if not row.startswith("|"):
                break
            cells = [c.strip() for c in row.strip("|").split("|")]
            if header is None:
                header = cells
                continue
            entry = {}
            for key, value in zip(header, cells, strict=False):
                try:
                    entry[key] = float(value)
                except ValueError:
                    entry[key] = value
            rows.append(entry)
        tables[section] = rows
    return tables


def training_curve(output_dir: str | os.PathLike) -> list[dict]:
    """Train and validation loss per epoch from mace's metrics log (``results/*_train.txt``).

    Each entry: ``epoch``, ``train_loss`` (mean of the epoch's optimisation steps),
    ``validation_loss`` and the validation ``rmse_e_per_atom_meV``/``rmse_f_meV_per_A``.
    Epochs evaluated twice (a resumed run repeats its last epoch) keep the latest line.
    """
    train: dict[int, list[float]] = {}
    valid: dict[int, dict] = {}
    for path in sorted(Path(output_dir, "results").glob("*_train.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut off by a killed run
                continue
            epoch = entry.get("epoch")
            if epoch is None:
                continue
            if entry.get("mode") == "opt":
                train.setdefault(int(epoch), []).append(float(entry["loss"]))
            elif entry.get("mode") == "eval":
                valid[int(epoch)] = entry
    curve = []
    for epoch in sorted(valid):
        entry = valid[epoch]
        losses = train.get(epoch)
        curve.append(
            {
                "epoch": epoch,
                "train_loss": float(sum(losses) / len(losses)) if losses else None,
                "validation_loss": float(entry["loss"]),
                "rmse_e_per_atom_meV": 1e3 * float(entry.get("rmse_e_per_atom", math.nan)),
                "rmse_f_meV_per_A": 1e3 * float(entry.get("rmse_f", math.nan)),
            }
        )
    return curve


def train_mace(
    train_xyz: str | os.PathLike,
    val_xyz: str | os.PathLike | None,
    test_xyz: str | os.PathLike | None,
    settings: MACESettings,
    output_dir: str | os.PathLike,
    *,
    timeout: float | None = None,
    resume: bool = False,
    progress=None,
) -> Path:
    """Train MACE on extxyz files (energies in eV, forces in eV/Angstrom) and return the model.

    ``resume``: continue from the latest checkpoint in ``output_dir/checkpoints`` when
    there is one (mace's ``--restart_latest``; the log is appended to). ``progress``: a
    text stream for a tqdm bar with the epoch reached and the time left.

    The energy and forces are read from each structure's ASE calculator or its
    ``energy``/``forces`` keys. Without ``val_xyz`` mace holds out 10 % of the training
    set; without ``test_xyz`` there is no test set. The model (``mace.model``, saved for
    CPU) and ``provenance.json`` are written to ``output_dir``.
    """
    if not isinstance(settings, MACESettings):
        raise BodyOrderError(f"settings must be MACESettings, got {type(settings).__name__}")
    try:
        import mace  # noqa: F401  # torch model backend: mace-torch (optional)
    except ImportError as exc:
        raise ImportError(
            "training MACE needs mace-torch: pip install 'ase-bodyorder[mace]'"
        ) from exc
    output_dir = Path(output_dir).resolve()
    data_dir = output_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)

    sources = {"train": train_xyz, "valid": val_xyz, "test": test_xyz}
    data = {}
    args = []
    for role, source in sources.items():
        if source is None:
            continue
        source = Path(source).resolve()
        target = data_dir / f"{role}.xyz"
        count = _rewrite_with_ref_keys(source, target)
        data[role] = {"path": str(source), "sha256": sha256_file(source), "structures": count}
        args.append(f"--{role}_file={target}")
    if "train" not in data:
        raise BodyOrderError("train_mace needs a training set")

    command = [
        sys.executable,
        "-m",
        "mace.cli.run_train",
        f"--name={_MODEL_NAME}",
        f"--work_dir={output_dir}",
        f"--model_dir={output_dir}",
        f"--log_dir={output_dir / 'logs'}",
        f"--checkpoints_dir={output_dir / 'checkpoints'}",
        f"--results_dir={output_dir / 'results'}",
        *args,
        "--energy_key=REF_energy",
        "--forces_key=REF_forces",
        "--device=cpu",
        "--save_cpu",
        "--plot=False",
        *settings.command_line(),
    ]
    checkpoints = output_dir / "checkpoints"
    resuming = resume and checkpoints.is_dir() and any(checkpoints.glob("*.pt"))
    if resuming:
        command.append("--restart_latest")
    log_path = output_dir / "mace_run_train.log"
    patience = settings.extra_args.get("patience")
    stop_pattern = (
        None
        if patience is None
        else rf"Stopping optimization after {int(patience)} epochs without improvement"
    )
    stopped_before = (
        resuming
        and stop_pattern is not None
        and log_path.is_file()
        and re.search(stop_pattern, log_path.read_text(encoding="utf-8", errors="replace"))
        is not None
    )
    wall_time, early_stopped = 0.0, bool(stopped_before)
    if not stopped_before:
        returncode, wall_time, log_text, early_stopped = run_logged(
            command,
            cwd=output_dir,
            log_path=log_path,
            timeout=timeout,
            what="mace_run_train",
            append=resuming,
            stop_pattern=stop_pattern,
            progress=progress,
            max_epochs=settings.max_num_epochs,
        )
    if early_stopped:
        # mace-torch 0.3.16 only logs its early stop outside distributed runs, and trains
        # on to max_num_epochs: stop it here, then let mace evaluate and save the best
        # checkpoint (it saves one only on improvement) with no epochs left to train
        finish = [*command, "--restart_latest", "--max_num_epochs=0"]
        returncode, more_time, log_text, _ = run_logged(
            finish,
            cwd=output_dir,
            log_path=log_path,
            timeout=timeout,
            what="mace_run_train (final evaluation)",
            append=True,
        )
        wall_time += more_time
    model_path = output_dir / f"{_MODEL_NAME}.model"
    if returncode != 0 or not model_path.is_file():
        tail = "\n".join(log_text.splitlines()[-20:])
        raise BodyOrderError(
            f"mace_run_train failed (exit status {returncode}); log {log_path}:\n{tail}"
        )

    provenance = {
        "model": model_path.name,
        "model_sha256": sha256_file(model_path),
        "recipe": "ase_bodyorder.training.mace.train_mace",
        "data": data,
        "settings": settings.to_dict(),
        "command": command[3:],
        "versions": _versions(),
        "wall_time_s": total_wall_time(output_dir),
        "wall_time_last_run_s": wall_time,
        "metrics": _error_tables(log_text),
        "training_curve": training_curve(output_dir),
        "early_stopping": {"patience_epochs": patience, "stopped": early_stopped},
        "log": log_path.name,
    }
    (output_dir / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return model_path
