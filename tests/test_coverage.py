"""Coverage per grid and roll-ups, against hand counts and networkx on real OSM data."""

from __future__ import annotations

import itertools
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from tests.netfixtures import UTM, X0, Y0, lines_network, points

from servicecircle import sample_data
from servicecircle.coverage import (
    UNASSIGNED,
    compute_coverage,
    demand_points,
    rollup,
)
from servicecircle.errors import InputError, ServiceCircleWarning
from servicecircle.network import load_network
from servicecircle.settings import WalkSettings
from servicecircle.snapping import snap_homes, snap_to_edges


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def grids_frame(geoms, **cols) -> gpd.GeoDataFrame:
    n = len(geoms)
    data = {
        "grid_id": cols.pop("grid_id", [f"g{i}" for i in range(n)]),
        "subdistrict": cols.pop("subdistrict", [None] * n),
        "community": cols.pop("community", [None] * n),
        "grid_name": cols.pop("grid_name", [None] * n),
        "population": cols.pop("population", [np.nan] * n),
    }
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=UTM)


def stations_at(*xy, names=None, tiers=None) -> gpd.GeoDataFrame:
    pts = points(*xy)
    n = len(pts)
    return gpd.GeoDataFrame(
        {
            "station_id": [f"s{i}" for i in range(n)],
            "name": names or [f"站{i}" for i in range(n)],
            "tier": tiers or ["station"] * n,
        },
        geometry=pts.to_numpy(),
        crs=UTM,
    )


# A street along the x axis, x = 0 … 1000 m; grid squares north of it.
STREET = [(0.0, 0.0), (1000.0, 0.0)]


def test_lattice_share_is_exact_by_hand():
    # speed 20 m/min → 5 min = 100 m. Lattice points at x = 10, 30, …, 190 and y = 10, 30;
    # walk = leg y + along-street x. Within 100 m: y=10 → x ≤ 90 (5 points); y=30 → x ≤ 70
    # (4 points). 9 of 20 equal-area points → 45 %.
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 200, 40)])
    walk = WalkSettings(speed_m_per_min=20, thresholds_min=(5,))
    res = compute_coverage(net, stations_at((0, 0)), grids, walk=walk, lattice_m=20)
    row = res.grids.iloc[0]
    assert row["n_points"] == 20
    assert row["weight"] == pytest.approx(200 * 40)
    assert row["coverage_5min"] == pytest.approx(0.45)
    assert row["covered_5min"] == pytest.approx(0.45 * 8000)
    assert row["uncovered_5min"] == pytest.approx(0.55 * 8000)
    assert row["station_id"] == "s0"
    assert row["walk_min_m"] == pytest.approx(20.0)  # the point (10, 10)
    assert res.grids.crs.to_epsg() == 4326


def test_lattice_brute_force_and_weighted_quantiles():
    # station mid-street at x=100: walk = y + |x − 100|; count by brute force
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 400, 200)])
    walk = WalkSettings(speed_m_per_min=60, thresholds_min=(5, 10))
    res = compute_coverage(net, stations_at((100, 0)), grids, walk=walk, lattice_m=20)
    xs, ys = np.meshgrid(np.arange(10, 400, 20), np.arange(10, 200, 20))
    d = np.sort((ys + np.abs(xs - 100)).ravel())
    row = res.grids.iloc[0]
    assert row["n_points"] == d.size == 200
    assert row["coverage_5min"] == pytest.approx(np.mean(d <= 300))
    assert row["coverage_10min"] == pytest.approx(np.mean(d <= 600))
    # equal weights: the weighted median is the lower middle value, p90 the 180th value
    assert row["walk_median_m"] == pytest.approx(d[99])
    assert row["walk_p90_m"] == pytest.approx(d[179])


def test_population_spreads_over_points_and_covered_reads_as_residents():
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 200, 40)], population=[1000.0])
    walk = WalkSettings(speed_m_per_min=20, thresholds_min=(5,))
    res = compute_coverage(net, stations_at((0, 0)), grids, walk=walk, lattice_m=20)
    row = res.grids.iloc[0]
    assert res.demand["weight"] == "population"
    assert row["weight"] == pytest.approx(1000)
    assert row["covered_5min"] == pytest.approx(450)


def test_buildings_footprint_times_floors():
    # two 10 m × 10 m buildings: near one (2 floors) at walk 15+5+… ; far one (5 floors)
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 600, 100)])
    near = box(20, 10, 30, 20)  # point on surface ≈ (25, 15): walk 15 + 25 = 40 m
    far = box(500, 10, 510, 20)  # walk ≈ 15 + 505 = 520 m
    outside = box(700, 10, 710, 20)  # in no grid: ignored
    b = gpd.GeoDataFrame({"floors": [2.0, 5.0, 9.0]}, geometry=[near, far, outside], crs=UTM)
    walk = WalkSettings(speed_m_per_min=60, thresholds_min=(5,))
    res = compute_coverage(net, stations_at((0, 0)), grids, walk=walk, buildings=b)
    row = res.grids.iloc[0]
    assert res.demand == {"kind": "buildings", "lattice_m": 20.0, "weight": "footprint_floors"}
    assert row["n_points"] == 2
    assert row["weight"] == pytest.approx(100 * 2 + 100 * 5)
    assert row["coverage_5min"] == pytest.approx(200 / 700)
    fp = compute_coverage(
        net, stations_at((0, 0)), grids, walk=walk, buildings=b, weight="footprint"
    )
    assert fp.grids.iloc[0]["coverage_5min"] == pytest.approx(0.5)


def test_points_near_a_fragment_without_stations_walk_out_to_a_connected_street():
    # a second street 200 m north, not connected to the station's street: its grid's
    # points snap to the station's street instead (leg = their distance to it, under
    # max_leg_m), so they get a finite, honest walk rather than "unreachable"
    net = lines_network(STREET, [(0.0, 200.0), (500.0, 200.0)])
    grids = grids_frame([box(0, 0, 100, 40), box(0, 200, 100, 240)])
    res = compute_coverage(net, stations_at((50, 0)), grids, walk=WalkSettings(), lattice_m=20)
    near = res.grids.iloc[1]
    assert near["station_id"] == "s0"
    assert near["walk_min_m"] == pytest.approx(210.0)  # the point (50, 210): leg 210 m
    assert near["coverage_15min"] == 1.0
    assert res.grids.iloc[0]["coverage_5min"] == 1.0


def test_points_farther_than_max_leg_from_every_usable_street_are_unreachable():
    # the fragment 5 km north: its grid's points are 5 km from the station's street; a
    # straight 5 km line is no walk, so they are unreachable (and said loudly)
    net = lines_network(STREET, [(0.0, 5000.0), (500.0, 5000.0)])
    grids = grids_frame([box(0, 0, 100, 40), box(0, 5000, 100, 5040)])
    with pytest.warns(ServiceCircleWarning, match=r"50% of the demand lies more than 250 m.*g1"):
        res = compute_coverage(net, stations_at((50, 0)), grids, walk=WalkSettings(), lattice_m=20)
    far = res.grids.iloc[1]
    assert far["coverage_15min"] == 0.0
    assert far["station_id"] is None or pd.isna(far["station_id"])
    assert np.isnan(far["walk_min_m"]) or np.isinf(far["walk_min_m"])
    assert far["leg_over_250m_share"] == 1.0
    assert res.grids.iloc[0]["coverage_5min"] == 1.0


def test_grids_mostly_off_the_network_are_an_error():
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 100, 40), box(0, 3000, 400, 3400)])
    with pytest.raises(InputError, match=r"9\d% of the demand .* beyond the network extract"):
        compute_coverage(net, stations_at((50, 0)), grids, walk=WalkSettings(), lattice_m=20)


def test_tier_thresholds_per_tier_and_combined():
    # district centre at x=0 (threshold 15 min = 900 m), station at x=1000 (5 min = 300 m)
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 1000, 20)])  # points at x = 10 … 990, y = 10
    st = stations_at((0, 0), (1000, 0), tiers=["district", "station"])
    tiers = {"district": 15.0, "station": 5.0}
    res = compute_coverage(net, st, grids, walk=WalkSettings(), lattice_m=20, tier_minutes=tiers)
    row = res.grids.iloc[0]
    x = np.arange(10, 1000, 20)
    assert row["coverage_tier_district"] == pytest.approx(np.mean(x + 10 <= 900))
    assert row["coverage_tier_station"] == pytest.approx(np.mean(1000 - x + 10 <= 300))
    both = (x + 10 <= 900) | (1000 - x + 10 <= 300)
    assert row["coverage_tiered"] == pytest.approx(np.mean(both))


def test_rollup_sums_weights_not_percentages():
    net = lines_network(STREET)
    # community A: a small, fully covered grid and a large, half-covered one
    geoms = [box(0, 0, 100, 20), box(0, 0, 1000, 20), box(900, 0, 1000, 20)]
    grids = grids_frame(
        geoms,
        subdistrict=["东街道", "东街道", "东街道"],
        community=["A社区", "A社区", None],
    )
    walk = WalkSettings(speed_m_per_min=60, thresholds_min=(5,))
    with pytest.warns(ServiceCircleWarning, match="1 grid.*without a 社区.*g2.*unassigned"):
        res = compute_coverage(net, stations_at((0, 0)), grids, walk=walk, lattice_m=20)
    r = res.rollup
    grid_rows = r[r["level"] == "grid"]
    assert len(grid_rows) == 3
    top = r[r["level"] == "district"].iloc[0]
    assert top["weight"] == pytest.approx(grid_rows["weight"].sum())
    assert top["covered_5min"] == pytest.approx(grid_rows["covered_5min"].sum())
    comm = r[r["level"] == "community"].set_index("community")
    assert set(comm.index) == {"A社区", UNASSIGNED}
    a = grid_rows[grid_rows["community"] == "A社区"]
    assert comm.loc["A社区", "n_grids"] == 2
    expected = a["covered_5min"].sum() / a["weight"].sum()
    assert comm.loc["A社区", "coverage_5min"] == pytest.approx(expected)
    assert expected != pytest.approx(a["coverage_5min"].mean())  # weights, not averages
    sub = r[r["level"] == "subdistrict"].iloc[0]
    assert sub["subdistrict"] == "东街道"
    assert sub["weight"] == pytest.approx(top["weight"])


def test_rollup_with_no_hierarchy_columns_has_district_and_grids_only():
    frame = pd.DataFrame(
        {"grid_id": ["a", "b"], "grid_name": [None, None], "weight": [10.0, 30.0],
         "covered_5min": [10.0, 0.0], "uncovered_5min": [0.0, 30.0]}
    )  # fmt: skip
    r = rollup(frame, [5])
    assert list(r["level"]) == ["district", "grid", "grid"]
    assert r.iloc[0]["coverage_5min"] == pytest.approx(0.25)


def test_demand_points_lattice_small_grid_gets_a_point():
    grids = grids_frame([box(0, 0, 5, 5), box(0, 100, 100, 200)])
    pts = demand_points(grids, crs=UTM, lattice_m=20)
    counts = np.bincount(pts["grid"], minlength=2)
    assert counts[0] == 1  # too small for the lattice: one point on its surface
    assert counts[1] == 25
    per_grid = np.bincount(pts["grid"], weights=pts["weight"], minlength=2)
    np.testing.assert_allclose(per_grid, [25.0, 10_000.0])
    assert shapely.contains(grids.geometry.to_numpy()[pts["grid"]], pts.geometry.to_numpy()).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weight": "population"}, "needs a population column"),
        ({"weight": "footprint"}, "needs buildings"),
        ({"weight": "people"}, "not one of"),
        ({"lattice_m": 0}, "lattice_m must be a positive number of metres, got 0"),
    ],
)
def test_bad_coverage_options(kwargs, message):
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 100, 40)])
    with pytest.raises(InputError, match=message):
        compute_coverage(net, stations_at((0, 0)), grids, **kwargs)


# --------------------------------------------------------------------------- real OSM data


def _nx_point_distances(network, stations, pts) -> np.ndarray:
    """Independent walk distances: split edges at the snapped positions in a networkx graph.

    Every station and point becomes a real node joined to its projection point by its leg;
    projection points split their edge. networkx multi-source Dijkstra does the rest.
    Private ways (gated compounds) follow their definition, not the network's twin nodes:
    each OSM node has a public and a private state, public ways join public states, private
    ways private states, and a walk from a station may step from a node's public state to
    its private state but never back (private ways only at the home end).
    """
    public = np.flatnonzero(~network.edge_private)
    s_snap = snap_to_edges(network, stations, edges=public)  # stations stand on public ways
    # points snap only to edges in parts of the network that hold a station (the rule
    # of coverage.station_edges), found here with networkx's own components
    full = network.to_networkx()
    parts = nx.weakly_connected_components(full) if full.is_directed() else (
        nx.connected_components(full))  # fmt: skip
    comp = {n: i for i, c in enumerate(parts) for n in c}
    st_comp = {comp[int(network.edge_u[e])] for e in s_snap["edge"]}
    allowed = np.array([e for e in range(len(network.edge_u))
                        if comp[int(network.edge_u[e])] in st_comp])  # fmt: skip
    # homes: the nearest edge, or the public street within the street front (30 m)
    p_snap = snap_homes(network, pts, edges=allowed, front_m=30.0)
    osmid = network.node_osmid
    private = network.edge_private
    g = nx.DiGraph()

    def both(a, b, w):
        for x, y in ((a, b), (b, a)):
            if not g.has_edge(x, y) or g[x][y]["weight"] > w:
                g.add_edge(x, y, weight=w)

    marks: dict[int, list[tuple[float, object]]] = {}
    for kind, snap in (("s", s_snap), ("p", p_snap)):
        for i, (e, off, leg) in enumerate(snap[["edge", "offset_m", "leg_m"]].to_numpy()):
            marks.setdefault(int(e), []).append((off, (kind, "on", i)))
            both((kind, i), (kind, "on", i), leg)
    u, v, length = network.edge_u, network.edge_v, network.edge_length_m
    for e in range(len(length)):
        layer = "priv" if private[e] else "pub"
        a, b = (osmid[u[e]], layer), (osmid[v[e]], layer)
        chain = [(0.0, a), *sorted(marks.get(e, []), key=lambda t: t[0]), (length[e], b)]
        for (o1, x), (o2, y) in itertools.pairwise(chain):
            both(x, y, o2 - o1)
    for o in set(osmid.tolist()):
        g.add_edge((o, "pub"), (o, "priv"), weight=0.0)  # into a compound, never out
    dist = nx.multi_source_dijkstra_path_length(
        g, [("s", i) for i in range(len(stations))], weight="weight"
    )
    return np.array([dist.get(("p", i), np.inf) for i in range(len(pts))])


@pytest.fixture(scope="module")
def helsinki():
    path = sample_data.helsinki_pbf()
    net = load_network(path)
    stations = sample_data.stations_from_pois(sample_data.osm_pois(path))
    buildings = sample_data.osm_buildings(path)
    return net, stations, buildings


def test_helsinki_buildings_coverage_matches_networkx(helsinki):
    net, stations, buildings = helsinki
    # four grids: the quadrants of the buildings' extent
    b = buildings.to_crs(net.crs)
    x0, y0, x1, y1 = b.total_bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    quads = [shapely.box(x0, y0, xm, ym), shapely.box(xm, y0, x1, ym),
             shapely.box(x0, ym, xm, y1), shapely.box(xm, ym, x1, y1)]  # fmt: skip
    grids = gpd.GeoDataFrame(
        {"grid_id": list("abcd"), "subdistrict": ["S"] * 4, "community": ["C1", "C1", "C2", "C2"],
         "grid_name": list("ABCD"), "population": [np.nan] * 4},
        geometry=quads,
        crs=net.crs,
    )  # fmt: skip
    res = compute_coverage(net, stations, grids, walk=WalkSettings(), buildings=buildings)
    pts = res.points
    assert res.demand["kind"] == "buildings"
    assert len(pts) > 300  # the extract's real buildings
    rng = np.random.default_rng(7)
    sample = rng.choice(len(pts), size=min(250, len(pts)), replace=False)
    sub = pts.iloc[sample]
    ref = _nx_point_distances(net, stations, sub.geometry)
    np.testing.assert_allclose(sub["dist_m"].to_numpy(), ref, rtol=0, atol=1e-6)
    # one whole grid against networkx: its covered weights from the reference distances
    g = int(np.argmin(np.where(res.grids["n_points"] > 0, res.grids["n_points"], 10**9)))
    mine = pts[pts["grid"] == g]
    ref_g = _nx_point_distances(net, stations, mine.geometry)
    for t in (5, 10, 15):
        expected = mine["weight"].to_numpy()[ref_g <= WalkSettings().distance_for(t)].sum()
        assert res.grids.iloc[g][f"covered_{t}min"] == pytest.approx(expected)
    top = res.rollup[res.rollup["level"] == "district"].iloc[0]
    assert top["weight"] == pytest.approx(res.grids["weight"].sum())


@pytest.mark.shared_data
def test_shanghai_lattice_coverage_matches_networkx(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)  # the extract's small parts
        net = load_network(shared_data / "shanghai" / "shanghai_center_drive.osm.bz2")
    rng = np.random.default_rng(3)
    # 302 stations at random positions on random edges, as in the benchmark
    e = rng.choice(len(net.edges), size=302, replace=False)
    lines = net.edges.geometry.to_numpy()[e]
    st_pts = shapely.line_interpolate_point(lines, rng.random(302), normalized=True)
    stations = gpd.GeoDataFrame(
        {"station_id": [f"S{i}" for i in range(302)], "name": [f"驿站{i}" for i in range(302)],
         "tier": ["station"] * 302},
        geometry=st_pts,
        crs=net.crs,
    )  # fmt: skip
    x0, y0, x1, y1 = net.edges.total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    cells = [
        shapely.box(cx + i * 500, cy + j * 500, cx + (i + 1) * 500, cy + (j + 1) * 500)
        for i in range(-2, 2)
        for j in range(-2, 2)
    ]
    grids = grids_frame(cells).set_crs(net.crs, allow_override=True)
    res = compute_coverage(net, stations, grids, walk=WalkSettings(), lattice_m=50)
    pts = res.points
    assert len(pts) == 16 * 100
    sample = rng.choice(len(pts), size=300, replace=False)
    ref = _nx_point_distances(net, stations, pts.geometry.iloc[sample])
    np.testing.assert_allclose(pts["dist_m"].to_numpy()[sample], ref, rtol=0, atol=1e-6)
    # equal-area lattice weights: the district share is the share of points
    for t in (5, 10, 15):
        share = np.mean(pts["dist_m"].to_numpy() <= 60 * t)
        top = res.rollup[res.rollup["level"] == "district"].iloc[0]
        assert top[f"coverage_{t}min"] == pytest.approx(share)


def test_a_centimetre_lattice_is_refused_before_anything_is_allocated():
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 1000, 400), box(0, 400, 1000, 800)])
    with pytest.raises(InputError) as info:
        demand_points(grids, crs=net.crs, lattice_m=0.01)
    text = str(info.value)
    # 0.8 km² / 0.01² m² = 8e9 points, limit 5 M: the smallest spacing is √(0.8e6/5e6) → 1 m
    assert text.startswith("lattice_m=0.01 would make about 8e+09 demand points in 2 grid(s)")
    assert "of 0.80 km²; the limit is 5,000,000; use lattice_m of at least 1 m" in text


def test_grids_the_size_of_a_country_point_at_their_crs():
    from servicecircle.coverage import check_lattice_size

    huge = np.array([shapely.box(0, 0, 200_000, 200_000)])  # 40,000 km²
    with pytest.raises(InputError, match="far more than a district: check their coordinate"):
        check_lattice_size(huge, 20.0)
    assert check_lattice_size(huge, 100.0) == 4_000_001
    with pytest.raises(InputError, match="lattice_m must be a positive number of metres, got nan"):
        check_lattice_size(huge, float("nan"))


def test_lattice_in_strips_equals_the_whole_bounding_box(monkeypatch):
    from servicecircle import coverage

    # a long thin diagonal grid: its bounding box holds 100× the points inside it
    strip = shapely.Polygon([(0, 0), (20, 0), (2020, 2000), (2000, 2000)])
    whole = coverage._lattice(np.array([strip]), 5.0)[1]
    monkeypatch.setattr(coverage, "_LATTICE_CHUNK", 1000)  # a few rows at a time
    owner, pts = coverage._lattice(np.array([strip]), 5.0)
    assert len(pts) == len(whole) > 1000
    assert shapely.equals(pts, whole).all()
    assert (owner == 0).all()
    xy = shapely.get_coordinates(pts)
    assert shapely.contains_xy(strip, xy[:, 0], xy[:, 1]).all()


def test_long_legs_are_counted_and_beyond_max_leg_unreachable():
    """A 100 m × 400 m grid north of a straight street: a point's leg is its y (m)."""
    net = lines_network(STREET)
    grids = grids_frame([box(0, 0, 100, 400)])
    walk = WalkSettings(max_leg_m=250)
    with pytest.warns(ServiceCircleWarning, match="35% of the demand .* unreachable"):
        res = compute_coverage(net, stations_at((0, 0)), grids, walk=walk, lattice_m=20)
    pts = res.points
    y = shapely.get_y(pts.geometry.to_numpy()) - Y0
    x = shapely.get_x(pts.geometry.to_numpy()) - X0
    w = pts["weight"].to_numpy()
    for d, share in res.long_legs().items():
        assert share == pytest.approx(w[y > d].sum() / w.sum(), abs=1e-12)
    assert set(res.long_legs()) == {100.0, 250.0}
    row = res.grids.iloc[0]
    assert row["leg_over_100m_share"] == pytest.approx(w[y > 100].sum() / w.sum())
    # beyond 250 m the straight leg is no walk: unreachable, even where leg + x ≤ 900 m
    far = y > 250
    assert far.any()
    assert np.isinf(pts["dist_m"].to_numpy()[far]).all()
    near = ~far
    np.testing.assert_allclose(pts["dist_m"].to_numpy()[near], (y + x)[near], atol=1e-9)
    assert row["covered_15min"] == pytest.approx(w[near & (y + x <= 900)].sum())
    # a wider max_leg_m reaches them again, through the same legs
    wide = compute_coverage(
        net, stations_at((0, 0)), grids, walk=WalkSettings(max_leg_m=500), lattice_m=20
    )
    np.testing.assert_allclose(wide.points["dist_m"].to_numpy(), y + x, atol=1e-9)
