"""ase_bodyorder: how a machine-learning interatomic potential splits its energy into
1-, 2-, 3-, ... n-body contributions.

Heavy optional backends (metatomic, mace, pyscf, block2, i-PI) are imported only by the
modules that need them.
"""

from .calculator import (
    BODY_ORDER_PROPERTIES,
    BodyOrderCalculator,
    read_body_order_results,
    store_body_order_results,
)
from .decompose import BodyOrderResult, decompose
from .expansion import BodyOrderError, PlanTooLargeError, StructureError, plan_expansion
from .models import SpeciesError, available_models, load_model, resolve_model
from .settings import ExpansionSettings

__version__ = "0.1.0"

__all__ = [
    "BODY_ORDER_PROPERTIES",
    "BodyOrderCalculator",
    "BodyOrderError",
    "BodyOrderResult",
    "ExpansionSettings",
    "PlanTooLargeError",
    "SpeciesError",
    "StructureError",
    "available_models",
    "decompose",
    "load_model",
    "plan_expansion",
    "read_body_order_results",
    "resolve_model",
    "store_body_order_results",
]
