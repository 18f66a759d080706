"""Snapping and reach against hand-computed distances and networkx Dijkstra."""

from __future__ import annotations

import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from tests.netfixtures import lines_network, points

from servicecircle import network as netmod
from servicecircle import reach, snapping
from servicecircle.errors import ServiceCircleWarning, SnapError
from servicecircle.sample_data import helsinki_pbf


def straight_street():
    # A(0,0) - B(100,0) - C(200,0)
    return lines_network([(0, 0), (100, 0)], [(100, 0), (200, 0)])


def test_snap_gives_projection_offset_and_leg():
    net = straight_street()
    sn = snapping.snap_to_edges(net, points((50, 10), (150, -5)))
    assert sn["leg_m"].tolist() == pytest.approx([10.0, 5.0])
    e0 = net.edges.iloc[sn["edge"].iloc[0]]
    # offset is measured from the edge's u end, whichever way it runs
    u_x = net.node_xy[e0.u][0] - net.node_xy.min(axis=0)[0]
    assert sn["offset_m"].iloc[0] == pytest.approx(abs(50 - u_x))
    assert (sn["to_u_m"] + sn["to_v_m"] - 2 * sn["leg_m"]).tolist() == pytest.approx([100, 100])


def test_distances_on_a_straight_street_by_hand():
    net = straight_street()
    st = snapping.snap_to_edges(net, points((50, 10)))
    r = reach.nearest_station(net, st)
    x = net.node_xy[:, 0] - net.node_xy[:, 0].min()
    expected = {0.0: 60.0, 100.0: 60.0, 200.0: 160.0}  # leg 10 + along-edge
    for node, xx in enumerate(x):
        assert r.dist_m[node] == pytest.approx(expected[round(xx)])
    pts = snapping.snap_to_edges(net, points((150, -5), (20, 0), (50, 10)))
    d = reach.point_distances(net, r, pts, st)
    # (150,-5): 5 + 50 to B + 60 = 115; (20,0) on the station's edge: 10 + 30 = 40 directly
    assert d["dist_m"].tolist() == pytest.approx([115.0, 40.0, 20.0])
    assert d["station"].tolist() == [0, 0, 0]


def test_limit_leaves_far_nodes_unreached():
    net = straight_street()
    st = snapping.snap_to_edges(net, points((50, 10)))
    r = reach.nearest_station(net, st, limit_m=100)
    assert np.isinf(r.dist_m).sum() == 1
    assert (r.station[np.isinf(r.dist_m)] == -1).all()


def test_station_is_not_a_shortcut():
    # two stations far off the street: walking "through" a station must cost its legs
    net = straight_street()
    st = snapping.snap_to_edges(net, points((100, 40)))
    r = reach.nearest_station(net, st)
    assert r.dist_m.min() == pytest.approx(40.0)


def _reference_graph(net):
    """networkx graph built straight from the edge table (not from our CSR).

    Nodes are ``(osmid, layer)`` states: public ways join public states, private ways
    (gated compounds) private states, and a walk may step from a node's public state into
    its private state, never back: the definition of private ways used only at the home end,
    built here without the network's twin nodes and links. Without private ways it is the
    plain undirected street graph (every state public).
    """
    g = nx.DiGraph()
    for u, v, w, private in zip(
        net.edge_u, net.edge_v, net.edge_length_m, net.edge_private, strict=True
    ):
        a, b = _state(net, u, private), _state(net, v, private)
        for x, y in ((a, b), (b, a)):
            if x != y and (not g.has_edge(x, y) or g[x][y]["w"] > w):
                g.add_edge(x, y, w=float(w))
    for i in range(net.n_nodes):
        g.add_node(_state(net, i, False))
        if net.edge_private.any():
            g.add_edge(_state(net, i, False), _state(net, i, True), w=0.0)
    return g


def _state(net, node, private):
    return (int(net.node_osmid[node]), "priv" if private else "pub")


def _node_states(net):
    """The reference state of each of our nodes: private when no public way touches it."""
    touches_public = np.zeros(net.n_nodes, dtype=bool)
    pub = ~net.edge_private
    touches_public[net.edge_u[pub]] = touches_public[net.edge_v[pub]] = True
    return [_state(net, i, not touches_public[i]) for i in range(net.n_nodes)]


def _stations_mid_edge(net, k, seed):
    rng = np.random.default_rng(seed)
    e = rng.choice(len(net.edges), k, replace=False)
    pts = shapely.line_interpolate_point(
        net.edges.geometry.to_numpy()[e], rng.random(k), normalized=True
    )
    # shift off the street by a few metres so legs are real
    return gpd.GeoSeries(pts, crs=net.crs).translate(3.0, -2.0)


def _check_against_networkx(net, k=60, sample=1000, seed=0):
    stations = _stations_mid_edge(net, k, seed)
    sn = snapping.snap_stations(net, stations)
    assert not net.edge_private[sn["edge"]].any()  # stations stand on public ways
    r = reach.nearest_station(net, sn)
    g = _reference_graph(net)
    for i, row in enumerate(sn.itertuples()):
        g.add_edge(("s", i), _state(net, net.edge_u[row.edge], False), w=row.to_u_m)
        g.add_edge(("s", i), _state(net, net.edge_v[row.edge], False), w=row.to_v_m)
    ref = nx.multi_source_dijkstra_path_length(g, [("s", i) for i in range(k)], weight="w")
    rng = np.random.default_rng(seed + 1)
    nodes = rng.choice(net.n_nodes, min(sample, net.n_nodes), replace=False)
    states = _node_states(net)
    state = {int(n): states[n] for n in nodes}
    expected = np.array([ref.get(state[int(n)], np.inf) for n in nodes])
    got = r.dist_m[nodes]
    assert (np.isfinite(expected) == np.isfinite(got)).all()
    fin = np.isfinite(expected)
    np.testing.assert_allclose(got[fin], expected[fin], rtol=0, atol=1e-6)
    # the reported station is one that achieves the distance
    for n in nodes[fin][:200]:
        s = r.station[n]
        d = nx.dijkstra_path_length(g, ("s", int(s)), state[int(n)], weight="w")
        assert d == pytest.approx(r.dist_m[n], abs=1e-6)
    # per-station bounded reach equals networkx single-source with a cutoff
    sr = reach.station_reach(net, sn, limit_m=600)
    for i in (0, k // 2, k - 1):
        exp = nx.single_source_dijkstra_path_length(g, ("s", i), cutoff=600, weight="w")
        got_nodes, got_d = sr.of(i)
        mine = {states[n]: d for n, d in zip(got_nodes.tolist(), got_d.tolist(), strict=True)}
        ours = set(states)  # states that are nodes of ours (a node's unused twin state is not)
        exp = {n: d for n, d in exp.items() if n in ours}
        assert set(mine) == set(exp)
        for n, d in mine.items():
            assert d == pytest.approx(exp[n], abs=1e-6)


def test_reach_equals_networkx_on_helsinki_walking_network():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        net = netmod.load_network(helsinki_pbf(), use_cache=False, simplify=False)
    assert net.n_nodes >= 1000
    _check_against_networkx(net)


def test_reach_equals_networkx_on_shanghai_extract(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(netmod.settings, "cache_folder", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        net = netmod.load_network(
            shared_data / "shanghai" / "shanghai_center_drive.osm.bz2", simplify=False
        )
    _check_against_networkx(net, k=302, sample=2000)


def test_far_stations_are_reported_with_a_datum_hint():
    net = straight_street()
    stations = gpd.GeoDataFrame(
        {"station_id": ["ZF-1", "ZF-2", "ZF-3"], "name": ["近", "远", "也近"]},
        geometry=points((50, 10), (50, 900), (150, 5)).to_numpy(),
        crs=net.crs,
    )
    sn = snapping.snap_to_edges(net, stations)
    with pytest.warns(ServiceCircleWarning, match=r"station ZF-2 \(远\): 900 m .*max_snap_m=250"):
        problems = snapping.check_station_snaps(net, stations, sn, max_snap_m=250)
    assert len(problems) == 1


def test_mostly_far_stations_are_an_error():
    net = straight_street()
    stations = gpd.GeoDataFrame(
        {"station_id": ["a", "b"]}, geometry=points((0, 2000), (50, 900)).to_numpy(), crs=net.crs
    )
    sn = snapping.snap_to_edges(net, stations)
    with pytest.raises(SnapError, match="2 of 2 station"):
        snapping.check_station_snaps(net, stations, sn, max_snap_m=250)


def test_far_stations_are_dropped_and_the_rest_keep_their_snaps():
    net = straight_street()
    stations = gpd.GeoDataFrame(
        {"station_id": ["ZF-1", "ZF-2", "ZF-3"], "name": ["近", "远", "也近"]},
        geometry=points((50, 10), (50, 900), (150, 5)).to_numpy(),
        crs=net.crs,
    )
    stations.attrs["source"] = {"file": "s.csv", "crs": "EPSG:32651"}
    sn = snapping.snap_to_edges(net, stations)
    with pytest.warns(ServiceCircleWarning, match=r"1 of 3 .*left out of the analysis"):
        kept, kept_sn, dropped = snapping.drop_far_stations(net, stations, sn, max_snap_m=250)
    assert list(kept["station_id"]) == ["ZF-1", "ZF-3"]
    assert list(kept.index) == [0, 1]
    assert list(kept_sn.index) == [0, 1]
    assert kept_sn["leg_m"].tolist() == pytest.approx([10, 5])
    assert kept.attrs["source"]["file"] == "s.csv"
    assert list(dropped["station_id"]) == ["ZF-2"]
    assert dropped["leg_m"].tolist() == pytest.approx([900])
    assert dropped["problem"].iloc[0].startswith("station ZF-2 (远): 900 m")


def test_the_analysis_uses_only_the_kept_stations():
    from servicecircle.pipeline import analyse

    net = straight_street()
    stations = gpd.GeoDataFrame(
        {"station_id": ["a", "far", "b"], "name": ["A", "F", "B"], "tier": "station"},
        geometry=points((20, 5), (100, 1500), (180, 5)).to_numpy(),
        crs=net.crs,
    )
    grids = gpd.GeoDataFrame(
        {"grid_id": ["g"]}, geometry=[shapely.box(*points((0, -20)).total_bounds[:2],
                                                   *points((200, 20)).total_bounds[:2])],
        crs=net.crs,
    )  # fmt: skip
    with pytest.warns(ServiceCircleWarning, match="1 of 3 station"):
        a = analyse(net, stations, grids, lattice_m=10)
    assert list(a.stations["station_id"]) == ["a", "b"]
    assert len(a.stations_snapped) == 2
    assert list(a.dropped_stations["station_id"]) == ["far"]
    assert a.metadata["stations_dropped"] == [{"station_id": "far", "name": "F", "leg_m": 1500.0}]
    assert set(a.coverage.grids["station_id"]) <= {"a", "b"}
    assert set(a.station_rings["station_id"]) == {"a", "b"}
    assert a.coverage.points["station"].max() <= 1
