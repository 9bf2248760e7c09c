"""MD steps per second of the 64-atom high-density hydrogen case (md_inputs/nvt), five routes.

Measured in one run, one after the other, on the same initial structure (classical NVT,
1500 K, dt 0.2 fs):

1. ``plain``: i-PI + our driver (``ase-bodyorder driver``), no body-order monitoring
   (stride 0, "never", where the driver takes it; otherwise a stride past the last step,
   so that only the first call, inside the warm-up, is expanded);
2. ``stride10``: i-PI + our driver, order K=3, r_mbe=3.0 A, expanded every 10 steps;
3. ``stride100``: the same, every 100 steps;
4. ``stock``: i-PI + i-PI's own metatomic driver (``i-pi-py_driver -m metatomic``, cpu;
   its dtype is the model's, it has no dtype option);
5. ``ase``: ``ase.md.langevin.Langevin`` (friction 1/20 fs, centre of mass fixed) with
   ``metatomic_ase.MetatomicCalculator`` (cpu), in a subprocess, no i-PI.

Routes 4 and 5 need an exported metatomic model (``load_model(name).path``); for other
models (the analytic ``h-morse-atm``, MACE) they are skipped. i-PI routes run in a
temporary directory, each with the case's input rewritten by ``ase_bodyorder.ipi``
(steps, socket, outputs); i-PI and every client run as subprocesses in their own process
groups, with bounded waits, and are stopped whatever happens.

Timing: while a route runs, i-PI's properties file (one line per step, flushed each
step) is polled every 5 ms and the wall-clock time at which each step's line appears is
recorded (ASE: an observer after each step). The rate is taken between the line of step
``warmup`` and the last step, so start-up, model loading and TorchScript warm-up are
excluded; start-up (launch to step ``warmup``) is shown apart. Step k's line follows the
driver's call k (call 0 is the initial structure), so a monitored route expands calls
k = 0, S, 2S, ...; ``frames`` counts those inside the timed window, and ``frame cost``
is the implied cost of one monitored frame in plain steps,
``((t_monitored - t_plain) / frames) / t_plain_per_step`` (``t_plain`` scaled to the
same number of steps). ``x stock``: steps/s relative to route 4. With the default 60
steps, stride 100 expands only call 0 (in the warm-up): it shows no monitored frame
unless ``--steps`` is at least 100. A route that fails (i-PI or a client exits with an
error, e.g. our driver on overlapping atoms, or the time limit) is reported as failed,
with the rate of the steps it made.

    OMP_NUM_THREADS=1 python benchmarks/bench_md.py [--model NAME] [--steps 60]
        [--warmup 5] [--threads 1] [--routes plain stride10 stride100 stock ase]
        [--r-mbe 3.0] [--timeout 600] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.ipi import _input
from ase_bodyorder.ipi._progress import Tail
from ase_bodyorder.ipi.driver import BodyOrderDriver
from ase_bodyorder.ipi.session import (
    SOCKET_WAIT_S,
    IPISession,
    MDRunError,
    child_environment,
    find_python_script,
    sigterm_as_interrupt,
    start_guarded,
    unique_address,
)
from ase_bodyorder.models import load_model
from ase_bodyorder.models.registry import DEFAULT_MD_MODEL
from ase_bodyorder.runs import DriverSettings

CASE = Path(__file__).resolve().parents[1] / "md_inputs" / "nvt"
TEMPLATE = "init.extxyz"
TEMPERATURE_K = 1500.0
TIMESTEP_FS = 0.2
TAU_FS = 20.0
SEED = 20261201
ORDER = 3
R_MBE = 3.0
POLL_S = 0.005

#: route key -> (number, description, expansion stride or None)
ROUTES = {
    "plain": (1, "i-PI + our driver, no monitoring", None),
    "stride10": (2, f"i-PI + our driver, K={ORDER}, stride 10", 10),
    "stride100": (3, f"i-PI + our driver, K={ORDER}, stride 100", 100),
    "stock": (4, "i-PI + stock metatomic driver", None),
    "ase": (5, "ASE Langevin + MetatomicCalculator", None),
}


@dataclass
class Timing:
    """Wall-clock times (s, monotonic) at which steps 0, 1, ... were seen, and how the
    route ended."""

    route: str
    stamps: dict[int, float]
    launched: float
    error: str = ""
    skipped: str = ""

    def window(self, warmup: int) -> tuple[int, int, float] | None:
        """(first, last, seconds): the timed window, from step ``warmup`` to the last."""
        if warmup not in self.stamps:
            return None
        last = max(self.stamps)
        if last <= warmup:
            return None
        return warmup, last, self.stamps[last] - self.stamps[warmup]


# ---------------------------------------------------------------- i-PI routes


def plain_stride(model: str, steps: int) -> int:
    """0 ("never") if the driver accepts it, else a stride past the last step."""
    settings = DriverSettings(model, ORDER, 0, R_MBE, TEMPLATE)
    try:
        BodyOrderDriver.from_settings(settings, CASE / TEMPLATE)
    except BodyOrderError as error:
        if "stride" not in str(error):
            raise
        return steps + 1
    return 0


def prepare(run_dir: Path, *, steps: int, output_stride: int, extras: bool) -> tuple:
    """The case's input, rewritten into ``run_dir``; returns (address, sockets prefix,
    properties file, index of the step column)."""
    run_dir.mkdir(parents=True)
    shutil.copy2(CASE / TEMPLATE, run_dir / TEMPLATE)
    root = ET.parse(CASE / "input.xml").getroot()
    _input.structure_element(root).text = f" {TEMPLATE} "
    address = unique_address()
    _input.rewrite_input(
        root, total_steps=steps, address=address, stride=output_stride, n_drivers=1
    )
    if not extras:  # the stock driver sends no body-order extras: i-PI would fail on them
        output = root.find("output")
        for trajectory in output.findall("trajectory"):
            if trajectory.get("extra_type", "").startswith("body_order"):
                output.remove(trajectory)
    ET.ElementTree(root).write(run_dir / "input.xml", encoding="unicode")
    step_column = _input.property_columns(root).index("step")
    return address, _input.sockets_prefix(root), run_dir / f"{_input.PREFIX}.out", step_column


def watch(
    timing: Timing, session: IPISession, properties: Path, column: int, deadline: float
) -> None:
    """Record when each step's line appears, until i-PI exits; raise on failure."""
    tail = Tail(properties)

    def read() -> None:
        now = time.monotonic()
        for line in tail.lines():
            if line.strip() and not line.startswith("#"):
                timing.stamps.setdefault(int(float(line.split()[column])), now)

    try:
        session.wait(deadline, on_poll=read, timeout_message="timed out", poll_s=POLL_S)
    except MDRunError as error:
        raise MDRunError(f"at step {max(timing.stamps, default=0)}: {error}") from None
    read()


def run_ipi(
    route: str,
    run_dir: Path,
    client_command,
    *,
    steps: int,
    output_stride: int,
    extras: bool,
    threads: int,
    timeout_s: float,
) -> Timing:
    """i-PI plus one client (``client_command(address, sockets_prefix)`` gives its
    interpreter and program), timed."""
    address, prefix, properties, column = prepare(
        run_dir, steps=steps, output_stride=output_stride, extras=extras
    )
    timing = Timing(route, {}, time.monotonic())
    deadline = timing.launched + timeout_s
    session = IPISession(run_dir, address=address, sockets_prefix=prefix, threads=threads)
    try:
        with session:  # stops i-PI (first) and the client whatever happens
            session.start(socket_wait_s=min(SOCKET_WAIT_S, timeout_s))
            interpreter, program = client_command(address, prefix)
            session.add_driver(
                "driver", program, interpreter=interpreter, log=run_dir / "driver.log"
            )
            watch(timing, session, properties, column, deadline)
            session.wait_for_drivers()  # i-PI has sent EXIT
        if max(timing.stamps, default=-1) < steps:
            timing.error = f"i-PI stopped at step {max(timing.stamps, default=0)} of {steps}"
    except MDRunError as error:
        timing.error = str(error)
    return timing


def our_client(model: str, stride: int, threads: int, timeout_s: float):
    """``python -m ase_bodyorder.ipi.client`` with these settings."""
    settings = DriverSettings(
        model, ORDER, stride, R_MBE, TEMPLATE, threads=threads, timeout_s=timeout_s
    )

    def command(address: str, prefix: str) -> tuple[list[str], list[str]]:
        return [sys.executable], settings.program(address, prefix)

    return command


def extensions_directory() -> str:
    """Where metatomic finds the TorchScript extensions SOAP-BPNN needs (sphericart): the
    installed package's root, which has the layout ``mtt export`` gives its
    ``extensions/`` folder (``sphericart/torch/torch-X.Y/lib``). Empty if not installed."""
    try:
        import sphericart
    except ImportError:
        return ""
    return str(Path(sphericart.__file__).resolve().parent.parent)


def stock_client(model_path: Path):
    if "," in str(model_path):
        raise ValueError(f"i-pi-py_driver -o cannot take a path with a comma: {model_path}")
    interpreter, script = find_python_script("i-pi-py_driver", "i-PI's `i-pi-py_driver` not found")

    def command(address: str, prefix: str) -> tuple[list[str], list[str]]:
        options = f"template={TEMPLATE},model={model_path},device=cpu"
        extensions = extensions_directory()
        if extensions and "," not in extensions:
            options += f",extensions={extensions}"
        arguments = ["-u", "-a", address, "-S", prefix, "-m", "metatomic", "-o", options]
        return interpreter, [script, *arguments]

    return command


# ---------------------------------------------------------------- ASE route


def ase_worker(spec: str) -> None:
    """Runs in a subprocess: Langevin MD with the metatomic ASE calculator; writes the
    time (``time.time()``) after each step (step 0: the initial forces) as JSON."""
    import ase.io
    import numpy as np
    import torch
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta
    from metatomic_ase import MetatomicCalculator

    options = json.loads(spec)
    torch.set_num_threads(options["threads"])
    atoms = ase.io.read(CASE / TEMPLATE)
    atoms.calc = MetatomicCalculator(
        options["model_path"], device="cpu", extensions_directory=extensions_directory() or None
    )
    rng = np.random.default_rng(SEED)
    thermalize_momenta(atoms, TEMPERATURE_K, rng=rng)
    atoms.set_constraint(FixCom())  # i-PI's dynamics fix the centre of mass too
    dyn = Langevin(
        atoms,
        timestep=TIMESTEP_FS * units.fs,
        temperature_K=TEMPERATURE_K,
        friction=1.0 / (TAU_FS * units.fs),
        fixcm=False,
        rng=rng,
    )
    stamps = []
    dyn.attach(lambda: stamps.append(time.time()), interval=1)
    dyn.run(options["steps"])
    Path(options["output"]).write_text(json.dumps({"stamps": stamps}))


def run_ase(run_dir: Path, model_path: Path, *, steps: int, threads: int, timeout_s: float):
    run_dir.mkdir(parents=True)
    output = run_dir / "stamps.json"
    spec = {"model_path": str(model_path), "steps": steps, "threads": threads}
    spec["output"] = str(output)
    program = [str(Path(__file__).resolve()), "--ase-worker", json.dumps(spec)]
    timing = Timing("ase", {}, time.monotonic())
    launched_at = time.time()
    worker = start_guarded(
        "ASE",
        [sys.executable],
        program,
        cwd=run_dir,
        log=run_dir / "ase.log",
        env=child_environment(threads),
        death_signal=signal.SIGKILL,
    )
    try:
        code = worker.popen.wait(timeout=timeout_s)
        if code != 0:
            timing.error = f"the ASE run exited with status {code}{worker.last_words()}"
        else:
            stamps = json.loads(output.read_text())["stamps"]
            offset = timing.launched - launched_at  # time.time() -> time.monotonic()
            timing.stamps = {k: t + offset for k, t in enumerate(stamps)}
    except subprocess.TimeoutExpired:
        timing.error = "timed out"
    finally:
        worker.stop()
    return timing


# ---------------------------------------------------------------- report


def frames_in(first: int, last: int, stride: int) -> int:
    """Expanded calls k (k % stride == 0) with first < k <= last."""
    return last // stride - first // stride


def report(timings: list[Timing], warmup: int, plain_stride_used: int) -> None:
    rates = {}
    windows = {}
    for t in timings:
        w = t.window(warmup)
        if w is not None:
            windows[t.route] = w
            rates[t.route] = (w[1] - w[0]) / w[2]
    header = (
        f"{'route':<46} {'steps':>5} {'wall s':>7} {'steps/s':>8} {'x stock':>7} "
        f"{'frames':>6} {'frame cost':>10} {'start s':>7}"
    )
    print(header)
    print("-" * len(header))
    notes = []
    for t in timings:
        number, label, stride = ROUTES[t.route]
        name = f"{number} {label}"
        if t.skipped:
            print(f"{name:<46} {'skipped':>5}")
            notes.append(f"route {number} skipped: {t.skipped}")
            continue
        if t.error:
            notes.append(f"route {number} FAILED: {t.error}")
        w = windows.get(t.route)
        if w is None:
            print(f"{name:<46} {'failed':>5}")
            continue
        first, last, wall = w
        steps = last - first
        ratio = f"{rates[t.route] / rates['stock']:7.2f}" if "stock" in rates else f"{'-':>7}"
        frames, cost = "", "-"
        if stride is not None:
            n = frames_in(first, last, stride)
            frames = str(n)
            if n and "plain" in rates:
                per_step = 1.0 / rates["plain"]
                cost = f"{((wall - steps * per_step) / n) / per_step:.1f}"
        start = t.stamps[first] - t.launched
        flag = " (failed)" if t.error else ""
        print(
            f"{name + flag:<46} {steps:5d} {wall:7.2f} {rates[t.route]:8.2f} {ratio} "
            f"{frames:>6} {cost:>10} {start:7.1f}"
        )
    if "plain" in rates or any(t.route == "plain" for t in timings):
        what = "0 (never)" if plain_stride_used == 0 else f"{plain_stride_used} (first call only)"
        notes.append(f"route 1 ran the driver with stride {what}")
    for note in notes:
        print(f"  {note}")


def run_route(route: str, run_dir: Path, args, model_path: Path | None, stride0: int) -> Timing:
    common = {"steps": args.steps, "threads": args.threads, "timeout_s": args.timeout}
    if route == "ase":
        return run_ase(run_dir, model_path, **common)
    if route == "stock":
        client = stock_client(model_path)
        return run_ipi(route, run_dir, client, output_stride=args.steps + 1, extras=False, **common)
    stride = ROUTES[route][2]
    stride = stride0 if stride is None else stride
    client = our_client(args.model, stride, args.threads, args.timeout)
    output_stride = stride if stride > 0 else args.steps + 1  # i-PI needs a stride >= 1
    return run_ipi(route, run_dir, client, output_stride=output_stride, extras=True, **common)


def main(argv=None):
    global R_MBE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MD_MODEL)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (at most steps/2)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), help="names or 1-5")
    parser.add_argument("--timeout", type=float, default=600.0, help="limit per route, s")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    parser.add_argument(
        "--r-mbe", type=float, default=R_MBE, help=f"expansion radius, A (default {R_MBE})"
    )
    parser.add_argument("--ase-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    R_MBE = args.r_mbe
    if args.ase_worker:
        return ase_worker(args.ase_worker)
    by_number = {str(n): key for key, (n, _, _) in ROUTES.items()}
    routes = [by_number.get(r, r) for r in args.routes]
    unknown = [r for r in routes if r not in ROUTES]
    if unknown or args.steps < 2:
        parser.error(f"unknown routes {unknown}" if unknown else "--steps must be >= 2")
    routes = [r for r in ROUTES if r in routes]
    warmup = max(0, min(args.warmup, args.steps // 2))

    import torch

    try:
        model = load_model(args.model)
    except BodyOrderError as error:
        parser.error(str(error))
    is_metatomic = type(model).__name__ == "MetatomicModel"
    model_path = Path(model.path) if is_metatomic else None
    stride0 = plain_stride(args.model, args.steps) if "plain" in routes else 0
    print(
        f"torch {torch.__version__}; {args.threads} torch thread(s) per driver/calculator "
        f"(OMP_NUM_THREADS={args.threads} for i-PI and every client)",
        flush=True,
    )
    print(
        f"case {CASE.name}: 64 H atoms, NVT {TEMPERATURE_K:g} K, dt {TIMESTEP_FS} fs; model "
        f"{args.model} (dtype {getattr(model, 'dtype', 'n/a')}); K={ORDER}, r_mbe={R_MBE} A; "
        f"{args.steps} steps, timed from step {warmup} to the last (wall clock per step line)",
        flush=True,
    )
    del model
    timings = []
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench_md-") as tmp:
        work = Path(tempfile.mkdtemp(prefix="bench_md-")) if args.keep else Path(tmp)
        for route in routes:
            if route in ("stock", "ase") and model_path is None:
                skip = f"{args.model} is not an exported metatomic model"
                timings.append(Timing(route, {}, 0.0, skipped=skip))
                continue
            number, label, _ = ROUTES[route]
            print(f"  running {number} {label} ...", file=sys.stderr, flush=True)
            launched = time.monotonic()
            try:
                timings.append(run_route(route, work / route, args, model_path, stride0))
            except (MDRunError, BodyOrderError, OSError, ValueError) as error:
                timings.append(Timing(route, {}, launched, error=str(error)))
        report(timings, warmup, stride0)
        if args.keep:
            print(f"run directories kept in {work}")
        elif any(t.error for t in timings):
            print("  (the run directories are removed; --keep keeps them and their logs)")


if __name__ == "__main__":
    main()
