"""Synthetic map inputs built in code: a small district and one of Zhifu's size.

Zhifu (芝罘区) has 1,024 red grids and 302 stations; :func:`district` builds a lattice of
that size on UTM 51N (metres) with wiggly streets every ``street_m`` metres, and rings
made the way real ones are (street pieces buffered by the frontage width), so that map
sizes and load times measured on it carry over to the real district.
"""

from __future__ import annotations

from functools import cache

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: layer names of the full map in the layer control, in order
EXPECTED_LAYERS = [
    "网格覆盖率 grid coverage (5 min)",
    "5分钟步行圈 5-min walk",
    "10分钟步行圈 10-min walk",
    "15分钟步行圈 15-min walk",
    "覆盖缺口 coverage gaps (5 min)",
    "资源地图 resources",
    "驿站 stations",
    "建议选址 proposed sites",
]

UTM = "EPSG:32651"
X0, Y0 = 352_000.0, 4_147_000.0  # near Zhifu, Yantai (≈ 121.3° E, 37.45° N)
HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_JS = "`${alert(2)}`</script><script>alert(3)</script>"
HOSTILE_JINJA = "{{ 7*7 }}{% if 1 %}x{% endif %}{# c #}"  # folium re-renders scripts by Jinja

META = {
    "tool": "servicecircle",
    "version": "0.1.0",
    "created": "2025-06-01T08:00:00+08:00",
    "walk": {
        "preset": "default",
        "speed_m_per_min": 60.0,
        "thresholds_min": [5.0, 10.0, 15.0],
        "distances_m": [300.0, 600.0, 900.0],
        "frontage_m": 30.0,
    },
    "network": {"source": "zhifu.osm.pbf", "osm_date": "2025-05-20", "sha256": None},
    "demand": {"kind": "buildings", "weight": "footprint"},
}


def _wiggle(line: shapely.LineString, rng: np.random.Generator, sd_m: float) -> shapely.LineString:
    """A street digitised every 20 m with lateral noise: real streets are not straight."""
    pts = shapely.get_coordinates(shapely.segmentize(line, 20.0))
    pts[1:-1] += rng.normal(0.0, sd_m, size=(len(pts) - 2, 2))
    return shapely.LineString(pts)


def district(
    *,
    n_side: int = 32,
    grid_m: float = 300.0,
    n_stations: int = 302,
    street_m: float = 120.0,
    frontage_m: float = 30.0,
    seed: int = 7,
    hostile: bool = True,
) -> dict[str, gpd.GeoDataFrame]:
    """Grids (WGS84, densified edges), stations (WGS84), rings (UTM), gaps, resources.

    ``n_side`` × ``n_side`` square grids of ``grid_m`` metres, each edge digitised every
    5 m with 0.3 m of noise; stations at seeded random places, the first named
    :data:`HOSTILE`; per station and threshold a ring made of the streets within the walk
    distance (crow-flies here) buffered by ``frontage_m``.
    """
    rng = np.random.default_rng(seed)
    side = n_side * grid_m
    boxes = []
    for j in range(n_side):
        for i in range(n_side):
            box = shapely.box(
                X0 + i * grid_m, Y0 + j * grid_m, X0 + (i + 1) * grid_m, Y0 + (j + 1) * grid_m
            )
            ring = shapely.get_coordinates(shapely.segmentize(box.exterior, 5.0))
            ring[:-1] += rng.normal(0.0, 0.3, size=(len(ring) - 1, 2))
            ring[-1] = ring[0]
            boxes.append(shapely.Polygon(ring))
    k = len(boxes)
    share5 = rng.uniform(0, 1, k)
    share5[:4] = [0.0, 0.5, 1.0, np.nan]
    weight = np.where(np.isnan(share5), 0.0, rng.uniform(1e3, 2e4, k))
    grid_ids = [f"ZF-{n:04d}" for n in range(k)]
    grids = gpd.GeoDataFrame(
        {
            "grid_id": grid_ids,
            "subdistrict": [f"第{n // 128 + 1}街道" for n in range(k)],
            "community": [f"社区{n // 16 + 1}" for n in range(k)],
            "grid_name": [f"网格{n + 1}" for n in range(k)],
            "population": np.nan,
            "n_points": 10,
            "weight": weight,
            "area_m2": grid_m**2,
            "covered_5min": np.nan_to_num(share5) * weight,
            "uncovered_5min": (1 - np.nan_to_num(share5)) * weight,
            "coverage_5min": share5,
            "coverage_10min": np.minimum(share5 + 0.3, 1.0),
            "coverage_15min": np.where(np.isnan(share5), np.nan, 1.0),
            "walk_median_m": rng.uniform(50, 800, k),
            "walk_p90_m": rng.uniform(300, 1200, k),
            "station_id": [f"S{n % n_stations:03d}" for n in range(k)],
            "station_name": [f"驿站{n % n_stations}" for n in range(k)],
            "walk_min_m": np.where(np.arange(k) == 5, np.inf, rng.uniform(0, 500, k)),
        },
        geometry=boxes,
        crs=UTM,
    ).to_crs("EPSG:4326")
    if hostile:
        grids.loc[0, "grid_name"] = HOSTILE
        grids.loc[1, "community"] = HOSTILE_JS
        grids.loc[2, "station_name"] = HOSTILE

    sx = X0 + rng.uniform(0, side, n_stations)
    sy = Y0 + rng.uniform(0, side, n_stations)
    tiers = np.array(["station"] * n_stations, dtype=object)
    tiers[:1] = "district"
    tiers[1:12] = "subdistrict"
    names = [f"驿站{n}" for n in range(n_stations)]
    if hostile:
        names[0] = HOSTILE
        names[1] = HOSTILE_JS
        names[2] = HOSTILE_JINJA
    stations = gpd.GeoDataFrame(
        {"station_id": [f"S{n:03d}" for n in range(n_stations)], "name": names, "tier": tiers},
        geometry=gpd.points_from_xy(sx, sy),
        crs=UTM,
    ).to_crs("EPSG:4326")

    # streets: wiggly lines every street_m metres in both directions
    ticks = np.arange(0.0, side + 1e-9, street_m)
    streets = [
        _wiggle(shapely.LineString([(X0 + t, Y0), (X0 + t, Y0 + side)]), rng, 3.0) for t in ticks
    ] + [_wiggle(shapely.LineString([(X0, Y0 + t), (X0 + side, Y0 + t)]), rng, 3.0) for t in ticks]
    street_arr = np.array(streets, dtype=object)
    tree = shapely.STRtree(street_arr)
    rows = []
    for sid, x, y in zip(stations["station_id"], sx, sy, strict=True):
        for t, d in ((5.0, 300.0), (10.0, 600.0), (15.0, 900.0)):
            disk = shapely.Point(x, y).buffer(d, quad_segs=8)
            near = street_arr[tree.query(disk)]
            pieces = shapely.get_parts(shapely.intersection(near, disk))
            pieces = pieces[(shapely.get_type_id(pieces) == 1) & ~shapely.is_empty(pieces)]
            # buffering the un-noded pieces at once is far faster than union, then buffer
            ring = shapely.buffer(shapely.MultiLineString(list(pieces)), frontage_m, quad_segs=4)
            rows.append({"station_id": sid, "threshold_min": t, "distance_m": d, "geometry": ring})
    rings = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=UTM)

    low = grids[grids["coverage_5min"].fillna(1.0) < 0.5]
    gap_geoms = low.to_crs(UTM).geometry.buffer(-60.0)
    gaps = gpd.GeoDataFrame(
        {
            "grid_id": low["grid_id"].to_numpy(),
            "subdistrict": low["subdistrict"].to_numpy(),
            "community": low["community"].to_numpy(),
            "grid_name": low["grid_name"].to_numpy(),
            "threshold_min": 5.0,
            "area_m2": gap_geoms.area.to_numpy(),
        },
        geometry=gap_geoms.to_numpy(),
        crs=UTM,
    ).to_crs("EPSG:4326")

    n_res = 600
    cats = np.array(["医疗 health", "教育 education", "养老 elderly care", "文体 culture"])
    resources = gpd.GeoDataFrame(
        {
            "resource_id": [f"R{n}" for n in range(n_res)],
            "name": [f"资源{n}" for n in range(n_res)],
            "category": cats[rng.integers(0, len(cats), n_res)],
        },
        geometry=gpd.points_from_xy(
            X0 + rng.uniform(0, side, n_res), Y0 + rng.uniform(0, side, n_res)
        ),
        crs=UTM,
    ).to_crs("EPSG:4326")
    if hostile:
        resources.loc[0, "category"] = HOSTILE
        resources.loc[1, "name"] = HOSTILE_JINJA
    sites = gpd.GeoDataFrame(
        {
            "site_id": ["P1", "P2", "P3"],
            "name": ["新址一", "新址二", HOSTILE if hostile else "新址三"],
            "gain_weight": [5000.0, 3000.0, 1000.0],
            "rank": [1, 2, 3],
        },
        geometry=gpd.points_from_xy(X0 + np.array([1e3, 4e3, 8e3]), Y0 + np.array([2e3, 5e3, 9e3])),
        crs=UTM,
    ).to_crs("EPSG:4326")
    return {
        "grids": grids,
        "stations": stations,
        "rings": rings,
        "gaps": gaps,
        "resources": resources,
        "sites": sites,
    }


@cache
def zhifu_inputs() -> dict[str, gpd.GeoDataFrame]:
    """:func:`district` at Zhifu's size, built once per test session (about 5 s)."""
    return district()


def map_of(d: dict, **kw) -> folium.Map:
    """The coverage map of a fixture district (:func:`district`), without tiles by default."""
    from servicecircle import webmap

    kw.setdefault("tiles", "none")
    return webmap.coverage_map(
        d["grids"],
        d["stations"],
        rings=d["rings"],
        gaps=d["gaps"],
        resources=d["resources"],
        sites=d["sites"],
        metadata=META,
        **kw,
    )


@cache
def zhifu_map(tiles: str = "none") -> folium.Map:
    """The coverage map of :func:`zhifu_inputs`, built once per session and ``tiles``."""
    return map_of(zhifu_inputs(), tiles=tiles)
