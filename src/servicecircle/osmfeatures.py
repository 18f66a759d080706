"""Buildings and points of interest from OSM: a file (XML or PBF) or a place via Overpass.

Used when the user has no building or resource file: buildings become demand points, POIs
the resource map (资源地图) and, in the demo, stations. XML goes through osmnx
``features_from_xml``; PBF through pyrosm (:mod:`servicecircle.sample_data`); a place name
through osmnx ``features_from_place`` with osmnx's cache (network access needed).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from servicecircle import sample_data
from servicecircle.crs import WGS84
from servicecircle.errors import NetworkError

__all__ = ["POI_KEYS", "features_from_osm"]

#: OSM keys read as points of interest; the first present gives the category
POI_KEYS = ("amenity", "shop", "leisure", "tourism")


def _empty_pois() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"osmid": [], "name": [], "category": [], "key": []}, geometry=[], crs=WGS84
    )


def _empty_buildings() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"building_id": [], "floors": [], "category": []}, geometry=[], crs=WGS84
    )


def _split(features: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """osmnx features → (buildings, POIs) in the shapes the rest of the tool reads."""
    if features is None or features.empty:
        return _empty_buildings(), _empty_pois()
    f = features.to_crs(WGS84)
    ids = np.array([int(i[1]) if isinstance(i, tuple) else int(i) for i in f.index])
    geoms = f.geometry.to_numpy()
    poly = np.isin(shapely.get_type_id(geoms), [3, 6])
    b_mask = poly & f.get("building", pd.Series(index=f.index, dtype=object)).notna().to_numpy()
    levels = pd.to_numeric(
        f.get("building:levels", pd.Series(index=f.index, dtype=object)), errors="coerce"
    )
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"w{i}" for i in ids[b_mask]],
            "floors": levels.to_numpy(dtype=float)[b_mask],
            "category": f["building"].to_numpy()[b_mask] if "building" in f else None,
        },
        geometry=shapely.make_valid(geoms[b_mask]),
        crs=WGS84,
    )
    key = pd.Series(None, index=f.index, dtype=object)
    category = pd.Series(None, index=f.index, dtype=object)
    for k in reversed(POI_KEYS):  # the first key wins when several are set
        if k in f.columns:
            has = f[k].notna()
            key[has], category[has] = k, f.loc[has, k]
    p_mask = category.notna().to_numpy()
    pts = geoms[p_mask]
    pts = np.where(shapely.get_type_id(pts) == 0, pts, shapely.point_on_surface(pts))
    names = f["name"] if "name" in f.columns else pd.Series(None, index=f.index)
    pois = gpd.GeoDataFrame(
        {
            "osmid": ids[p_mask],
            "name": names.to_numpy()[p_mask],
            "category": category.to_numpy()[p_mask],
            "key": key.to_numpy()[p_mask],
        },
        geometry=pts,
        crs=WGS84,
    )
    return buildings.reset_index(drop=True), pois.sort_values("osmid").reset_index(drop=True)


def _tags() -> dict[str, Any]:
    return {"building": True, **dict.fromkeys(POI_KEYS, True)}


def features_from_osm(
    source: str | Path | None = None, *, place: str | None = None
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Buildings and POIs (WGS84) of an OSM file or of a place name.

    Returns
    -------
    (buildings, pois)
        Buildings: ``building_id``, ``floors`` (NaN unknown), ``category``, footprints.
        POIs: ``osmid``, ``name``, ``category`` (the OSM value), ``key`` (amenity/shop/…),
        points. Either may be empty (e.g. a street-only extract).
    """
    import osmnx as ox

    if place is not None:
        try:
            features = ox.features_from_place(place, tags=_tags())
        except ox._errors.InsufficientResponseError:
            return _empty_buildings(), _empty_pois()
        except Exception as exc:
            raise NetworkError(
                f"could not download buildings and POIs for {place!r} from OpenStreetMap "
                f"({type(exc).__name__}: {exc}); check the internet connection, or run on a "
                "saved extract with --osm FILE"
            ) from exc
        return _split(features)
    if source is None:
        raise ValueError("give an OSM file or a place")
    path = Path(source)
    if path.name.endswith(".pbf"):
        return sample_data.osm_buildings(path), sample_data.osm_pois(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # osmnx warns about tags it does not know
        try:
            features = ox.features_from_xml(path, tags=_tags())
        except ox._errors.InsufficientResponseError:
            return _empty_buildings(), _empty_pois()
    return _split(features)
