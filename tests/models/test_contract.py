"""One contract, every backend: the analytic model and the shipped trained models.

The checks are written once in :mod:`models.contract`; each class here gives a backend's
shipped models as its ``model`` fixture.
"""

import pytest

from ase_bodyorder import load_model
from models.contract import ModelContract, SavedModelContract


def _metatomic(name):
    pytest.importorskip("metatomic.torch")
    return load_model(name)


class TestAnalyticContract(ModelContract):
    """The analytic demo model (Morse pairs + Axilrod-Teller-Muto triples)."""

    @pytest.fixture(scope="class", params=["h-morse-atm"])
    @classmethod
    def model(cls, request):
        return load_model(request.param)


class TestMetatomicPETContract(ModelContract, SavedModelContract):
    @pytest.fixture(scope="class", params=["pet-h8-high", "pet-h8-low"])
    @classmethod
    def model(cls, request):
        return _metatomic(request.param)

    @staticmethod
    def load(path):
        pytest.importorskip("metatomic.torch")
        from ase_bodyorder.models.metatomic import MetatomicModel

        return MetatomicModel(path)


class TestMetatomicSOAPContract(ModelContract):
    """SOAP-BPNN: the two H8 cluster models and the periodic bulk model."""

    @pytest.fixture(
        scope="class", params=["soap-bpnn-h8-high", "soap-bpnn-h8-low", "soap-bpnn-hbulk-high"]
    )
    @classmethod
    def model(cls, request):
        return _metatomic(request.param)


class TestMACEContract(ModelContract, SavedModelContract):
    @pytest.fixture(scope="class", params=["mace-h8-high", "mace-h8-low"])
    @classmethod
    def model(cls, request):
        pytest.importorskip("mace")
        return load_model(request.param)

    @staticmethod
    def load(path):
        pytest.importorskip("mace")
        from ase_bodyorder.models.mace import MACEModel

        return MACEModel(path)
