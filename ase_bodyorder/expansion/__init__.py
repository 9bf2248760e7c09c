"""Plan and assemble the many-body expansion (no models, no electronic structure)."""

from ._geometry import check_structure
from .assemble import (
    OrderTerms,
    atomic_orders,
    atomic_orders_torch,
    cluster_order_forces,
    cluster_orders,
    evaluation_roundoff,
    order_coefficients,
    truncation_weights,
)
from .errors import BodyOrderError, PlanTooLargeError, StructureError
from .plan import (
    DEFAULT_MAX_SUBCLUSTERS,
    ExpansionPlan,
    PackedOffsets,
    Screening,
    Subcluster,
    parse_subcluster_label,
    plan_expansion,
    subcluster_label,
)

__all__ = [
    "DEFAULT_MAX_SUBCLUSTERS",
    "BodyOrderError",
    "ExpansionPlan",
    "OrderTerms",
    "PackedOffsets",
    "PlanTooLargeError",
    "Screening",
    "StructureError",
    "Subcluster",
    "atomic_orders",
    "atomic_orders_torch",
    "check_structure",
    "cluster_order_forces",
    "cluster_orders",
    "evaluation_roundoff",
    "order_coefficients",
    "parse_subcluster_label",
    "plan_expansion",
    "subcluster_label",
    "truncation_weights",
]
