"""Rings against hand-computed geometry, plus properties on random small graphs."""

from __future__ import annotations

import itertools
import math
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.ops import substring
from tests.netfixtures import lines_network, local, points

from servicecircle import isochrones, reach, snapping
from servicecircle import network as netmod
from servicecircle.errors import ServiceCircleWarning
from servicecircle.sample_data import helsinki_pbf

# area lost by a buffer's arcs: 4 segments per quarter circle (isochrones._QUAD_SEGS)
_DISK_16GON = 8 * math.sin(2 * math.pi / 16)  # area of the inscribed 16-gon / r²


def rings_for(net, station_xy, distances, frontage=30.0):
    stations = gpd.GeoDataFrame(
        {"station_id": [f"S{i}" for i in range(len(station_xy))]},
        geometry=points(*station_xy).to_numpy(),
        crs=net.crs,
    )
    sn = snapping.snap_to_edges(net, stations)
    sr = reach.station_reach(net, sn, limit_m=max(distances))
    per_station = isochrones.station_rings(
        net, stations, sn, sr, distances_m=distances, frontage_m=frontage
    )
    nr = reach.nearest_station(net, sn)
    union = isochrones.reach_union_rings(net, nr, sn, distances_m=distances, frontage_m=frontage)
    return per_station, union


def test_partial_edge_is_cut_at_the_exact_metre():
    net = lines_network([(0, 0), (1000, 0)])
    rings, union = rings_for(net, [(200, 0)], [300.0])
    ring = local(rings.geometry.iloc[0])
    # dead end at 0 (200 m), then 300 m to the right: reached [0, 500]
    assert rings["length_m"].iloc[0] == pytest.approx(500.0)
    minx, _, maxx, _ = ring.bounds
    assert maxx == pytest.approx(530.0, abs=1e-6)
    assert minx == pytest.approx(-30.0, abs=1e-6)
    expected = 500 * 60 + _DISK_16GON * 30**2
    assert ring.area == pytest.approx(expected, rel=1e-9)
    assert union.geometry.iloc[0].equals_exact(rings.geometry.iloc[0], tolerance=1e-6)


def test_leg_counts_against_the_threshold():
    net = lines_network([(0, 0), (1000, 0)])
    rings, _ = rings_for(net, [(500, 100)], [300.0])
    assert rings["length_m"].iloc[0] == pytest.approx(400.0)  # 2 × (300 − 100)


def test_dead_end_branch_is_reached_up_to_its_end():
    # T: main street along x, a 50 m dead-end spur north at x=100
    net = lines_network([(0, 0), (100, 0)], [(100, 0), (400, 0)], [(100, 0), (100, 50)])
    rings, _ = rings_for(net, [(0, 0)], [200.0])
    # 200 m along the street, and the whole 50 m spur (100 + 50 ≤ 200)
    assert rings["length_m"].iloc[0] == pytest.approx(250.0)


def test_ring_does_not_cross_a_river():
    # two banks 200 m apart, joined only by a bridge 2 km away
    south = [(0, 0), (2000, 0)]
    north = [(0, 200), (2000, 200)]
    bridge = [(2000, 0), (2000, 200)]
    net = lines_network(south, north, bridge)
    rings, _ = rings_for(net, [(100, 0)], [300.0, 600.0])
    for level, ring in enumerate(rings.geometry):
        assert not local(ring).intersects(shapely.Point(100, 200))
        # the frontage, plus the documented micrometre by which each larger ring's new
        # buffers reach further (robust unions)
        assert local(ring).bounds[3] <= 30.0 + level * isochrones._NEST_GAP_M + 1e-9


def test_unreached_block_inside_stays_a_hole():
    side = 400.0
    square = [(0, 0), (side, 0), (side, side), (0, side), (0, 0)]
    net = lines_network(square)
    rings, _ = rings_for(net, [(0, 0)], [900.0])
    ring = local(rings.geometry.iloc[0])
    assert ring.geom_type == "Polygon"
    assert len(ring.interiors) == 1
    hole = shapely.Polygon(ring.interiors[0])
    assert hole.area == pytest.approx((side - 60) ** 2, rel=1e-9)
    outer = side**2 + 4 * side * 30 + _DISK_16GON * 30**2
    assert ring.area == pytest.approx(outer - (side - 60) ** 2, rel=1e-9)


def test_per_station_rows_and_wgs84_export():
    net = lines_network([(0, 0), (1000, 0)])
    rings, union = rings_for(net, [(100, 0), (900, 0)], [300.0, 600.0])
    assert len(rings) == 4
    assert set(rings.columns) >= {"station_id", "threshold_min", "distance_m", "area_m2"}
    assert rings.crs == net.crs
    assert rings.to_crs(4326).crs.to_epsg() == 4326
    # the union at 300 m: [0, 400] ∪ [600, 1000] = 800 m
    assert union["length_m"].iloc[0] == pytest.approx(800.0)


@pytest.mark.parametrize(
    ("distances", "labels", "message"),
    [
        ([600.0, 300.0], None, "strictly ascending"),
        ([300.0, 300.0], [5, 6], "strictly ascending"),
        ([float("nan"), 300.0], None, "finite positive"),
        ([0.0, 300.0], None, "finite positive"),
        ([], None, "no ring distances"),
        ([300.0, 600.0], [5], "1 threshold labels for 2 ring distances"),
    ],
)
def test_bad_ring_distances_are_refused_at_the_call(distances, labels, message):
    net = lines_network([(0, 0), (1000, 0)])
    stations = gpd.GeoDataFrame({"station_id": ["S0"]}, geometry=points((100, 0)), crs=net.crs)
    sn = snapping.snap_to_edges(net, stations)
    sr = reach.station_reach(net, sn, limit_m=1000.0)
    nr = reach.nearest_station(net, sn)
    kw = {"distances_m": distances, "thresholds_min": labels}
    with pytest.raises(ValueError, match=message):
        isochrones.iter_station_rings(net, stations, sn, sr, **kw)
    with pytest.raises(ValueError, match=message):
        isochrones.station_rings(net, stations, sn, sr, **kw)
    with pytest.raises(ValueError, match=message):
        isochrones.reach_union_rings(net, nr, sn, **kw)


@st.composite
def small_graphs(draw):
    n = draw(st.integers(4, 9))
    xy = draw(
        st.lists(
            st.tuples(st.integers(0, 600), st.integers(0, 600)), min_size=n, max_size=n,
            unique=True,
        )
    )  # fmt: skip
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=n, max_size=2 * n
        )
    )
    lines = [[xy[a], xy[b]] for a, b in pairs if a != b]
    if not lines:
        lines = [[xy[0], xy[1]]]
    sx, sy = draw(st.integers(0, 600)), draw(st.integers(0, 600))
    return lines, (sx, sy)


@settings(max_examples=40, deadline=None)
@given(small_graphs())
def test_rings_are_valid_nested_and_grow_with_the_threshold(case):
    lines, station = case
    net = lines_network(*lines)
    distances = [150.0, 300.0, 600.0]
    rings, union = rings_for(net, [station], distances)
    geoms = rings.sort_values("distance_m").geometry.to_numpy()
    assert shapely.is_valid(geoms).all()
    lengths = rings.sort_values("distance_m")["length_m"].to_numpy()
    assert (np.diff(lengths) >= -1e-9).all()
    for small, big in itertools.pairwise(geoms):
        # nested by construction (each ring is unioned with the smaller one); the
        # difference's own arithmetic at UTM coordinates (~4e6 m) leaves slivers
        # nanometres wide (up to ~1e-6 m² over a 250 m edge), nothing more
        assert shapely.area(shapely.difference(small, big)) < 1e-4
    # a station's reach never exceeds the street length, and the union equals the
    # single station's ring when there is one station
    assert union["length_m"].iloc[-1] <= net.edge_length_m.sum() + 1e-6
    assert union["length_m"].to_numpy() == pytest.approx(lengths)


# --------------------------------------------------------------------------------------------
# the real Helsinki walking network (curved, multi-vertex footways)


@pytest.fixture(scope="module")
def helsinki():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        return netmod.load_network(
            helsinki_pbf(), use_cache=False, simplify=True, private="include"
        )


def test_cut_edges_equal_shapely_substrings_on_real_edges(helsinki):
    net = helsinki
    rng = np.random.default_rng(7)
    nverts = np.diff(net.edge_offsets)
    # curved edges first (many vertices), repeats and unsorted order on purpose
    edge = np.r_[rng.choice(np.flatnonzero(nverts > 4), 300), rng.choice(net.n_edges, 300)]
    length = net.edge_length_m[edge]
    a, b = np.sort(rng.random((2, edge.size)), axis=0) * length
    a[:50] = 0.0  # from the u end
    b[50:100] = length[50:100]  # to the v end
    b[100:120] = a[100:120]  # zero length: a point
    a[120:130] = b[120:130] = length[120:130]  # zero length at the v end
    a[130:140] = b[130:140] = 0.0  # zero length at the u end
    pieces = isochrones.cut_edges(net, edge, a, b)
    lines = net.edge_lines(edge)
    # a piece that reaches an end of its edge ends exactly on the node's coordinates (the
    # pieces of a ring are chained into strokes through the nodes they share)
    first = shapely.get_coordinates(shapely.get_point(pieces, 0))
    last = shapely.get_coordinates(shapely.get_point(pieces, -1))
    u_xy = net.edge_coords[net.edge_offsets[edge]]
    v_xy = net.edge_coords[net.edge_offsets[edge + 1] - 1]
    np.testing.assert_array_equal(first[:50], u_xy[:50])
    np.testing.assert_array_equal(last[50:100], v_xy[50:100])
    for at, xy in ((slice(120, 130), v_xy), (slice(130, 140), u_xy)):
        np.testing.assert_array_equal(first[at], xy[at])
        np.testing.assert_array_equal(last[at], xy[at])
        assert (shapely.length(pieces[at]) == 0.0).all()
    for i in range(edge.size):
        ref = substring(lines[i], a[i], b[i])
        got = pieces[i]
        assert got.length == pytest.approx(b[i] - a[i], abs=1e-6)
        assert shapely.hausdorff_distance(got, ref) < 1e-6
        # same direction as the edge (u to v)
        start = shapely.get_coordinates(got)[0]
        np.testing.assert_allclose(start, shapely.get_coordinates(ref)[0], atol=1e-6)


def _helsinki_stations(net, k, seed):
    rng = np.random.default_rng(seed)
    e = rng.choice(net.n_edges, k, replace=False)
    xy = shapely.line_interpolate_point(net.edge_lines(e), rng.random(e.size), normalized=True)
    return gpd.GeoDataFrame(
        {"station_id": [f"S{i}" for i in range(e.size)]},
        geometry=shapely.points(shapely.get_coordinates(xy) + np.array([4.0, -3.0])),
        crs=net.crs,
    )


def test_streamed_batches_hold_the_same_rings_as_each_station_alone(helsinki):
    net = helsinki
    distances = [150.0, 300.0]
    stations = _helsinki_stations(net, 10, seed=5)
    sn = snapping.snap_to_edges(net, stations)
    sr = reach.station_reach(net, sn, limit_m=max(distances))
    chunks = list(
        isochrones.iter_station_rings(net, stations, sn, sr, distances_m=distances, batch_size=4)
    )
    assert [len(c) for c in chunks] == [8, 8, 4]  # stations per batch × 2 thresholds
    together = isochrones.station_rings(
        net, stations, sn, sr, distances_m=distances, thresholds_min=[2.5, 5], batch_size=4
    )
    # all stations at 150 m first, then at 300 m, across the three batches
    assert list(together["threshold_min"]) == [2.5] * 10 + [5.0] * 10
    assert list(together["station_id"]) == list(stations["station_id"]) * 2
    assert list(together["distance_m"]) == [150.0] * 10 + [300.0] * 10
    streamed = pd.concat(chunks, ignore_index=True)
    for i in range(len(stations)):
        one = stations.iloc[[i]].reset_index(drop=True)
        sn1 = snapping.snap_to_edges(net, one)
        sr1 = reach.station_reach(net, sn1, limit_m=max(distances))
        alone = isochrones.station_rings(net, one, sn1, sr1, distances_m=distances)
        sid = one["station_id"].iloc[0]
        for frame in (streamed, together):
            mine = frame[frame["station_id"] == sid].sort_values("distance_m")
            assert list(mine["distance_m"]) == distances
            np.testing.assert_allclose(mine["length_m"], alone["length_m"], rtol=0, atol=1e-9)
            # the same region (strokes may chain differently on ties: vertex order differs)
            diff = shapely.symmetric_difference(mine.geometry.values, alone.geometry.values)
            assert (shapely.area(diff) < 1e-4).all()
            np.testing.assert_allclose(mine["area_m2"], alone["area_m2"], rtol=1e-9)
    with pytest.raises(ValueError, match="batch_size"):
        isochrones.iter_station_rings(net, stations, sn, sr, distances_m=[1.0], batch_size=0)
    with pytest.raises(ValueError, match="reach limit"):
        isochrones.iter_station_rings(net, stations, sn, sr, distances_m=[1e4])


def test_ring_street_length_equals_networkx_on_helsinki(helsinki):
    """Reached street length per ring against networkx distances, edge by edge.

    With the station as a node splitting its edge, a point ``t`` m along an edge (u, v, L)
    is at ``min(du + t, dv + L - t)``; so the edge's reached length within ``T`` is
    ``min(L, max(0, T - du) + max(0, T - dv))``.
    """
    net = helsinki
    distances = [150.0, 300.0, 450.0]
    stations = _helsinki_stations(net, 25, seed=3)
    sn = snapping.snap_to_edges(net, stations)
    sr = reach.station_reach(net, sn, limit_m=max(distances))
    rings = isochrones.station_rings(net, stations, sn, sr, distances_m=distances)

    g = nx.MultiGraph()
    g.add_nodes_from(range(net.n_nodes))
    for i, (u, v, w) in enumerate(zip(net.edge_u, net.edge_v, net.edge_length_m, strict=True)):
        g.add_edge(int(u), int(v), key=i, w=float(w))
    for i, row in enumerate(sn.itertuples()):
        u, v = int(net.edge_u[row.edge]), int(net.edge_v[row.edge])
        h = g.copy()
        h.remove_edge(u, v, key=int(row.edge))
        h.add_edge("s", u, w=row.offset_m)
        h.add_edge("s", v, w=row.to_v_m - row.leg_m)
        dist = nx.single_source_dijkstra_path_length(h, "s", weight="w")
        dist = {n: d + row.leg_m for n, d in dist.items()}
        mine = rings[rings["station_id"] == f"S{i}"].sort_values("distance_m")
        geoms = mine.geometry.to_numpy()
        for level, (t, got, poly) in enumerate(
            zip(distances, mine["length_m"], geoms, strict=True)
        ):
            expected = sum(
                min(w, max(0.0, t - dist.get(a, np.inf)) + max(0.0, t - dist.get(b, np.inf)))
                for a, b, w in h.edges(data="w")
            )
            assert got == pytest.approx(expected, abs=1e-6)
            assert poly.is_valid
            # the ring against the reached pieces cut by shapely from the networkx
            # distances, buffered with fine arcs: inside it, and short of it only by GEOS's
            # approximations (4-segment arcs, 0.58 m deep; input lines simplified by 1 % of
            # the width, 0.3 m; deeper only in slivers where two arcs cross at a shallow
            # angle: ≤ 2 m² a ring here, where one missed piece costs hundreds)
            ref = _reference_ring(net, row, dist, t, 30.0 + level * isochrones._NEST_GAP_M)
            assert shapely.area(shapely.difference(poly, ref)) < 1e-3
            inner = shapely.buffer(ref, -1.04, quad_segs=16)
            assert shapely.area(shapely.difference(inner, poly)) < 5.0
        for small, big in itertools.pairwise(geoms):
            # at northings of 6.7e6 m the difference's own arithmetic leaves slivers of
            # ~1e-5 m² along shared edges; a real gap would be metres wide
            assert shapely.area(shapely.difference(small, big)) < 1e-4


def _reference_ring(net, row, dist, t, width):
    """Union of fine buffers of every edge's reached pieces within ``t`` m, from node
    distances ``dist`` (``row``: the station's snap, whose own edge it reaches from mid-edge)."""
    pieces = []
    du_all = np.array([dist.get(int(n), np.inf) for n in net.edge_u])
    dv_all = np.array([dist.get(int(n), np.inf) for n in net.edge_v])
    near = np.flatnonzero((du_all <= t) | (dv_all <= t) | (np.arange(net.n_edges) == row.edge))
    lines = net.edge_lines(near)
    for e, line in zip(near, lines, strict=True):
        length, du, dv = net.edge_length_m[e], du_all[e], dv_all[e]
        spans = [(0.0, min(length, t - du)), (max(0.0, length - (t - dv)), length)]
        if e == row.edge and t >= row.leg_m:
            r = t - row.leg_m
            spans.append((max(0.0, row.offset_m - r), min(length, row.offset_m + r)))
        pieces += [substring(line, a, b) for a, b in spans if b >= a]
    # 16 segments per quarter circle, 4 cm wider: a polygon around the exact buffer
    return shapely.union_all(shapely.buffer(pieces, width + 0.04, quad_segs=16))


def _segments(coords, offsets, grp):
    """Multiset of (group, segment) with each segment's ends in sorted order."""
    out = []
    for i in range(len(offsets) - 1):
        xy = [tuple(c) for c in coords[offsets[i] : offsets[i + 1]]]
        out += [(int(grp[i]), *sorted((p, q))) for p, q in itertools.pairwise(xy)]
    return sorted(out)


def _ragged(lines):
    """Coordinates, offsets and end nodes (ids of the end positions; none for a point)."""
    coords = [np.asarray(line, dtype=float) for line in lines]
    ids: dict[tuple, int] = {}
    starts = [ids.setdefault(tuple(c[0]), len(ids)) for c in coords]
    ends = [ids.setdefault(tuple(c[-1]), len(ids)) for c in coords]
    point = np.array([(c == c[0]).all() for c in coords])
    nodes = np.where(np.r_[point, point], -1, np.r_[starts, ends])
    return np.concatenate(coords), np.r_[0, np.cumsum([len(c) for c in coords])], nodes


@pytest.mark.parametrize(
    ("lines", "n_strokes", "closed"),
    [
        # a street cut into three pieces, given out of order and against each other
        ([[(20, 0), (10, 0)], [(0, 0), (10, 0)], [(20, 0), (30, 0), (40, 1)]], 1, 0),
        # a cross: each street goes straight on through the middle
        ([[(0, 0), (10, 0)], [(10, 0), (20, 0)], [(10, -10), (10, 0)], [(10, 10), (10, 0)]], 2, 0),
        # a block's four sides: a loop with no free end, opened at one corner
        ([[(0, 0), (10, 0)], [(10, 0), (10, 10)], [(10, 10), (0, 10)], [(0, 10), (0, 0)]], 1, 1),
        # a point (reached exactly at a node) stays on its own
        ([[(0, 0), (10, 0)], [(10, 0), (10, 0)], [(10, 0), (20, 0)]], 2, 0),
    ],
)
def test_strokes_chain_pieces_straight_through_nodes(lines, n_strokes, closed):
    coords, offsets, nodes = _ragged(lines)
    grp = np.zeros(len(lines), dtype=np.int64)
    sc, so, sg = isochrones._strokes(coords, offsets, grp, nodes)
    assert len(so) - 1 == n_strokes
    assert _segments(sc, so, sg) == _segments(coords, offsets, grp)
    ends_equal = [(sc[so[i]] == sc[so[i + 1] - 1]).all() for i in range(n_strokes)]
    assert sum(ends_equal) == closed + sum(1 for line in lines if line[0] == line[-1])
    if n_strokes == 2 and len(lines) == 4:  # the cross: two straight strokes
        for i in range(2):
            xy = sc[so[i] : so[i + 1]]
            assert len(xy) == 3
            (ax, ay), (bx, by) = xy[1] - xy[0], xy[2] - xy[1]
            assert ax * by - ay * bx == 0  # collinear


def test_strokes_cover_exactly_the_pieces_of_real_rings(helsinki):
    """Strokes of 3,000 random pieces of real edges (half from a node, half to one), in 8
    groups: the same segments, each in its own group, every stroke one connected line."""
    net = helsinki
    rng = np.random.default_rng(11)
    edge = rng.choice(net.n_edges, 3000)
    grp = rng.integers(0, 8, edge.size)
    length = net.edge_length_m[edge]
    a, b = np.sort(rng.random((2, edge.size)), axis=0) * length
    a[rng.random(edge.size) < 0.5] = 0.0  # many pieces end on nodes, where they chain
    to_v = rng.random(edge.size) < 0.5
    b[to_v] = length[to_v]
    b = np.maximum(a, b)
    b[:20] = a[:20]  # points
    order = np.argsort(grp, kind="stable")
    edge, grp, a, b = edge[order], grp[order], a[order], b[order]
    coords, offsets = isochrones._cut_coords(net, edge, a, b)
    nodes = isochrones._end_nodes(net, edge, a, b)
    sc, so, sg = isochrones._strokes(coords, offsets, grp, nodes)
    assert _segments(sc, so, sg) == _segments(coords, offsets, grp)
    assert (np.diff(sg) >= 0).all()  # sorted by group
    assert len(so) - 1 < edge.size  # pieces did chain


def test_unchanged_intervals_against_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(0, 40))
        g, e = rng.integers(0, 3, n), rng.integers(0, 4, n)
        lo = rng.integers(0, 10, n).astype(float)
        hi = lo + rng.integers(0, 4, n)
        old = isochrones._merge_intervals(g, e, lo, hi)
        # the new intervals: the old ones, some longer, plus others
        grow = rng.random(n) < 0.5
        m = int(rng.integers(0, 10))
        new = isochrones._merge_intervals(
            np.r_[g, rng.integers(0, 3, m)], np.r_[e, rng.integers(0, 4, m)],
            np.r_[lo, rng.integers(0, 14, m)].astype(float),
            np.r_[hi + grow * rng.integers(0, 3, n), rng.integers(14, 18, m)].astype(float),
        )  # fmt: skip
        got = isochrones._unchanged(old, *new)
        empty = [np.empty(0, dtype=np.int64)] * 2 + [np.empty(0)] * 2
        assert isochrones._unchanged(old, *empty).size == 0
        old_set = set(zip(*old, strict=True))
        assert got.tolist() == [row in old_set for row in zip(*new, strict=True)]
        # merged: per (group, edge) sorted and apart, covering exactly what was given
        og, oe, olo, ohi = old
        for key in set(zip(g, e, strict=True)):
            at, mat = (g == key[0]) & (e == key[1]), (og == key[0]) & (oe == key[1])
            assert (olo[mat][1:] > ohi[mat][:-1]).all()
            t = np.arange(-1, 15, 0.25)[:, None]
            given = ((lo[at] <= t) & (t <= hi[at])).any(axis=1)
            merged = ((olo[mat] <= t) & (t <= ohi[mat])).any(axis=1)
            assert (given == merged).all()


def test_pieces_chain_only_where_edges_end_on_their_nodes():
    """An edge whose geometry starts 5 m from its node (a network built by hand): its
    pieces must not be joined to the others' at the node, which would drop a vertex."""
    from servicecircle.network import WalkNetwork

    x0, y0 = 500_000.0, 4_150_000.0
    node_xy = np.array([[x0, y0], [x0 + 100, y0], [x0 + 200, y0 - 100]])
    coords = np.array(
        [[x0, y0], [x0 + 100, y0], [x0 + 105, y0], [x0 + 105, y0 - 50], [x0 + 200, y0 - 100]]
    )
    net = WalkNetwork(node_xy, np.array([0, 1]), np.array([1, 2]), coords, np.array([0, 2, 5]),
                      crs="EPSG:32651")  # fmt: skip
    rings, _ = rings_for(net, [(0, 0)], [400.0])
    ring = rings.geometry.iloc[0]
    lines = net.edge_lines(np.arange(2))
    ref = shapely.union_all(shapely.buffer(lines, 30.0, quad_segs=64))  # all reached
    assert shapely.area(shapely.difference(ring, ref)) < 1e-3
    assert shapely.hausdorff_distance(ring, ref) < 1.0
    assert ring.covers(shapely.Point(x0 + 105, y0 - 9.9))


def test_zero_frontage_gives_empty_rings():
    net = lines_network([(0, 0), (1000, 0)], [(500, 0), (500, 400)])
    rings, union = rings_for(net, [(100, 0)], [300.0, 600.0, 900.0], frontage=0.0)
    assert rings.geometry.is_empty.all()
    assert union.geometry.is_empty.all()


def test_dense_and_sparse_ring_builds_give_the_same_rings(helsinki, monkeypatch):
    """Helsinki's sidewalks make most rings 'dense' (buffers unioned one by one); forcing
    either build on every ring gives the same regions."""
    net = helsinki
    stations = _helsinki_stations(net, 12, seed=9)
    sn = snapping.snap_to_edges(net, stations)
    sr = reach.station_reach(net, sn, limit_m=600.0)
    got = {}
    for name, threshold in (("dense", 0.0), ("sparse", np.inf)):
        monkeypatch.setattr(isochrones, "_DENSE_OVERLAP", threshold)
        got[name] = isochrones.station_rings(net, stations, sn, sr, distances_m=[300.0, 600.0])
    a, b = got["dense"].geometry.to_numpy(), got["sparse"].geometry.to_numpy()
    monkeypatch.undo()
    # the default threshold does pick the buffer-by-buffer build for most rings here
    seen = []
    overlap = isochrones._overlap
    monkeypatch.setattr(isochrones, "_overlap", lambda *x: seen.append(overlap(*x)) or seen[-1])
    isochrones.station_rings(net, stations, sn, sr, distances_m=[300.0, 600.0])
    assert np.mean(np.concatenate(seen) > isochrones._DENSE_OVERLAP) > 0.5
    assert shapely.is_valid(a).all()
    assert shapely.is_valid(b).all()
    assert (shapely.area(shapely.symmetric_difference(a, b)) < 1e-2).all()
    assert (shapely.area(a) > 0).all()


def test_street_grid_rings_are_not_dense(monkeypatch):
    """A grid of streets 80 m apart (its buffers overlap 1.1-1.4 times where the grid is
    not cut off by its edge) keeps the one-buffer build."""
    lines = [[(0, y), (800, y)] for y in range(0, 801, 80)]
    lines += [[(x, 0), (x, 800)] for x in range(0, 801, 80)]
    net = lines_network(*lines)
    seen = []
    overlap = isochrones._overlap
    monkeypatch.setattr(isochrones, "_overlap", lambda *x: seen.append(overlap(*x)) or seen[-1])
    rings_for(net, [(400, 5), (120, 0)], [300.0, 600.0])
    values = np.concatenate(seen)
    assert values.size == 4
    assert (values > 0.2).all()
    assert (values < isochrones._DENSE_OVERLAP).all()
