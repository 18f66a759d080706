"""Gated compounds (小区): private paths walked from home to the gate, never as a short cut.

A 200 m × 200 m block of public streets, worked by hand. Inside, a compound's private path
runs north from its one gate on the south street and ends behind the fence, 30 m short of
the north street; a second compound's path crosses the block from the south street to the
north street (two gates). Distances are closed-form sums of the segments walked.
"""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely

from servicecircle import network as netmod
from servicecircle import reach, snapping
from servicecircle.coverage import station_edges, walk_to_points

UTM = "EPSG:32651"
X0, Y0 = 500_000.0, 4_150_000.0

PUBLIC = [
    [(0, 0), (100, 0), (150, 0), (200, 0)],  # south street, gates at x = 100 and 150
    [(200, 0), (200, 200)],  # east
    [(200, 200), (150, 200), (0, 200)],  # north street
    [(0, 200), (0, 0)],  # west
]
ONE_GATE = [(100, 0), (100, 170)]  # compound A: a dead end behind the fence
THROUGH = [(150, 0), (150, 200)]  # compound B: joins the south and the north street


COURTYARD = [(100, 170), (60, 170)]  # a public footway reached only through compound A


def _network(private: str, *, through: bool = False, courtyard: bool = False) -> netmod.WalkNetwork:
    lines = [*PUBLIC, ONE_GATE] + ([THROUGH] if through else [])
    access = ["public"] * len(PUBLIC) + ["private"] * (len(lines) - len(PUBLIC))
    if courtyard:
        lines.append(COURTYARD)
        access.append("public")
    if private == "include":
        access = ["public"] * len(lines)
    keep = [a == "public" or private != "exclude" for a in access]
    # split the public lines at every vertex so the gates are nodes
    geoms, acc = [], []
    for line, a, k in zip(lines, access, keep, strict=True):
        if not k:
            continue
        for p, q in itertools.pairwise(line):
            geoms.append(shapely.LineString([(X0 + p[0], Y0 + p[1]), (X0 + q[0], Y0 + q[1])]))
            acc.append(a)
    frame = gpd.GeoDataFrame({"walk_access": acc}, geometry=geoms, crs=UTM)
    net = netmod.network_from_edges(frame, crs=UTM)
    return netmod.layer_private(net) if private == "destination" else net


def _pt(x: float, y: float) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y)], crs=UTM)


def _walk(net, station_xy, home_xy) -> float:
    sn = snapping.snap_stations(net, _pt(*station_xy))
    homes = _pt(*home_xy)
    pts = snapping.snap_homes(net, homes, edges=station_edges(net, sn), front_m=FRONT_M)
    r = reach.nearest_station(net, sn)
    return float(walk_to_points(net, sn, homes, reach=r, points_snapped=pts)["dist_m"].iloc[0])


FRONT_M = 30.0  # a home this close to a public street faces it
HOME = (105, 165)  # inside compound A: 5 m from its path, 35 m from the north street
STATION = (100, 205)  # on the north street, just outside compound A's fence


def test_a_home_walks_its_compound_to_the_gate_and_round_the_block():
    # home → 5 m to the path → 165 m down it → gate (100, 0) → 100 + 200 + 100 m round the
    # block (either side) → the station's foot (100, 200) → its 5 m leg
    expected = 5 + 165 + 400 + 5
    assert _walk(_network("destination"), STATION, HOME) == pytest.approx(expected, abs=1e-9)
    # walked like a public path it is the same walk: the path does not reach the north street
    assert _walk(_network("include"), STATION, HOME) == pytest.approx(expected, abs=1e-9)


def test_without_the_compound_paths_the_home_crosses_the_fence_in_a_straight_line():
    # the old rule: the home snaps to the north street 35 m away, through the fence
    assert _walk(_network("exclude"), STATION, HOME) == pytest.approx(35 + 5 + 5, abs=1e-9)


def test_a_home_facing_the_street_steps_out_of_its_door():
    # 20 m from the north street (within the street front), 5 m from the compound's path
    facing = (105, 180)
    assert _walk(_network("destination"), STATION, facing) == pytest.approx(20 + 5 + 5)
    # one metre deeper than the street front: it walks the compound to its gate
    deeper = (105, 169)
    assert _walk(_network("destination"), STATION, deeper) == pytest.approx(5 + 169 + 400 + 5)


def test_no_station_reaches_through_someone_elses_compound():
    station, home = (150, -5), (160, 205)  # south street; a home on the north street
    # public only: east along the south street, up the east street, back west
    round_the_block = 5 + 50 + 200 + 40 + 5
    net = _network("destination", through=True)
    assert _walk(net, station, home) == pytest.approx(round_the_block, abs=1e-9)
    # walked as a public path, compound B would be a short cut: 5 + 200 + 10 + 5
    short_cut = 5 + 200 + 10 + 5
    assert _walk(_network("include", through=True), station, home) == pytest.approx(short_cut)
    # but a home inside compound B walks its own path out: to the south gate, the short way
    inside = (152, 100)  # 2 m from compound B's path, 100 m from either gate
    assert _walk(net, station, inside) == pytest.approx(2 + 100 + 5, abs=1e-9)


def test_a_public_footway_in_a_compound_s_courtyard_belongs_to_the_compound():
    net = _network("destination", courtyard=True)
    footway = int(net.n_edges - 1)
    assert net.edge_private[footway]  # reached only through compound A: the compound's
    # home 5 m south of the footway's west end: 40 m along it, the compound's path, the gate
    home = (60, 165)
    assert _walk(net, STATION, home) == pytest.approx(5 + 40 + 170 + 400 + 5, abs=1e-9)


def test_a_station_inside_a_compound_stands_on_the_public_street():
    net = _network("destination")
    sn = snapping.snap_stations(net, _pt(103, 160))  # 3 m from compound A's path
    assert not net.edge_private[sn["edge"]].any()
    assert sn["leg_m"].iloc[0] == pytest.approx(40)  # to the north street, the nearest public


def test_the_layered_network_keeps_geometry_and_adds_one_way_gate_links():
    flat, layered = _network("include", through=True), _network("destination", through=True)
    assert layered.n_edges == flat.n_edges
    assert layered.edge_length_m.sum() == pytest.approx(flat.edge_length_m.sum())
    # three gates: (100, 0) for A, (150, 0) and (150, 200) for B; each one twin
    assert layered.links.shape == (2, 3)
    assert layered.n_nodes == flat.n_nodes + 3
    g = layered.graph

    def stored(a, b):
        row = slice(g.indptr[a], g.indptr[a + 1])
        hit = g.indices[row] == b
        return g.data[row][hit].tolist()

    for gate, twin in layered.links.T:
        assert stored(gate, twin) == [0.0]  # a stored entry: into the compound at no cost
        assert stored(twin, gate) == []  # never out again


# --------------------------------------------------------------------------------------------
# steps: the elderly preset takes the ramp where there is one


def _stairs_network() -> netmod.WalkNetwork:
    # street P0-P1; steps P1-P2 (20 m) beside a ramp P1-P3-P5-P2 (120 m); steps P2-P4 are
    # the only way up to P4
    segs = [
        ((0, 0), (100, 0), "no"),
        ((100, 0), (100, 20), "yes"),
        ((100, 0), (150, 0), "no"),
        ((150, 0), (150, 20), "no"),
        ((150, 20), (100, 20), "no"),
        ((100, 20), (100, 40), "yes"),
    ]
    geoms = [shapely.LineString([(X0 + a[0], Y0 + a[1]), (X0 + b[0], Y0 + b[1])])
             for a, b, _ in segs]  # fmt: skip
    frame = gpd.GeoDataFrame({"steps": [s for *_, s in segs]}, geometry=geoms, crs=UTM)
    return netmod.network_from_edges(frame, crs=UTM)


def test_elderly_walks_avoid_steps_where_a_ramp_exists_and_keep_the_only_way():
    net = _stairs_network()
    easy = netmod.without_avoidable_steps(net)
    assert easy.n_edges == net.n_edges - 1  # only the steps beside the ramp go
    station = (0, -3)
    for network, up, top in ((net, 100 + 20, 100 + 20 + 20), (easy, 100 + 120, 100 + 120 + 20)):
        assert _walk(network, station, (97, 20)) == pytest.approx(3 + 3 + up, abs=1e-9)
        assert _walk(network, station, (97, 40)) == pytest.approx(3 + 3 + top, abs=1e-9)


def test_the_elderly_preset_analysis_uses_the_ramp():
    from servicecircle.pipeline import analyse
    from servicecircle.settings import WalkSettings

    net = _stairs_network()
    stations = gpd.GeoDataFrame(
        {"station_id": ["s"], "name": ["站"], "tier": ["station"]},
        geometry=[shapely.Point(X0, Y0 - 3)],
        crs=UTM,
    )
    grids = gpd.GeoDataFrame(
        {"grid_id": ["g"]}, geometry=[shapely.box(X0 + 90, Y0 + 18, X0 + 98, Y0 + 22)], crs=UTM
    )
    grids.attrs["source"] = {}
    runs = {}
    for preset in ("default", "elderly"):
        walk = WalkSettings.from_preset(preset, max_leg_m=50)
        runs[preset] = analyse(
            net, stations, grids, walk=walk, lattice_m=4, per_station_rings=False
        )
    walks = {k: a.coverage.points["dist_m"].to_numpy() for k, a in runs.items()}
    # every demand point of the grid is 100 m further by the ramp than by the steps
    np.testing.assert_allclose(walks["elderly"] - walks["default"], 100.0, atol=1e-9)


def test_steps_whose_only_other_way_crosses_a_compound_stay():
    # west street, steps, east street; a compound's private path also joins the two
    segs = [
        ((0, 0), (100, 0), "public", "no"),
        ((100, 0), (120, 0), "public", "yes"),
        ((120, 0), (220, 0), "public", "no"),
        ((100, 0), (100, 50), "private", "no"),
        ((100, 50), (120, 50), "private", "no"),
        ((120, 50), (120, 0), "private", "no"),
    ]
    geoms = [shapely.LineString([(X0 + a[0], Y0 + a[1]), (X0 + b[0], Y0 + b[1])])
             for a, b, *_ in segs]  # fmt: skip
    frame = gpd.GeoDataFrame(
        {"walk_access": [s[2] for s in segs], "steps": [s[3] for s in segs]},
        geometry=geoms,
        crs=UTM,
    )
    net = netmod.layer_private(netmod.network_from_edges(frame, crs=UTM))
    easy = netmod.without_avoidable_steps(net)
    assert easy.n_edges == net.n_edges  # the steps stay: no public way avoids them
    assert _walk(easy, (0, -2), (200, -2)) == pytest.approx(2 + 200 + 2, abs=1e-9)
