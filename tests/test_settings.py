"""Typed settings (pydantic): ``to_dict()`` is hashed into cache and job keys, so it must
give the very dictionaries the dataclass settings gave (keys, order, values and their
types); bad input is one line naming the field."""

import importlib.util

import pytest

from ase_bodyorder import BodyOrderError
from ase_bodyorder.ipi.manifest import DriverSettings
from ase_bodyorder.study import study_settings
from ase_bodyorder.study.spec import TrainingSpec
from ase_bodyorder.training import MACESettings, MetatrainSettings

H = -12.817625535939792  # the study's 1-body baseline (exact STO-6G H atom, eV)

#: ``to_dict()`` of the study recipes, as the dataclass settings gave it
RECIPES = {
    "mace": {
        "r_max": 4.5,
        "num_interactions": 2,
        "hidden_irreps": "32x0e+32x1o",
        "correlation": 2,
        "max_L": 1,
        "max_num_epochs": 300,
        "batch_size": 16,
        "lr": 0.01,
        "seed": 123,
        "E0s": {1: H},
        "default_dtype": "float64",
        "model": "ScaleShiftMACE",
        "energy_weight": 10.0,
        "forces_weight": 100.0,
        "extra_args": {"scheduler_patience": 10, "lr_factor": 0.5, "patience": 30, "ema": None},
    },
    "pet": {
        "architecture": "pet",
        "num_epochs": 300,
        "batch_size": 16,
        "learning_rate": 0.0003,
        "seed": 123,
        "cutoff": 4.5,
        "base_precision": 64,
        "device": "cpu",
        "num_workers": 0,
        "validation_fraction": 0.1,
        "d_pet": 64,
        "d_node": 128,
        "d_head": None,
        "d_feedforward": None,
        "num_heads": None,
        "num_attention_layers": 1,
        "num_gnn_layers": 2,
        "soap_max_angular": None,
        "soap_max_radial": None,
        "bpnn_num_hidden_layers": None,
        "bpnn_num_neurons_per_layer": None,
        "extra_hypers": {"training": {"atomic_baseline": {"energy": {1: H}}}},
    },
}
RECIPES["soap-bpnn"] = {
    **RECIPES["pet"],
    "architecture": "soap_bpnn",
    "learning_rate": None,
}

#: cache keys of trained models, from before the settings were pydantic models
KEYS = {
    ("mace", "high"): "mace-high-n800-s0-8aaf545efd58",
    ("mace", "low"): "mace-low-n800-s0-87a04f6a9fb9",
    ("soap-bpnn", "high"): "soap-bpnn-high-n800-s0-2b2d6d229a3a",
    ("pet", "high"): "pet-high-n800-s0-368a5c26ae1b",
}

DMRG_DEFAULT = {
    "bond_dims": (100, 250, 500),
    "noises": (0.0001, 1e-05, 1e-06),
    "max_sweeps": 40,
    "energy_tol": 1e-08,
    "discarded_weight_tol": 1e-07,
    "davidson_tol": 1e-10,
    "n_threads": 1,
}


def _typed(value):
    """``value`` with the type of every part spelt out (1 and 1.0, tuple and list differ)."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value).__name__, value)


def assert_same(got: dict, expected: dict) -> None:
    assert _typed(got) == _typed(expected)  # same keys in the same order, same types


@pytest.mark.parametrize("architecture", sorted(RECIPES))
def test_study_recipes_give_the_same_dictionaries(architecture):
    settings = study_settings(architecture)
    assert_same(settings.to_dict(), RECIPES[architecture])
    assert_same(type(settings).from_dict(settings.to_dict()).to_dict(), RECIPES[architecture])


@pytest.mark.parametrize("architecture, density", sorted(KEYS))
def test_cache_keys_of_trained_models_are_unchanged(architecture, density):
    assert TrainingSpec(architecture, density, 800).key == KEYS[architecture, density]


def test_ints_stay_ints_and_floats_stay_floats():
    assert_same(
        {
            k: MetatrainSettings(cutoff=5, learning_rate=1).to_dict()[k]
            for k in ("cutoff", "learning_rate")
        },
        {"cutoff": 5, "learning_rate": 1},
    )
    assert MACESettings(lr=1, r_max=4.0).command_line()[1:2] == ["--r_max=4.0"]
    assert "--lr=1" in MACESettings(lr=1).command_line()
    # E0s are read as numbers, as before: {"1": -13} is {1: -13.0}
    assert_same(MACESettings.from_dict({"E0s": {"1": -13}}).to_dict()["E0s"], {1: -13.0})


def test_driver_settings_dictionary_and_positions():
    from ase_bodyorder import ExpansionSettings

    settings = DriverSettings("m", 3, 1, None, "t.xyz")  # the former positions
    assert settings == DriverSettings(model="m", order=3, stride=1, r_mbe=None, template="t.xyz")
    assert settings == DriverSettings(
        model="m", expansion=ExpansionSettings(order=3, stride=1), template="t.xyz"
    )
    assert_same(
        settings.to_dict(),
        {
            "model": "m",
            "expansion": ExpansionSettings(order=3, stride=1).to_dict(),
            "template": "t.xyz",
            "threads": 1,
            "first_call": 0,
            "timeout_s": 600.0,
        },
    )
    given = DriverSettings(
        model="m", order=3, stride=2, r_mbe=4.5, template="t.xyz", threads=2, first_call=5,
        timeout_s=60, sample_atoms=4, sample_seed=1,
    )  # fmt: skip
    expansion = ExpansionSettings(order=3, stride=2, r_mbe=4.5, sample_atoms=4, seed=1)
    rest = {"template": "t.xyz", "threads": 2, "first_call": 5, "timeout_s": 60}
    expected = {"model": "m", "expansion": expansion.to_dict(), **rest}
    assert_same(given.to_dict(), expected)
    assert DriverSettings.from_dict(expected) == given
    # a manifest of an earlier version: its expansion fields read into the expansion
    former = {"model": "m", "order": 3, "stride": 2, "r_mbe": 4.5, **rest}
    assert DriverSettings.from_dict({**former, "sample_atoms": 4, "sample_seed": 1}) == given
    moved = given.replace(first_call=7, timeout_s=30.0)
    assert (moved.first_call, moved.timeout_s, moved.expansion.order) == (7, 30.0, 3)
    assert hash(moved) != hash(given)
    with pytest.raises(BodyOrderError, match="unknown driver setting\\(s\\) 'models'"):
        DriverSettings.from_dict({**expected, "models": "x"})
    with pytest.raises(BodyOrderError, match="DriverSettings needs template"):
        DriverSettings(model="m", order=3)


@pytest.mark.skipif(importlib.util.find_spec("pyscf") is None, reason="needs pyscf")
def test_calculation_dictionaries():
    from ase_bodyorder.reference.electronic import Calculation, DMRGSettings

    default = {
        "method": "fci",
        "basis": "sto-6g",
        "spin_policy": "lowest",
        "forces": True,
        "fd_step": 0.001,
        "min_distance": 0.4,
        "dmrg": DMRG_DEFAULT,
    }
    assert_same(Calculation().to_dict(), default)
    dmrg = Calculation(
        method="dmrg",
        dmrg=DMRGSettings(bond_dims=(100, 250, 500), max_sweeps=24, discarded_weight_tol=1e-4),
    )
    expected = {
        **default,
        "method": "dmrg",
        "dmrg": {**DMRG_DEFAULT, "max_sweeps": 24, "discarded_weight_tol": 0.0001},
    }
    assert_same(dmrg.to_dict(), expected)
    # records store JSON: lists for the schedule, read back as the same settings
    as_json = {**expected, "dmrg": {**expected["dmrg"], "bond_dims": [100, 250, 500]}}
    assert Calculation.from_dict(as_json) == dmrg
    assert Calculation.from_dict({"dmrg": None}) == Calculation()
    assert hash(Calculation()) == hash(Calculation.from_dict(default))
    assert Calculation(forces=False).replace(forces=True) == Calculation()
    with pytest.raises(BodyOrderError, match="dmrg settings: bond_dims must be positive"):
        Calculation.from_dict({"dmrg": {"bond_dims": [0]}})
    with pytest.raises(BodyOrderError, match="unknown calculation setting\\(s\\) 'spin'"):
        Calculation.from_dict({"spin": 0})
    with pytest.raises(BodyOrderError, match="forces: input should be a valid boolean, got 1"):
        Calculation(forces=1)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MetatrainSettings(num_epochs=0), "num_epochs must be a positive integer, got 0"),
        (lambda: MetatrainSettings(num_epochs=True), "num_epochs must be a positive integer"),
        (lambda: MetatrainSettings(cutoff="4"), "cutoff must be a positive finite number, got '4'"),
        (lambda: MetatrainSettings(cutoff=float("inf")), "cutoff must be a positive finite"),
        (
            lambda: MetatrainSettings(validation_fraction=1),
            "validation_fraction must be a number in (0, 1)",
        ),
        (lambda: MetatrainSettings(base_precision=16), "base_precision must be 32 or 64, got 16"),
        (lambda: MetatrainSettings(extra_hypers={"x": 1}), "extra_hypers may only hold"),
        (lambda: MetatrainSettings.from_dict([]), "metatrain settings must be a dictionary"),
        (lambda: MACESettings(E0s={}), "E0s must be 'average' or a non-empty dict"),
        (
            lambda: MACESettings(model="PaiNN"),
            "model must be 'MACE' or 'ScaleShiftMACE', got 'PaiNN'",
        ),
        (lambda: MACESettings(forces_weight=-1.0), "forces_weight must be a non-negative number"),
        (
            lambda: MACESettings.from_dict({"r_maxx": 1, "lrr": 2}),
            "unknown MACE setting(s) 'r_maxx', 'lrr'; known settings: E0s, batch_size",
        ),
    ],
)
def test_bad_settings_are_one_line(make, message):
    with pytest.raises(BodyOrderError) as raised:
        make()
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_expansion_settings_through_a_door_name_its_options():
    """A door (command line, keywords) gives its own names: bad values are one line
    naming the option as the door calls it, numpy scalars count as Python numbers, and
    settings come as one object or as keywords, not both."""
    import numpy as np

    from ase_bodyorder import ExpansionSettings
    from ase_bodyorder.settings import resolve_settings

    names = {"sample_atoms": "--sample-atoms", "seed": "--seed", "order": "--order"}
    options = {"--sample-atoms": np.int64(4), "--seed": None, "--order": 3}
    settings = ExpansionSettings.from_options(options, names)
    assert settings == ExpansionSettings(order=3, sample_atoms=4)
    assert type(settings.sample_atoms) is int
    for option, value, message in (
        ("--sample-atoms", 0, "--sample-atoms must be a positive integer, got 0"),
        ("--seed", -2, "--seed must be a non-negative integer, got -2"),
        ("--order", 2.5, "--order must be a positive integer, got 2.5"),
        ("order", 3, "unknown expansion setting(s) 'order' here; order is called --order"),
    ):
        with pytest.raises(BodyOrderError) as raised:
            settings.with_options({option: value}, names)
        assert str(raised.value).startswith(message)
    with pytest.raises(BodyOrderError, match="--seed is the seed of atom sampling: give --sam"):
        resolve_settings(None, {"--seed": 1}, names)
    with pytest.raises(BodyOrderError, match="not both: --order"):
        resolve_settings(settings, {"--order": 2}, names)
    # a keyword at its default is no keyword given
    assert resolve_settings(settings, {"screening": True}) is settings
    assert resolve_settings(None, {"screening": False}).screening is False
