"""Rings against hand-computed geometry, plus properties on random small graphs."""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.netfixtures import lines_network, local, points

from servicecircle import isochrones, reach, snapping

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
    for ring in rings.geometry:
        assert not local(ring).intersects(shapely.Point(100, 200))
        assert local(ring).bounds[3] <= 30.0 + 1e-9


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
        # nested by construction (each ring is unioned with the smaller one); overlay
        # arithmetic may leave sub-micrometre slivers, nothing more
        assert shapely.area(shapely.difference(small, big)) < 1e-6
    # a station's reach never exceeds the street length, and the union equals the
    # single station's ring when there is one station
    assert union["length_m"].iloc[-1] <= net.edge_length_m.sum() + 1e-6
    assert union["length_m"].to_numpy() == pytest.approx(lengths)
