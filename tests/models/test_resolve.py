"""One model spec through every door: registered names, plug-ins (entry points of group
``ase_bodyorder.models``), model files (MACE ``.model``, metatomic ``.pt``), and one
clear line naming the spec for anything else."""

import json
import shutil
import sys
import warnings
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.units import Bohr
from helpers import PLUGIN_NAME, install_plugin

import ase_bodyorder
from ase_bodyorder import BodyOrderCalculator, BodyOrderError, decompose, resolve_model
from ase_bodyorder.cli import example_path, main
from ase_bodyorder.models import Morse
from ase_bodyorder.models.registry import available_models, load_model_spec
from ase_bodyorder.trajectory import decompose_trajectory

SHIPPED = Path(ase_bodyorder.__file__).parent / "data" / "models"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The test plug-in package installed on ``sys.path`` (and ``PYTHONPATH``)."""
    directory = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.setenv("PYTHONPATH", ":".join(p for p in (str(directory), *sys.path) if p))
    yield PLUGIN_NAME
    sys.modules.pop("bodyorder_test_plugin", None)


@pytest.fixture
def mace_file(tmp_path):
    """A user's own MACE file (the shipped mace-h8-high under another name)."""
    pytest.importorskip("mace")
    path = tmp_path / "user models" / "mine.model"
    path.parent.mkdir()
    shutil.copy(SHIPPED / "mace-h8-high" / "model.model", path)
    return path


@pytest.fixture
def metatomic_file(tmp_path):
    """A user's own exported metatomic file (the shipped soap-bpnn-h8-high)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        pytest.importorskip("metatomic.torch")
    path = tmp_path / "mine.pt"
    shutil.copy(SHIPPED / "soap-bpnn-h8-high" / "model.pt", path)
    return path


def _cluster():
    return ase.io.read(example_path())


def test_a_plugin_is_listed_resolved_and_a_pure_pair_potential(plugin):
    assert plugin in available_models()
    assert available_models()[plugin].endswith("(plug-in)")
    model = resolve_model(plugin)
    assert isinstance(model, Morse)
    body = decompose(_cluster(), model, max_order=4)
    # a pair potential through the plug-in door: nothing beyond 2 bodies
    np.testing.assert_allclose(body.energies_eV[2:], 0.0, atol=1e-9)
    assert body.energies_eV[1] == pytest.approx(body.energy_eV - body.energies_eV[0], abs=1e-9)


def test_a_plugin_with_a_missing_package_is_not_listed_and_says_what_to_install(plugin):
    assert "test-plugin-missing" not in available_models()
    with pytest.raises(ImportError, match="a_package_that_is_not_installed") as error:
        resolve_model("test-plugin-missing")
    assert "'test-plugin-missing'" in str(error.value) and "\n" not in str(error.value)
    assert "pip install 'ase-bodyorder[not-installed]'" in str(error.value)
    with pytest.raises(BodyOrderError, match="'test-plugin-not-a-model'.*int, not"):
        resolve_model("test-plugin-not-a-model")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no-such-model", "unknown model 'no-such-model'; available models: h-atm, "),
        ("missing.model", "model 'missing.model': no such MACE model file"),
        ("dir/missing.pt", "model 'dir/missing.pt': no such metatomic model file"),
        ("frames/cluster.xyz", "model 'frames/cluster.xyz': not a model file"),
        ("", "a model spec is a non-empty string"),
    ],
)
def test_bad_specs_are_one_line_naming_the_spec(spec, message):
    with pytest.raises(BodyOrderError) as error:
        resolve_model(spec)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.slow  # imports mace and metatomic: about 18 s
def test_a_corrupt_model_file_is_one_line_naming_it(tmp_path):
    for name in ("broken.model", "broken.pt"):
        path = tmp_path / name
        path.write_bytes(b"not a torch file")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            with pytest.raises((BodyOrderError, ImportError)) as error:
                resolve_model(str(path))
        if isinstance(error.value, BodyOrderError):
            assert str(error.value).startswith(f"model {str(path)!r}: ")
            # regression: the .pt ended in torch's paragraph about miniz and checkpoints
            assert "miniz" not in str(error.value)
            assert len(str(error.value).replace(str(path), "")) < 160
        assert "\n" not in str(error.value)


@pytest.mark.slow  # about 7 s
@pytest.mark.filterwarnings("ignore:Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_a_mace_file_opens_like_its_registered_name_in_every_python_door(mace_file):
    atoms = _cluster()
    by_name = decompose(atoms, resolve_model("mace-h8-high"), max_order=3)
    by_file = decompose(atoms, resolve_model(str(mace_file)), max_order=3)
    np.testing.assert_array_equal(by_file.energies_eV, by_name.energies_eV)
    # the calculator
    calc = BodyOrderCalculator(str(mace_file), max_order=3)
    atoms.calc = calc
    np.testing.assert_array_equal(
        calc.get_property("body_order_energies", atoms), by_name.energies_eV
    )
    # the trajectory runner (each worker resolves the spec)
    (stored,) = decompose_trajectory([atoms], str(mace_file), order=3)
    np.testing.assert_array_equal(stored.energies_eV, by_name.energies_eV)
    # reference frames' --model: a bare spec (labelled by the file name) or LABEL=SPEC
    label, model = load_model_spec(str(mace_file))
    assert label == "mine" and type(model).__name__ == "MACEModel"
    assert load_model_spec(f"own={mace_file}")[0] == "own"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_metatomic_file_through_the_command_line(metatomic_file, capsys):
    atoms = _cluster()
    expected = decompose(atoms, resolve_model("soap-bpnn-h8-high"), max_order=3)
    argv = ["decompose", str(example_path()), "--order", "3", "--json", "--index", "0"]
    assert main([*argv, "--model", str(metatomic_file)]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    np.testing.assert_allclose(record["energies_eV"], expected.energies_eV, rtol=0, atol=1e-9)


def test_the_command_line_takes_a_plugin_and_refuses_a_bad_spec_in_one_line(plugin, capsys):
    argv = ["decompose", str(example_path()), "--order", "3", "--json", "--index", "0"]
    assert main([*argv, "--model", plugin]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    expected = decompose(_cluster(), resolve_model(plugin), max_order=3)
    np.testing.assert_allclose(record["energies_eV"], expected.energies_eV, rtol=0, atol=1e-12)
    for spec, message in (
        ("nope", "unknown model 'nope'"),
        ("gone.model", "model 'gone.model': no such MACE model file"),
    ):
        assert main([*argv, "--model", spec]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1


def test_the_calculator_and_the_ipi_driver_take_a_plugin(plugin, tmp_path):
    pytest.importorskip("ipi")
    from ase_bodyorder.ipi.driver import BodyOrderDriver

    atoms = _cluster()
    calc = BodyOrderCalculator(plugin, max_order=3)
    atoms.calc = calc
    direct = decompose(atoms, resolve_model(plugin), max_order=3)
    np.testing.assert_array_equal(
        calc.get_property("body_order_energies", atoms), direct.energies_eV
    )
    template = tmp_path / "template.xyz"
    ase.io.write(template, atoms)
    driver = BodyOrderDriver(str(template), model=plugin, order=3)
    _, _, _, extras = driver.compute(np.eye(3) * 20 / Bohr, atoms.positions / Bohr)
    np.testing.assert_allclose(
        json.loads(extras)["body_order_energies"], direct.energies_eV, rtol=0, atol=1e-9
    )
    with pytest.raises(BodyOrderError, match="unknown model 'nope'"):
        BodyOrderDriver(str(template), model="nope", order=3)


def test_the_ipi_driver_takes_the_expansion_as_one_settings_argument(tmp_path):
    pytest.importorskip("ipi")
    from ase_bodyorder import ExpansionSettings
    from ase_bodyorder.ipi.driver import BodyOrderDriver

    atoms = _cluster()
    template = tmp_path / "template.xyz"
    ase.io.write(template, atoms)
    settings = ExpansionSettings(order=2, stride=2)
    for given in (settings, json.dumps(settings.to_dict())):
        driver = BodyOrderDriver(str(template), model="h-morse-atm", settings=given)
        assert driver.settings == settings and driver.calculator.settings.stride == 0
        _, _, _, extras = driver.compute(np.eye(3) * 20 / Bohr, atoms.positions / Bohr)
        expected = decompose(atoms, resolve_model("h-morse-atm"), max_order=2)
        np.testing.assert_allclose(
            json.loads(extras)["body_order_energies"], expected.energies_eV, atol=1e-9
        )
    with pytest.raises(BodyOrderError, match="unknown expansion setting"):
        BodyOrderDriver(str(template), model="h-morse-atm", settings='{"ordr": 2}')
