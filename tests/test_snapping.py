"""Nearest-edge snapping against brute force: every point measured to every edge."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.netfixtures import UTM, X0, Y0, lines_network

from servicecircle import snapping
from servicecircle.errors import SnapError


def brute_force(net, xy, edges=None):
    """Distance from each point to each (allowed) edge with shapely, the minimum."""
    lines = net.edges.geometry.to_numpy()
    allowed = np.arange(len(lines)) if edges is None else np.asarray(edges)
    d = shapely.distance(shapely.points(xy)[:, None], lines[allowed][None, :])
    return d.min(axis=1), allowed[d.argmin(axis=1)], d


def random_network(rng, n_lines, extent, max_vertices):
    lines = []
    for _ in range(n_lines):
        k = int(rng.integers(2, max_vertices + 1))
        lines.append([tuple(p) for p in rng.uniform(0, extent, (k, 2)).round(3)])
    return lines_network(*lines)


@pytest.mark.parametrize("seed", range(5))
def test_nearest_edge_equals_brute_force_with_long_segments(seed):
    rng = np.random.default_rng(seed)
    # segments up to ~2 km: many samples each, and points up to 1 km off the network
    net = random_network(rng, 25, 1500.0, 5)
    xy = rng.uniform(-500, 2000, (400, 2)) + np.array([X0, Y0])
    got = snapping.snap_to_edges(net, gpd.GeoSeries(shapely.points(xy), crs=UTM))
    dist, _, all_d = brute_force(net, xy)
    np.testing.assert_allclose(got["leg_m"], dist, atol=1e-6)
    # the chosen edge is a nearest one (ties may pick either)
    chosen = all_d[np.arange(len(xy)), got["edge"].to_numpy()]
    np.testing.assert_allclose(chosen, dist, atol=1e-6)
    # projection point: on the chosen edge, at the leg's distance, at offset_m along it
    lines = net.edges.geometry.to_numpy()[got["edge"].to_numpy()]
    proj = shapely.points(got[["snap_x", "snap_y"]].to_numpy())
    np.testing.assert_allclose(shapely.distance(proj, lines), 0.0, atol=1e-6)
    np.testing.assert_allclose(shapely.distance(proj, shapely.points(xy)), dist, atol=1e-6)
    np.testing.assert_allclose(got["offset_m"], shapely.line_locate_point(lines, proj), atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_nearest_edge_equals_brute_force_on_short_segments_and_vertices(seed):
    # a dense footway-like network: segments of a few metres, a zero-length segment, and
    # points placed exactly on vertices (ties between edges that share them)
    rng = np.random.default_rng(100 + seed)
    lines = []
    for _ in range(40):
        start = rng.uniform(0, 200, 2)
        steps = rng.normal(0, 6, (int(rng.integers(1, 8)), 2))
        path = np.vstack([start, start + np.cumsum(steps, axis=0)]).round(2)
        lines.append([tuple(p) for p in path])
    lines.append([lines[0][0], lines[0][0], lines[1][0]])  # a repeated vertex
    net = lines_network(*lines)
    vertices = net.edge_coords[rng.choice(len(net.edge_coords), 50)]
    xy = np.vstack([rng.uniform(-20, 220, (400, 2)) + np.array([X0, Y0]), vertices])
    got = snapping.snap_to_edges(net, gpd.GeoSeries(shapely.points(xy), crs=UTM))
    dist, _, all_d = brute_force(net, xy)
    np.testing.assert_allclose(got["leg_m"], dist, atol=1e-6)
    chosen = all_d[np.arange(len(xy)), got["edge"].to_numpy()]
    np.testing.assert_allclose(chosen, dist, atol=1e-6)
    assert (got["leg_m"].to_numpy()[-50:] < 1e-9).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_subset_snapping_equals_brute_force_over_the_subset(seed, n_allowed):
    rng = np.random.default_rng(seed)
    net = random_network(rng, 15, 800.0, 4)
    # unsorted, with repeats: the caller's order does not matter
    allowed = rng.choice(net.n_edges, size=min(n_allowed, net.n_edges))
    xy = rng.uniform(-100, 900, (60, 2)) + np.array([X0, Y0])
    got = snapping.snap_to_edges(net, gpd.GeoSeries(shapely.points(xy), crs=UTM), edges=allowed)
    dist, _, _ = brute_force(net, xy, allowed)
    assert np.isin(got["edge"], allowed).all()
    np.testing.assert_allclose(got["leg_m"], dist, atol=1e-6)


def test_bad_points_are_refused_with_their_position():
    net = lines_network([(0, 0), (100, 0)])
    pts = gpd.GeoSeries([shapely.Point(X0, Y0), shapely.Point()], crs=UTM)
    with pytest.raises(SnapError, match="position 1"):
        snapping.snap_to_edges(net, pts)
    far = gpd.GeoSeries([shapely.Point(np.nan, np.nan)], crs=UTM)
    with pytest.raises(SnapError, match="position 0"):
        snapping.snap_to_edges(net, far)
    with pytest.raises(SnapError, match="no walkable edges"):
        snapping.snap_to_edges(net, pts.iloc[:1], edges=np.array([], dtype=np.int64))


def test_snapping_builds_no_edge_geometries():
    net = lines_network([(0, 0), (100, 0)], [(100, 0), (100, 100)])
    snapping.snap_to_edges(net, gpd.GeoSeries([shapely.Point(X0 + 50, Y0 + 9)], crs=UTM))
    # the lazily built GeoDataFrames are the memory of a large network: snapping and the
    # network's arrays do without them
    assert "edges" not in net.__dict__
    assert "nodes" not in net.__dict__
