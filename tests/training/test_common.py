"""Running a trainer with a log: the epoch progress bar (tqdm) on the given stream."""

import sys
from io import StringIO

from ase_bodyorder.training import _common
from ase_bodyorder.training._common import run_logged

TRAINER = (
    "import time\nfor k in range(1, 5):\n    print(f'Epoch {k}', flush=True)\n    time.sleep(0.3)\n"
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
    returncode, *_ = _run(tmp_path, TRAINER, None, monkeypatch)
    assert returncode == 0
