def test_a_model_spec_is_a_name_or_a_labelled_file(tmp_path):
    import pytest

    from ase_bodyorder.expansion import BodyOrderError
    from ase_bodyorder.models.registry import load_model_spec

    label, model = load_model_spec("h-morse")
    assert label == "h-morse" and model.isolated_atom_energy(1) < 0
    with pytest.raises(BodyOrderError, match="no such metatomic model file"):
        load_model_spec(f"mine={tmp_path / 'missing.pt'}")


def test_only_the_md_default_calls_itself_the_md_default():
    # regression: soap-bpnn-hbulk-high's provenance still called it "the MD default"
    # after mace-hcells-zbl replaced it, so `ase-bodyorder models` named two defaults
    from ase_bodyorder.models.registry import DEFAULT_MD_MODEL, available_models

    claims = [name for name, text in available_models().items() if "the MD default" in text]
    assert DEFAULT_MD_MODEL in available_models()
    assert claims in ([], [DEFAULT_MD_MODEL])


def test_shipped_provenance_names_no_machine_path():
    # regression: shipped provenance held the training machine's absolute paths
    # (/work/main/study-cache/..., --work_dir=/work/main/...), which name nothing elsewhere
    import json
    import re

    from ase_bodyorder.study.ship import MODELS_DIR
    from ase_bodyorder.training._common import PACKAGE_PARENT

    files = sorted(MODELS_DIR.glob("*/provenance.json"))
    assert len(files) >= 12
    absolute = re.compile(r'"(?:[^"=]*=)?/[^"]*"')
    for path in files:
        text = path.read_text()
        assert not absolute.findall(text), path
        provenance = json.loads(text)
        for part in provenance.get("data", {}).values():
            if part and part["path"].startswith("ase_bodyorder/"):
                assert (PACKAGE_PARENT / part["path"]).is_file(), (path, part["path"])


def test_portable_paths_rewrites_work_directories_and_the_package_root(tmp_path):
    from ase_bodyorder.training._common import PACKAGE_PARENT, portable_paths

    cache = tmp_path / "my-cache"
    data = {
        "path": f"{cache}/key/train.xyz",
        "command": [f"--work_dir={cache}/key/training", "--seed=0"],
        "test": f"{PACKAGE_PARENT}/ase_bodyorder/data/reference/h8-low_test.xyz",
        "number": 1.5,
    }
    assert portable_paths(data, cache) == {
        "path": "my-cache/key/train.xyz",
        "command": ["--work_dir=my-cache/key/training", "--seed=0"],
        "test": "ase_bodyorder/data/reference/h8-low_test.xyz",
        "number": 1.5,
    }


def test_every_shipped_model_describes_itself():
    # regression: mace-hcells had no description, so `ase-bodyorder models` listed it as
    # "trained on hcells", a name a user cannot look up
    import json

    from ase_bodyorder.study.ship import MODELS_DIR

    files = sorted(MODELS_DIR.glob("*/provenance.json"))
    assert len(files) >= 12
    missing = [p.parent.name for p in files if not json.loads(p.read_text()).get("description")]
    assert not missing
