"""The runner's processes die with it, and run.json tells the truth after any stop.

``kill -9`` of ``ase-bodyorder md`` used to leave i-PI and the driver running the whole
simulation unattended, with run.json saying "running" at step 0. Every process these
tests start is killed in ``finally``; every wait is bounded.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("ipi")

from helpers import SMALL, SUBPROCESS_ENV, data_lines, dead_pid, run_dir_with_runner, still  # noqa: E402

from ase_bodyorder.cli import main  # noqa: E402
from ase_bodyorder.ipi import runner  # noqa: E402
from ase_bodyorder.ipi.cases import CASES, write_case  # noqa: E402
from ase_bodyorder.ipi.runner import MDRun  # noqa: E402

GUARD = Path(runner.__file__).parent.parent / "_guard.py"
#: seconds for the orphans to go after the runner is killed: the parent-death signal
#: is immediate; i-PI's soft exit, or the guard's own exit after its grace, takes longer
#: (seconds, not never: a wide margin for a loaded machine)
GONE_WITHIN_S = 60.0


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _working_in(directory: Path) -> list[int]:
    """Pids of live processes whose working directory is ``directory``."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if Path(os.readlink(cwd)) == directory:
                found.append(int(cwd.parent.name))
        except (OSError, ValueError):
            continue
    return [pid for pid in found if pid != os.getpid() and _alive(pid)]


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_until(condition, timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return condition()


@pytest.fixture(scope="module")
def still_case(tmp_path_factory):
    """16 H atoms at rest (i-PI's dummy motion): fast steps that stay healthy for as long
    as the test needs (see tests/ipi/test_md.py::still_h16_case)."""
    case = replace(CASES["nvt"], name="h16-still", stride=1, **SMALL)
    return still(write_case(case, tmp_path_factory.mktemp("cases") / "h16-still"))


@pytest.mark.slow
def test_kill_9_of_the_runner_ends_ipi_and_the_driver(still_case, tmp_path):
    out = (tmp_path / "run").resolve()
    command = [sys.executable, "-m", "ase_bodyorder.cli", "md", str(still_case), "--quiet"]
    command += ["--model", "h-morse", "--steps", "10000000", "--output-dir", str(out)]
    md = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=SUBPROCESS_ENV,
        start_new_session=True,
    )
    children = []
    try:
        # i-PI and the driver run: steps come out (the driver answers i-PI)
        started = _wait_until(
            lambda: md.poll() is not None or data_lines(out / "simulation.out") >= 3, 90
        )
        assert started and md.poll() is None, "the run did not start"
        children = _working_in(out)
        assert len(children) >= 2, children  # i-PI and one driver
        os.kill(md.pid, signal.SIGKILL)
        md.wait(timeout=10)
        killed = time.monotonic()
        gone = _wait_until(lambda: not _working_in(out), GONE_WITHIN_S)
        took = time.monotonic() - killed
        print(f"i-PI and the driver gone {took:.1f} s after kill -9 of the runner")
        assert gone, f"still running {took:.1f} s after kill -9 of the runner: {_working_in(out)}"

        manifest = json.loads((out / "run.json").read_text())
        assert manifest["status"] == "running"  # the runner could not write it ...
        assert manifest["runner"]["pid"] == md.pid
        run = MDRun.load(out)  # ... and the reader tells the truth
        assert run.status == "killed", run
        assert run.last_step >= 2 and f"pid {md.pid}" in run.message
    finally:
        if md.poll() is None:
            os.killpg(md.pid, signal.SIGKILL)
            md.wait(timeout=10)
        _kill(set(children) | set(_working_in(out)))
        for socket_file in Path("/tmp").glob(f"ipi_bo-{md.pid}-*"):
            socket_file.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "record, status",
    [
        ("dead", "killed"),
        ("reused", "killed"),  # the pid now belongs to another process
        ("alive", "running"),
        ("elsewhere", "running"),  # another host: cannot tell
        (None, "running"),  # an older manifest: cannot tell
    ],
)
def test_load_reports_a_running_manifest_whose_runner_is_gone(tmp_path, record, status):
    me = runner.runner_identity()
    records = {
        "dead": {**me, "pid": dead_pid(), "start": None},
        "reused": {**me, "start": me["start"] - 1},
        "alive": me,
        "elsewhere": {**me, "pid": dead_pid(), "host": "another-host"},
        None: None,
    }
    run_dir = run_dir_with_runner(tmp_path, records[record])
    run = MDRun.load(run_dir)
    assert run.status == status
    if status == "killed":
        assert run.last_step == 7  # the last complete line, not the one being written
        assert "without a clean shutdown" in run.message


def test_report_says_the_run_was_killed(tmp_path, capsys):
    run_dir = run_dir_with_runner(tmp_path, {**runner.runner_identity(), "pid": dead_pid()})
    block = " #EXTRAS(body_order_energies)# Step: {} \n -1.0 -0.5 0.25\n"
    (run_dir / "simulation.bo_0").write_text("".join(block.format(s) for s in range(0, 8, 2)))
    assert main(["report", str(run_dir), "--plots", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "run killed: steps 0..7 of 100" in out and "without a clean shutdown" in out


# ---------------------------------------------------------------- the guard itself


def _guarding_parent(tmp_path: Path, program: str, sig: str, grace_s: float):
    """A parent that starts ``program`` through the guard, prints the child's pid and
    sleeps."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(program))
    parent_code = (
        "import os, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, {str(GUARD)!r}, str(os.getpid()), "
        f"{sig!r}, {str(grace_s)!r}, {str(script)!r}])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", parent_code],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    "program, sig",
    [
        # the parent-death signal (or the watcher thread, whichever comes first) ends it
        ("import time\ntime.sleep(120)\n", "SIGKILL"),
        # a program that ignores the signal: the watcher thread ends it after the grace
        (
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)\n",
            "SIGTERM",
        ),
    ],
    ids=["signal", "ignored-signal"],
)
def test_guarded_program_ends_when_its_parent_is_killed(tmp_path, program, sig):
    parent = _guarding_parent(tmp_path, program, sig, grace_s=1.0)
    child = None
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # the guard is set up and runs the program
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        # seconds, not never (a wide margin for a loaded machine)
        assert _wait_until(lambda: not _alive(child), 60), "the guarded program outlived its parent"
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(timeout=10)
        parent.stdout.close()
        if child is not None:
            _kill([child])


def test_guard_runs_nothing_when_its_parent_is_already_gone(tmp_path):
    marker = tmp_path / "ran"
    script = tmp_path / "program.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    result = subprocess.run(
        [sys.executable, str(GUARD), str(dead_pid()), "SIGTERM", "1", str(script)],
        timeout=30,
    )
    assert result.returncode == 137 and not marker.exists()
