"""The model spec's edges (issue 35's tour): elements a model does not know, named with
the model; a directory or a path object as a spec; what is neither a model nor a spec.

Regressions: the species error named the class (``SumModel does not know element(s)
O``), not the model asked for; ``h-atm`` (hydrogen's C9) took oxygen and lithium with
exit 0; a directory ``x.model`` was "no such MACE model file"; a ``pathlib.Path`` was
refused as "not a non-empty string"; float32 of an analytic model printed its whole
repr; mace's cuequivariance note came before every one-line error.
"""

import shutil
from pathlib import Path

import pytest
from ase import Atoms

import ase_bodyorder
from ase_bodyorder import BodyOrderCalculator, BodyOrderError, SpeciesError, decompose
from ase_bodyorder.cli import main
from ase_bodyorder.models import Morse, SumModel, as_model, resolve_model
from ase_bodyorder.models.mace import print_to_stderr_but_notes

WATER = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
LITHIUM = Atoms("Li4", positions=[[0, 0, 0], [2.7, 0, 0], [0, 2.7, 0], [0, 0, 2.7]])
SHIPPED = Path(ase_bodyorder.__file__).parent / "data" / "models"
HYDROGEN = Atoms("H3", positions=[[0, 0, 0], [0.74, 0, 0], [0, 1.5, 0]])


@pytest.mark.parametrize("spec", ["h-morse-atm", "h-morse", "h-atm"])
@pytest.mark.parametrize("atoms, element", [(WATER, "O"), (LITHIUM, "Li")])
def test_an_unknown_element_names_the_element_and_the_model(spec, atoms, element):
    said = rf"^model '{spec}' does not know element\(s\) {element}; it knows H$"
    with pytest.raises(SpeciesError, match=said):
        decompose(atoms, resolve_model(spec))
    calculated = atoms.copy()
    calculated.calc = BodyOrderCalculator(spec)
    with pytest.raises(SpeciesError, match=said):
        calculated.get_potential_energy()


def test_the_command_line_says_it_in_one_line(tmp_path, capsys):
    path = tmp_path / "water.xyz"
    WATER.write(path)
    assert main(["decompose", str(path), "--model", "h-atm"]) == 2
    err = capsys.readouterr().err
    assert err == "ase-bodyorder: error: model 'h-atm' does not know element(s) O; it knows H\n"


def test_h_atm_still_gives_the_triple_term_of_hydrogen():
    result = decompose(HYDROGEN, resolve_model("h-atm"))
    assert result.energies_eV[0] == 0 and result.energies_eV[1] == pytest.approx(0, abs=1e-12)
    assert abs(result.energies_eV[2]) > 1e-3  # eV: the one triangle


def test_a_model_built_in_python_is_named_by_its_class():
    model = SumModel(Morse(D_e=1.0, a=1.0, r_e=1.0, cutoff=4.0))
    model.atomic_numbers = frozenset({1})
    assert model.name is None
    with pytest.raises(SpeciesError, match=r"^SumModel does not know element\(s\) O; it knows H$"):
        decompose(WATER, model)


@pytest.mark.parametrize("suffix, kind", [(".model", "MACE"), (".pt", "metatomic")])
def test_a_directory_named_like_a_model_file(tmp_path, suffix, kind):
    directory = tmp_path / f"models{suffix}"
    directory.mkdir()
    with pytest.raises(BodyOrderError, match=f"a directory, not a {kind} model file"):
        resolve_model(str(directory))


def test_a_path_object_is_a_spec_and_anything_else_is_one_line(tmp_path):
    missing = tmp_path / "mine.model"
    with pytest.raises(BodyOrderError, match=f"model '{missing}': no such MACE model file"):
        resolve_model(missing)
    model = as_model("h-morse")
    assert model.name == "h-morse" and as_model(model) is model
    for bad in (3, None, [Path("x.pt")]):
        with pytest.raises(BodyOrderError, match="a model is an ase_bodyorder Model or a model"):
            as_model(bad)


def test_float32_of_an_analytic_model_is_one_short_line():
    with pytest.raises(BodyOrderError) as error:
        decompose(HYDROGEN, resolve_model("h-morse-atm"), precision="float32")
    said = str(error.value)
    assert said == "model 'h-morse-atm' cannot evaluate in float32: it computes in float64 only"


def test_mace_import_notes_on_cuequivariance_are_dropped(capsys):
    note = (
        "cuequivariance or cuequivariance_torch is not available. Cuequivariance "
        "acceleration will be disabled."
    )
    print_to_stderr_but_notes(f"{note}\nsomething else mace said\n")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "something else mace said\n"
    print_to_stderr_but_notes(note + "\n")
    assert capsys.readouterr().err == ""


def test_a_metatomic_export_named_dot_model_says_so(tmp_path):
    """Regression (tour): a metatomic ``.pt`` renamed ``.model`` was called a compiled
    MACE model ("pass the plain model file that mace_run_train writes"); told before
    mace is imported."""
    path = tmp_path / "pet.model"
    shutil.copy(SHIPPED / "pet-h8-high" / "model.pt", path)
    with pytest.raises(BodyOrderError, match="is an exported metatomic model, not a MACE model"):
        resolve_model(str(path))


def test_a_model_of_many_elements_names_them_as_ranges():
    """Regression (tour): a universal model (CHGNet: H to Pu) listed its 94 symbols one
    by one in the error line."""
    model = resolve_model("h-morse")
    model.atomic_numbers = frozenset(range(1, 95))
    oganesson = Atoms("Og2", positions=[[0, 0, 0], [3, 0, 0]])
    with pytest.raises(
        SpeciesError, match=r"^model 'h-morse' does not know element\(s\) Og; it knows H-Pu$"
    ):
        decompose(oganesson, model)
    model.atomic_numbers = frozenset({1, 6, 7, 8, 9, 26})
    with pytest.raises(SpeciesError, match=r"it knows H, C-F, Fe$"):
        decompose(oganesson, model)
