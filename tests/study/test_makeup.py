"""The makeup experiment: fragment draws, training sets with fragments, the evaluation."""

import json
from itertools import combinations

import ase.io
import numpy as np
import pytest

from ase_bodyorder import BodyOrderError
from ase_bodyorder.io import read_structures
from ase_bodyorder.study import TrainingSpec
from ase_bodyorder.study import runner as study_runner
from ase_bodyorder.study.fragments import (
    draw_fragments,
    fragment_count,
    fragment_parents,
    fragment_sizes,
    fragments_path,
)
from ase_bodyorder.study.makeup import dimer_rmse, makeup_specs
from ase_bodyorder.study.spec import DATA


def _synthetic_sizes(parents=10):
    """Sizes of a fragment file of ``parents`` H8 clusters: the atom once, then 2..7."""
    sizes = [1]
    for _ in range(parents):
        for size in range(2, 8):
            sizes += [size] * len(list(combinations(range(8), size)))
    return np.array(sizes)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_fragment_counts_give_the_requested_fraction(fraction):
    count = fragment_count(800, fraction)
    assert abs(count / (800 + count) - fraction) < 1 / 800
    assert fragment_count(800, 0.0) == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2, "half", True])
def test_a_bad_fraction_is_a_clear_error(fraction):
    with pytest.raises(BodyOrderError, match="fragment fraction"):
        fragment_count(800, fraction)
    with pytest.raises(BodyOrderError, match="fragment fraction"):
        TrainingSpec("mace", "high", 800, fragment_fraction=fraction)


def test_draw_takes_the_atom_once_and_spreads_the_rest_evenly_over_sizes():
    sizes = _synthetic_sizes()
    drawn = draw_fragments(sizes, 200, seed=3)
    assert len(drawn) == len(set(drawn)) == 200
    per_size = np.bincount(sizes[drawn], minlength=8)
    assert per_size[1] == 1
    assert per_size[2:].max() - per_size[2:].min() <= 1
    assert per_size[2:].sum() == 199
    assert per_size[2] >= per_size[7]  # the extra ones go to the smaller sizes


def test_draws_of_one_seed_are_nested_and_seeds_differ():
    sizes = _synthetic_sizes(parents=30)
    small, large = draw_fragments(sizes, 42, 0), draw_fragments(sizes, 800, 0)
    assert set(small) <= set(large)
    assert draw_fragments(sizes, 42, 0) == small
    assert draw_fragments(sizes, 42, 1) != small


def test_too_many_fragments_of_a_size_is_an_error():
    sizes = _synthetic_sizes(parents=1)  # 28 dimers
    with pytest.raises(BodyOrderError, match="fragments of size 2 requested"):
        draw_fragments(sizes, 6 * 40 + 1, 0)


def test_plain_specs_keep_their_keys_and_fragment_specs_get_their_own(tmp_path, monkeypatch):
    from ase_bodyorder.study import spec as study_spec

    missing = tmp_path / "none.xyz.gz"
    monkeypatch.setattr(study_spec, "fragments_path", lambda density: missing)
    with pytest.raises(BodyOrderError, match="no fragment file .*none.xyz.gz"):
        _ = TrainingSpec("mace", "high", 800, fragment_fraction=0.2).key
    missing.write_bytes(b"stand-in fragment file")
    plain = TrainingSpec("mace", "high", 800)
    assert "fragments" not in plain.identity()
    assert "-f" not in plain.key.removeprefix("mace-high-n800-s0-")
    assert plain.key == TrainingSpec("mace", "high", 800, fragment_fraction=0.0).key
    specs = makeup_specs(["mace"], ["high"], [0, 0.05, 0.2, 0.5])
    assert [s.fragment_fraction for s in specs] == [0.5, 0.2, 0.05, 0.0]
    assert len({s.key for s in specs}) == 4


@pytest.mark.parametrize("density", ["high", "low"])
def test_makeup_training_sets_hold_the_fraction_and_only_training_clusters(density, tmp_path):
    path = fragments_path(density)
    if not path.is_file():
        pytest.skip(f"{path.name} not built")
    split = json.loads((DATA / f"h8-{density}_split.json").read_text())
    train = set(split["files"]["train"]["indices"])
    held_out = set(split["files"]["test"]["indices"]) | set(split["files"]["validation"]["indices"])
    parents = fragment_parents(path)
    sizes = fragment_sizes(path)
    for fraction in (0.05, 0.2, 0.5):
        spec = TrainingSpec("mace", density, 800, fragment_fraction=fraction)
        chosen = spec.fragment_indices()
        assert len(chosen) / (800 + len(chosen)) == pytest.approx(fraction, abs=1e-3)
        assert set(parents[chosen].tolist()) <= train
        assert not set(parents[chosen].tolist()) & held_out
        assert np.bincount(sizes[chosen], minlength=8)[1] == 1
    # the training file the runner writes: the 800 clusters, then the fragments as shipped
    spec = TrainingSpec("mace", density, 800, fragment_fraction=0.05)
    target = tmp_path / "train.xyz"
    study_runner._write_training_subset(spec, target)
    frames = ase.io.read(target, ":")
    fragments = read_structures(path)
    assert len(frames) == 800 + fragment_count(800, 0.05)
    for frame, k in zip(frames[800:], spec.fragment_indices(), strict=True):
        assert frame.get_potential_energy() == fragments[k].get_potential_energy()
        assert np.array_equal(frame.positions, fragments[k].positions)


def test_evaluation_of_a_pair_potential_is_its_exact_expansion():
    """A pair potential has E^(n) = 0 for n >= 3: the evaluation must say exactly that."""
    pytest.importorskip("pyscf")
    from ase import Atoms

    from ase_bodyorder.models.analytic import Morse
    from ase_bodyorder.study.makeup import DIMER_DISTANCES_A, evaluate_model

    model = Morse(D_e=4.746, a=1.942, r_e=0.7414, cutoff=4.0)
    ev = evaluate_model(model, "low")
    mbe = ev["mbe"]
    model_e = np.array(mbe["model_energies_eV"])
    reference = np.array(mbe["reference_energies_eV"])
    assert model_e.shape == reference.shape == (50, 8)
    np.testing.assert_allclose(model_e[:, 2:], 0.0, atol=1e-9)
    np.testing.assert_allclose(model_e[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(mbe["mean_error_eV"], (model_e - reference).mean(0), atol=1e-12)
    # E^(2) of a pair potential is its total energy
    first = ase.io.read(DATA / "h8-low_clusters.xyz", ":")
    records = json.loads((DATA / "h8-low_mbe_fci_sto6g.json").read_text())["clusters"]
    atoms = {int(a.info["index"]): a for a in first}[int(records[0]["cluster"])]
    assert model_e[0, 1] == pytest.approx(model.system(atoms, forces=False).energy, abs=1e-9)
    # dimer curve: the model's pair energy; the FCI reference binds near 0.74 Angstrom and
    # dissociates into two exact STO-6G atoms
    dimer = ev["dimer"]
    r = np.array(DIMER_DISTANCES_A)
    expected = [model.system(Atoms("H2", [[0, 0, 0], [0, 0, d]]), forces=False).energy for d in r]
    np.testing.assert_allclose(dimer["model_eV"], expected, atol=1e-12)
    fci = np.array(dimer["reference_eV"])
    assert 0.65 <= r[np.argmin(fci)] <= 0.85
    assert fci[-1] == pytest.approx(2 * ev["atom"]["reference_eV"], abs=2e-3)
    assert ev["atom"]["error_meV"] == pytest.approx(-1000 * ev["atom"]["reference_eV"])
    assert set(ev["generalisation"]) == {"h8-high", "h12-high", "h12-low"}


@pytest.mark.slow
def test_a_fragment_aware_mace_trains_evaluates_and_reports(tmp_path):
    """End to end on the shipped fragments: 10 clusters + 10 fragments (atom included)."""
    pytest.importorskip("mace")
    from helpers import png_size

    from ase_bodyorder.study import run_study
    from ase_bodyorder.study.entries import collect_results
    from ase_bodyorder.study.makeup import evaluate_entry, makeup_results
    from ase_bodyorder.study.makeup_report import makeup_section

    if not fragments_path("high").is_file():
        pytest.fail(f"{fragments_path('high')} is not shipped")
    tiny = {"max_num_epochs": 2, "hidden_irreps": "4x0e+4x1o", "batch_size": 5}
    spec = TrainingSpec("mace", "high", 10, 0, tiny, fragment_fraction=0.5)
    (entry,) = run_study([spec], tmp_path / "cache")
    assert entry.status == "trained", entry.error
    frames = ase.io.read(entry.directory / "train.xyz", ":")
    assert [len(a) for a in frames].count(1) == 1 and len(frames) == 20
    evaluation = evaluate_entry(entry.directory, entry.result)
    # the evaluation is kept and reused while the model is unchanged
    assert evaluate_entry(entry.directory, entry.result) == evaluation
    assert np.isfinite(evaluation["mbe"]["rmse_eV"]).all()
    results = collect_results(tmp_path / "cache")
    assert makeup_results(results, tmp_path / "cache", size=10) == []  # not the recipe
    items = makeup_results(results, tmp_path / "cache", size=10, recipe_only=False)
    assert [i["fraction"] for i in items] == [0.5]
    lines, paths = makeup_section(items, tmp_path / "report", "test")
    assert any("mace-high f=0.5" in line for line in lines)
    # the counts in the text are the data's, not the full study's
    parents = len(set(fragment_parents(fragments_path("high")).tolist()))
    intro = next(line for line in lines if line.startswith("Made by"))
    assert "on the 10 H8 training clusters" in intro
    assert f"sub-clusters of {parents} training clusters" in intro
    assert f"expansion of the {evaluation['mbe']['clusters']} held-out clusters" in intro
    for path in paths:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert png_size(path)[0] > 300
    # an entry archived from a report's tables (no per-cluster energies, no H2 curve)
    # keeps its table row and is named as missing from the curve figures
    archived = dict(items[0], archived=True)
    evaluation = json.loads(json.dumps(archived["evaluation"]))
    for key in ("model_energies_eV", "reference_energies_eV"):
        evaluation["mbe"].pop(key)
    rmse = dimer_rmse(evaluation["dimer"])
    evaluation["dimer"] = {"rmse_eV": rmse}
    archived["evaluation"] = evaluation
    lines, paths = makeup_section([archived], tmp_path / "archived", "test")
    note = [line for line in lines if line.startswith("Archived without")]
    assert note and "mace-high f=0.5 (high)" in note[0]
    row = [line for line in lines if line.startswith("| mace-high f=0.5 |")]
    assert f"| {rmse:.2f} |" in row[0]
    assert not (tmp_path / "archived" / "distributions_high.png").exists()
    # regression: a report whose entries have no per-cluster energies linked the
    # distribution figure an earlier report had left in the same directory
    assert (tmp_path / "report" / "distributions_high.png").exists()
    lines, paths = makeup_section([archived], tmp_path / "report", "test")
    assert not (tmp_path / "report" / "distributions_high.png").exists()
    assert not any("distributions_high.png" in line for line in lines)
    # regression: an archived evaluation counted whatever version of the evaluation made
    # it; one recovered from a table records none and was made by version 1
    (result,) = results
    older = dict(result, archived=True, evaluation={**evaluation, "version": 0})
    recovered = {k: v for k, v in evaluation.items() if k != "version"}
    unrecorded = dict(result, archived=True, evaluation=recovered)
    (item,) = makeup_results([older], tmp_path / "cache", size=10, recipe_only=False)
    assert item["outdated_evaluation"] == 0
    (kept,) = makeup_results([unrecorded], tmp_path / "cache", size=10, recipe_only=False)
    assert "outdated_evaluation" not in kept
    lines, paths = makeup_section([item], tmp_path / "outdated", "test")
    assert paths == []
    assert any("left out until retrained: mace-high f=0.5 (high, version 0)" in x for x in lines)
    assert not any(line.startswith("| mace-high") for line in lines)
