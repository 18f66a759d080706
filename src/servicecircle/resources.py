"""The resource map (资源地图): community resources by category, placed in their grids.

Resources come from the user's file (:func:`servicecircle.inputs.read_resources`) or from
OSM points of interest. OSM tag values are grouped into the categories planners in China
use for a life circle (GB 50180-2018 lists the same kinds of facilities); anything else is
``other``. :func:`resources_per_grid` counts them per grid for the map's popups.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from servicecircle.crs import WGS84

__all__ = ["CATEGORY_LABELS", "OSM_CATEGORY", "classify_pois", "resources_per_grid"]

#: category → map label (Chinese with English)
CATEGORY_LABELS = {
    "education": "教育 education",
    "health": "医疗卫生 health",
    "elderly": "养老托育 elderly & childcare",
    "culture_sport": "文体 culture & sport",
    "public_service": "公共服务 public service",
    "commerce": "商业服务 shops & services",
    "transport": "交通 transport",
    "other": "其他 other",
}

#: OSM tag value → category (amenity, shop, leisure, tourism, …)
OSM_CATEGORY = {
    **dict.fromkeys(
        ["school", "kindergarten", "college", "university", "library", "music_school",
         "language_school", "driving_school"], "education"),
    **dict.fromkeys(
        ["hospital", "clinic", "doctors", "dentist", "pharmacy", "health_post",
         "veterinary"], "health"),
    **dict.fromkeys(["social_facility", "nursing_home", "childcare", "retirement_home"],
                    "elderly"),
    **dict.fromkeys(
        ["community_centre", "theatre", "arts_centre", "cinema", "museum", "sports_centre",
         "fitness_centre", "pitch", "park", "playground", "stadium", "swimming_pool",
         "gallery", "attraction"], "culture_sport"),
    **dict.fromkeys(
        ["townhall", "police", "post_office", "fire_station", "courthouse", "public_building",
         "toilets", "place_of_worship", "bank", "atm", "recycling"], "public_service"),
    **dict.fromkeys(
        ["supermarket", "marketplace", "convenience", "restaurant", "cafe", "fast_food",
         "bakery", "butcher", "greengrocer", "hairdresser", "laundry", "bar", "pub",
         "department_store", "mall"], "commerce"),
    **dict.fromkeys(
        ["bus_station", "ferry_terminal", "bicycle_rental", "parking", "taxi",
         "charging_station", "fuel"], "transport"),
}  # fmt: skip


def classify_pois(pois: gpd.GeoDataFrame, *, value_col: str = "category") -> gpd.GeoDataFrame:
    """Resource-map frame from OSM POIs: ``resource_id``, ``name``, ``category``, ``tag``.

    ``category`` is one of :data:`CATEGORY_LABELS` (``other`` for tags not listed); the
    original OSM value is kept in ``tag``. Polygons become a point on their surface.
    """
    tag = pois[value_col].astype(object).to_numpy()
    category = np.array([OSM_CATEGORY.get(str(t), "other") for t in tag], dtype=object)
    geoms = pois.geometry.to_numpy()
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    ids = (
        [f"osm{int(i)}" for i in pois["osmid"]]
        if "osmid" in pois.columns
        else [f"R{i + 1}" for i in range(len(pois))]
    )
    names = pois["name"].to_numpy() if "name" in pois.columns else np.full(len(pois), None)
    return gpd.GeoDataFrame(
        {"resource_id": ids, "name": names, "category": category, "tag": tag},
        geometry=points,
        crs=pois.crs,
    ).to_crs(WGS84)


def resources_per_grid(resources: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """Resources per grid and category: one row per grid (in ``grids`` order), one count
    column per category present, plus ``resources`` (the total).

    A resource belongs to the grid that contains it (first match on a shared boundary);
    resources outside every grid are not counted.
    """
    grid_geoms = grids.to_crs(WGS84).geometry.to_numpy()
    pts = resources.to_crs(WGS84).geometry.to_numpy()
    tree = shapely.STRtree(grid_geoms)
    res_pos, grid_pos = tree.query(pts, predicate="intersects")
    first = np.unique(res_pos, return_index=True)[1]
    res_pos, grid_pos = res_pos[first], grid_pos[first]
    cats = resources["category"].astype(str).to_numpy()[res_pos]
    table = pd.crosstab(pd.Series(grid_pos, name="grid"), pd.Series(cats, name="category"))
    table = table.reindex(range(len(grids)), fill_value=0)
    table["resources"] = table.sum(axis=1)
    table.index = grids.index
    table.columns.name = None
    return table
