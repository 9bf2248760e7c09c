"""The universal-MLIP study's report (issue 32): statistics and claims computed from the
files it is given, on synthetic reference and model results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ase_bodyorder.study.universal import order_errors, read_reference, write_report


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
    assert f'but not its 3-body terms" is **{verdict}**' in text
    assert "| good: mean error (RMSE) |" in text
    assert (tmp_path / "out" / "split.png").is_file()
    assert (tmp_path / "out" / "dimers.png").is_file()
    assert "H2 binding curve, def2-qzvp - def2-tzvp over 2 distances" in text
    stats = json.loads((tmp_path / "out" / "universal.json").read_text())["stats"]
    assert stats["h8-high"]["good"]["mean_error_eV"][2] == pytest.approx(three_body_error)


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
