"""Bad input to the command line: one line naming the problem and the file, exit status 2."""

import os

import pytest
from helpers import fake_ipi_run

from ase_bodyorder.cli import example_path, main


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("ase-bodyorder: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def files(tmp_path):
    empty = tmp_path / "empty.xyz"
    empty.write_bytes(b"")
    binary = tmp_path / "binary.xyz"
    binary.write_bytes(bytes(range(256)) * 4)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("{not json")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    yield {
        "EMPTY": str(empty),
        "BINARY": str(binary),
        "BROKEN_JSON": str(broken_json),
        "DIR": str(tmp_path),
        "READ_ONLY_OUT": str(read_only / "out.xyz"),
        "EXAMPLE": str(example_path()),
    }
    read_only.chmod(0o700)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["decompose", "EMPTY"], "EMPTY is empty"),
        (["decompose", "BINARY"], "cannot read structures from BINARY"),
        (["decompose", "DIR"], "DIR is a directory"),
        (["decompose", "EXAMPLE", "--order", "2", "--output", "DIR"], "DIR is a directory"),
        (["decompose", "EXAMPLE", "--order", "2", "--output", "READ_ONLY_OUT"], "not writable"),
        (["decompose", "EXAMPLE", "--order", "2", "--index", "5"], "EXAMPLE"),
        (["--threads", "0", "models"], "--threads must be a positive integer"),
        (["study", "learning-curves", "--settings", "BROKEN_JSON"], "BROKEN_JSON"),
        (["study", "ship", "--architectures", "mace", "--settings", "BROKEN_JSON"], "BROKEN_JSON"),
        (["study", "learning-curves", "--sizes", "50", "x"], "sizes must be integers"),
        (
            ["study", "makeup", "--timeout", "-5"],
            "--timeout must be a positive number of seconds, got -5",
        ),
        (
            ["study", "learning-curves", "--timeout", "nan"],
            "--timeout must be a positive number of seconds, got nan",
        ),
        # every model must be there before any is shipped (regression: the loop shipped
        # the first and then stopped on the second)
        (
            ["study", "ship", "--architectures", "mace", "pet", "--size", "20", "--cache", "DIR"],
            "not trained in DIR (nothing shipped): mace-high-n20-s0-",
        ),
        # a mistyped cache is an error, not an empty cache (regression: the report
        # created it and went on to restore the shipped models into it)
        (["study", "report", "--cache", "DIR/none", "--out", "DIR/rep"], "DIR/none does not"),
        (["report", "DIR", "--from-step", "-1"], "--from-step must be >= 0, got -1"),
        (
            ["scan", "--rs", "1.6", "--equilibration", "-1", "--output-dir", "DIR/scan"],
            "equilibration_steps must be >= 0, got -1",
        ),
    ],
)
def test_bad_input_is_one_line(files, capsys, argv, expected):
    if os.geteuid() == 0 and "READ_ONLY_OUT" in argv:
        pytest.skip("root writes into read-only directories")
    for key, value in files.items():
        argv = [a.replace(key, value) for a in argv]
        expected = expected.replace(key, value)
    assert main(argv) == 2
    assert expected in _one_error_line(capsys)


def test_study_ship_looks_for_the_models_of_the_given_settings(tmp_path, capsys):
    """``study ship --settings`` ships the models trained with those overrides (the
    plain recipe's models have other keys)."""
    from ase_bodyorder.study import TrainingSpec

    settings = tmp_path / "settings.json"
    settings.write_text('{"lr": 0.02}')
    argv = ["study", "ship", "--architectures", "mace", "--densities", "low", "--size", "20"]
    assert main([*argv, "--settings", str(settings), "--cache", str(tmp_path)]) == 2
    key = TrainingSpec("mace", "low", 20, 0, {"lr": 0.02}).key
    assert key != TrainingSpec("mace", "low", 20, 0).key
    assert f"not trained in {tmp_path} (nothing shipped): {key};" in _one_error_line(capsys)


def test_a_single_integer_index_is_one_frame(capsys):
    """Regression: ``--index 0`` (valid ASE syntax) crashed decompose."""
    assert main(["decompose", str(example_path()), "--order", "2", "--index", "0"]) == 0
    assert capsys.readouterr().out.count("structure 0") == 1


def test_report_names_an_unreadable_run_manifest(tmp_path, capsys):
    """A corrupt run.json is named, not ignored or a traceback: the status is unknown."""
    run = fake_ipi_run(tmp_path / "run", [[-13.6, -1.0, 0.1], [-13.6, -1.1, 0.2]])
    (run / "run.json").write_text("{broken")
    assert main(["report", str(run), "--plots", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"cannot read the run manifest {run / 'run.json'}" in out
    assert "run status unknown" in out
    assert "2 monitored frames" in out


def test_a_study_report_on_a_missing_cache_creates_and_writes_nothing(tmp_path, capsys):
    """Regression: ``study report --cache TYPO`` created the cache, restored the shipped
    models into it and wrote a report (into ``reports/study`` by default)."""
    argv = ["study", "report", "--cache", str(tmp_path / "none"), "--out", str(tmp_path / "rep")]
    assert main(argv) == 2
    assert "mkdir" in _one_error_line(capsys)
    assert not (tmp_path / "none").exists() and not (tmp_path / "rep").exists()


@pytest.fixture
def five_clusters(tmp_path):
    """Five distinct 4-atom hydrogen clusters in one extxyz file."""
    import ase.io

    from ase_bodyorder.structures import random_cluster

    path = tmp_path / "five.xyz"
    ase.io.write(path, [random_cluster(4, seed=k) for k in range(5)], format="extxyz")
    return path


def _json_lines(capsys) -> list[dict]:
    import json

    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_decompose_numbers_structures_by_their_place_in_the_file(five_clusters, capsys):
    """Regression: ``--json`` numbered the structures by their place in the selection
    (``--index 3`` gave structure 0; ``::-1`` labelled file frame 4 as 0)."""
    argv = ["decompose", str(five_clusters), "--model", "h-morse-atm", "--order", "2"]
    assert main([*argv, "--json"]) == 0
    everything = {line["structure"]: line["energy_eV"] for line in _json_lines(capsys)}
    assert sorted(everything) == [0, 1, 2, 3, 4]
    for index, expected in (("3", [3]), ("::-1", [4, 3, 2, 1, 0]), ("-2", [3]), ("1::2", [1, 3])):
        assert main([*argv, "--json", "--index", index]) == 0
        lines = _json_lines(capsys)
        assert [line["structure"] for line in lines] == expected
        assert [line["energy_eV"] for line in lines] == [everything[k] for k in expected]
    assert main([*argv, "--index", "-1"]) == 0
    assert "structure 4: H4" in capsys.readouterr().out


def test_decompose_store_keeps_every_selection_and_setting(five_clusters, tmp_path, capsys):
    """Regression: stored frames were named by their place in the selection, so
    ``--index 3:`` overwrote frames 0 and 1 of a full run and another ``--order``
    overwrote every frame; an unseeded sampled run recomputed and overwrote all."""
    store = tmp_path / "store"
    argv = ["decompose", str(five_clusters), "--model", "h-morse-atm", "--store", str(store)]
    assert main([*argv, "--order", "2", "--json"]) == 0
    full = {line["structure"]: line for line in _json_lines(capsys)}
    written = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(written) == 5
    # another selection: reuses frames 3 and 4 as they are, overwrites nothing
    assert main([*argv, "--order", "2", "--json", "--index", "3:"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == written
    for line in _json_lines(capsys):
        assert line == full[line["structure"]]
    # other settings: stored beside, the first run's frames untouched and still reused
    assert main([*argv, "--order", "3", "--json"]) == 0
    capsys.readouterr()
    after = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(after) == 10 and all(after[name] == t for name, t in written.items())
    assert main([*argv, "--order", "2", "--json"]) == 0
    assert {line["structure"]: line for line in _json_lines(capsys)} == full
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == after
    # an unseeded sample can never be reused: refused before anything is computed
    assert main([*argv, "--order", "2", "--sample-atoms", "2"]) == 2
    assert "needs a seed" in _one_error_line(capsys)
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == after


def test_decompose_refuses_to_overwrite_its_input(five_clusters, capsys):
    """Regression: ``--output`` equal to the input file overwrote it without a word."""
    before = five_clusters.read_bytes()
    argv = ["decompose", str(five_clusters), "--model", "h-morse-atm", "--order", "2"]
    assert main([*argv, "--output", str(five_clusters)]) == 2
    assert "is the input file" in _one_error_line(capsys)
    assert five_clusters.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["sample", "--density", "high", "--count", "2", "--seed", "1", "--rs-bohr", "-2"],
            "--rs-bohr must be a positive number, got -2",
        ),
        (
            ["sample", "--density", "high", "--count", "2", "--seed", "1", "--rs-bohr", "0"],
            "--rs-bohr must be a positive number, got 0",
        ),
        (
            ["sample", "--density", "high", "--count", "2", "--seed", "1", "--n-atoms", "0"],
            "--n-atoms must be a positive integer, got 0",
        ),
        (
            ["sample", "--density", "high", "--count", "2", "--seed", "-1"],
            "--seed must be a non-negative integer, got -1",
        ),
        (
            ["sample", "--density", "high", "--count", "0", "--seed", "1"],
            "--count must be a positive integer, got 0",
        ),
        (["periodic", "--count", "-3", "--db", "DB"], "--count must be a positive integer, got -3"),
        (
            ["periodic", "--ke-cutoff-hartree", "-1", "--db", "DB"],
            "--ke-cutoff-hartree must be a positive number, got -1",
        ),
        (
            ["periodic", "--kpoint-length", "nan", "--db", "DB"],
            "--kpoint-length must be a non-negative number, got nan",
        ),
        (
            ["compute", "CLUSTERS", "--db", "DB", "--workers", "0"],
            "--workers must be a positive integer, got 0",
        ),
        (
            ["compute", "CLUSTERS", "--db", "DB", "--workers", "-3"],
            "--workers must be a positive integer, got -3",
        ),
        (
            ["frames", "CLUSTERS", "--r-mbe", "2", "--db", "DB", "-o", "OUT", "--seed", "-4"],
            "--seed must be a non-negative integer, got -4",
        ),
        (
            ["frames", "CLUSTERS", "--r-mbe", "-2", "--db", "DB", "-o", "OUT"],
            "--r-mbe must be a positive number, got -2",
        ),
        (
            ["cell-fragments", "CLUSTERS", "--db", "DB", "-o", "OUT", "--radius", "0"],
            "--radius must be a positive number, got 0",
        ),
        (
            ["finite-size", "--hcells-policy", "1.5", "-1"],
            "--hcells-policy must be a positive number, got -1",
        ),
        (
            ["mbe", "CLUSTERS", "--db", "DB", "-o", "OUT", "--index", "5:2"],
            "no structures in CLUSTERS at index '5:2'",
        ),
        (["mbe", "CLUSTERS", "--db", "DB", "-o", "OUT", "--index", "99"], "CLUSTERS"),
        (["mbe", "CLUSTERS", "--db", "DB", "-o", "OUT", "--index", "xyz"], "CLUSTERS"),
    ],
)
def test_reference_options_are_checked_before_anything_runs(tmp_path, capsys, argv, expected):
    """Regression: out-of-range numbers were taken (clusters recording rs = -2, an exit 0
    with every job failed, ``--workers 0`` accepted) or crashed (ZeroDivisionError,
    numpy's ValueError, StopIteration, TypeError); an empty selection wrote an empty
    result. Each is one line now, and nothing is written."""
    import ase.io

    from ase_bodyorder.structures import random_cluster

    clusters = tmp_path / "three.xyz"
    ase.io.write(clusters, [random_cluster(3, seed=k) for k in range(3)], format="extxyz")
    names = {"CLUSTERS": str(clusters), "DB": str(tmp_path / "x.db"), "OUT": str(tmp_path / "o")}
    for key, value in names.items():
        argv = [a.replace(key, value) for a in argv]
        expected = expected.replace(key, value)
    out = tmp_path / "out.xyz"
    if argv[0] == "sample":
        argv += ["-o", str(out)]
    assert main(["reference", *argv]) == 2
    assert expected in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.xyz"]


def test_a_plane_wave_cutoff_of_zero_is_an_error_not_a_crash(tmp_path):
    """Regression: ``reference finite-size --ke-cutoff-hartree 0`` died of a segmentation
    fault (exit 139, no message): run in its own process, it is one line and status 2."""
    import subprocess
    import sys

    argv = ["reference", "finite-size", "--ke-cutoff-hartree", "0", "--out-dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "ase_bodyorder.cli", *argv], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "ase-bodyorder: error: --ke-cutoff-hartree must be a positive number, got 0"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("manifest", ["[1, 2]", "3"])
def test_a_run_manifest_that_is_not_an_object_is_named(tmp_path, capsys, manifest):
    """Regression: a ``run.json`` holding a JSON list crashed ``report``, ``watch`` and
    ``md --restart`` with an AttributeError. (``report`` reads it through
    ``run_manifest``, whose error it prints as for a broken file: tested above.)"""
    from ase_bodyorder.expansion import BodyOrderError
    from ase_bodyorder.monitor.report import run_manifest

    run = fake_ipi_run(tmp_path / "run", [[-13.6, -1.0, 0.1], [-13.6, -1.1, 0.2]])
    (run / "run.json").write_text(manifest)
    with pytest.raises(BodyOrderError, match="run status unknown"):
        run_manifest(run)
    ranges = tmp_path / "ranges.json"
    ranges.write_text('{"2": [-10, 10]}')
    assert main(["watch", str(run), "--ranges", str(ranges), "--timeout", "5"]) == 2
    assert f"cannot read the run manifest {run / 'run.json'}" in _one_error_line(capsys)
    assert main(["watch", str(run), "--timeout", "5"]) == 2  # ranges of the run's model
    assert f"cannot read the run manifest of {run}" in _one_error_line(capsys)
    assert main(["md", "--restart", str(run), "--steps", "2"]) == 2
    assert "not a version-1 ase-bodyorder-md-run file" in _one_error_line(capsys)


@pytest.mark.parametrize("content", ["[1, 2]", '{"trajectory": "x.xyz"}', '{"frames": []}'])
def test_a_validation_case_without_frames_is_named(tmp_path, capsys, content):
    """Regression: ``reference validation`` with a JSON that has no ``frames`` or is a
    list died of a KeyError or TypeError."""
    case = tmp_path / "case.json"
    case.write_text(content)
    out = tmp_path / "report"
    assert main(["reference", "validation", f"nvt={case}", "--out-dir", str(out)]) == 2
    assert "case nvt: not a JSON object of `reference frames --model`" in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--interval", "nan", "--interval must be a positive number of seconds, got nan"),
        ("--interval", "0", "--interval must be a positive number of seconds, got 0.0"),
        ("--timeout", "-1", "--timeout must be a positive number of seconds, got -1.0"),
        ("--idle", "-1", "--idle must be a number of seconds >= 0, got -1.0"),
    ],
)
def test_watch_times_are_checked(tmp_path, capsys, option, value, said):
    """Regression (tour): ``watch --interval nan`` died in time.sleep with a traceback;
    a zero interval spun, negative times were taken."""
    run = fake_ipi_run(tmp_path / "run", [[-13.6, -1.0, 0.1], [-13.6, -1.1, 0.2]])
    ranges = tmp_path / "ranges.json"
    ranges.write_text('{"2": [-10, 10]}')
    assert main(["watch", str(run), "--ranges", str(ranges), option, value]) == 2
    assert said in _one_error_line(capsys)


def test_reference_steps_that_would_make_nothing_or_nonsense_say_so(tmp_path, capsys):
    """Regression (tour): ``cell-fragments --sizes 9`` on small cells wrote an empty
    fragments file with exit 0; ``mbe`` of water ran its jobs and failed on an "H-atom"
    term that was an O atom."""
    import ase.io
    from ase import Atoms

    cells, water = tmp_path / "cells.xyz", tmp_path / "water.xyz"
    h2 = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[3, 3, 3], pbc=True)
    ase.io.write(cells, [h2])
    ase.io.write(water, Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    out, db = tmp_path / "out.xyz", tmp_path / "x.db"
    argv = ["reference", "cell-fragments", str(cells), "--sizes", "9", "--db", str(db)]
    assert main([*argv, "-o", str(out)]) == 2
    assert f"no fragment of sizes 9 in {cells}" in _one_error_line(capsys)
    assert main(["reference", "mbe", str(water), "--db", str(db), "-o", str(out)]) == 2
    assert f"{water}: the ab initio MBE expands hydrogen clusters, these hold O" in (
        _one_error_line(capsys)
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "option, value, said",
    [
        ("--every", "0", "--every must be a positive integer, got 0"),
        ("--sample-atoms", "-2", "--sample-atoms must be a positive integer, got -2"),
        ("--equilibration", "-5", "--equilibration must be a non-negative integer, got -5"),
        ("--seed", "-1", "--seed must be a non-negative integer, got -1"),
    ],
)
def test_increments_options_are_checked_before_anything_runs(tmp_path, capsys, option, value, said):
    """Regression (tour): ``increments --every 0`` said "every and sample_atoms must be
    positive, equilibration_steps non-negative" (Python names, no value), ``--seed -1``
    failed only after the model was loaded."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "case.json").write_text("{}")
    argv = ["increments", str(run), "--out-dir", str(tmp_path / "out"), option, value]
    assert main(argv) == 2
    assert said in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_increments_inputs_and_output_that_cannot_be_used(tmp_path, capsys):
    """Regression (tour): the same run given twice was expanded twice and counted as two
    runs (exit 0); ``--out-dir`` an existing file failed after every frame was expanded,
    with "File exists"; a scan folder without runs said "no runs to expand"."""
    run, scan, out = tmp_path / "run", tmp_path / "scan", tmp_path / "out.md"
    run.mkdir()
    (run / "case.json").write_text("{}")
    (scan / "runs").mkdir(parents=True)
    out.write_text("kept\n")
    argv = ["--out-dir", str(tmp_path / "report")]
    assert main(["increments", str(run), str(tmp_path / "." / "run"), *argv]) == 2
    assert "the same run given twice" in _one_error_line(capsys)
    assert main(["increments", str(run), "--out-dir", str(out)]) == 2
    assert f"--out-dir {out} is a file, not a directory" in _one_error_line(capsys)
    assert out.read_text() == "kept\n"
    assert main(["increments", str(scan), *argv]) == 2
    assert f"{scan}: a scan's output directory without runs" in _one_error_line(capsys)


def test_the_model_list_aligns_its_descriptions(capsys):
    """Regression (tour): names longer than 16 characters (``soap-bpnn-hbulk-high``)
    pushed their descriptions out of the column."""
    from ase_bodyorder.models import available_models

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    models = available_models()
    assert len(lines) == len(models)
    column = max(map(len, models)) + 2
    for line, (name, description) in zip(lines, models.items(), strict=True):
        assert line[:column].rstrip() == name and line[column:] == description
