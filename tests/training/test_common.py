"""Running a trainer with a log: the epoch progress bar (tqdm) on the given stream."""

import sys
import time
from io import StringIO

import pytest

from ase_bodyorder import BodyOrderError
from ase_bodyorder.training import _common
from ase_bodyorder.training._common import run_logged

# four epochs 0.3 s apart; the last one stays on screen 1.5 s before the trainer exits, so
# that a poll (every 0.05 s here) sees it even on a loaded machine
TRAINER = (
    "import time\nfor k in range(1, 5):\n    print(f'Epoch {k}', flush=True)\n"
    "    time.sleep(0.3 if k < 4 else 1.5)\n"
)


def _run(tmp_path, code, progress, monkeypatch):
    monkeypatch.setattr(_common, "POLL_S", 0.05)
    script = tmp_path / "trainer.py"
    script.write_text(code)
    command = [sys.executable, str(script)]
    return run_logged(
        command,
        cwd=tmp_path,
        log_path=tmp_path / "train.log",
        timeout=60,
        what="trainer",
        progress=progress,
        max_epochs=4,
    )


def test_the_bar_shows_the_epoch_reached_and_the_time_left(tmp_path, monkeypatch):
    stream = StringIO()
    returncode, _, log, _ = _run(tmp_path, TRAINER, stream, monkeypatch)
    assert returncode == 0 and "Epoch 4" in log
    shown = stream.getvalue().split("\r")
    assert any(part.startswith("trainer:") and "/4 [" in part for part in shown)
    final = shown[-1]
    assert "4/4" in final and "epoch" in final and "<" in final  # elapsed<left


def test_nothing_is_shown_without_epochs_or_without_a_stream(tmp_path, monkeypatch):
    stream = StringIO()
    _run(tmp_path, "print('no epochs here')", stream, monkeypatch)
    assert stream.getvalue() == ""
    returncode, *_ = _run(tmp_path, "print('Epoch 1')", None, monkeypatch)
    assert returncode == 0


def test_the_wall_time_of_a_resumed_training_counts_every_part(tmp_path, monkeypatch):
    """Regression: a resumed training recorded only its last part's wall time (a MACE
    model of 106 epochs claimed 28 s)."""
    monkeypatch.setattr(_common, "POLL_S", 0.05)
    monkeypatch.setattr(_common, "_LEDGER_S", 0.1)
    script = tmp_path / "trainer.py"
    script.write_text("import time\ntime.sleep(0.6)\n")

    def wall_time(append: bool) -> float:
        return run_logged(
            [sys.executable, str(script)],
            cwd=tmp_path,
            log_path=tmp_path / "train.log",
            timeout=60,
            what="trainer",
            append=append,
        )[1]

    times = [wall_time(append) for append in (False, True)]
    assert min(times) >= 0.6
    assert _common.total_wall_time(tmp_path) == pytest.approx(sum(times), abs=2e-3)
    # a fresh start (no append) starts the ledger afresh
    fresh = wall_time(False)
    assert _common.total_wall_time(tmp_path) == pytest.approx(fresh, abs=2e-3)


def test_a_killed_run_leaves_its_time_so_far_in_the_ledger(tmp_path, monkeypatch):
    """The ledger is kept up to date while the trainer runs: a training stopped by its
    timeout (as by a session's end) has its time on disk for the resumed run to add to."""
    monkeypatch.setattr(_common, "POLL_S", 0.05)
    monkeypatch.setattr(_common, "_LEDGER_S", 0.1)
    script = tmp_path / "trainer.py"
    script.write_text("import time\ntime.sleep(30)\n")
    started = time.monotonic()
    with pytest.raises(BodyOrderError, match="did not finish"):
        run_logged(
            [sys.executable, str(script)],
            cwd=tmp_path,
            log_path=tmp_path / "train.log",
            timeout=1.5,
            what="trainer",
        )
    # written while it ran (a killed run writes nothing at its end): at least a third of
    # the 1.5 s before the timeout (the ledger is rewritten every 0.1 s; a loaded machine
    # may skip polls for up to a second), at most the time the call took
    assert 0.5 < _common.total_wall_time(tmp_path) <= time.monotonic() - started


def test_trainer_threads_come_from_the_environment(tmp_path, monkeypatch):
    # one thread unless ASE_BODYORDER_TRAINER_THREADS says otherwise (it was always one)
    code = "import os\nprint('threads', os.environ['OMP_NUM_THREADS'])\n"
    monkeypatch.delenv(_common.THREADS_VARIABLE, raising=False)
    assert "threads 1" in _run(tmp_path, code, None, monkeypatch)[2]
    monkeypatch.setenv(_common.THREADS_VARIABLE, "2")
    assert "threads 2" in _run(tmp_path, code, None, monkeypatch)[2]
    for bad in ("0", "two", "-1", ""):
        monkeypatch.setenv(_common.THREADS_VARIABLE, bad)
        with pytest.raises(BodyOrderError, match=f"{_common.THREADS_VARIABLE} must be a positive"):
            _run(tmp_path, code, None, monkeypatch)
