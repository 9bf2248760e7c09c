"""Run i-PI with body-order drivers: start, watch, stop, and say where the files are.

:func:`run_md` copies a case of ``md_inputs/`` into a new run directory, rewrites its
``input.xml`` (steps, output prefix, a UNIX socket name of its own, the extras
trajectories), runs ``i-pi input.xml`` and the drivers (``python -m
ase_bodyorder.ipi.client``, the bounded client) in an
:class:`~ase_bodyorder.ipi.session.IPISession` (each child in its own process group,
ending when the runner dies), shows a progress bar (tqdm: step, time left, temperature, conserved
energy, body-order shares) from i-PI's output files, and shuts everything down: on
completion, when i-PI or a driver dies (the other side is stopped and the error names
who died), on timeout, and on Ctrl-C (outputs are kept; i-PI gets SIGTERM first, which
makes it write ``RESTART``). :func:`restart_md` continues a run from its ``RESTART`` file
(or checkpoint) in a new run directory.

Every run directory holds ``run.json``, the run manifest (:mod:`ase_bodyorder.runs`:
:class:`MDRun`, read back with :meth:`MDRun.load`, which reports a run whose runner was
killed outright as ``killed``); the runner writes it when the run starts and when it ends.
The drivers' settings (:class:`DriverSettings`) carry the expansion as one
:class:`~ase_bodyorder.ExpansionSettings`.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from ..expansion import BodyOrderError
from ..models import DEFAULT_MD_MODEL
from ..models.registry import absolute_spec
from ..runs import EXTRAS_TRAJECTORIES, DriverSettings, MDRun, MDRunError, runner_identity
from ..settings import ExpansionSettings
from . import _input
from ._progress import Progress
from .session import (
    SOCKET_WAIT_S,
    IPISession,
    sigterm_as_interrupt,
    unique_address,
)

__all__ = ["DriverSettings", "MDRun", "MDRunError", "restart_md", "run_md"]

PREFIX = _input.PREFIX
IPI_LOG = "ipi.log"

# ---------------------------------------------------------------- running


def _new_run_dir(output_dir, case: str) -> Path:
    if output_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        output_dir = Path("md_runs") / f"{case}-{stamp}-{uuid.uuid4().hex[:4]}"
    run_dir = Path(output_dir).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise MDRunError(f"output directory {run_dir} exists and is not empty")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _layout(
    run_dir: Path,
    root: ET.Element,
    case: str,
    driver: DriverSettings,
    first: int,
    total: int,
    n_drivers: int,
    restarted_from: str | None,
) -> MDRun:
    p = run_dir / PREFIX
    nbeads = _input.bead_count(root)
    return MDRun(
        run_dir=run_dir,
        case=case,
        driver=driver,
        nbeads=nbeads,
        property_columns=_input.property_columns(root),
        first_step=first,
        total_steps=total,
        last_step=first,
        status="running",
        wall_time_s=0.0,
        input_xml=run_dir / "input.xml",
        properties=Path(f"{p}.out"),
        positions=tuple(run_dir / f for f in _input.bead_files(f"{PREFIX}.pos", nbeads, ".extxyz")),
        extras={
            name: tuple(run_dir / f for f in _input.bead_files(f"{PREFIX}.{name}", nbeads))
            for name in EXTRAS_TRAJECTORIES
        },
        checkpoint=Path(f"{p}.chk"),
        restart=run_dir / "RESTART",
        ipi_log=run_dir / IPI_LOG,
        driver_logs=tuple(run_dir / f"driver-{k}.log" for k in range(n_drivers)),
        restarted_from=restarted_from,
        runner=runner_identity(),
    )


def _finish(run: MDRun, status: str, started: float, progress: Progress, message="") -> MDRun:
    progress.update(final=progress.enabled)
    last = progress.step if progress.step is not None else run.first_step
    done = replace(
        run,
        status=status,
        last_step=last,
        wall_time_s=time.monotonic() - started,
        message=message,
    )
    done.write()
    return done


def _execute(
    run: MDRun, *, address: str, sockets_prefix: str, timeout_s: float, progress: bool, stream
) -> MDRun:
    """Run a prepared run directory: i-PI and the drivers in an :class:`IPISession`,
    stopped whatever happens; write the outcome into the manifest."""
    stream = sys.stderr if stream is None else stream
    started = time.monotonic()
    deadline = started + timeout_s
    run.write()
    watcher = Progress(run, stream, progress)
    session = IPISession(
        run.run_dir,
        address=address,
        sockets_prefix=sockets_prefix,
        threads=run.driver.threads,
        ipi_log=run.ipi_log,
    )
    try:
        with session, sigterm_as_interrupt():
            session.start(socket_wait_s=min(SOCKET_WAIT_S, deadline - time.monotonic()))
            for k, log in enumerate(run.driver_logs):
                session.add_driver(
                    f"driver {k}", run.driver.program(address, sockets_prefix), log=log
                )
            session.wait(
                deadline,
                on_poll=watcher.update,
                timeout_message=(
                    "the run did not finish within its timeout "
                    f"(timeout_s={run.driver.timeout_s:g}, --timeout on the command line); "
                    "i-PI and drivers stopped"
                ),
            )
            session.wait_for_drivers()
    except KeyboardInterrupt:
        _finish(run, "interrupted", started, watcher, "interrupted (Ctrl-C or SIGTERM)")
        print(f"interrupted: outputs kept in {run.run_dir}", file=stream, flush=True)
        raise
    except MDRunError as error:
        _finish(run, "failed", started, watcher, str(error))
        raise MDRunError(f"{error}; outputs kept in {run.run_dir}") from None
    done = _finish(run, "completed", started, watcher)
    if done.last_step < done.total_steps:
        message = f"i-PI stopped at step {done.last_step} of {done.total_steps}"
        replace(done, status="failed", message=message).write()
        raise MDRunError(f"{message}{session.ipi.last_words()}; outputs kept in {run.run_dir}")
    return done


def _case_defaults(case_dir: Path) -> dict:
    path = case_dir / "case.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("driver_defaults", {})


def run_md(
    case_dir,
    *,
    model: str | None = None,
    steps: int | None = None,
    order: int | None = None,
    stride: int | None = None,
    r_mbe: float | None = None,
    output_dir=None,
    timeout_s: float = 600.0,
    n_drivers: int = 1,
    sample_atoms: int | None = None,
    sample_seed: int | None = None,
    settings: ExpansionSettings | None = None,
    threads: int = 1,
    progress: bool = True,
    stream=None,
) -> MDRun:
    """Run the i-PI case in ``case_dir`` with body-order drivers; return the run.

    ``model`` (a spec of :func:`~ase_bodyorder.resolve_model`; a model file's path is
    recorded absolute), ``order``, ``stride`` (steps between expansions), ``r_mbe``
    (Angstrom): the drivers' settings; unset ones come from the case's ``case.json`` (and the
    default model). ``steps``: MD steps (default: the case's). ``output_dir``: the new
    run directory (default ``md_runs/<case>-<time>``; must not hold files).
    ``timeout_s``: wall-clock limit (s) of the whole run. ``n_drivers``: driver
    processes (path integrals: the beads are split into batches of
    ``ceil(nbeads / n_drivers)``; with one driver, all beads of a step are expanded
    together). ``sample_atoms``: expand m randomly drawn atoms per expanded structure
    (an unbiased estimate of E^(n)/N with its standard error; ``sample_seed`` seeds the
    draws, default 0; every driver process draws the same sequence). ``settings``: the
    expansion as one :class:`~ase_bodyorder.ExpansionSettings` (its ``order`` or ``r_mbe``
    None: the case's); the arguments above that are given replace its fields. Progress
    goes to ``stream`` (default stderr).

    Raises :class:`MDRunError` when i-PI or a driver fails or time runs out (both are
    stopped, outputs kept) and re-raises ``KeyboardInterrupt`` after stopping both.
    """
    case_dir = Path(case_dir)
    source = case_dir / "input.xml"
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: a case directory holds an i-PI input.xml")
    _check_counts(steps=steps, n_drivers=n_drivers, timeout_s=timeout_s)
    defaults = _case_defaults(case_dir)
    root = ET.parse(source).getroot()
    structure = _input.structure_file(root)
    if structure is None:
        raise _input.InputError(f"{source}: no <initialize><file> structure for the driver")
    given = {"order": order, "stride": stride, "r_mbe": r_mbe, "sample_atoms": sample_atoms}
    given["seed"] = sample_seed
    expansion = _expansion(settings, given, defaults)
    driver = DriverSettings(
        model=absolute_spec(model or defaults.get("model", DEFAULT_MD_MODEL)),
        expansion=expansion,
        template=Path(structure).name,
        threads=threads,
        timeout_s=timeout_s,
    )
    total = (
        steps
        if steps is not None
        else int(float(_input.element_text(root.find("total_steps")) or 0))
    )
    _preflight(driver, case_dir / structure)
    run_dir = _new_run_dir(output_dir, case_dir.resolve().name)
    shutil.copy2(case_dir / structure, run_dir / driver.template)
    if (case_dir / "case.json").is_file():
        shutil.copy2(case_dir / "case.json", run_dir / "case.json")
    _input.structure_element(root).text = f" {driver.template} "
    return _prepare_and_execute(
        root,
        run_dir=run_dir,
        case=case_dir.resolve().name,
        driver=driver,
        first_step=0,
        total_steps=total,
        timeout_s=timeout_s,
        n_drivers=n_drivers,
        progress=progress,
        stream=stream,
    )


def restart_md(
    previous_run,
    *,
    steps: int,
    output_dir=None,
    timeout_s: float = 600.0,
    n_drivers: int = 1,
    progress: bool = True,
    stream=None,
) -> MDRun:
    """Continue a run from its ``RESTART`` file (else its checkpoint) in a new directory.

    ``previous_run``: a run directory (or :class:`MDRun`); ``steps``: how many more MD
    steps. The drivers keep the previous settings, and their step counter starts at the
    restart step, so that the expansion stride stays aligned with i-PI's steps.
    """
    previous = previous_run if isinstance(previous_run, MDRun) else MDRun.load(previous_run)
    _check_counts(steps=steps, n_drivers=n_drivers, timeout_s=timeout_s)
    source = next((p for p in (previous.restart, previous.checkpoint) if p.is_file()), None)
    if source is None:
        raise FileNotFoundError(
            f"neither {previous.restart.name} nor {previous.checkpoint.name} in "
            f"{previous.run_dir}: nothing to restart from"
        )
    root = ET.parse(source).getroot()
    step = _input.current_step(root)
    driver = previous.driver.replace(first_call=step, timeout_s=timeout_s)
    _preflight(driver, previous.run_dir / driver.template)
    run_dir = _new_run_dir(output_dir, f"{previous.case}-restart")
    shutil.copy2(previous.run_dir / driver.template, run_dir / driver.template)
    return _prepare_and_execute(
        root,
        run_dir=run_dir,
        case=previous.case,
        driver=driver,
        first_step=step,
        total_steps=step + steps,
        timeout_s=timeout_s,
        n_drivers=n_drivers,
        progress=progress,
        stream=stream,
        restarted_from=str(source),
    )


def _expansion(settings: ExpansionSettings | None, given: dict, defaults: dict):
    """The drivers' expansion: ``settings`` (else the case's stride and seed 0), the
    arguments ``given`` (not None) in place of its fields, and the case's order (else 3)
    and r_mbe where it leaves them unset."""
    if settings is None:
        settings = ExpansionSettings(stride=defaults.get("stride", 1), seed=0)
    elif not isinstance(settings, ExpansionSettings):
        raise BodyOrderError(f"settings must be ExpansionSettings, got {settings!r}")
    expansion = settings.replace(**{k: v for k, v in given.items() if v is not None})
    unset = {
        "order": defaults.get("order", 3) if expansion.order is None else expansion.order,
        "r_mbe": defaults.get("r_mbe") if expansion.r_mbe is None else expansion.r_mbe,
    }
    return expansion.replace(**unset)


def _preflight(driver: DriverSettings, template: Path) -> None:
    """Build the driver once with these settings on ``template`` (a structure file), so
    that bad settings fail before i-PI starts."""
    from .driver import BodyOrderDriver  # i-PI: the driver's base class

    BodyOrderDriver.from_settings(driver, template)


def _check_counts(*, steps, n_drivers, timeout_s) -> None:
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 1):
        raise MDRunError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(n_drivers, bool) or int(n_drivers) != n_drivers or n_drivers < 1:
        raise MDRunError(f"n_drivers must be a positive integer, got {n_drivers!r}")
    if not timeout_s > 0:
        raise MDRunError(f"timeout_s must be positive, got {timeout_s!r}")


def _prepare_and_execute(
    root: ET.Element,
    *,
    run_dir: Path,
    case: str,
    driver: DriverSettings,
    first_step: int,
    total_steps: int,
    timeout_s: float,
    n_drivers: int,
    progress: bool,
    stream,
    restarted_from: str | None = None,
) -> MDRun:
    """Rewrite and write the input into ``run_dir``, then run it."""
    address = unique_address()
    _input.rewrite_input(
        root,
        total_steps=total_steps,
        address=address,
        stride=driver.expansion.stride,
        n_drivers=n_drivers,
    )
    ET.ElementTree(root).write(run_dir / "input.xml", encoding="unicode")
    run = _layout(run_dir, root, case, driver, first_step, total_steps, n_drivers, restarted_from)
    return _execute(
        run,
        address=address,
        sockets_prefix=_input.sockets_prefix(root),
        timeout_s=timeout_s,
        progress=progress,
        stream=stream,
    )
