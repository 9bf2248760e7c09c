"""Typed training settings: unknown keys, contradictions and bad values are refused;
settings round-trip through dictionaries."""

import importlib.util

import pytest

from ase_bodyorder import BodyOrderError
from ase_bodyorder.training import MACESettings, MetatrainSettings


def test_mace_settings_from_dict():
    settings = MACESettings.from_dict({"max_num_epochs": 3, "E0s": {"1": -13.6}})
    assert settings.E0s == {1: -13.6}
    assert settings.r_max == 4.5
    assert MACESettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(BodyOrderError, match="r_maxx"):
        MACESettings.from_dict({"r_maxx": 5.0})
    with pytest.raises(BodyOrderError, match="E0s"):
        MACESettings(E0s="median")
    with pytest.raises(BodyOrderError, match="r_max"):
        MACESettings(extra_args={"r_max": 3.0})


@pytest.mark.skipif(importlib.util.find_spec("metatrain") is None, reason="needs metatrain")
def test_metatrain_settings_are_checked():
    with pytest.raises(BodyOrderError, match="'n_epochs'"):
        MetatrainSettings.from_dict({"n_epochs": 3})
    with pytest.raises(BodyOrderError, match="architecture"):
        MetatrainSettings(architecture="mace")
    with pytest.raises(BodyOrderError, match="model.cutoff"):
        MetatrainSettings(extra_hypers={"model": {"cutoff": 5.0}})
    with pytest.raises(BodyOrderError, match="num_epochs"):
        MetatrainSettings(num_epochs=0)
    settings = MetatrainSettings.from_dict({"architecture": "soap_bpnn", "cutoff": 4.0})
    assert settings.architecture_options()["model"]["soap"]["cutoff"]["radius"] == 4.0
    assert MetatrainSettings.from_dict(settings.to_dict()) == settings
