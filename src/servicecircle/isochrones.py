"""Walking rings (isochrones): reached street pieces cut exactly, buffered, unioned.

Along an edge of length ``L`` whose ends are at walk distances ``du`` and ``dv``, the point
at ``t`` metres from ``u`` is at ``min(du + t, dv + L − t)`` (and, on a station's own edge,
``leg + |t − offset|``). Within threshold ``T`` the reached part is ``[0, T − du]``,
``[L − (T − dv), L]`` and ``[offset − (T − leg), offset + (T − leg)]``, merged: partial
edges are kept and cut at the exact metre, in both directions. The pieces are buffered by
the frontage width (the depth of a street front) and unioned; holes stay holes. Each ring
is unioned with the next smaller one, so 5 ⊂ 10 ⊂ 15 holds by construction, not only up
to the buffer's arc approximation.

Speed (GEOS buffering dominates): only pieces new at a threshold are buffered; each
station's pieces are chained into strokes that run straight on through nodes (same region,
up to the arc approximation), as coordinate arrays, with no geometry object per piece, and
a station's strokes are buffered as one MultiLineString, so GEOS nodes their offset curves
in one pass instead of unioning buffer after buffer (1.5-2x faster; on raw pieces that one
pass would be 10-20x slower). On dense walking networks (sidewalks beside the streets:
buffers overlapping more than ``_DENSE_OVERLAP`` times) that pass meets too many crossings,
and the strokes' buffers are unioned one by one instead (4-9x faster there). Each larger
ring's new buffers reach 1 µm further than the smaller ring's (``_NEST_GAP_M``), so the
union with the smaller ring no longer meets the exact touches that made GEOS redo it with
snapping (on a street grid, nearly every union). Stations run in parallel threads and in
batches that bound memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

from servicecircle.network import csr_row_positions
from servicecircle.reach import NodeReach, StationReach

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = [
    "cut_edges",
    "iter_station_rings",
    "reach_union_rings",
    "reached_intervals",
    "station_rings",
]

_QUAD_SEGS = 4  # arc quality of buffers: 4 segments per quarter circle, ≤ 0.6 m at 30 m
_WORKERS = max(1, min(os.cpu_count() or 1, 8))  # threads for GEOS unions (they release the GIL)
# stations whose rings are built together: bounds the pieces and GEOS work held at once
# (streaming a 1M-node grid's rings peaked 160 MiB lower at 64 than at 256, same speed)
_BATCH = 64
# each ring's new buffers reach this much (m) further than the smaller ring's: the smaller
# ring's round caps end exactly on the new buffers' sides, a touch that OverlayNG's floating
# noding fails to validate, so every union ran twice (the second time snapping). 1 µm apart
# they cross or miss cleanly: unions 1.7x faster, area +1 µm × perimeter
_NEST_GAP_M = 1e-6
# rings whose street buffers overlap more than this (``_overlap``) are unioned buffer by
# buffer: a dense walking network with sidewalks (Helsinki: 2.4-2.9 median, by threshold)
# builds 4-9x faster so, where streets 80 m apart (1.1-1.4) would build 2x slower;
# the Shanghai, Nanjing and Beijing extracts: 0.6-1.6
_DENSE_OVERLAP = 1.8


def reached_intervals(
    group: NDArray[np.int64],
    edge: NDArray[np.int64],
    length: NDArray[np.float64],
    du: NDArray[np.float64],
    dv: NDArray[np.float64],
    threshold_m: float,
    own: pd.DataFrame,
) -> pd.DataFrame:
    """Reached metre intervals of edges within ``threshold_m``, merged per (group, edge).

    Parameters
    ----------
    group, edge, length, du, dv
        One row per candidate (group, edge): edge length and the walk distance (m) of its
        ``u`` and ``v`` ends from the group's source(s), ``inf`` when unreached.
    own
        Stations lying on edges, reached from mid-edge: ``group``, ``edge``, ``offset_m``,
        ``leg_m``, ``length_m``.

    Returns
    -------
    DataFrame with ``group``, ``edge``, ``start_m``, ``end_m`` (metres from ``u``).
    """
    g, e, lo, hi = _reached(group, edge, length, du, dv, threshold_m, own)
    return pd.DataFrame({"group": g, "edge": e, "start_m": lo, "end_m": hi})


def _reached(group, edge, length, du, dv, threshold_m, own):
    """:func:`reached_intervals` as arrays: group, edge, start_m, end_m."""
    with np.errstate(invalid="ignore"):
        ru = threshold_m - du
        rv = threshold_m - dv
    parts = []
    a = ru >= 0
    parts.append((group[a], edge[a], np.zeros(a.sum()), np.minimum(ru[a], length[a])))
    b = rv >= 0
    parts.append((group[b], edge[b], np.maximum(length[b] - rv[b], 0.0), length[b]))
    if len(own):
        r = threshold_m - own["leg_m"].to_numpy()
        ok = r >= 0
        off = own["offset_m"].to_numpy()[ok]
        e = own["edge"].to_numpy()[ok]
        lo = np.maximum(off - r[ok], 0.0)
        hi = np.minimum(off + r[ok], own["length_m"].to_numpy()[ok])
        parts.append((own["group"].to_numpy()[ok], e, lo, hi))
    g = np.concatenate([p[0] for p in parts]).astype(np.int64)
    e = np.concatenate([p[1] for p in parts]).astype(np.int64)
    lo = np.concatenate([p[2] for p in parts])
    hi = np.concatenate([p[3] for p in parts])
    return _merge_intervals(g, e, lo, hi)


def _merge_intervals(g, e, lo, hi):
    """Overlapping or touching intervals of one (group, edge) merged; sorted by group,
    edge and start."""
    if g.size == 0:
        return g, e, lo, hi
    order = np.lexsort((lo, e, g))
    g, e, lo, hi = g[order], e[order], lo[order], hi[order]
    new_key = np.ones(g.size, dtype=bool)
    new_key[1:] = (g[1:] != g[:-1]) | (e[1:] != e[:-1])
    # running max of interval ends within each (group, edge): offset keys so they never mix
    key_id = np.cumsum(new_key) - 1
    span = float(np.max(hi)) + 1.0
    run_hi = np.maximum.accumulate(hi + key_id * span) - key_id * span
    starts = new_key.copy()
    starts[1:] |= lo[1:] > run_hi[:-1]
    at = np.flatnonzero(starts)
    return g[at], e[at], lo[at], np.maximum.reduceat(hi, at)


def cut_edges(
    network: WalkNetwork,
    edge: NDArray[np.int64],
    start_m: NDArray[np.float64],
    end_m: NDArray[np.float64],
) -> NDArray[np.object_]:
    """Pieces of edges between ``start_m`` and ``end_m`` metres from their ``u`` end.

    Vectorised substring: keeps the edge's inner vertices and interpolates the two cut
    points. A piece of zero length is a two-point line on one spot. Cuts at an edge's end
    (0 or its length) land exactly on that end's node.
    """
    coords, offsets = _cut_coords(network, edge, start_m, end_m)
    return shapely.from_ragged_array(shapely.GeometryType.LINESTRING, coords, (offsets,))


def _cut_coords(
    network: WalkNetwork,
    edge: NDArray[np.int64],
    start_m: NDArray[np.float64],
    end_m: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """:func:`cut_edges` as coordinates (n, 2) and each piece's first index (p + 1 offsets):
    the rings chain them into strokes without making a geometry per piece."""
    if edge.size == 0:
        return np.empty((0, 2)), np.zeros(1, dtype=np.int64)
    all_coords, all_along, all_first = network.edge_vertices
    # the pieces' edges' vertices gathered, so the work is O(reached), not O(network)
    counts = np.diff(all_first)[edge]
    at = csr_row_positions(all_first, edge)
    coords, along = all_coords[at], all_along[at]
    first = np.r_[0, np.cumsum(counts)]
    offset = np.r_[0.0, np.cumsum(network.edge_length_m[edge] + 1.0)][:-1]
    key = along + np.repeat(offset, counts)  # strictly increasing over the gathered vertices
    a = offset + start_m
    b = offset + end_m
    lo = np.searchsorted(key, a, side="right")  # first vertex strictly after the start
    hi = np.searchsorted(key, b, side="left")  # first vertex at or after the end
    lo = np.clip(lo, first[:-1] + 1, first[1:] - 1)
    hi = np.clip(hi, first[:-1] + 1, first[1:] - 1)
    p_start = _interp(coords, key, lo - 1, lo, a)
    p_end = _interp(coords, key, hi - 1, hi, b)
    # pieces reaching an edge's end end exactly on its node (vertex distances are running
    # sums, off by ~1e-9 m), so strokes chain through nodes that pieces share
    length = network.edge_length_m[edge]
    for p, cut in ((p_start, start_m), (p_end, end_m)):
        at_u, at_v = cut <= 0.0, cut >= length
        p[at_u] = coords[first[:-1][at_u]]
        p[at_v] = coords[first[1:][at_v] - 1]
    inner = np.maximum(hi - lo, 0)
    counts = inner + 2
    total = counts.sum()
    pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    out = np.empty((total, 2))
    is_first = pos == 0
    is_last = pos == np.repeat(counts - 1, counts)
    out[is_first] = p_start
    out[is_last] = p_end
    mid = ~(is_first | is_last)
    out[mid] = coords[np.repeat(lo, inner) + pos[mid] - 1]
    return out, np.r_[0, np.cumsum(counts)]


def _interp(coords, key, i0, i1, at):
    span = key[i1] - key[i0]
    t = np.where(span > 0, (at - key[i0]) / np.where(span > 0, span, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)[:, None]
    return coords[i0] * (1 - t) + coords[i1] * t


def station_rings(
    network: WalkNetwork,
    stations: pd.DataFrame,
    snapped: pd.DataFrame,
    sreach: StationReach,
    *,
    distances_m: Sequence[float],
    thresholds_min: Sequence[float] | None = None,
    frontage_m: float = 30.0,
    batch_size: int = _BATCH,
) -> gpd.GeoDataFrame:
    """Ring polygons per station and threshold (network CRS, metres).

    Parameters
    ----------
    stations
        Frame with ``station_id`` aligned with ``snapped`` rows.
    sreach
        :func:`~servicecircle.reach.station_reach` result with ``limit_m ≥ max(distances_m)``.
    distances_m
        Walk distances (m), strictly ascending; ``thresholds_min`` labels them in minutes.
    batch_size
        Stations whose rings are built together (bounds the memory of the work).

    Returns
    -------
    GeoDataFrame with ``station_id``, ``threshold_min``, ``distance_m``, ``length_m`` (reached
    street length), ``area_m2`` and the ring polygon, one row per station × threshold, all
    stations at the smallest threshold first. For a city's thousands of stations,
    :func:`iter_station_rings` hands them out batch by batch instead of all at once.
    """
    chunks = list(
        iter_station_rings(
            network, stations, snapped, sreach, distances_m=distances_m,
            thresholds_min=thresholds_min, frontage_m=frontage_m, batch_size=batch_size,
        )
    )  # fmt: skip
    if not chunks:
        return _rings_frame(network, [], [], [], [], [])
    out = pd.concat(chunks, ignore_index=True)
    # batch-major to threshold-major (every station at 5 min, then at 10, …): each batch's
    # rows are threshold by threshold
    n = len(distances_m)
    level = np.concatenate([np.repeat(np.arange(n), len(c) // n) for c in chunks])
    return out.take(np.argsort(level, kind="stable")).reset_index(drop=True)


def iter_station_rings(
    network: WalkNetwork,
    stations: pd.DataFrame,
    snapped: pd.DataFrame,
    sreach: StationReach,
    *,
    distances_m: Sequence[float],
    thresholds_min: Sequence[float] | None = None,
    frontage_m: float = 30.0,
    batch_size: int = _BATCH,
) -> Iterator[gpd.GeoDataFrame]:
    """:func:`station_rings` batch by batch, to stream a city's rings to a file.

    Yields one GeoDataFrame per ``batch_size`` stations (their rows × thresholds, same
    columns as :func:`station_rings`), so only one batch's pieces and polygons are held at
    a time (a 1M-node street grid with 5,033 stations: 0.82 GiB peak for the whole run
    streamed, 1.33 GiB holding every ring; see ``benchmarks/results.md``). Write them with
    :func:`servicecircle.exports.write_gpkg`, which takes the iterator as a layer.
    Arguments are checked at the call; the rings are built as the batches are taken.
    """
    distances, thresholds = _ring_distances(distances_m, thresholds_min)
    if distances[-1] > sreach.limit_m + 1e-9:
        raise ValueError(f"station reach limit {sreach.limit_m} m < largest ring {distances[-1]} m")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    k = len(snapped)
    ids = stations["station_id"].to_numpy() if "station_id" in stations else np.arange(k)

    # a generator inside, so bad arguments fail at the call, not at the first batch
    def batches() -> Iterator[gpd.GeoDataFrame]:
        for a in range(0, k, batch_size):
            b = min(a + batch_size, k)
            rings = _station_batch(network, snapped, sreach, a, b, distances, frontage_m)
            n = len(distances)
            yield _rings_frame(
                network,
                np.tile(ids[a:b], n),
                np.repeat(thresholds, b - a),
                np.repeat(distances, b - a),
                np.concatenate([r[1] for r in rings]),
                np.concatenate([r[0] for r in rings]),
            )

    return batches()


def _ring_distances(
    distances_m: Sequence[float], thresholds_min: Sequence[float] | None
) -> tuple[list[float], list[float]]:
    """Distances checked (finite, > 0, strictly ascending: each ring grows from the one
    before) and their minute labels (NaN when not given)."""
    distances = [float(d) for d in distances_m]
    if not distances:
        raise ValueError("no ring distances given")
    if not all(np.isfinite(distances)) or min(distances) <= 0:
        raise ValueError(f"ring distances must be finite positive metres, got {distances}")
    if (np.diff(distances) <= 0).any():
        raise ValueError(f"ring distances must be strictly ascending, got {distances}")
    if thresholds_min is None:
        return distances, [np.nan] * len(distances)
    thresholds = [float(t) for t in thresholds_min]
    if len(thresholds) != len(distances):
        raise ValueError(f"{len(thresholds)} threshold labels for {len(distances)} ring distances")
    return distances, thresholds


def _rings_frame(network, ids, thresholds, distances, lengths, geoms):
    out = gpd.GeoDataFrame(
        {"station_id": ids, "threshold_min": np.asarray(thresholds, dtype=float),
         "distance_m": np.asarray(distances, dtype=float),
         "length_m": np.asarray(lengths, dtype=float)},
        geometry=np.asarray(geoms, dtype=object) if len(geoms) else [],
        crs=network.crs,
    )  # fmt: skip
    out["area_m2"] = out.geometry.area
    return out


def _station_batch(network, snapped, sreach, a, b, distances, frontage_m):
    """:func:`_rings_by_threshold` for stations ``a`` to ``b - 1``."""
    # per station: the edges touching its reached nodes, with both end distances
    groups, edges, dus, dvs = [], [], [], []
    incidence = network.node_edges
    for i in range(a, b):
        nodes, dist = sreach.of(i)
        if nodes.size == 0:
            continue
        order = np.argsort(nodes)
        nodes, dist = nodes[order], dist[order]
        cand = np.unique(incidence.indices[csr_row_positions(incidence.indptr, nodes)])
        u, v = network.edge_u[cand], network.edge_v[cand]
        groups.append(np.full(cand.size, i - a))
        edges.append(cand)
        dus.append(_lookup(nodes, dist, u))
        dvs.append(_lookup(nodes, dist, v))
    cat = lambda xs, dt: np.concatenate(xs) if xs else np.empty(0, dtype=dt)  # noqa: E731
    g, e = cat(groups, np.int64), cat(edges, np.int64)
    du, dv = cat(dus, float), cat(dvs, float)
    own = _own_edges(network, snapped.iloc[a:b], np.arange(b - a))
    return _rings_by_threshold(network, g, e, du, dv, own, b - a, distances, frontage_m)


def reach_union_rings(
    network: WalkNetwork,
    reach: NodeReach,
    snapped: pd.DataFrame,
    *,
    distances_m: Sequence[float],
    thresholds_min: Sequence[float] | None = None,
    frontage_m: float = 30.0,
) -> gpd.GeoDataFrame:
    """One ring polygon per threshold: everything within walk of *any* station.

    Rows carry ``station_id`` ``"all"``, so they can stand beside per-station rings.

    Built from the multi-source distances, which equals the union of all station rings
    (a point is within ``T`` of some station iff its nearest station is within ``T``).
    """
    distances, thresholds = _ring_distances(distances_m, thresholds_min)
    e = np.arange(network.n_edges)
    du, dv = reach.dist_m[network.edge_u], reach.dist_m[network.edge_v]
    fin = np.isfinite(du) | np.isfinite(dv)
    e, du, dv = e[fin], du[fin], dv[fin]
    g = np.zeros(e.size, dtype=np.int64)
    own = _own_edges(network, snapped, 0)
    rings = _rings_by_threshold(network, g, e, du, dv, own, 1, distances, frontage_m)
    return _rings_frame(
        network, ["all"] * len(distances), thresholds, distances,
        [r[1][0] for r in rings], [r[0][0] for r in rings],
    )  # fmt: skip


def _own_edges(network: WalkNetwork, snapped: pd.DataFrame, group: Any) -> pd.DataFrame:
    """Stations on their own edges, for :func:`reached_intervals`: ``group``, ``edge``,
    ``offset_m``, ``leg_m`` and the edge's ``length_m``."""
    edge = snapped["edge"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {"group": group, "edge": edge, "offset_m": snapped["offset_m"].to_numpy(),
         "leg_m": snapped["leg_m"].to_numpy(), "length_m": network.edge_length_m[edge]}
    )  # fmt: skip


def _rings_by_threshold(network, g, e, du, dv, own, k, distances, frontage_m):
    """[(polygons per group, reached length per group) for each distance], nested.

    Each ring is the next smaller ring unioned with the buffers of the pieces that are new
    or longer at this distance, so pieces reached already are not buffered again and
    5 ⊂ 10 ⊂ 15 holds by construction.
    """
    out = []
    previous = None
    seen = None
    for level, d in enumerate(distances):
        grp, edge, lo, hi = _reached(g, e, network.edge_length_m[e], du, dv, d, own)
        length = np.bincount(grp, weights=hi - lo, minlength=k)
        # reached intervals only grow with the distance: one equal to an interval of the
        # smaller ring is inside that ring already
        new = (
            np.ones(grp.size, dtype=bool) if seen is None else ~_unchanged(seen, grp, edge, lo, hi)
        )
        seen = grp, edge, lo, hi
        coords, offsets = _cut_coords(network, edge[new], lo[new], hi[new])
        nodes = _end_nodes(network, edge[new], lo[new], hi[new])
        width = frontage_m + level * _NEST_GAP_M if frontage_m > 0 else frontage_m
        polys = _union_buffers(coords, offsets, grp[new], nodes, k, width, previous, length)
        out.append((polys, length))
        previous = polys
    return out


def _unchanged(old, g, e, lo, hi):
    """Which merged intervals (sorted by group, edge, start) equal one of ``old`` (the same
    arrays at a smaller distance, each inside one of the new intervals)."""
    og, oe, olo, ohi = old
    n = g.size
    if n == 0 or og.size == 0:
        return np.zeros(n, dtype=bool)
    src = np.r_[np.arange(n), -np.ones(og.size, dtype=np.int64)]  # -1: an old interval
    both = np.lexsort((src < 0, np.r_[lo, olo], np.r_[e, oe], np.r_[g, og]))
    # an old interval's host is the last new interval sorted before it (same group, edge
    # and start sort new first)
    pos = np.maximum.accumulate(np.where(src[both] >= 0, np.arange(both.size), -1))
    host = src[both][np.maximum(pos, 0)]
    is_old = (src[both] < 0) & (pos >= 0)  # (none sorts before every new one: they grow)
    o = both[is_old] - n
    h = host[is_old]
    same = (g[h] == og[o]) & (e[h] == oe[o]) & (lo[h] == olo[o]) & (hi[h] == ohi[o])
    out = np.zeros(n, dtype=bool)
    out[h[same]] = True
    return out


def _end_nodes(network, edge, start_m, end_m):
    """The node at each piece's start, then at each piece's end (2p), -1 where a piece
    ends mid-edge or has zero length (a disc, chained with nothing)."""
    line = end_m > start_m
    # pieces chain at a node only where their edge's geometry ends exactly on it: a joint
    # is written once, so it must be one point
    on_u, on_v = network.edge_ends_on_nodes
    at_u = np.where(line & on_u[edge] & (start_m <= 0.0), network.edge_u[edge], -1)
    at_v = np.where(
        line & on_v[edge] & (end_m >= network.edge_length_m[edge]), network.edge_v[edge], -1
    )
    return np.r_[at_u, at_v].astype(np.int64)


def _union_buffers(coords, offsets, grp, nodes, k, frontage_m, previous, length):
    """Per group: the union of the pieces' buffers (and of ``previous[group]``); pieces
    given as coordinates and offsets (:func:`_cut_coords`) and end nodes (:func:`_end_nodes`),
    ``length`` the group's reached street length (m) at this distance."""
    coords, offsets, sgrp = _strokes(coords, offsets, grp, nodes)
    bounds = np.searchsorted(sgrp, np.arange(k + 1))
    empty = shapely.Polygon()
    if k == 1:
        # one group over a whole district: buffers unioned in parallel strips
        lines = shapely.from_ragged_array(shapely.GeometryType.LINESTRING, coords, (offsets,))
        buffers = shapely.buffer(lines, frontage_m, quad_segs=_QUAD_SEGS)
        prev = previous[0] if previous is not None else None
        return shapely.force_2d(np.array([_union_parallel(buffers, prev)]))
    # one MultiLineString of strokes per group, straight from the coordinates
    multi = shapely.from_ragged_array(
        shapely.GeometryType.MULTILINESTRING, coords, (offsets, bounds)
    )
    dense = _overlap(multi, length, frontage_m) > _DENSE_OVERLAP
    if dense.any():
        lines = shapely.from_ragged_array(shapely.GeometryType.LINESTRING, coords, (offsets,))

    def union(i: int) -> shapely.Geometry:
        if bounds[i + 1] == bounds[i]:
            poly = empty
        elif dense[i]:
            # sidewalks and footpaths a few metres apart: each stroke's offset curves would
            # cross dozens of others; a cascaded union drops the inner edges as it goes
            poly = shapely.union_all(
                shapely.buffer(lines[bounds[i] : bounds[i + 1]], frontage_m, quad_segs=_QUAD_SEGS)
            )
        else:
            # one buffer of the group's strokes together: GEOS nodes all offset curves in
            # one pass, 1.5-2x faster than unioning the strokes' buffers
            poly = shapely.buffer(multi[i], frontage_m, quad_segs=_QUAD_SEGS)
        if previous is not None and not previous[i].is_empty:
            poly = shapely.union(previous[i], poly)
        return empty if poly.is_empty else poly

    if _WORKERS > 1 and offsets.size > 1000:
        # GEOS releases the GIL: stations are unioned in parallel threads
        with ThreadPoolExecutor(_WORKERS) as pool:
            polys = np.array(list(pool.map(union, range(k))), dtype=object)
    else:
        polys = np.array([union(i) for i in range(k)], dtype=object)
    # no make_valid: GEOS buffers and OverlayNG unions return valid polygons by design, and
    # the check alone costs 7-10 % of a ring. force_2d copies the overlay's output into plain
    # XY storage: 40 % less memory for the rings a district keeps
    return shapely.force_2d(polys)


def _overlap(multi, length, frontage_m):
    """Per group: how many times over its street buffers would cover the ring's convex
    hull: reached street length × 2 frontage ÷ area of the hull of ``multi`` (the strokes
    new at this distance, whose hull spans the whole ring: they reach its edge) widened by
    the frontage."""
    hull = shapely.area(shapely.buffer(shapely.convex_hull(multi), frontage_m, quad_segs=2))
    return 2.0 * frontage_m * np.asarray(length) / np.maximum(hull, 1.0)


def _strokes(
    coords: NDArray[np.float64],
    offsets: NDArray[np.int64],
    grp: NDArray[np.int64],
    nodes: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Chain each group's line pieces into strokes that go straight on through nodes.

    At every node the two piece ends that continue each other best (most opposite
    directions) are paired, greedily; paired pieces form one stroke, its pieces oriented
    and joined end to end. The strokes cover exactly the pieces, so their buffers' union is
    the same region, and GEOS buffers a few long strokes much faster than many short pieces.

    Pieces come as coordinates and offsets (p + 1) with the node at each end (2p: starts,
    then ends; -1 for none: such an end chains with nothing, as both ends of a zero-length
    piece, a disc); the strokes come as coordinates and offsets, sorted by group, with
    each stroke's group. Pieces meeting at a node share its exact coordinates.
    """
    p = grp.size
    if p == 0:
        return coords, offsets, grp
    counts = np.diff(offsets)
    first, last = offsets[:-1], offsets[1:] - 1
    partner = _pair_ends(coords, first, last, grp, nodes)
    # strokes: pieces linked through paired ends
    piece = np.r_[np.arange(p), np.arange(p)]  # of each end: first ends, then last ends
    linked = partner >= 0
    link = sparse.coo_array(
        (np.ones(linked.sum()), (piece[linked], piece[partner[linked]])), shape=(p, p)
    )
    n, stroke = csgraph.connected_components(link, directed=False)
    # a stroke closed on itself (no free end) is opened at its smallest end
    free = partner < 0
    open_ = np.zeros(n, dtype=bool)
    open_[stroke[piece[free]]] = True
    if not open_.all():
        closed = np.flatnonzero(~open_[stroke[piece]])  # ascending
        _, at = np.unique(stroke[piece[closed]], return_index=True)
        cut = closed[at]
        partner[partner[cut]] = -1
        partner[cut] = -1
        free = partner < 0
    # each stroke runs from its smallest free end: ends ascending, first one per stroke
    free_ends = np.flatnonzero(free)
    head = np.empty(n, dtype=np.int64)
    ids, at = np.unique(stroke[piece[free_ends]], return_index=True)
    head[ids] = free_ends[at]
    # walking a stroke, each piece is entered through one of its ends; the walk entered
    # through end e came from the piece entered through the other end of e's partner.
    # Pointer jumping finds every entry's start (a free end) and steps from it.
    other = np.r_[np.arange(p) + p, np.arange(p)]
    up = np.where(partner >= 0, other[np.maximum(partner, 0)], np.arange(2 * p))
    steps = (partner >= 0).astype(np.int64)
    for _ in range(64):  # doubling: log2 of the longest stroke's piece count
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        steps = steps + steps[up]
        up = nxt
    else:
        raise RuntimeError("stroke walk did not end: a stroke is still closed")
    forward = up[:p] == head[stroke]  # entered through its first end, from the head
    pos = np.where(forward, steps[:p], steps[p:])
    # coordinates stroke by stroke, pieces in walking order, each joint written once
    o = np.lexsort((pos, stroke, grp))
    lead = pos[o] > 0
    take = counts[o] - lead
    fw = forward[o]
    start = np.where(fw, first[o] + lead, last[o] - lead)
    total = int(take.sum())
    rel = np.arange(total) - np.repeat(np.cumsum(take) - take, take)
    idx = np.repeat(start, take) + np.repeat(np.where(fw, 1, -1), take) * rel
    heads = ~lead  # first piece of each stroke
    out_offsets = np.r_[(np.cumsum(take) - take)[heads], total]
    return coords[idx], out_offsets, grp[o][heads]


def _pair_ends(coords, first, last, grp, nodes):
    """Per end of each piece (starts, then ends): the end it continues into at its node
    (same group and node), or -1."""
    p = grp.size
    partner = np.full(2 * p, -1, dtype=np.int64)
    end = np.flatnonzero(nodes >= 0)  # ids of the ends at nodes
    if end.size < 2:
        return partner
    piece = end % p
    is_start = end < p
    # the direction away from each end
    at = np.where(is_start, first[piece], last[piece])
    away = coords[np.where(is_start, at + 1, at - 1)] - coords[at]
    norm = np.hypot(away[:, 0], away[:, 1])
    away /= np.where(norm > 0, norm, 1.0)[:, None]
    # ends grouped by (group, node)
    key = grp[piece] * (int(nodes.max()) + 1) + nodes[end]
    order = np.argsort(key, kind="stable")
    new = np.r_[True, np.diff(key[order]) != 0]
    heads = np.flatnonzero(new)
    node = np.cumsum(new) - 1
    size = np.diff(np.r_[heads, order.size])[node]
    later = size - 1 - (np.arange(order.size) - heads[node])
    # every pair of ends at one node (positions in ``end``)
    a = np.repeat(np.arange(order.size), later)
    b = a + 1 + np.arange(later.sum()) - np.repeat(np.cumsum(later) - later, later)
    a, b = order[a], order[b]
    keep = piece[a] != piece[b]
    a, b = a[keep], b[keep]
    dot = np.einsum("ij,ij->i", away[a], away[b])  # -1: straight on
    # greedy matching (pairs by smallest dot, then first listed, each taken if both its
    # ends are free) done in rounds: a pair that is the best left at both its ends is one
    # the greedy takes. No sort: every end's best by ufunc.at
    pa, pb = [], []
    while a.size:
        idx = np.arange(a.size)
        low = np.full(end.size, np.inf)
        np.minimum.at(low, a, dot)
        np.minimum.at(low, b, dot)
        low_a, low_b = dot == low[a], dot == low[b]
        first = np.full(end.size, a.size)
        np.minimum.at(first, a[low_a], idx[low_a])
        np.minimum.at(first, b[low_b], idx[low_b])
        ok = idx[low_a & low_b & (first[a] == idx) & (first[b] == idx)]
        pa.append(a[ok])
        pb.append(b[ok])
        taken = np.zeros(end.size, dtype=bool)
        taken[a[ok]] = True
        taken[b[ok]] = True
        rest = ~(taken[a] | taken[b])
        a, b, dot = a[rest], b[rest], dot[rest]
    pa = np.concatenate(pa) if pa else np.empty(0, dtype=np.int64)
    pb = np.concatenate(pb) if pb else np.empty(0, dtype=np.int64)
    partner[end[pa]] = end[pb]
    partner[end[pb]] = end[pa]
    return partner


def _union_parallel(buffers, previous):
    """Union of many buffers (one group): spatial strips unioned in parallel, then merged."""
    empty = shapely.Polygon()
    if previous is not None and not previous.is_empty:
        buffers = np.concatenate([[previous], buffers])
    if buffers.size == 0:
        return empty
    if _WORKERS == 1 or buffers.size < 4000:
        poly = shapely.union_all(buffers)
    else:
        x = shapely.get_coordinates(shapely.centroid(buffers))[:, 0]
        strips = np.array_split(buffers[np.argsort(x)], _WORKERS)
        with ThreadPoolExecutor(_WORKERS) as pool:
            poly = shapely.union_all(np.array(list(pool.map(shapely.union_all, strips))))
    return empty if poly.is_empty else poly


def _lookup(nodes: NDArray, dist: NDArray, query: NDArray) -> NDArray[np.float64]:
    """dist of each query node in the sorted ``nodes``; inf when absent."""
    pos = np.clip(np.searchsorted(nodes, query), 0, nodes.size - 1)
    return np.where(nodes[pos] == query, dist[pos], np.inf)
