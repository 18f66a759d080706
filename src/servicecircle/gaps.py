"""Gaps: where a grid's demand lies beyond the walk threshold, as points, polygons and a list.

The numbers (uncovered weight, coverage %) come from the demand points' network distances
(:mod:`servicecircle.coverage`). The gap *polygon* is for the map and for siting: the grid
minus the covered street frontage (the union ring of the threshold), with slivers smaller
than :data:`MIN_GAP_M2` dropped — thin leftovers along ring edges that no planner would
call a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from servicecircle.coverage import is_reserved_column, suffix
from servicecircle.crs import WGS84
from servicecircle.errors import InputError

__all__ = ["MIN_GAP_M2", "gap_list", "gap_points", "gap_polygons"]

#: gap pieces smaller than this (m²) are slivers: about a 20 m × 20 m courtyard
MIN_GAP_M2 = 400.0

_NAMES = ("grid_id", "subdistrict", "community", "grid_name")


def _ring_for(rings: gpd.GeoDataFrame, threshold_min: float) -> Any:
    match = np.isclose(rings["threshold_min"].to_numpy(dtype=float), threshold_min)
    if not match.any():
        have = ", ".join(f"{t:g}" for t in rings["threshold_min"])
        raise InputError(f"no ring for {threshold_min:g} min; rings exist for {have} min")
    return shapely.union_all(rings.geometry.to_numpy()[match])


def _drop_slivers(geoms: np.ndarray, min_area_m2: float) -> np.ndarray:
    """Keep only polygon parts of at least ``min_area_m2``; empty where none is left."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    polys = shapely.get_type_id(parts) == 3  # Polygon; lines/points from differences go
    keep = polys & (shapely.area(parts) >= min_area_m2)
    out = np.full(len(geoms), shapely.Polygon(), dtype=object)
    if keep.any():
        merged = gpd.GeoSeries(parts[keep]).groupby(owner[keep]).agg(lambda s: shapely.union_all(s))
        out[merged.index.to_numpy()] = merged.to_numpy()
    return out


def gap_polygons(
    coverage: gpd.GeoDataFrame,
    union_rings: gpd.GeoDataFrame,
    *,
    thresholds_min: Sequence[float] | None = None,
    crs: Any = None,
    min_area_m2: float = MIN_GAP_M2,
) -> gpd.GeoDataFrame:
    """Gap polygons per grid and threshold: the grid minus the covered frontage.

    Parameters
    ----------
    coverage
        Grid coverage (:func:`~servicecircle.coverage.grid_coverage`), any CRS.
    union_rings
        Union rings per threshold (:func:`~servicecircle.isochrones.reach_union_rings`),
        in a metric CRS.
    thresholds_min
        Thresholds to make gaps for (min); default all rings.
    crs
        Metric CRS for the difference and areas; default the rings' CRS.
    min_area_m2
        Gap pieces smaller than this (m²) are dropped as slivers.

    Returns
    -------
    GeoDataFrame
        WGS84: ``grid_id``, ``subdistrict``, ``community``, ``grid_name``,
        ``threshold_min``, ``area_m2`` and the gap geometry; grids without a gap are left
        out.
    """
    crs = crs or union_rings.crs
    if crs is None or not gpd.GeoSeries([], crs=crs).crs.is_projected:
        raise InputError("gap polygons need rings in a projected CRS (metres), e.g. the UTM")
    grids = coverage.to_crs(crs)
    geoms = shapely.make_valid(grids.geometry.to_numpy())
    ts = thresholds_min if thresholds_min is not None else union_rings["threshold_min"].tolist()
    frames = []
    bounds = shapely.bounds(geoms)
    rings = union_rings.to_crs(crs)
    for t in ts:
        ring = _ring_for(rings, float(t))
        # the district's ring clipped to each grid's box first: each difference then works
        # on the grid's neighbourhood instead of the whole ring (8x faster on Shanghai)
        local = np.array(
            [shapely.clip_by_rect(ring, *b) if np.isfinite(b).all() else ring for b in bounds],
            dtype=object,
        )
        gaps = _drop_slivers(shapely.difference(geoms, shapely.make_valid(local)), min_area_m2)
        area = shapely.area(gaps)
        has = area > 0
        part = pd.DataFrame(
            {c: grids[c].to_numpy()[has] if c in grids.columns else None for c in _NAMES}
        )
        part["threshold_min"] = float(t)
        part["area_m2"] = area[has]
        frames.append(gpd.GeoDataFrame(part, geometry=gaps[has], crs=crs))
    if not frames:
        return gpd.GeoDataFrame(
            {**{c: [] for c in _NAMES}, "threshold_min": [], "area_m2": []},
            geometry=[],
            crs=WGS84,
        )
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=crs).to_crs(WGS84)


def gap_points(
    points: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame,
    *,
    distance_m: float,
    threshold_min: float,
) -> gpd.GeoDataFrame:
    """Demand points beyond ``distance_m`` (m) of walk: the gap as points (WGS84).

    ``points`` are :attr:`~servicecircle.coverage.CoverageResult.points` (with ``dist_m``
    and ``station``). Returns ``grid_id``, ``threshold_min``, ``weight``, ``walk_m``
    (``inf`` when no station is reachable), ``station_id`` (the nearest) and geometry.
    """
    far = points[points["dist_m"].to_numpy() > distance_m]
    ids = stations["station_id"].to_numpy(dtype=object)
    st = far["station"].to_numpy(dtype=np.int64)
    return gpd.GeoDataFrame(
        {
            "grid_id": far["grid_id"].to_numpy(),
            "threshold_min": float(threshold_min),
            "weight": far["weight"].to_numpy(),
            "walk_m": far["dist_m"].to_numpy(),
            "station_id": np.where(st >= 0, ids[np.maximum(st, 0)], None),
        },
        geometry=far.geometry.to_numpy(),
        crs=points.crs,
    ).to_crs(WGS84)


def gap_list(
    coverage: gpd.GeoDataFrame,
    *,
    threshold_min: float,
    polygons: gpd.GeoDataFrame | None = None,
    points: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """Grids ranked by uncovered weight at ``threshold_min``: the planner's gap list.

    Parameters
    ----------
    coverage
        Grid coverage with ``uncovered_<t>min`` and ``coverage_<t>min``.
    polygons
        :func:`gap_polygons` output; gives the gap area (m²) and its centroid.
    points
        :func:`gap_points` output; the centroid of a grid's uncovered points (weighted) is
        used when it has no gap polygon (e.g. demand far from any street).

    Returns
    -------
    DataFrame
        ``rank`` (1 = most uncovered weight), ``grid_id``, hierarchy names,
        ``coverage_pct``, ``uncovered_weight``, ``weight``, ``station_id``,
        ``station_name``, ``walk_min_m``, ``gap_area_m2``, ``centroid_lon``,
        ``centroid_lat`` (WGS84 degrees). Only grids with uncovered weight are listed.
    """
    s = suffix(threshold_min)
    col = f"uncovered_{s}"
    if col not in coverage.columns:
        raise InputError(f"coverage has no {threshold_min:g}-minute columns ({col})")
    unc = coverage[col].to_numpy(dtype=float)
    rows = coverage[unc > 1e-9].copy()
    out = pd.DataFrame({c: rows[c].to_numpy() if c in rows.columns else None for c in _NAMES})
    out["coverage_pct"] = 100.0 * rows[f"coverage_{s}"].to_numpy(dtype=float)
    out["uncovered_weight"] = rows[col].to_numpy(dtype=float)
    out["weight"] = rows["weight"].to_numpy(dtype=float)
    for c in ("station_id", "station_name", "walk_min_m"):
        out[c] = rows[c].to_numpy() if c in rows.columns else None
    lon = np.full(len(out), np.nan)
    lat = np.full(len(out), np.nan)
    area = np.zeros(len(out))
    ids = out["grid_id"].to_numpy()
    if polygons is not None and len(polygons):
        sel = polygons[np.isclose(polygons["threshold_min"].to_numpy(dtype=float), threshold_min)]
        if len(sel):
            pos = pd.Index(sel["grid_id"]).get_indexer(ids)
            found = pos >= 0
            area[found] = sel["area_m2"].to_numpy()[pos[found]]
            # centroids in a metric CRS, then to degrees
            local = sel.to_crs(sel.estimate_utm_crs())
            cent = gpd.GeoSeries(local.centroid, crs=local.crs).to_crs(WGS84)
            lon[found] = cent.x.to_numpy()[pos[found]]
            lat[found] = cent.y.to_numpy()[pos[found]]
    if points is not None and len(points):
        pts = points[np.isclose(points["threshold_min"].to_numpy(dtype=float), threshold_min)]
        missing = np.isnan(lon)
        if len(pts) and missing.any():
            w = pts["weight"].to_numpy(dtype=float)
            # weighted mean in degrees is fine at grid scale (< 2 km)
            frame = pd.DataFrame(
                {"g": pts["grid_id"].to_numpy(), "wx": pts.geometry.x * w,
                 "wy": pts.geometry.y * w, "w": w}
            ).groupby("g").sum()  # fmt: skip
            frame = frame[frame["w"] > 0]
            pos = frame.index.get_indexer(ids)
            use = missing & (pos >= 0)
            lon[use] = (frame["wx"] / frame["w"]).to_numpy()[pos[use]]
            lat[use] = (frame["wy"] / frame["w"]).to_numpy()[pos[use]]
    out["gap_area_m2"] = area
    out["centroid_lon"] = lon
    out["centroid_lat"] = lat
    # the user's own columns of the grids travel on, after ours
    taken = {str(c).lower() for c in out.columns}
    for c in rows.columns:
        if not is_reserved_column(str(c)) and str(c).lower() not in taken:
            out[c] = rows[c].to_numpy()
    out = out.sort_values(["uncovered_weight", "grid_id"], ascending=[False, True], kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)
