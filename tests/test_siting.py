"""Siting: coverage matrix against hand distances and networkx; solvers against brute force."""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial.distance import pdist
from tests.netfixtures import UTM, X0, Y0, lines_network, points
from tests.test_coverage import _nx_point_distances, box, grids_frame, stations_at

from servicecircle import sample_data, siting
from servicecircle.coverage import compute_coverage, station_edges
from servicecircle.errors import InputError
from servicecircle.network import load_network
from servicecircle.settings import WalkSettings
from servicecircle.snapping import snap_homes, snap_stations, snap_to_edges

# --------------------------------------------------------------------------- brute force


def _covered_weight(a: np.ndarray, w: np.ndarray, covered: np.ndarray, sites) -> float:
    """Weight covered by existing stations plus the given sites (dense 0/1 matrix)."""
    hit = covered.copy()
    if len(sites):
        hit |= a[:, list(sites)].any(axis=1)
    return float(w[hit].sum())


def _best_k(a, w, covered, k) -> float:
    m = a.shape[1]
    return max(
        _covered_weight(a, w, covered, c) for c in itertools.combinations(range(m), min(k, m))
    )


def _instance(seed: int, n: int = 30, m: int = 9):
    rng = np.random.default_rng(seed)
    a = rng.random((n, m)) < rng.uniform(0.15, 0.35)
    a[:, m - 1] = a[:, 3]  # an identical pair of sites
    a[:, m - 2] = a[:, 2] & (rng.random(n) < 0.5)  # a site inside another's reach
    a[: n // 6] = a[n // 6 : 2 * (n // 6)]  # duplicate rows
    w = rng.integers(1, 20, n).astype(float)
    covered = rng.random(n) < 0.25
    return a, w, covered


# --------------------------------------------------------------------------- matrix


def _branch_network():
    # A(0,0) — B(500,0) — C(1000,0), and B — D(500,400)
    return lines_network([(0, 0), (500, 0)], [(500, 0), (1000, 0)], [(500, 0), (500, 400)])


# walk distances (m) worked out by hand: leg + along edges + leg
SITES_XY = [(100, 10), (500, 300), (800, -20)]
POINTS_XY = [(150, -20), (600, 5), (520, 200), (1000, 30), (0, -40)]
HAND_M = np.array(
    [
        [80, 670, 690],  # on the first site's edge: 20 + 10 + 50 straight along it
        [515, 405, 225],  # 10 + 400 to B, 100 + 5 on; 300 + 105; 20 + 200 + 5 on one edge
        [630, 120, 540],
        [940, 830, 250],  # beyond C's end: leg 30
        [150, 840, 860],  # beyond A's end: leg 40 + 100 + 10
    ],
    dtype=float,
)


@pytest.mark.parametrize("distance_m", [100, 200, 250, 300, 600, 900])
def test_matrix_by_hand_including_a_site_and_a_point_on_one_edge(distance_m):
    net = _branch_network()
    sites = snap_to_edges(net, points(*SITES_XY))
    pts = snap_to_edges(net, points(*POINTS_XY))
    m = siting.site_coverage_matrix(net, sites, pts, distance_m=distance_m)
    assert m.shape == (5, 3)
    assert m.dtype == bool
    np.testing.assert_array_equal(m.toarray(), distance_m >= HAND_M)


def test_matrix_equals_networkx_on_helsinki():
    net = load_network(sample_data.helsinki_pbf())
    comps = list(nx.weakly_connected_components(net.to_networkx()))
    big = max(comps, key=len)
    # sites stand on public ways (private ones are walked only from a home)
    in_big = np.flatnonzero(np.isin(net.edge_u, list(big)) & ~net.edge_private)
    rng = np.random.default_rng(11)
    e = rng.choice(in_big, 14, replace=False)
    lines = net.edges.geometry.to_numpy()[e]
    site_pts = shapely.line_interpolate_point(lines, rng.random(14), normalized=True)
    sites = gpd.GeoDataFrame(geometry=site_pts, crs=net.crs).translate(3.0, -2.0)
    sites = gpd.GeoDataFrame(geometry=sites, crs=net.crs)
    # demand around the sites, and some on the sites' own edges
    xy = shapely.get_coordinates(site_pts)
    near = xy[rng.integers(0, 14, 160)] + rng.uniform(-350, 350, (160, 2))
    along = shapely.get_coordinates(
        shapely.line_interpolate_point(
            lines[rng.integers(0, 14, 60)], rng.random(60), normalized=True
        )
    ) + rng.uniform(-8, 8, (60, 2))
    pts = gpd.GeoSeries(shapely.points(np.vstack([near, along])), crs=net.crs)
    s_snap = snap_stations(net, sites)
    p_snap = snap_homes(net, pts, edges=station_edges(net, s_snap), front_m=30.0)
    d = 300.0
    got = siting.site_coverage_matrix(net, s_snap, p_snap, distance_m=d).toarray()
    ref = np.column_stack([_nx_point_distances(net, sites.iloc[[j]], pts) for j in range(14)])
    clear = np.abs(ref - d) > 1e-6  # leave exact ties to rounding
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(got[clear], (ref <= d)[clear])
    assert got.sum() > 50
    same_edge = p_snap["edge"].to_numpy()[:, None] == s_snap["edge"].to_numpy()[None, :]
    assert (got & same_edge).sum() >= 10  # the along-the-edge case is exercised


# --------------------------------------------------------------------------- candidates


def _street_grid(n: int = 11, step: float = 30.0):
    size = (n - 1) * step
    rows = [[(0.0, i * step), (size, i * step)] for i in range(n)]
    cols = [[(i * step, 0.0), (i * step, size)] for i in range(n)]
    return lines_network(*rows, *cols)


def test_node_candidates_keep_spacing_and_reach_every_node():
    net = _street_grid()
    c = siting.candidate_sites(net, spacing_m=100)
    assert c.crs.to_epsg() == 4326
    assert (c["source"] == "node").all()
    assert c["site_id"].is_unique
    xy = shapely.get_coordinates(c.to_crs(UTM).geometry.to_numpy())
    assert pdist(xy).min() >= 100 - 1e-6
    # every candidate is a node, and no node is farther than two spacings from one
    node_d = np.hypot(*(net.node_xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert node_d.min(axis=0).max() < 1e-6
    assert node_d.min(axis=1).max() <= 200
    assert len(c) >= 4  # a 300 m square holds at least a 2 × 2 set at 100 m


def test_grid_and_premises_candidates():
    net = _street_grid()
    grids = grids_frame([box(35, 40, 95, 64)], grid_name=["东一网格"])  # centroid (65, 52)
    premises = gpd.GeoDataFrame(
        {"resource_id": ["R1", "R2"], "name": ["空置商铺", "社区活动室"]},
        geometry=[shapely.Point(X0 + 44, Y0 + 51), shapely.box(X0 + 1, Y0 + 1, X0 + 9, Y0 + 9)],
        crs=UTM,
    )
    c = siting.candidate_sites(net, spacing_m=None, grids=grids, premises=premises)
    assert c["site_id"].tolist() == ["grid-g0", "R1", "R2"]
    assert c["source"].tolist() == ["grid", "premises", "premises"]
    assert c["name"].tolist() == ["东一网格", "空置商铺", "社区活动室"]
    xy = shapely.get_coordinates(c.to_crs(UTM).geometry.to_numpy()) - [X0, Y0]
    # the grid's centroid (65, 52) moves onto the nearest street, x = 60
    np.testing.assert_allclose(xy[0], [60, 52], atol=1e-6)
    # premises stay where they are (a polygon at a point on its surface)
    np.testing.assert_allclose(xy[1], [44, 51], atol=1e-6)
    assert 1 < xy[2][0] < 9
    assert 1 < xy[2][1] < 9
    with pytest.raises(InputError, match="no candidate sites"):
        siting.candidate_sites(net, spacing_m=None)


# --------------------------------------------------------------------------- solvers


@pytest.mark.parametrize("seed", range(8))
def test_mclp_is_optimal_by_brute_force(seed):
    a, w, covered = _instance(seed)
    for k in (1, 2, 3, 5):
        res = siting.mclp_sites(a, w, k, covered=covered)
        best = _best_k(a, w, covered, k)
        assert res.attrs["status"] == "optimal"
        assert res.attrs["objective"] == pytest.approx(best, rel=1e-9)
        # the reported sets and running totals are what they claim
        assert len(res) <= k
        assert _covered_weight(a, w, covered, res["site"]) == pytest.approx(best, rel=1e-9)
        for i in range(len(res)):
            prefix = _covered_weight(a, w, covered, res["site"][: i + 1])
            assert res["covered_weight"].iloc[i] == pytest.approx(prefix)
        assert res["share"].iloc[-1] == pytest.approx(best / w.sum())


@pytest.mark.parametrize("seed", range(8))
def test_lscp_is_minimal_by_brute_force(seed):
    a, w, covered = _instance(seed, n=24, m=8)
    total = w.sum()
    lo = _covered_weight(a, w, covered, [])
    hi = _covered_weight(a, w, covered, range(8))
    for f in (0.3, 0.7, 1.0):
        target = (lo + f * (hi - lo)) / total
        res = siting.lscp_sites(a, w, target, covered=covered)
        fewest = next(
            n for n in range(9) if _best_k(a, w, covered, n) >= target * total * (1 - 1e-12)
        )
        assert len(res) == fewest
        assert res.attrs["status"] == "optimal"
        got = _covered_weight(a, w, covered, res["site"])
        assert got >= target * total * (1 - 1e-9)
        # among the fewest, the set that covers the most
        assert got == pytest.approx(_best_k(a, w, covered, fewest))


@pytest.mark.parametrize("seed", range(8))
def test_greedy_first_pick_is_the_best_single_site_and_gains_fall(seed):
    a, w, covered = _instance(seed)
    res = siting.greedy_sites(a, w, 6, covered=covered)
    base = _covered_weight(a, w, covered, [])
    singles = [_covered_weight(a, w, covered, [j]) - base for j in range(a.shape[1])]
    assert res["gain_weight"].iloc[0] == pytest.approx(max(singles))
    assert (np.diff(res["gain_weight"].to_numpy()) <= 1e-9).all()
    assert (res["gain_weight"] > 0).all()
    for i in range(len(res)):
        prefix = _covered_weight(a, w, covered, res["site"][: i + 1])
        assert res["covered_weight"].iloc[i] == pytest.approx(prefix)
    # greedy's guarantee for coverage: within 1 − 1/e of the best gain
    k = len(res)
    best_gain = _best_k(a, w, covered, k) - base
    assert res["gain_weight"].sum() >= (1 - 1 / math.e) * best_gain - 1e-9


def test_exact_solvers_beat_greedy_on_its_classic_trap():
    # rows t1..t4, b1..b4; sites T = top row, B = bottom row, G = three of each.
    # Greedy takes G (6) first and then needs both T and B; T + B cover all 8.
    top = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    a = np.column_stack([top, ~top, np.array([1, 1, 1, 0, 1, 1, 1, 0], dtype=bool)])
    w = np.ones(8)
    greedy = siting.greedy_sites(a, w, covered=None, target_share=1.0)
    assert greedy["site"].tolist()[0] == 2
    assert len(greedy) == 3
    lscp = siting.lscp_sites(a, w, 1.0)
    assert sorted(lscp["site"]) == [0, 1]
    assert lscp.attrs["bound"] == 2
    assert siting.greedy_sites(a, w, 2).attrs["objective"] == 7
    assert siting.mclp_sites(a, w, 2).attrs["objective"] == 8


def test_points_already_covered_add_no_gain():
    # site 0 reaches only the two heavy points, which existing stations already cover
    a = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=bool)
    w = np.array([100.0, 100.0, 1.0, 1.0])
    covered = np.array([True, True, False, False])
    for res in (
        siting.greedy_sites(a, w, 3, covered=covered),
        siting.mclp_sites(a, w, 3, covered=covered),
    ):
        assert res["site"].tolist() == [2]  # nothing else adds anything
        assert res["gain_weight"].tolist() == [2.0]
        assert res.attrs["existing_share"] == pytest.approx(200 / 202)
        assert res["share"].iloc[-1] == pytest.approx(1.0)
    assert siting.greedy_sites(a, w, 3).iloc[0]["site"] == 0  # without them it would lead


def test_greedy_to_a_target_and_lscp_unreachable():
    a, w, covered = _instance(3)
    hi = _covered_weight(a, w, covered, range(a.shape[1])) / w.sum()
    res = siting.greedy_sites(a, w, covered=covered, target_share=hi - 0.01)
    assert res["share"].iloc[-1] >= hi - 0.01
    assert res["share"].iloc[-2] < hi - 0.01
    with pytest.raises(InputError, match=rf"cannot be reached.*together reach {hi:.1%}"):
        siting.lscp_sites(a, w, min(hi + 0.02, 1.0), covered=covered)


def test_time_limit_returns_a_flagged_answer():
    rng = np.random.default_rng(5)
    a = rng.random((3000, 300)) < 0.02
    w = rng.random(3000)
    res = siting.mclp_sites(a, w, 30, time_limit_s=1e-4)
    assert res.attrs["status"].startswith("time_limit")
    greedy = siting.greedy_sites(a, w, 30)
    assert res.attrs["objective"] >= greedy.attrs["objective"] - 1e-9
    bound = res.attrs["bound"]  # NaN when the solver stopped before it had one
    assert math.isnan(bound) or bound >= res.attrs["objective"]
    assert len(res) == 30


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, w: siting.mclp_sites(a, w, -1), "whole number"),
        (lambda a, w: siting.greedy_sites(a, w[:-1], 2), "weights for a matrix"),
        (lambda a, w: siting.lscp_sites(a, w, 1.5), "fraction in"),
        (lambda a, w: siting.greedy_sites(a, w), "needs k"),
        (lambda a, w: siting.mclp_sites(a, w, 2, time_limit_s=0), "time limit"),
    ],
)
def test_bad_solver_inputs(call, message):
    a, w, _ = _instance(0)
    with pytest.raises(InputError, match=message):
        call(a, w)


# --------------------------------------------------------------------------- one call


def test_propose_sites_on_a_street_against_hand_distances():
    # one 2 km street, a station at its west end; speed 60 m/min → 5 min = 300 m.
    # Every point and premises sits on the one edge: walk = leg + leg + |x − x'|
    net = lines_network([(0, 0), (2000, 0)])
    stations = stations_at((0, 0))
    grids = grids_frame([box(0, 0, 2000, 40)])
    walk = WalkSettings(speed_m_per_min=60, thresholds_min=(5,))
    cov = compute_coverage(net, stations, grids, walk=walk, lattice_m=20)
    prem_xy = [(20, 35), (600, 35), (1190, 35), (1210, 38), (1800, 30)]
    premises = gpd.GeoDataFrame(
        {"name": [f"铺{i}" for i in range(5)]}, geometry=points(*prem_xy).to_numpy(), crs=UTM
    )
    cands = siting.candidate_sites(net, spacing_m=None, premises=premises)
    px, py = np.meshgrid(np.arange(10, 2000, 20), [10, 30])
    px, py = px.ravel(), py.ravel()
    w = np.full(px.size, 2000 * 40 / px.size)
    covered = px + py <= 300
    dist = (
        py[:, None]
        + np.array([y for _, y in prem_xy])
        + np.abs(px[:, None] - [x for x, _ in prem_xy])
    )
    a = dist <= 300
    snapped = snap_stations(net, stations)
    run = {"network": net, "coverage": cov, "stations_snapped": snapped, "candidates": cands}

    best2 = _best_k(a, w, covered, 2)
    res = siting.propose_sites(**run, k=2, method="mclp")
    assert res.crs.to_epsg() == 4326
    assert res["name"].tolist() == ["建议选址01", "建议选址02"]
    assert res["rank"].tolist() == [1, 2]
    assert res["cum_weight"].iloc[-1] == pytest.approx(best2)
    assert res["cum_share"].iloc[-1] == pytest.approx(best2 / w.sum())
    assert res["grid_id"].tolist() == ["g0", "g0"]
    assert res.attrs["siting"]["existing_share"] == pytest.approx(covered.mean())
    assert res.attrs["siting"]["status"] == "optimal"

    greedy = siting.propose_sites(**run, k=5, method="greedy")
    base = float(w[covered].sum())
    singles = [_covered_weight(a, w, covered, [j]) - base for j in range(5)]
    assert greedy["gain_weight"].iloc[0] == pytest.approx(max(singles))
    # the site at x = 20 only reaches points the station already serves: never proposed
    assert singles[0] == 0
    assert "P0001" not in set(greedy["site_id"])
    assert len(greedy) == 4
    assert greedy["candidate_name"].iloc[0] == "铺" + str(int(np.argmax(singles)))

    hi = _covered_weight(a, w, covered, range(5))
    target = (base + 0.8 * (hi - base)) / w.sum()
    lscp = siting.propose_sites(**run, target_share=target, method="lscp")
    fewest = next(n for n in range(6) if _best_k(a, w, covered, n) >= target * w.sum())
    assert len(lscp) == fewest
    with pytest.raises(InputError, match="needs k"):
        siting.propose_sites(**run, method="mclp")


def test_proposed_sites_as_stations_give_the_reported_coverage_on_helsinki():
    # an independent path: add the proposed sites as stations and rerun the coverage
    net = load_network(sample_data.helsinki_pbf())
    big = max(nx.weakly_connected_components(net.to_networkx()), key=len)
    in_big = np.flatnonzero(np.isin(net.edge_u, list(big)))
    rng = np.random.default_rng(4)
    e = rng.choice(in_big, 6, replace=False)
    st_pts = shapely.line_interpolate_point(
        net.edges.geometry.to_numpy()[e], rng.random(6), normalized=True
    )
    stations = gpd.GeoDataFrame(
        {"station_id": [f"s{i}" for i in range(6)], "name": [f"站{i}" for i in range(6)],
         "tier": ["station"] * 6},
        geometry=st_pts,
        crs=net.crs,
    )  # fmt: skip
    x0, y0, x1, y1 = net.edges.total_bounds
    dx, dy = (x1 - x0) / 5, (y1 - y0) / 5
    cells = [
        shapely.box(x0 + i * dx, y0 + j * dy, x0 + (i + 1) * dx, y0 + (j + 1) * dy)
        for i in (1, 2, 3)
        for j in (1, 2, 3)
    ]
    grids = grids_frame(cells).set_crs(net.crs, allow_override=True)
    walk = WalkSettings()
    cov = compute_coverage(net, stations, grids, walk=walk, lattice_m=40)
    snapped = snap_stations(net, stations)
    final = {}
    for method in ("greedy", "mclp"):
        res = siting.propose_sites(net, cov, snapped, k=5, method=method, spacing_m=80)
        final[method] = res["cum_weight"].iloc[-1]
        assert len(res) == 5
        new = gpd.GeoDataFrame(
            {"station_id": res["site_id"], "name": res["name"], "tier": "station"},
            geometry=res.geometry.to_crs(net.crs),
            crs=net.crs,
        )
        both = gpd.GeoDataFrame(
            pd.concat([stations, new], ignore_index=True), geometry="geometry", crs=net.crs
        )
        again = compute_coverage(net, both, grids, walk=walk, lattice_m=40)
        top = again.rollup[again.rollup["level"] == "district"].iloc[0]
        assert res["cum_weight"].iloc[-1] == pytest.approx(top["covered_5min"], rel=1e-9)
        assert res["cum_share"].iloc[-1] == pytest.approx(top["coverage_5min"], rel=1e-9)
    assert final["mclp"] >= final["greedy"] - 1e-6


def test_too_many_candidates_are_refused_naming_the_count(monkeypatch):
    net = _street_grid()  # 40 street ends: every node is a candidate at a tiny spacing
    monkeypatch.setattr(siting, "MAX_CANDIDATES", 30)
    with pytest.raises(InputError, match=r"40 candidate sites \(40 node\); the limit is 30"):
        siting.candidate_sites(net, spacing_m=0.01)
    assert len(siting.candidate_sites(net, spacing_m=100)) <= 30
    with pytest.raises(InputError, match="spacing_m must be a positive number of metres, got inf"):
        siting.candidate_sites(net, spacing_m=float("inf"))


def test_a_coverage_matrix_too_big_is_refused_before_it_is_built(monkeypatch):
    net = _street_grid()
    grids = grids_frame([box(0, 0, 300, 300)])
    cov = compute_coverage(net, stations_at((0, 0)), grids, walk=WalkSettings(), lattice_m=10)
    snapped = snap_to_edges(net, stations_at((0, 0)))
    monkeypatch.setattr(siting, "MAX_MATRIX_ENTRIES", 1000)
    with pytest.raises(
        InputError, match=r"would make a coverage matrix of about .* the limit is 1,000"
    ):
        siting.propose_sites(net, cov, snapped, k=1, distance_m=100, spacing_m=1)
    with pytest.raises(InputError, match="distance_m must be positive metres up to 20,000"):
        siting.propose_sites(net, cov, snapped, k=1, distance_m=1e12)
