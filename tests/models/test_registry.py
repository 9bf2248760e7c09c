def test_a_model_spec_is_a_name_or_a_labelled_file(tmp_path):
    import pytest

    from ase_bodyorder.expansion import BodyOrderError
    from ase_bodyorder.models.registry import load_model_spec

    label, model = load_model_spec("h-morse")
    assert label == "h-morse" and model.isolated_atom_energy(1) < 0
    with pytest.raises(BodyOrderError, match="no file"):
        load_model_spec(f"mine={tmp_path / 'missing.pt'}")


def test_only_the_md_default_calls_itself_the_md_default():
    # regression: soap-bpnn-hbulk-high's provenance still called it "the MD default"
    # after mace-hcells-zbl replaced it, so `ase-bodyorder models` named two defaults
    from ase_bodyorder.models.registry import DEFAULT_MD_MODEL, available_models

    claims = [name for name, text in available_models().items() if "the MD default" in text]
    assert DEFAULT_MD_MODEL in available_models()
    assert claims in ([], [DEFAULT_MD_MODEL])
