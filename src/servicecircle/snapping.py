"""Attach points to the nearest walkable edge: projection point, offset along it, leg.

A point's walk distance to an edge end is ``leg_m`` (straight, point → projection point)
plus the distance along the edge to that end (``offset_m`` to ``u``, ``length − offset``
to ``v``). Points attach to edges, not nodes, so a station in mid-block is measured from
where it meets the street.

The nearest edge is found exactly without shapely objects for the edges (a million-edge
network would need gigabytes of them): :class:`SegmentIndex` keeps sample points spread
along every segment in a k-d tree, each segment point within ``reach_m`` of one of its
segment's samples. The nearest sample's distance ``d0`` bounds the true nearest distance
``d* ≤ d0``, so the nearest segment has a sample within ``d0 + reach_m``; all segments with
a sample in that ball are measured exactly and the closest wins.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from servicecircle.crs import WGS84
from servicecircle.errors import ServiceCircleWarning, SnapError

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = ["SegmentIndex", "check_station_snaps", "snap_to_edges"]

SAMPLE_SPACING_M = 100.0  # samples per segment: one per started 100 m


@dataclass(frozen=True)
class SegmentIndex:
    """Sample points along edge segments in a k-d tree (see the module docstring).

    ``segment[i]`` is the position (in ``network.edge_coords``) of the first vertex of the
    segment sample ``i`` lies on; every point of a segment lies within ``reach_m`` metres
    of one of that segment's samples.
    """

    tree: cKDTree
    segment: NDArray[np.int64]
    reach_m: float

    @classmethod
    def build(cls, network: WalkNetwork, edges: NDArray[np.integer] | None = None) -> SegmentIndex:
        """Index the segments of ``edges`` (edge positions; default all edges)."""
        coords, _, starts = network.edge_vertices
        if edges is None:
            first, last = starts[:-1], starts[1:] - 1
        else:
            edges = np.asarray(edges, dtype=np.int64)
            first, last = starts[edges], starts[edges + 1] - 1
        n_seg = last - first  # segments per edge
        seg = np.repeat(first - np.cumsum(n_seg) + n_seg, n_seg) + np.arange(n_seg.sum())
        d = coords[seg + 1] - coords[seg]
        length = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
        k = np.maximum(np.ceil(length / SAMPLE_SPACING_M), 1).astype(np.int64)
        owner = np.repeat(np.arange(seg.size), k)
        # the centres of k equal parts: every point of the segment is within length / 2k
        t = (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k) + 0.5) / k[owner]
        xy = coords[seg[owner]] + d[owner] * t[:, None]
        reach = float(np.max(length / (2 * k), initial=0.0))
        return cls(cKDTree(xy), seg[owner], reach)

    def nearest(
        self, network: WalkNetwork, xy: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Nearest segment of each point (m): its first vertex's position, the distance, and
        the projection's fraction along the segment. Ties go to the lower segment."""
        coords = network.edge_coords
        d0, _ = self.tree.query(xy)
        balls = self.tree.query_ball_point(xy, d0 + self.reach_m + 1e-9, return_sorted=False)
        counts = np.fromiter(map(len, balls), dtype=np.int64, count=len(balls))
        sample = np.fromiter(itertools.chain.from_iterable(balls), np.int64, int(counts.sum()))
        point = np.repeat(np.arange(len(xy)), counts)
        seg = self.segment[sample]
        a = coords[seg]
        ab = coords[seg + 1] - a
        ap = xy[point] - a
        den = np.einsum("ij,ij->i", ab, ab)
        t = np.clip(np.einsum("ij,ij->i", ap, ab) / np.where(den > 0, den, 1.0), 0.0, 1.0)
        off = ap - ab * t[:, None]
        dist = np.sqrt(off[:, 0] * off[:, 0] + off[:, 1] * off[:, 1])
        best = np.lexsort((seg, dist, point))
        first = np.r_[0, np.cumsum(counts)[:-1]]  # every point has ≥ 1 candidate
        best = best[first]
        return seg[best], dist[best], t[best]


def snap_to_edges(
    network: WalkNetwork,
    points: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    edges: NDArray[np.int64] | None = None,
) -> pd.DataFrame:
    """Nearest edge of each point, exactly and vectorised (see the module docstring).

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
    bad = np.flatnonzero(shapely.is_missing(pts) | shapely.is_empty(pts))
    if bad.size:
        raise SnapError(f"{bad.size} point(s) have no coordinates; first at position {bad[0]}")
    if (shapely.get_type_id(pts) != shapely.GeometryType.POINT).any():
        raise ValueError("snap_to_edges takes points; use a representative point of shapes")
    xy = shapely.get_coordinates(pts)
    if network.n_edges == 0 or (edges is not None and len(edges) == 0):
        raise SnapError("there are no walkable edges to snap to")
    index = network.segment_index if edges is None else SegmentIndex.build(network, edges)
    seg, leg, t = index.nearest(network, xy)
    coords, along, starts = network.edge_vertices
    edge = np.searchsorted(starts, seg, side="right") - 1
    a, b = coords[seg], coords[seg + 1]
    step = b - a
    length = network.edge_length_m[edge]
    offset = np.clip(along[seg] + t * np.sqrt(np.einsum("ij,ij->i", step, step)), 0.0, length)
    proj = a + step * t[:, None]
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
