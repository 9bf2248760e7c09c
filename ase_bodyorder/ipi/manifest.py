"""The run manifest, ``run.json``: what the runner records of an MD run, and reads back.

Every run directory of :func:`~ase_bodyorder.ipi.run_md` holds ``run.json``
(format ``ase-bodyorder-md-run``, version 1): the parameters of the run (the case, the
drivers' :class:`DriverSettings`, the steps), its status and message, the paths of its
files relative to the directory, the extras keys, and the runner's pid, host and start
time. :meth:`MDRun.write` replaces it atomically; :meth:`MDRun.load` reads it back.

A runner killed outright (``kill -9``) cannot update the manifest: :meth:`MDRun.load`
then finds a "running" manifest whose runner is gone (:func:`runner_alive`), and reports
the run as ``killed`` (:data:`KILLED`) at the last step found in its property file
(:func:`last_step_in_outputs`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from pydantic import StrictInt, StrictStr

from .._settings import Number, Settings
from .extras import EXTRAS_TRAJECTORIES
from .session import MDRunError

__all__ = [
    "KILLED",
    "MANIFEST",
    "DriverSettings",
    "MDRun",
    "last_step_in_outputs",
    "runner_alive",
    "runner_identity",
]

MANIFEST = "run.json"
MANIFEST_FORMAT = "ase-bodyorder-md-run"
MANIFEST_VERSION = 1
#: the status :meth:`MDRun.load` reports for a "running" run whose runner is gone
KILLED = "killed"


class DriverSettings(Settings):
    """What every driver of a run gets: model name, order K, stride (steps), r_mbe
    (Angstrom), template (path relative to the run directory), torch threads, the step
    counter's first value, and the client's silence timeout (s).

    Values are kept as given (the driver checks their ranges when it is built:
    :meth:`preflight`)."""

    settings_name: ClassVar[str] = "driver"

    model: StrictStr
    order: StrictInt
    stride: StrictInt
    r_mbe: Number | None
    template: StrictStr
    threads: StrictInt = 1
    first_call: StrictInt = 0
    timeout_s: Number = 600.0
    sample_atoms: StrictInt | None = None
    sample_seed: StrictInt | None = None

    def command(self, address: str, sockets_prefix: str) -> list[str]:
        """The driver's command line (``python -m ase_bodyorder.ipi.client ...``)."""
        return [sys.executable, *self.program(address, sockets_prefix)]

    def program(self, address: str, sockets_prefix: str) -> list[str]:
        """The driver's program for the interpreter (``-m ase_bodyorder.ipi.client ...``)."""
        options = {
            "--address": address,
            "--sockets-prefix": sockets_prefix,
            "--model": self.model,
            "--order": self.order,
            "--stride": self.stride,
            "--r-mbe": None if self.r_mbe is None else repr(float(self.r_mbe)),
            "--template": self.template,
            "--first-call": self.first_call,
            "--timeout": self.timeout_s,
            "--sample-atoms": self.sample_atoms,
            "--seed": self.sample_seed,
        }
        command = ["-m", "ase_bodyorder.ipi.client", "--threads", str(self.threads), "--unix"]
        for flag, value in options.items():
            if value is not None:
                command += [flag, str(value)]
        return command

    def preflight(self, template) -> None:
        """Build the driver once with these settings on ``template`` (a structure file),
        so that bad settings fail before i-PI starts."""
        from .driver import BodyOrderDriver

        BodyOrderDriver(
            str(template),
            model=self.model,
            order=self.order,
            stride=self.stride,
            r_mbe=self.r_mbe,
            threads=self.threads,
            first_call=self.first_call,
            sample_atoms=self.sample_atoms,
            sample_seed=self.sample_seed,
        )


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

    def read_extras(self, name: str = "bo", bead: int = 0):
        """``(keys, steps, values)`` of one extras trajectory of one bead (``name``: a key
        of :data:`~ase_bodyorder.ipi.extras.EXTRAS_TRAJECTORIES`); see
        :func:`ase_bodyorder.monitor.read_ipi_extras`."""
        from ..monitor.readers import read_ipi_extras

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
        path = self.run_dir / MANIFEST
        partial = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(partial, path)

    @classmethod
    def load(cls, run_dir) -> MDRun:
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
        if run.status == "running" and runner_alive(run.runner) is False:
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
