"""The universal-MLIP study's report (issue 32): statistics and claims computed from the
files it is given, on synthetic reference and model results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ase_bodyorder.reference.universal import DATASETS
from ase_bodyorder.study.universal import read_reference
from ase_bodyorder.study.universal_claims import (
    budget_claim,
    level_of_theory_claims,
    resemblance_claim,
    two_not_three_claim,
)
from ase_bodyorder.study.universal_report import write_report
from ase_bodyorder.study.universal_stats import (
    REPRODUCES_FRACTION,
    cost_by_element,
    order_errors,
    separation_failures,
)


def _reference_set(name: str, terms: np.ndarray, missing=()) -> dict:
    clusters = []
    for k, row in enumerate(terms):
        labels = {f"{i}-{j}": 0.0 for i in range(4) for j in range(i + 1, 4)}
        clusters.append(
            {
                "cluster": k,
                "energies_eV": row.tolist(),
                "total_energy_eV": float(row.sum() + 0.01),
                "residual_eV": 0.01,
                "subcluster_energies_eV": {**labels, "full": float(row.sum())},
                "two_s": {**{label: 0 for label in labels}, "full": 0},
            }
        )
    return {
        "dataset": name,
        "element": "H",
        "calculation": {"basis": "def2-tzvp", "spin_policy": "lowest", "grid_level": 2},
        "complete": not missing,
        "missing_clusters": list(missing),
        "clusters": clusters,
    }


def _model(label: str, name: str, terms: np.ndarray) -> dict:
    rows = [
        {
            "cluster": k,
            "energies_eV": row.tolist(),
            "total_energy_eV": float(row.sum()),
            "residual_eV": 0.0,
        }
        for k, row in enumerate(terms)
    ]
    return {
        "model": label,
        "kind": "universal",
        "sets": {name: rows},
        "atom_eV": {"H": -1.0},
        "dimers": {"H": {"distances_A": [0.7, 1.0, 2.0], "binding_eV": [-4.0, -3.0, -0.5]}},
    }


@pytest.fixture
def study(tmp_path):
    rng = np.random.default_rng(0)
    # 4-atom clusters: E^(1) = -54, E^(2) ~ -5 +- 1, E^(3) ~ +1 +- 0.3, E^(4) ~ -0.2
    terms = np.column_stack(
        [
            np.full(6, -54.0),
            rng.normal(-5, 1, 6),
            rng.normal(1, 0.3, 6),
            rng.normal(-0.2, 0.05, 6),
        ]
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "h8-high_pbe.json").write_text(json.dumps(_reference_set("h8-high", terms)))
    (data / "dimers_pbe.json").write_text(
        json.dumps(
            {
                "curves": {
                    "H": {
                        "reference": {
                            "distances_A": [0.7, 1.0, 2.0],
                            "binding_eV": [-4.5, -3.5, -0.4],
                            "basis": "def2-tzvp",
                        },
                        "check": {
                            "distances_A": [0.7, 1.0],
                            "binding_eV": [-4.52, -3.49],
                            "basis": "def2-qzvp",
                        },
                    }
                }
            }
        )
    )
    (data / "costs_pbe.json").write_text(
        json.dumps(
            {
                "rows": [
                    {
                        "set": "h8-high",
                        "basis": "def2-tzvp",
                        "size": 2,
                        "jobs": 28,
                        "cpu_s_mean": 0.6,
                        "cpu_s_median": 0.5,
                        "cpu_s_max": 1.0,
                    }
                ]
            }
        )
    )
    models = tmp_path / "out" / "models"
    models.mkdir(parents=True)
    return tmp_path, terms, data, models


def test_order_errors_are_the_plain_statistics(study):
    _, terms, data, _ = study
    reference = read_reference(data)["sets"]["h8-high"]
    shifted = terms + np.array([4.0, 0.5, -0.1, 0.0])  # +1 eV per atom in E^(1)
    model = _model("m", "h8-high", shifted)["sets"]["h8-high"]
    errors = order_errors(reference, model)
    assert errors["clusters"] == 6
    assert errors["atom_offset_eV_per_atom"] == pytest.approx(1.0)
    assert errors["mean_error_eV"] == pytest.approx([4.0, 0.5, -0.1, 0.0])
    assert errors["rmse_eV"] == pytest.approx([4.0, 0.5, 0.1, 0.0], abs=1e-12)
    assert errors["reference_rms_eV"][1] == pytest.approx(np.sqrt((terms[:, 1] ** 2).mean()))
    # truncation against each one's own total: the reference's residual is 0.01 eV
    assert errors["reference_truncation_rmse_eV"][-1] == pytest.approx(0.01)
    assert errors["truncation_rmse_eV"][-1] == pytest.approx(0.0, abs=1e-12)


def _errors(rel2: float, rel3: float) -> dict:
    """order_errors-like statistics with the given RMSE/RMS of E^(2) and E^(3)."""
    return {
        "rmse_eV": [1.0, rel2 * 4.0, rel3 * 2.0, 0.5],
        "reference_rms_eV": [50.0, 4.0, 2.0, 1.0],
    }


@pytest.mark.parametrize(
    "rel2, rel3, holds",
    [(0.19, 0.21, True), (0.21, 0.21, False), (0.19, 0.19, False), (0.05, 3.0, True)],
)
def test_two_not_three_claim_flips_at_its_threshold(rel2, rel3, holds):
    assert REPRODUCES_FRACTION == 0.2
    claim = two_not_three_claim("h8-high", {"a": _errors(0.01, 5.0), "b": _errors(rel2, rel3)})
    # the largest E^(2) ratio and the smallest E^(3) ratio over the models decide
    assert claim.values == pytest.approx((rel2, rel3))
    assert claim.holds is holds


def test_resemblance_and_budget_claims_follow_their_numbers():
    plain = {"relative_rmse": [0.01, 1.0, 1.0, 0.8], "fraction": 0.0}
    aware = {"relative_rmse": [0.001, 0.01, 0.05, 0.1], "fraction": 0.5}
    rows = {"p": plain, "f": aware}
    claim, like = resemblance_claim("h8-high", {"u": _errors(0.9, 1.1)}, rows)
    assert like == {"u": "plain"} and claim.values == (0.0,) and claim.holds
    claim, like = resemblance_claim(
        "h8-high", {"u": _errors(0.9, 1.1), "v": _errors(0.012, 0.04)}, rows
    )
    assert like == {"u": "plain", "v": "fragment-aware"} and not claim.holds  # no majority
    claim, like = resemblance_claim("h8-high", {"v": _errors(0.012, 0.04)}, rows)
    assert not claim.holds
    assert resemblance_claim("h8-high", {"v": _errors(0.1, 0.1)}, {"p": plain}) is None

    def costs(hours):
        """10 of 20 planned jobs done at a mean that projects ``hours`` in all."""
        row = {"set": "h8-high", "basis": "def2-tzvp", "size": 4, "jobs": 10}
        return cost_by_element([{**row, "planned_jobs": 20, "cpu_s_mean": hours * 180}])

    assert costs(7.9)["H"]["projected_h"] == pytest.approx(7.9)
    assert costs(7.9)["H"]["measured_h"] == pytest.approx(7.9 / 2)
    assert budget_claim(costs(7.9)).holds and not budget_claim(costs(8.1)).holds
    # a type not run yet: its planned jobs are named, not projected (a lower bound)
    row = {"set": "c6", "basis": "def2-svp", "size": 6, "jobs": 0, "planned_jobs": 10}
    mixed = cost_by_element(
        [
            {**row, "cpu_s_mean": None},
            {**row, "set": "C-atom", "size": 1, "jobs": 1, "planned_jobs": 1, "cpu_s_mean": 3600.0},
        ]
    )
    assert mixed["C"]["unmeasured_jobs"] == 10 and mixed["C"]["projected_h"] == 1.0
    assert "10 planned jobs of types not run yet" in budget_claim(mixed).quantity
    # a lower bound under the budget decides nothing; over it, the claim is false
    assert budget_claim(mixed).verdict == "open"
    over = cost_by_element(
        [
            {**row, "cpu_s_mean": None},
            {
                **row,
                "set": "C-atom",
                "size": 1,
                "jobs": 1,
                "planned_jobs": 1,
                "cpu_s_mean": 9 * 3600.0,
            },
        ]
    )
    assert budget_claim(over).verdict == "false"
    assert budget_claim(costs(7.9)).verdict == "true"
    assert budget_claim(costs(8.1)).verdict == "false"
    old_export = cost_by_element([{**row, "jobs": 2, "cpu_s_mean": 900.0, "planned_jobs": None}])
    assert old_export["C"]["measured_h"] == 0.5
    assert "measured so far" in budget_claim(old_export).quantity


def test_level_of_theory_claim_compares_the_basis_gap_with_the_best_model():
    gap = {
        "clusters": {
            "li6": {
                "cluster": 0,
                "bases": ("def2-tzvp", "def2-qzvp"),
                "difference_eV": [0.5, 0.01, -0.02, 0.003],
            }
        },
        "dimers": {},
    }
    stats = {"li6": {"a": {"rmse_eV": [9.0, 0.1, 0.05, 0.01]}, "b": {"rmse_eV": [9, 1, 1, 1]}}}
    (claim,) = level_of_theory_claims(gap, stats, {})
    # E^(1) is an offset: its basis change does not count; the worst of n = 2..4 is 0.4
    assert claim.values == pytest.approx((0.4,)) and claim.holds
    stats["li6"]["a"]["rmse_eV"][2] = 0.019
    (claim,) = level_of_theory_claims(gap, stats, {})
    assert claim.values[0] > 1 and not claim.holds


@pytest.mark.slow
@pytest.mark.parametrize("three_body_error, verdict", [(0.0, "false"), (0.5, "true")])
def test_claim_follows_the_numbers(study, three_body_error, verdict):
    tmp_path, terms, data, models = study
    rng = np.random.default_rng(1)
    model = terms.copy()
    model[:, 1] += rng.normal(0, 0.05, len(terms))  # E^(2) within 5 % of its RMS
    model[:, 2] += three_body_error
    (models / "good.json").write_text(json.dumps(_model("good", "h8-high", model)))
    readme = write_report(
        tmp_path / "out", data_dir=data, study_dir=tmp_path / "none", command="test"
    )
    text = readme.read_text()
    assert (
        "| h8-high: universal MLIPs reproduce PBE's 2-body terms but not its 3-body terms |" in text
    )
    assert f"| 0.2 | **{verdict}** |" in text
    assert "| good | " in text
    for figure in ("split.png", "relative.png", "truncation.png", "dimers.png"):
        assert (tmp_path / "out" / figure).is_file()
    assert "H2 binding curve, PBE/def2-qzvp - PBE/def2-tzvp over 2 distances" in text
    report = json.loads((tmp_path / "out" / "universal.json").read_text())
    assert report["stats"]["h8-high"]["good"]["mean_error_eV"][2] == pytest.approx(three_body_error)
    (claim,) = [c for c in report["claims"] if c["key"] == "two-not-three/h8-high"]
    assert claim["holds"] is (verdict == "true")


@pytest.mark.slow
def test_report_says_what_is_missing(study):
    tmp_path, terms, data, _ = study
    (data / "h8-high_pbe.json").write_text(
        json.dumps(_reference_set("h8-high", terms[:3], missing=[3, 4, 5]))
    )
    text = write_report(tmp_path / "out", data_dir=data, command="test").read_text()
    assert "- h8-high: 3 clusters (3 clusters missing)" in text
    assert "- li6: no PBE result exported yet" in text
    assert "No set has both a reference and a universal model yet." in text


def test_shipped_report_claims_are_computed_from_the_shipped_numbers():
    """reports/universal/universal.json's statistics and claims, recomputed from the
    shipped reference and model results (ASE_BODYORDER_UNIVERSAL_DATA: another export)."""
    import os

    from ase_bodyorder.study.universal import DATA_DIR, read_models
    from ase_bodyorder.study.universal_claims import analyse

    root = Path(__file__).resolve().parents[2]
    report_dir = root / "reports" / "universal"
    data_dir = Path(os.environ.get("ASE_BODYORDER_UNIVERSAL_DATA", DATA_DIR))
    for path in (report_dir / "universal.json", *(data_dir / f"{n}_pbe.json" for n in DATASETS)):
        if not path.is_file():
            pytest.fail(f"{path} is missing: export the reference and run the report")
    shipped = json.loads((report_dir / "universal.json").read_text())
    found = analyse(
        read_reference(data_dir),
        read_models(report_dir / "models"),
        study_dir=root / "reports" / "study",
    )
    assert found["stats"].keys() == shipped["stats"].keys()
    for name, per_model in found["stats"].items():
        assert per_model.keys() == shipped["stats"][name].keys()
        for label, errors in per_model.items():
            for key in ("rmse_eV", "mean_error_eV", "truncation_rmse_eV"):
                assert errors[key] == pytest.approx(shipped["stats"][name][label][key])
    assert [c["key"] for c in shipped["claims"]] == [c.key for c in found["claims"]]
    for mine, theirs in zip(found["claims"], shipped["claims"], strict=True):
        assert list(mine.values) == pytest.approx(theirs["values"]), mine.key
        assert mine.holds is theirs["holds"], mine.key


@pytest.mark.parametrize("excited_eV, fails", [(0.09, False), (0.11, True)])
def test_size_consistency_check_finds_a_far_atom_that_does_not_separate(excited_eV, fails):
    """Atom 2 is 5 Angstrom from atoms 0 and 1 (1 Angstrom apart): E(0-2) and E(0-1-2)
    must be E(0) + E(2) and E(0-1) + E(2); an excited SCF state of 0-1-2 breaks both
    separations of atom 2 (from 0-1-2; 0-2 stays) beyond 0.1 eV."""
    from ase_bodyorder.study.universal_claims import separation_claim

    d = np.array([[0.0, 1.0, 5.0], [1.0, 0.0, 5.0], [5.0, 5.0, 0.0]])
    energies = {"0": -13.6, "1": -13.6, "2": -13.6, "0-1": -31.7, "0-2": -27.2, "1-2": -27.2}
    energies["0-1-2"] = -31.7 - 13.6 + excited_eV
    found = separation_failures(
        {
            "clusters": [
                {"cluster": 7, "subcluster_energies_eV": {**energies, "full": energies["0-1-2"]}}
            ]
        },
        {7: d},
        3.0,
    )
    # separable: 0-2 and 1-2 (atom 0 or 1 or 2 far: 2 each), 0-1-2 (atom 2)
    assert found["checked"] == 5
    assert len(found["failures"]) == (1 if fails else 0)
    if fails:
        assert found["failures"][0][:3] == (7, "0-1-2", 2)
    claim = separation_claim("h8-low", found)
    assert claim.holds is (not fails)


def test_missing_folders_are_one_line_errors(tmp_path):
    from ase_bodyorder.expansion import BodyOrderError
    from ase_bodyorder.study.universal import read_models

    with pytest.raises(BodyOrderError, match="no exported PBE reference: .* is not a folder"):
        read_reference(tmp_path / "none")
    with pytest.raises(BodyOrderError, match="no model results: .* is not a folder"):
        read_models(tmp_path / "none")
    assert read_models(tmp_path) == {} and read_reference(tmp_path)["sets"] == {}


@pytest.mark.parametrize("stage", ["reference", "models"])
def test_an_unknown_data_set_is_one_line_before_anything_is_made(tmp_path, capsys, stage):
    """Regression: ``--sets bogus`` was a KeyError traceback, after the store was made and
    seeded with every shipped record."""
    from ase_bodyorder.cli import main

    db, out = tmp_path / "pbe.db", tmp_path / "models"
    where = ["--db", str(db)] if stage == "reference" else ["--models", "7net-0", "--out", str(out)]
    argv = ["study", "universal", stage, *where, "--sets", "c6", "bogus"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"ase-bodyorder: error: unknown data set(s) 'bogus'; choose from {', '.join(DATASETS)}"
    )
    assert not db.exists() and not out.exists()


def test_workers_below_one_is_one_line(tmp_path, capsys):
    """Regression: ``--workers 0`` ran one worker without a word."""
    from ase_bodyorder.cli import main

    db = tmp_path / "pbe.db"
    argv = ["study", "universal", "reference", "--db", str(db), "--workers", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ase-bodyorder: error: --workers must be a positive integer, got 0"
    assert not db.exists()


@pytest.mark.parametrize("stage", ["reference", "models", "report"])
def test_an_out_that_is_a_file_is_one_line(tmp_path, capsys, stage):
    """Regression: ``report --out FILE`` said only ``File exists: FILE``."""
    from ase_bodyorder.cli import main

    out, db = tmp_path / "a-file", tmp_path / "pbe.db"
    out.write_text("kept\n")
    extra = {"reference": ["--db", str(db)], "models": ["--models", "7net-0"], "report": []}
    assert main(["study", "universal", stage, *extra[stage], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ase-bodyorder: error: --out {out} is a file, not a folder"
    assert out.read_text() == "kept\n" and not db.exists()


@pytest.mark.slow  # two exports of the whole plan: about 10 s
def test_an_export_carries_its_records_so_another_machine_continues(tmp_path):
    """The export's records file seeds an empty store with every finished job, so a
    machine without the original store re-exports the same files instead of shipping
    fewer clusters (regression: the export was rebuilt from the local store alone)."""
    import gzip

    from ase_bodyorder.expansion import BodyOrderError
    from ase_bodyorder.reference.store import ReferenceStore
    from ase_bodyorder.reference.universal import REFERENCE, dimer_jobs
    from ase_bodyorder.study.universal import RECORDS_FILE, export_reference, seed_store

    first = ReferenceStore(tmp_path / "first.db")
    rng = np.random.default_rng(5)
    for job in dimer_jobs("H", REFERENCE["H"]):
        energy = -1.0 + 0.01 * rng.standard_normal()
        record = {"energy_Ha": energy, "energy_eV": energy * 27.2, "two_s": 0, "cpu_time_s": 1.5}
        first.write(job, record, error=None)
    export_reference(first, tmp_path / "a", command="x")
    second = ReferenceStore(tmp_path / "second.db")
    assert seed_store(second, tmp_path / "a") == 14
    assert seed_store(second, tmp_path / "a") == 0  # nothing twice
    export_reference(second, tmp_path / "b", command="x")
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
    assert seed_store(ReferenceStore(tmp_path / "third.db"), tmp_path / "none") == 0
    (tmp_path / "a" / RECORDS_FILE).write_bytes(gzip.compress(b"{not json"))
    with pytest.raises(
        BodyOrderError, match=f"cannot read the exported PBE records .*{RECORDS_FILE}"
    ):
        seed_store(ReferenceStore(tmp_path / "fourth.db"), tmp_path / "a")


def test_shipped_records_hold_every_shipped_sub_cluster_energy():
    import gzip

    from ase_bodyorder.reference.universal import _cluster_jobs, load_clusters
    from ase_bodyorder.study.universal import DATA_DIR, RECORDS_FILE

    records = json.loads(gzip.decompress((DATA_DIR / RECORDS_FILE).read_bytes()))["records"]
    checked = 0
    for name, spec in DATASETS.items():
        shipped = json.loads((DATA_DIR / f"{name}_pbe.json").read_text())
        clusters = {int(a.info["index"]): a for a in load_clusters(name)}
        for row in shipped["clusters"]:
            jobs = _cluster_jobs(clusters[row["cluster"]], name, spec.calculation, 4)
            energies = [records[job.content_key]["energy_eV"] for job in jobs]
            assert energies[-1] == row["subcluster_energies_eV"]["full"]
            checked += len(jobs)
    assert checked > 1000


def test_sets_are_read_in_the_study_order_not_the_files_order():
    # regression: the report listed c6 before the hydrogen sets (c6_pbe.json sorts first)
    from ase_bodyorder.study.universal import DATA_DIR

    names = list(read_reference(DATA_DIR)["sets"])
    assert "c6" in names and "h8-high" in names
    assert names == [n for n in DATASETS if n in names]


@pytest.mark.slow  # a whole report: about 10 s
def test_report_says_why_a_set_is_not_checked_for_size_consistency(study):
    # regression: a set whose dimer is bound at every distance of its curve (c6) was left
    # out of the checks without a word, and one with no far atom read "0 of 0 ... fail"
    tmp_path, _, data, _ = study
    text = write_report(tmp_path / "out", data_dir=data, command="test").read_text()
    assert (
        "- h8-high: not checked: the PBE H2 curve is bound at every distance it has "
        "(up to 2 Angstrom)" in text
    )
    curves = json.loads((data / "dimers_pbe.json").read_text())
    reference = curves["curves"]["H"]["reference"]
    reference["distances_A"].append(30.0)  # unbound only beyond every cluster's size
    reference["binding_eV"].append(0.0)
    (data / "dimers_pbe.json").write_text(json.dumps(curves))
    # the synthetic clusters take the shipped clusters' indices (their distances are used)
    from ase_bodyorder.reference.universal import load_clusters

    rows = json.loads((data / "h8-high_pbe.json").read_text())
    for row, atoms in zip(rows["clusters"], load_clusters("h8-high"), strict=False):
        row["cluster"] = int(atoms.info["index"])
    (data / "h8-high_pbe.json").write_text(json.dumps(rows))
    text = write_report(tmp_path / "out", data_dir=data, command="test").read_text()
    assert "- h8-high: not checked: no sub-cluster has an atom 30 Angstrom or more" in text


def test_pseudopotential_gap_is_the_core_curve_against_the_larger_basis():
    from ase_bodyorder.study.universal_stats import basis_gap

    curves = {
        "reference": {"distances_A": [1.0, 2.0], "binding_eV": [-4.0, -1.0], "basis": "a"},
        "check": {"distances_A": [1.0, 2.0], "binding_eV": [-4.1, -1.0], "basis": "b"},
        "pseudo": {
            "distances_A": [1.0, 2.0, 3.0],
            "binding_eV": [-3.8, -1.2, 0.0],
            "basis": "gth-qzv3p",
            "pseudo": "gth-pbe",
        },
    }
    gap = basis_gap({"checks": {}, "sets": {}, "dimers": {"X": curves}})
    assert gap["dimers"]["X"]["bases"] == ("a", "b")
    core = gap["pseudo_dimers"]["X"]
    # pseudo - check at the shared 1.0 and 2.0 Angstrom: +0.3 and -0.2 eV
    assert core["bases"] == ("b", "gth-qzv3p+gth-pbe") and core["distances"] == 2
    assert core["rms_eV"] == pytest.approx(np.sqrt((0.3**2 + 0.2**2) / 2))
    assert core["max_eV"] == pytest.approx(0.3)
    dimers = {"X": {"rows": {"PBE": (0, 0, 0.0), "m": (0, 0, 0.5), "n": (0, 0, 0.2)}}}
    claims = {c.key: c for c in level_of_theory_claims(gap, {}, dimers)}
    assert claims["pseudopotential/X2"].values == pytest.approx((core["rms_eV"] / 0.2,))
    assert claims["pseudopotential/X2"].holds is False  # 0.255 eV RMS against 0.2 eV
    assert claims["basis/X2"].values == pytest.approx((np.sqrt(0.01 / 2) / 0.2,))


def test_cost_at_the_check_basis_prices_the_planned_jobs_at_the_check_clusters_means():
    from ase_bodyorder.study.universal_stats import basis_cost

    def row(basis, size, jobs, planned, mean):
        return {"set": "c6", "basis": basis, "size": size, "jobs": jobs,
                "planned_jobs": planned, "cpu_s_mean": mean}  # fmt: skip

    rows = [
        row("def2-svp", 2, 150, 150, 2.0),
        row("def2-svp", 3, 200, 200, 30.0),
        row("def2-tzvp", 2, 15, 15, 6.0),
        row("def2-tzvp", 3, 20, 20, 150.0),
        {**row("def2-svp", 3, 7, 7, 1e6), "set": "li6"},  # another set: not counted
    ]
    cost = basis_cost(rows, "c6", "def2-svp", "def2-tzvp")
    assert cost["jobs"] == 350
    assert cost["own_h"] == pytest.approx((150 * 2.0 + 200 * 30.0) / 3600)
    assert cost["at_check_h"] == pytest.approx((150 * 6.0 + 200 * 150.0) / 3600)
    # a size not measured at the check basis: no estimate rather than a partial one
    assert basis_cost(rows[:3], "c6", "def2-svp", "def2-tzvp") is None
    assert basis_cost([{**rows[3], "jobs": 0}, *rows[:3]], "c6", "def2-svp", "def2-tzvp") is None


def test_shipped_report_prices_each_set_at_its_check_basis():
    """The data-set lines of the shipped report are the shipped costs' arithmetic."""
    from ase_bodyorder.study.universal import DATA_DIR
    from ase_bodyorder.study.universal_stats import basis_cost

    report_dir = Path(__file__).resolve().parents[2] / "reports" / "universal"
    reference = read_reference(DATA_DIR)
    text = (report_dir / "README.md").read_text()
    shipped = json.loads((report_dir / "universal.json").read_text())
    assert shipped["cost_at_check_basis_h"].keys() == reference["checks"].keys()
    for name, check in reference["checks"].items():
        basis = reference["sets"][name]["calculation"]["basis"]
        cost = basis_cost(reference["costs"], name, basis, check["calculation"]["basis"])
        assert cost == pytest.approx(shipped["cost_at_check_basis_h"][name])
        assert f"{cost['at_check_h']:.1f} CPU h" in text
