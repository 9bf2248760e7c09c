"""A package so that the backends' tests import the shared contract as ``models.contract``
(pyproject's pytest ``pythonpath`` puts tests/ first on ``sys.path``)."""
