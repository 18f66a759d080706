"""One call from files to an :class:`~servicecircle.pipeline.Analysis`, for analysts.

``import servicecircle as sc`` gives the working functions flat (osmnx-style); this module
holds the one that chains them: read the inputs (each with its declared coordinate
system), load the walking network, generate red grids when none are given, analyse.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from servicecircle import inputs
from servicecircle.network import load_network
from servicecircle.pipeline import Analysis, analyse
from servicecircle.settings import WalkSettings

__all__ = ["analyse_files"]


def analyse_files(
    osm: str | Path,
    stations: str | Path,
    *,
    stations_crs: Any,
    grids: str | Path | None = None,
    grids_crs: Any = None,
    buildings: str | Path | None = None,
    buildings_crs: Any = None,
    boundary: str | Path | None = None,
    boundary_crs: Any = None,
    walk: WalkSettings | None = None,
    private: str = "destination",
    n_grids: int = 1024,
    tier_map: Mapping[str, str] | None = None,
    trust_crs: bool = False,
    **options: Any,
) -> Analysis:
    """Coverage, rings and gaps of the stations in ``stations`` on the network in ``osm``.

    Parameters
    ----------
    osm
        Walking network: OSM XML/PBF or GraphML (cached after the first parse).
    stations, stations_crs
        The stations file and the coordinate system its numbers are in (``"EPSG:4326"``,
        ``"gcj02"``, ``"bd09"`` …; required: they differ by 0.5–1.3 km).
    grids, grids_crs
        Red-grid polygons; without them, ``n_grids`` grids are generated from the streets
        (inside ``boundary`` when given).
    buildings, buildings_crs
        Buildings as demand points; default a lattice inside each grid.
    walk
        Speed, thresholds, frontage, ``max_snap_m``, ``max_leg_m`` (default 60 m/min,
        5/10/15 min).
    private
        Private ways of gated compounds: ``"destination"`` (default), ``"exclude"`` or
        ``"include"`` (see :func:`~servicecircle.network.load_network`).
    tier_map
        Your station-tier labels → ``district`` / ``subdistrict`` / ``station``.
    trust_crs
        Keep the declared coordinate systems even where the streets say otherwise.
    options
        Passed on to :func:`~servicecircle.pipeline.analyse` (``lattice_m``, ``weight``,
        ``tier_minutes``, ``gap_threshold_min`` …).
    """
    st = inputs.read_stations(stations, crs=stations_crs, tier_map=tier_map)
    gr = inputs.read_grids(grids, crs=grids_crs) if grids is not None else None
    b = inputs.read_buildings(buildings, crs=buildings_crs) if buildings is not None else None
    area = inputs.read_boundary(boundary, crs=boundary_crs) if boundary is not None else None
    net = load_network(osm, private=private)
    if gr is None:
        from servicecircle.grids import generate_grids

        gr = generate_grids(net, area, n_grids=n_grids)
    return analyse(
        net,
        st,
        gr,
        walk=walk,
        buildings=b,
        inputs={"buildings": b, "boundary": area},
        trust_crs=trust_crs,
        **options,
    )
