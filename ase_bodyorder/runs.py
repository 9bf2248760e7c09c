"""An MD run's directory: its manifest ``run.json`` and the files it names.

Every run directory of :func:`~ase_bodyorder.ipi.run_md` holds ``run.json``
(format ``ase-bodyorder-md-run``, version 1): the parameters of the run (the case, the
drivers' :class:`DriverSettings`, which carry the expansion as one
:class:`~ase_bodyorder.ExpansionSettings`, the steps), its status and message, the paths
of its files relative to the directory, the extras keys, and the runner's pid, host and
start time. :meth:`MDRun.write` replaces it atomically; :meth:`MDRun.load` reads it back,
manifests of earlier versions included (their driver named the expansion's parameters
one by one: ``order``, ``stride``, ``r_mbe``, ``sample_atoms``, ``sample_seed``).

A runner killed outright (``kill -9``) cannot update the manifest: :meth:`MDRun.load`
then finds a "running" manifest whose runner is gone (:func:`runner_alive`), and reports
the run as ``killed`` (:data:`KILLED`) at the last step found in its property file
(:func:`last_step_in_outputs`).

The files of a run are read here too: the extras trajectories i-PI writes
(:data:`EXTRAS_TRAJECTORIES`, :func:`read_ipi_extras`). This module is what the i-PI
runner (:mod:`ase_bodyorder.ipi`, which writes runs) and the monitor
(:mod:`ase_bodyorder.monitor`, which reads them) share; it imports neither.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import StrictInt, StrictStr, model_validator

from ._settings import Number, Settings
from .expansion import BodyOrderError
from .io import write_json_atomically
from .settings import ExpansionSettings
from .summary import current_key

__all__ = [
    "CENTROID_FILE",
    "EXTRAS_HEADER",
    "EXTRAS_TRAJECTORIES",
    "KILLED",
    "MANIFEST",
    "PREFIX",
    "STATUS_COLUMNS",
    "DriverSettings",
    "MDRun",
    "MDRunError",
    "complete_lines",
    "last_step_in_outputs",
    "parse_numbers",
    "read_ipi_extras",
    "runner_alive",
    "runner_identity",
]

MANIFEST = "run.json"
MANIFEST_FORMAT = "ase-bodyorder-md-run"
MANIFEST_VERSION = 1
#: the status :meth:`MDRun.load` reports for a "running" run whose runner is gone
KILLED = "killed"

#: columns of the ``bo_status`` trajectory
STATUS_COLUMNS = (
    "body_order_residual",
    "body_order_order",
    "body_order_computed",
    "body_order_call",
)

#: i-PI trajectory ``filename`` -> ``extra_type`` written by every case and run
EXTRAS_TRAJECTORIES = {
    "bo": "body_order_energies",
    "bo_per_atom": "body_order_energies_per_atom_mean",
    "bo_shares": "body_order_shares",
    "bo_status": ",".join(STATUS_COLUMNS),
    "bo_stderr": "body_order_energies_per_atom_stderr",
}

#: the output prefix of every run's files
PREFIX = "simulation"
#: the file of the path-integral centroid positions (extxyz), next to ``pos``
CENTROID_FILE = f"{PREFIX}.xc.extxyz"

#: the driver's fields of manifests before the expansion was one setting -> its names
_FORMER_EXPANSION_FIELDS = {
    "order": "order",
    "stride": "stride",
    "r_mbe": "r_mbe",
    "sample_atoms": "sample_atoms",
    "sample_seed": "seed",
}
_FORMER_POSITIONS = ("model", "order", "stride", "r_mbe", "template")


class MDRunError(RuntimeError):
    """i-PI or a driver failed, or the run did not finish in time."""


class DriverSettings(Settings):
    """What every driver of a run gets: the model (a spec), the expansion (one
    :class:`~ase_bodyorder.ExpansionSettings`: order, stride in steps, r_mbe in Angstrom,
    atom sampling and its seed, ...), the template (a path relative to the run
    directory), torch threads, the step counter's first value, and the client's silence
    timeout (s).

    Values are kept as given; the expansion is validated as
    :class:`~ase_bodyorder.ExpansionSettings`, and the driver checks the rest when it is
    built (:func:`ase_bodyorder.ipi.driver.preflight`). The former fields ``order``,
    ``stride``, ``r_mbe``, ``sample_atoms`` and ``sample_seed`` (manifests of earlier
    versions, and callers that give them by keyword or, as before, by position after the
    model) are read into ``expansion``."""

    settings_name: ClassVar[str] = "driver"

    model: StrictStr
    expansion: ExpansionSettings
    template: StrictStr
    threads: StrictInt = 1
    first_call: StrictInt = 0
    timeout_s: Number = 600.0

    def __init__(self, /, *args: Any, **data: Any) -> None:
        if len(args) > 2 and not isinstance(args[1], ExpansionSettings | dict):
            data = {**dict(zip(_FORMER_POSITIONS, args, strict=False)), **data}
            args = args[len(_FORMER_POSITIONS) :]
        super().__init__(*args, **data)

    @model_validator(mode="before")
    @classmethod
    def _read_former_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not set(_FORMER_EXPANSION_FIELDS) & set(data):
            return data
        data = dict(data)
        former = {
            name: data.pop(key) for key, name in _FORMER_EXPANSION_FIELDS.items() if key in data
        }
        former = {name: value for name, value in former.items() if value is not None}
        if "expansion" in data:
            raise ValueError(
                f"driver settings give the expansion twice: expansion and {sorted(former)}"
            )
        data["expansion"] = former
        return data

    def command(self, address: str, sockets_prefix: str) -> list[str]:
        """The driver's command line (``python -m ase_bodyorder.ipi.client ...``)."""
        return [sys.executable, *self.program(address, sockets_prefix)]

    def program(self, address: str, sockets_prefix: str) -> list[str]:
        """The driver's program for the interpreter (``-m ase_bodyorder.ipi.client ...``):
        the expansion goes as one JSON option, ``--settings``."""
        options = {
            "--address": address,
            "--sockets-prefix": sockets_prefix,
            "--model": self.model,
            "--settings": json.dumps(self.expansion.to_dict()),
            "--template": self.template,
            "--first-call": self.first_call,
            "--timeout": self.timeout_s,
        }
        command = ["-m", "ase_bodyorder.ipi.client", "--threads", str(self.threads), "--unix"]
        for flag, value in options.items():
            command += [flag, str(value)]
        return command


@dataclass(frozen=True)
class MDRun:
    """A run directory and its files (absolute paths); ``status``: completed, failed,
    interrupted, running, or killed (the runner stopped without a clean shutdown: see
    :meth:`load`); ``first_step`` .. ``last_step``: i-PI's step numbers; ``runner``: the
    runner's ``pid``, ``host`` and ``start`` (its start time, in clock ticks since boot,
    where known)."""

    run_dir: Path
    case: str
    driver: DriverSettings
    nbeads: int
    property_columns: tuple[str, ...]
    first_step: int
    total_steps: int
    last_step: int
    status: str
    wall_time_s: float
    input_xml: Path
    properties: Path
    positions: tuple[Path, ...]
    extras: dict[str, tuple[Path, ...]]
    checkpoint: Path
    restart: Path
    ipi_log: Path
    driver_logs: tuple[Path, ...]
    restarted_from: str | None = None
    message: str = ""
    runner: dict | None = None

    def read_extras(
        self, name: str = "bo", bead: int = 0
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``(keys, steps, values)`` of one extras trajectory of one bead (``name``: a key
        of :data:`EXTRAS_TRAJECTORIES`); see :func:`read_ipi_extras`."""
        return read_ipi_extras(self.extras[name][bead])

    def to_dict(self) -> dict:
        """The manifest (``run.json``): paths relative to the run directory."""

        def rel(path: Path) -> str:
            return os.path.relpath(path, self.run_dir)

        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "case": self.case,
            "restarted_from": self.restarted_from,
            "status": self.status,
            "message": self.message,
            "wall_time_s": round(self.wall_time_s, 3),
            "nbeads": self.nbeads,
            "property_columns": list(self.property_columns),
            "first_step": self.first_step,
            "total_steps": self.total_steps,
            "last_step": self.last_step,
            "driver": self.driver.to_dict(),
            "runner": self.runner,
            "extras_keys": EXTRAS_TRAJECTORIES,
            "files": {
                "input": rel(self.input_xml),
                "properties": rel(self.properties),
                "positions": [rel(p) for p in self.positions],
                "extras": {k: [rel(p) for p in v] for k, v in self.extras.items()},
                "checkpoint": rel(self.checkpoint),
                "restart": rel(self.restart),
                "ipi_log": rel(self.ipi_log),
                "driver_logs": [rel(p) for p in self.driver_logs],
            },
        }

    def write(self) -> None:
        """Write ``run.json`` (atomically: a reader never sees half a manifest)."""
        write_json_atomically(self.run_dir / MANIFEST, self.to_dict())

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> MDRun:
        """Read ``run_dir/run.json``.

        A manifest that says "running" although its runner (same host) is gone, which
        happens when the runner was killed outright, is returned with status ``killed``,
        ``last_step`` the last step in the property file, and a message that says so
        (the file itself is left as it is).
        """
        run_dir = Path(run_dir).resolve()
        path = run_dir / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not a run directory of `ase-bodyorder md`")
        data = json.loads(path.read_text())
        if (
            not isinstance(data, dict)  # a JSON list or number: not a manifest
            or data.get("format") != MANIFEST_FORMAT
            or data.get("version") != MANIFEST_VERSION
        ):
            raise MDRunError(f"{path}: not a version-{MANIFEST_VERSION} {MANIFEST_FORMAT} file")
        files = data["files"]
        run = cls(
            run_dir=run_dir,
            case=data["case"],
            driver=DriverSettings.from_dict(data["driver"]),
            nbeads=data["nbeads"],
            property_columns=tuple(data["property_columns"]),
            first_step=data["first_step"],
            total_steps=data["total_steps"],
            last_step=data["last_step"],
            status=data["status"],
            wall_time_s=data["wall_time_s"],
            input_xml=run_dir / files["input"],
            properties=run_dir / files["properties"],
            positions=tuple(run_dir / p for p in files["positions"]),
            extras={k: tuple(run_dir / p for p in v) for k, v in files["extras"].items()},
            checkpoint=run_dir / files["checkpoint"],
            restart=run_dir / files["restart"],
            ipi_log=run_dir / files["ipi_log"],
            driver_logs=tuple(run_dir / p for p in files["driver_logs"]),
            restarted_from=data.get("restarted_from"),
            message=data.get("message", ""),
            runner=data.get("runner"),
        )
        if run.runner and run.status == "running" and runner_alive(run.runner) is False:
            last = last_step_in_outputs(run)
            run = replace(
                run,
                status=KILLED,
                last_step=last,
                message=(
                    f"the runner (pid {run.runner['pid']} on {run.runner['host']}) is gone "
                    f"without a clean shutdown; last step in the outputs: {last} of "
                    f"{run.total_steps}"
                ),
            )
        return run


# ---------------------------------------------------------------- runner liveness


def _process_start(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks since boot)`` of a process, from ``/proc``
    (None where unreadable: no such process, or no ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return fields[0], int(fields[19])


def runner_identity() -> dict:
    """What ``run.json`` records of the runner: pid, host and start time (ticks)."""
    start = _process_start(os.getpid())
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start": None if start is None else start[1],
    }


def runner_alive(runner: dict | None) -> bool | None:
    """Whether the runner recorded in a manifest still runs: None when that cannot be
    told (no record, or another host); False when its pid is gone, a zombie, or now
    another process (a different start time)."""
    if not runner or runner.get("host") != socket.gethostname():
        return None
    pid = int(runner["pid"])
    found = _process_start(pid)
    if found is not None:
        state, start = found
        return state != "Z" and runner.get("start") in (None, start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path("/proc/self/stat").exists()  # where /proc exists, no entry: gone


def last_step_in_outputs(run: MDRun) -> int:
    """The step of the last complete line of the run's property file (``first_step``
    when it has none)."""
    try:
        text = run.properties.read_text()
    except OSError:
        return run.first_step
    columns = list(run.property_columns)
    if "step" not in columns:
        return run.first_step
    last = run.first_step
    for line in text.split("\n")[:-1]:  # the last piece lacks its newline: incomplete
        values = line.split()
        if values and not line.lstrip().startswith("#") and len(values) == len(columns):
            try:
                last = int(float(values[columns.index("step")]))
            except ValueError:
                continue
    return last


# ---------------------------------------------------------------- extras trajectories

#: the header i-PI writes before each step of an extras trajectory: keys and step
EXTRAS_HEADER = re.compile(r"#EXTRAS\w*\(([^)]*)\)#\s*Step:\s*(\d+)")


def complete_lines(path: Path) -> list[str]:
    """The lines of a file that end with a newline (the rest is still being written)."""
    return path.read_text().split("\n")[:-1]


def read_ipi_extras(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parse an i-PI extras trajectory: ``(keys, steps, values)``.

    ``keys``: the names in the header, old ones under their current names
    (:func:`~ase_bodyorder.summary.current_key`). ``values[i]`` holds the numbers written
    after the i-th ``#EXTRAS(keys)# Step: N`` header (the keys' values stacked
    horizontally, as i-PI writes them). Steps are i-PI's steps (0: the initial
    positions). Incomplete blocks (a last line without its newline, a header without
    values, fewer values than the other blocks) are dropped.
    """
    path = Path(path)
    if not path.exists():
        raise BodyOrderError(f"no extras file {path}")
    keys: list[str] = []
    steps: list[int] = []
    rows: list[list[float]] = []
    current: list[float] | None = None
    for number, line in enumerate(complete_lines(path), start=1):
        match = EXTRAS_HEADER.search(line)
        if match:
            if current is not None:
                rows.append(current)
            keys = [current_key(k.strip()) for k in match.group(1).split(",")]
            steps.append(int(match.group(2)))
            current = []
            continue
        if current is not None and line.strip():
            current.extend(parse_numbers(line, path, number))
    if current is not None:
        rows.append(current)
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return [], np.zeros(0, dtype=int), np.zeros((0, 0))
    complete = [i for i, r in enumerate(rows) if len(r) == width]
    values = np.array([rows[i] for i in complete], dtype=float)
    return keys, np.array(steps)[complete], values


def parse_numbers(line: str, path: Path, number: int) -> list[float]:
    """The floats of line ``number`` of ``path``; ``BodyOrderError`` naming the line."""
    try:
        return [float(x) for x in line.split()]
    except ValueError:
        raise BodyOrderError(f"{path}, line {number}: not numbers: {line.strip()[:60]!r}") from None
