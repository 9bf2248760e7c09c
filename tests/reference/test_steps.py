"""The helpers the reference steps share: the one-line account of a run, the sub-cluster
totals written through a temporary file (same bytes as shipped), the frame expansions
that ``reference validation`` reads, and the finite-size report's arguments."""

import gzip
from pathlib import Path

import pytest

from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.reference.cell_steps import read_frame_expansions
from ase_bodyorder.reference.executor import RunSummary
from ase_bodyorder.reference.finite_size import finite_size_report
from ase_bodyorder.reference.frames import read_frame_totals, write_frame_totals
from ase_bodyorder.reference.periodic import PeriodicDFT

FRAMES = Path(__file__).resolve().parents[2] / "reports" / "monitor_validation" / "frames"


def test_a_run_is_one_line_with_or_without_the_other_runs():
    summary = RunSummary(skipped=3, done=2, failed=1, wall_time_s=1.5, elsewhere=4)
    line = summary.line("jobs.db")
    assert line == "2 done, 1 failed, 3 already in jobs.db, 4 by another run, 1.5 s"
    alone = summary.line("jobs.db", elsewhere=False)
    assert alone == "2 done, 1 failed, 3 already in jobs.db, 1.5 s"


@pytest.mark.parametrize("name", ["nvt", "low-density"])
def test_frame_totals_are_written_again_byte_for_byte(tmp_path, name):
    """The shipped totals, read and written again through the temporary file: the same
    bytes but the gzip header's time (bytes 4-8), and no temporary file left."""
    shipped = FRAMES / f"{name}_subclusters.json.gz"
    meta, totals = read_frame_totals(shipped)
    meta.pop("units")  # write_frame_totals adds it
    path = tmp_path / shipped.name
    write_frame_totals(path, totals, meta)
    written, original = path.read_bytes(), shipped.read_bytes()
    assert written[:4] + written[8:] == original[:4] + original[8:]
    assert gzip.decompress(written) == gzip.decompress(original)
    assert read_frame_totals(path)[1] == totals
    assert [p.name for p in tmp_path.iterdir()] == [shipped.name]


def test_frame_expansions_are_read_by_label(tmp_path):
    path = tmp_path / "nvt.json"
    path.write_text('{"frames": []}\n')
    assert read_frame_expansions([f"nvt={path}"]) == {"nvt": {"frames": []}}
    with pytest.raises(BodyOrderError, match="write LABEL=FILE.json"):
        read_frame_expansions([str(path)])
    with pytest.raises(BodyOrderError, match="cannot read the frame expansions"):
        read_frame_expansions([f"nvt={tmp_path / 'missing.json'}"])


def test_a_kpoint_policy_needs_its_cells(tmp_path):
    with pytest.raises(BodyOrderError, match="sampler"):
        finite_size_report(tmp_path, "cmd", policy=PeriodicDFT(), rs_bohr=(1.5,))
    assert list(tmp_path.iterdir()) == []
