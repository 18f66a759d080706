"""servicecircle: 5-minute service circles on real walking networks.

Which homes, red grids (红色网格) and communities lie within a walk of a service station,
where the gaps are, all measured along the OpenStreetMap street network in metres.
"""

from __future__ import annotations

from servicecircle.errors import (
    CRSError,
    ExportError,
    InputError,
    NetworkError,
    ServiceCircleError,
    ServiceCircleWarning,
    SnapError,
)
from servicecircle.settings import WalkSettings

__version__ = "0.1.0"

__all__ = [
    "CRSError",
    "ExportError",
    "InputError",
    "NetworkError",
    "ServiceCircleError",
    "ServiceCircleWarning",
    "SnapError",
    "WalkSettings",
    "__version__",
]
