def test_a_model_spec_is_a_name_or_a_labelled_file(tmp_path):
    import pytest

    from ase_bodyorder.expansion import BodyOrderError
    from ase_bodyorder.models.registry import load_model_spec

    label, model = load_model_spec("h-morse")
    assert label == "h-morse" and model.isolated_atom_energy(1) < 0
    with pytest.raises(BodyOrderError, match="no file"):
        load_model_spec(f"mine={tmp_path / 'missing.pt'}")
