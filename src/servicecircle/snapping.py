"""Attach points to the nearest walkable edge: projection point, offset along it, leg.

A point's walk distance to an edge end is ``leg_m`` (straight, point → projection point)
plus the distance along the edge to that end (``offset_m`` to ``u``, ``length − offset``
to ``v``). Points attach to edges, not nodes, so a station in mid-block is measured from
where it meets the street.

The nearest edge is found exactly without shapely objects for the edges (a million-edge
network would need gigabytes of them): :class:`SegmentIndex` keeps sample points spread
along every segment in a k-d tree, each point of a segment within ``reach_m`` of one of
its segment's samples. The nearest sample's distance ``d0`` bounds the true nearest
distance ``d* ≤ d0``, so the nearest segment has a sample within ``d0 + reach_m``; all
segments with a sample in that ball are measured exactly and the closest wins.
"""

from __future__ import annotations

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
from servicecircle.network import csr_row_positions

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = [
    "SegmentIndex",
    "check_station_snaps",
    "drop_far_stations",
    "snap_homes",
    "snap_stations",
    "snap_to_edges",
]

# Samples per segment: one per started `spacing` metres, the spacing being the network's
# median segment length clipped to this range. The search margin (half the spacing) then
# scales with how dense the streets are, and so does the count of candidates per point:
# a footway network of 10 m segments is searched 12.5 m wide, a grid of 80 m blocks 40 m
# wide with one sample per block side.
SAMPLE_SPACING_M = (25.0, 100.0)
_NEIGHBOURS = 8  # samples fetched per point at first
_CHUNK = 32_768  # points (or segments) per step: bounds the temporary arrays' memory


@dataclass(frozen=True)
class SegmentIndex:
    """Sample points along edge segments in a k-d tree (see the module docstring).

    ``segment[i]`` is the position (in ``network.edge_coords``) of the first vertex of the
    segment sample ``i`` lies on; every point of a segment lies within ``reach_m`` metres
    of one of that segment's samples.
    """

    tree: cKDTree
    segment: NDArray[np.integer]
    reach_m: float

    @classmethod
    def build(cls, network: WalkNetwork, edges: NDArray[np.integer] | None = None) -> SegmentIndex:
        """Index the segments of ``edges`` (edge positions; default all edges)."""
        coords, _, starts = network.edge_vertices
        rows = np.arange(network.n_edges) if edges is None else np.asarray(edges, np.int64)
        vertex = csr_row_positions(starts, rows)
        last = np.zeros(len(coords), dtype=bool)
        last[starts[1:] - 1] = True  # an edge's last vertex starts no segment
        itype = np.int32 if len(coords) < 2**31 - 1 else np.int64
        seg = vertex[~last[vertex]].astype(itype)
        del rows, vertex, last
        length = np.hypot(*(coords[seg + 1] - coords[seg]).T)
        spacing = float(np.clip(np.median(length), *SAMPLE_SPACING_M)) if seg.size else 1.0
        k = np.maximum(np.ceil(length / spacing), 1).astype(np.int64)
        reach = float(np.max(length / (2 * k), initial=0.0))
        del length
        # the centres of k equal parts of each segment: every point is within length / 2k;
        # filled in chunks of segments, so a million-edge network needs no big temporaries
        total = int(k.sum())
        xy = np.empty((total, 2))
        segment = np.empty(total, dtype=itype)
        end = np.cumsum(k)
        for i in range(0, seg.size, _CHUNK):
            s_, k_ = seg[i : i + _CHUNK], k[i : i + _CHUNK]
            owner = np.repeat(np.arange(s_.size), k_)
            t = (np.arange(k_.sum()) - np.repeat(np.cumsum(k_) - k_, k_) + 0.5) / k_[owner]
            a = coords[s_[owner]]
            lo, hi = end[i] - k_[0], end[min(i + _CHUNK, seg.size) - 1]
            xy[lo:hi] = a + (coords[s_[owner] + 1] - a) * t[:, None]
            segment[lo:hi] = s_[owner]
        return cls(cKDTree(xy, copy_data=False), segment, reach)

    def nearest(
        self, network: WalkNetwork, xy: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Nearest segment of each point (m): its first vertex's position, the distance, and
        the projection's fraction along the segment. Ties go to the lower segment."""
        out = [self._nearest(network.edge_coords, xy[i : i + _CHUNK])
               for i in range(0, len(xy), _CHUNK)]  # fmt: skip
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))  # type: ignore[return-value]

    def _nearest(self, coords, xy):
        n = len(xy)
        radius = None
        points, segments = [], []
        todo, k = np.arange(n), min(_NEIGHBOURS, self.tree.n)
        while todo.size:  # k nearest samples, k × 4 for the points whose ball holds more
            dist, sample = self.tree.query(xy[todo], k=k)
            dist, sample = dist.reshape(todo.size, k), sample.reshape(todo.size, k)
            if radius is None:  # first round, all points
                # the ball that holds the nearest segment (module docstring), a hair
                # wider for floating point; it always holds the nearest sample
                radius = (dist[:, 0] + self.reach_m) * (1 + 1e-12) + 1e-9
            inside = dist <= radius[todo][:, None]
            more = inside[:, -1] if k < self.tree.n else np.zeros(todo.size, dtype=bool)
            row, col = np.nonzero(inside & ~more[:, None])
            points.append(todo[row])
            segments.append(self.segment[sample[row, col]])
            todo, k = todo[more], min(4 * k, self.tree.n)
        point = np.concatenate(points)
        seg = np.concatenate(segments).astype(np.int64)
        if len(points) > 1:
            order = np.argsort(point, kind="stable")
            point, seg = point[order], seg[order]
        a = coords[seg]
        ab = coords[seg + 1] - a
        ap = xy[point] - a
        den = np.einsum("ij,ij->i", ab, ab)
        t = np.clip(np.einsum("ij,ij->i", ap, ab) / np.where(den > 0, den, 1.0), 0.0, 1.0)
        off = ap - ab * t[:, None]
        d = np.hypot(off[:, 0], off[:, 1])
        # per point (candidates grouped by point, each point has one): the smallest
        # distance, then the lowest segment among equals
        start = np.flatnonzero(np.r_[True, point[1:] != point[:-1]])
        size = np.diff(np.r_[start, d.size])
        tie = d == np.repeat(np.minimum.reduceat(d, start), size)
        key = np.where(tie, seg, np.iinfo(np.int64).max)
        best = np.flatnonzero(tie & (seg == np.repeat(np.minimum.reduceat(key, start), size)))
        best = best[np.r_[True, point[best][1:] != point[best][:-1]]]
        return seg[best], d[best], t[best]


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
    kind = shapely.get_type_id(pts)
    if ((kind != shapely.GeometryType.POINT) & (kind != shapely.GeometryType.MISSING)).any():
        raise ValueError("snap_to_edges takes points; use a representative point of shapes")
    xy = np.full((len(pts), 2), np.nan)
    has = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    xy[has] = shapely.get_coordinates(pts[has])
    bad = np.flatnonzero(~np.isfinite(xy).all(axis=1))
    if bad.size:
        raise SnapError(f"{bad.size} point(s) have no coordinates; first at position {bad[0]}")
    if network.n_edges == 0 or (edges is not None and len(edges) == 0):
        raise SnapError("there are no walkable edges to snap to")
    if edges is None:
        index = network.segment_index
    elif edges is network.__dict__.get("public_edges"):
        index = network.public_segment_index  # built once per network
    else:
        index = SegmentIndex.build(network, edges)
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


def snap_stations(network: WalkNetwork, stations: gpd.GeoSeries | gpd.GeoDataFrame) -> pd.DataFrame:
    """:func:`snap_to_edges` for stations and siting candidates: public edges only.

    A station inside a gated compound serves the public from the compound's street, so it
    snaps to the nearest public edge; homes (demand points) snap to any edge, private
    paths included (see :mod:`servicecircle.network`, ``private="destination"``).
    """
    if not network.edge_private.any():
        return snap_to_edges(network, stations)
    if network.public_edges.size == 0:
        raise SnapError(
            "every way of the walking network is private (an extract of gated compounds "
            "only), so no station can stand on a public way; load it with private='include'"
        )
    return snap_to_edges(network, stations, edges=network.public_edges)


def snap_homes(
    network: WalkNetwork,
    points: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    edges: NDArray[np.int64] | None = None,
    front_m: float = 30.0,
) -> pd.DataFrame:
    """:func:`snap_to_edges` for demand points (homes), with gated compounds in mind.

    A home attaches to its nearest edge, private paths included: deep inside a compound it
    walks the compound's paths to the gate. But a home within ``front_m`` (m) of a public
    way faces that street and steps out of its door onto it, even where a private path
    (a driveway, a yard) runs a little closer. Without private edges this is
    :func:`snap_to_edges`.
    """
    snapped = snap_to_edges(network, points, edges=edges)
    private = network.edge_private
    if len(snapped) == 0 or not private.any():
        return snapped
    inside = np.flatnonzero(private[snapped["edge"].to_numpy(dtype=np.int64)])
    if inside.size == 0:
        return snapped
    public = network.public_edges if edges is None else np.asarray(edges)[~private[edges]]
    if public.size == 0:
        return snapped
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    street = snap_to_edges(network, geoms.iloc[inside], edges=public)
    front = street["leg_m"].to_numpy() <= front_m
    if front.any():
        rows = inside[front]
        snapped.iloc[rows] = street.iloc[np.flatnonzero(front)].to_numpy()
    return snapped


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
    are far (:func:`drop_far_stations` then leaves them out of the analysis); raises
    :class:`SnapError` when more than half are, since the stations and the network cannot
    belong together. Returns the problem lines (one per far station).
    """
    far, problems = _far_stations(network, stations, snapped, max_snap_m, declared)
    if far.size == 0:
        return []
    what = (
        f"{far.size} of {len(stations)} station(s) lie farther than {max_snap_m:g} m "
        "(max_snap_m) from the walking network"
    )
    if far.size > len(stations) / 2:
        raise SnapError(
            f"{what}: the stations and the network do not line up. Check the stations' "
            "coordinate system (AMap/Tencent = gcj02, Baidu = bd09) and that the network "
            "covers them, or raise max_snap_m if they really stand that far from a street",
            problems=problems,
        )
    warnings.warn(
        f"{what}; they are left out of the analysis (coverage, rings, sites and map):\n  - "
        + "\n  - ".join(problems[:20])
        + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""),
        ServiceCircleWarning,
        stacklevel=2,
    )
    return problems


def drop_far_stations(
    network: WalkNetwork,
    stations: gpd.GeoDataFrame,
    snapped: pd.DataFrame,
    *,
    max_snap_m: float,
    declared: str | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    """The stations within ``max_snap_m`` of the network, their snaps, and the dropped ones.

    A station farther than ``max_snap_m`` from every walkable edge would reach the streets
    only through a long straight leg, across whatever lies between: it is left out, with
    a :class:`ServiceCircleWarning` listing each (id, name, distance, datum hint). More than
    half of the stations that far is a :class:`SnapError` (see :func:`check_station_snaps`).

    Returns
    -------
    tuple
        ``(kept stations, their snaps, dropped stations)``; the first two re-indexed
        0..k-1 in their original order, so positions agree; the dropped stations keep their
        columns and gain ``leg_m`` (m to the network) and ``problem`` (the reported line).
    """
    problems = check_station_snaps(
        network, stations, snapped, max_snap_m=max_snap_m, declared=declared
    )
    leg = snapped["leg_m"].to_numpy(dtype=float)
    far = leg > max_snap_m
    dropped = stations.iloc[np.flatnonzero(far)].copy()
    dropped["leg_m"] = leg[far]
    dropped["problem"] = problems
    kept = stations.iloc[np.flatnonzero(~far)].reset_index(drop=True)
    kept.attrs = dict(stations.attrs)
    kept_snapped = snapped.iloc[np.flatnonzero(~far)].reset_index(drop=True)
    return kept, kept_snapped, dropped.reset_index(drop=True)


def _far_stations(
    network: WalkNetwork,
    stations: gpd.GeoDataFrame,
    snapped: pd.DataFrame,
    max_snap_m: float,
    declared: str | None,
) -> tuple[NDArray[np.int64], list[str]]:
    """Positions of the stations farther than ``max_snap_m`` and one line on each."""
    from servicecircle import datums

    far = np.flatnonzero(snapped["leg_m"].to_numpy() > max_snap_m)
    if far.size == 0:
        return far, []
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
    alt_legs = {k: snap_stations(network, v)["leg_m"].to_numpy() for k, v in readings.items()}
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
            hint = f"; read as {k} it would be {alt_legs[k][j]:,.0f} m away: try crs='{flag}'"
        problems.append(
            f"station {ident} ({name}): {leg:,.0f} m from the nearest walkable edge "
            f"(max_snap_m={max_snap_m:g}){hint}"
        )
    return far, problems
