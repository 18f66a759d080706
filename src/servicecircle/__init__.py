"""servicecircle: 5-minute service circles on real walking networks.

Which homes, red grids (红色网格) and communities lie within a walk of a service station,
where the gaps are, all measured along the OpenStreetMap street network in metres.
"""

from __future__ import annotations

from typing import Any

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

#: The working functions, flat (``sc.load_network``, ``sc.analyse`` …), imported when first
#: used so that ``import servicecircle`` (and the command line's ``--help``) stays fast.
_LAZY = {
    "load_network": "servicecircle.network",
    "download_network": "servicecircle.network",
    "read_stations": "servicecircle.inputs",
    "read_grids": "servicecircle.inputs",
    "read_resources": "servicecircle.inputs",
    "read_buildings": "servicecircle.inputs",
    "read_boundary": "servicecircle.inputs",
    "generate_grids": "servicecircle.grids",
    "analyse": "servicecircle.pipeline",
    "Analysis": "servicecircle.pipeline",
    "analyse_files": "servicecircle.api",
    "propose_sites": "servicecircle.siting",
    "candidate_sites": "servicecircle.siting",
}

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
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'servicecircle' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
