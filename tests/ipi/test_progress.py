"""The progress bar of an MD run (tqdm), read from i-PI's growing output files."""

from io import StringIO
from types import SimpleNamespace

from ase_bodyorder.ipi._progress import Progress


def _run(tmp_path, total=10):
    return SimpleNamespace(
        properties=tmp_path / "md.out",
        extras={"bo_shares": [tmp_path / "shares.txt"]},
        property_columns=("step", "temperature", "conserved"),
        total_steps=total,
    )


def _append(path, text):
    with open(path, "a") as handle:
        handle.write(text)


def test_the_bar_follows_the_steps_i_pi_writes(tmp_path):
    run, stream = _run(tmp_path), StringIO()
    progress = Progress(run, stream, enabled=True)
    progress.update()
    assert progress.step is None and stream.getvalue() == ""  # nothing before a step
    _append(run.properties, "# column 1 --> step\n0 300.0 -1.5\n3 310.0 -1.50001\n4 ")
    _append(run.extras["bo_shares"][0], "# shares\n0.9 0.2 -0.1\n")
    progress.update()
    assert progress.step == 3  # the incomplete line is left for later
    _append(run.properties, "320.0 -1.50002\n")
    progress.update(final=True)
    assert progress.step == 4
    final = stream.getvalue().split("\r")[-1]
    assert final.startswith("step:  40%") and "4/10 [" in final and "<" in final  # time left
    assert "T 320 K" in final and "E_cons -1.50002 eV" in final
    assert "shares 1:+0.900 2:+0.200 3:-0.100" in final


def test_a_quiet_run_prints_nothing_but_still_reads_the_steps(tmp_path):
    run, stream = _run(tmp_path), StringIO()
    progress = Progress(run, stream, enabled=False)
    _append(run.properties, "7 300.0 -1.5\n")
    progress.update(final=True)
    assert progress.step == 7 and stream.getvalue() == ""
