"""A universal model given an element it does not know: one line naming the element,
the model and its elements as a range, nothing of the package's loading notes
(runs in .venv-universal: make test)."""

import pytest
from ase import Atoms

from ase_bodyorder import SpeciesError, decompose, resolve_model

pytest.importorskip(
    "chgnet",
    reason="chgnet lives in .venv-universal (make universal-env); make test runs these there",
)

pytestmark = pytest.mark.slow  # loading CHGNet takes a few seconds


def test_chgnet_loads_quietly_and_names_what_it_does_not_know(capfd):
    """Regression (tour): "CHGNet will run on cpu" came on stderr before the error line,
    and the line listed CHGNet's 94 elements one by one."""
    model = resolve_model("chgnet")
    captured = capfd.readouterr()
    assert captured.out == "" and "CHGNet" not in captured.err
    oganesson = Atoms("Og2", positions=[[0, 0, 0], [3, 0, 0]])
    said = r"^model 'chgnet-0.3.0' does not know element\(s\) Og; it knows H-Pu$"
    with pytest.raises(SpeciesError, match=said):
        decompose(oganesson, model)
