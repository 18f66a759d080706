"""Attach points to the nearest walkable edge: projection point, offset along it, leg.

A point's walk distance to an edge end is ``leg_m`` (straight, point → projection point)
plus the distance along the edge to that end (``offset_m`` to ``u``, ``length − offset``
to ``v``). Points attach to edges, not nodes, so a station in mid-block is measured from
where it meets the street.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from servicecircle.crs import WGS84
from servicecircle.errors import ServiceCircleWarning, SnapError

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = ["check_station_snaps", "snap_to_edges"]


def snap_to_edges(
    network: WalkNetwork,
    points: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    edges: NDArray[np.int64] | None = None,
) -> pd.DataFrame:
    """Nearest edge of each point, vectorised (shapely STRtree).

    Parameters
    ----------
    network
        The walking network (projected, metres).
    points
        Points in any CRS; reprojected to the network's CRS.
    edges
        Only snap to these edge positions (e.g. the parts of the network a station is
        on); default all edges.

    Returns
    -------
    DataFrame
        Indexed like ``points``: ``edge`` (edge position), ``offset_m`` (distance along the
        edge from its ``u`` end, m), ``leg_m`` (point → projection point, m), ``to_u_m`` and
        ``to_v_m`` (walk distance from the point to each edge end, leg included, m),
        ``snap_x``/``snap_y`` (projection point, network CRS).
    """
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if geoms.crs is None:
        raise ValueError("points need a CRS")
    pts = geoms.to_crs(network.crs).to_numpy()
    if len(pts) == 0:
        cols = ["edge", "offset_m", "leg_m", "to_u_m", "to_v_m", "snap_x", "snap_y"]
        return pd.DataFrame(columns=cols, index=geoms.index)
    if edges is None:
        tree = network.edge_tree
        pairs, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    else:
        tree = shapely.STRtree(network.edges.geometry.to_numpy()[edges])
        pairs, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        pairs = np.vstack([pairs[0], np.asarray(edges, dtype=np.int64)[pairs[1]]])
    # query_nearest returns pairs sorted by input; all_matches=False keeps one per point
    edge = np.full(len(pts), -1, dtype=np.int64)
    leg = np.full(len(pts), np.nan)
    edge[pairs[0]] = pairs[1]
    leg[pairs[0]] = dist
    if (edge < 0).any():
        bad = np.flatnonzero(edge < 0)
        raise SnapError(f"{bad.size} point(s) have no coordinates; first at position {bad[0]}")
    lines = network.edges.geometry.to_numpy()[edge]
    offset = shapely.line_locate_point(lines, pts)
    length = network.edge_length_m[edge]
    offset = np.clip(offset, 0.0, length)
    proj = shapely.get_coordinates(shapely.line_interpolate_point(lines, offset))
    return pd.DataFrame(
        {
            "edge": edge,
            "offset_m": offset,
            "leg_m": leg,
            "to_u_m": leg + offset,
            "to_v_m": leg + (length - offset),
            "snap_x": proj[:, 0],
            "snap_y": proj[:, 1],
        },
        index=geoms.index,
    )


def check_station_snaps(
    network: WalkNetwork,
    stations: gpd.GeoDataFrame,
    snapped: pd.DataFrame,
    *,
    max_snap_m: float,
    declared: str | None = None,
) -> list[str]:
    """Report stations farther than ``max_snap_m`` from the network, with a datum hint.

    For each far station the same coordinates are also read as GCJ-02 and BD-09 (and as
    WGS84 when a Chinese datum was declared); when one of those readings lands on the
    network the message says so. Warns (:class:`ServiceCircleWarning`) when some stations
    are far; raises :class:`SnapError` when more than half are, since the map would be wrong.
    Returns the problem lines.
    """
    from servicecircle import datums

    far = np.flatnonzero(snapped["leg_m"].to_numpy() > max_snap_m)
    if far.size == 0:
        return []
    st = stations.iloc[far]
    lon, lat = shapely.get_coordinates(st.geometry.to_crs(WGS84).to_numpy()).T
    declared = (declared or stations.attrs.get("source", {}).get("crs") or "EPSG:4326").lower()
    readings: dict[str, gpd.GeoSeries] = {}
    base = declared if declared in ("gcj02", "bd09") else "wgs84"
    # the coordinates as they stood in the file, before the declared conversion
    raw_lon, raw_lat = datums.convert(lon, lat, source="wgs84", target=base)
    for alt in ("gcj02", "bd09", "wgs84"):
        if alt == base:
            continue
        x, y = datums.convert(raw_lon, raw_lat, source=alt, target="wgs84")
        readings[alt] = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=WGS84)
    alt_legs = {k: snap_to_edges(network, v)["leg_m"].to_numpy() for k, v in readings.items()}
    problems = []
    for j, (_, row) in enumerate(st.iterrows()):
        leg = snapped["leg_m"].iloc[far[j]]
        ident = row.get("station_id", far[j])
        name = row.get("name", "")
        hint = ""
        fits = [k for k, v in alt_legs.items() if v[j] <= max_snap_m]
        if fits:
            k = min(fits, key=lambda k: alt_legs[k][j])
            flag = "EPSG:4326" if k == "wgs84" else k
            hint = f"; read as {k} it would be {alt_legs[k][j]:,.0f} m away: try --crs {flag}"
        problems.append(
            f"station {ident} ({name}): {leg:,.0f} m from the nearest walkable edge "
            f"(max_snap_m={max_snap_m:g}){hint}"
        )
    what = (
        f"{far.size} of {len(stations)} station(s) lie farther than {max_snap_m:g} m from the "
        "walking network"
    )
    if far.size > len(stations) / 2:
        raise SnapError(
            f"{what}: the stations and the network do not line up. Check the stations' "
            "coordinate system (AMap/Tencent = gcj02, Baidu = bd09) and that the network "
            "covers them",
            problems=problems,
        )
    warnings.warn(
        f"{what}; they are kept with their straight leg:\n  - " + "\n  - ".join(problems[:20]),
        ServiceCircleWarning,
        stacklevel=2,
    )
    return problems
