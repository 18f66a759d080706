"""Gap polygons, gap points and the ranked gap list, against hand-computed geometry."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from tests.netfixtures import UTM, X0, Y0, lines_network
from tests.test_coverage import STREET, box, grids_frame, stations_at

from servicecircle.coverage import compute_coverage
from servicecircle.errors import InputError
from servicecircle.gaps import MIN_GAP_M2, gap_list, gap_points, gap_polygons
from servicecircle.isochrones import reach_union_rings
from servicecircle.settings import WalkSettings
from servicecircle.snapping import snap_to_edges

WALK = WalkSettings(speed_m_per_min=60, thresholds_min=(5,), frontage_m=30)


def run(grids, *station_xy, walk=WALK):
    net = lines_network(STREET)
    st = stations_at(*station_xy)
    res = compute_coverage(net, st, grids, walk=walk, lattice_m=20)
    rings = reach_union_rings(
        net,
        res.reach,
        snap_to_edges(net, st),
        distances_m=walk.distances_m,
        thresholds_min=walk.thresholds_min,
        frontage_m=walk.frontage_m,
    )
    return net, st, res, rings


def test_gap_polygon_is_grid_minus_frontage_by_hand():
    # station at x=0 reaches x ≤ 300 m; the frontage is 30 m deep, ending in a rounded cap.
    # Inside the grid (y ≥ 0) the ring covers a 300 × 30 rectangle plus a quarter disc
    # of radius 30 (a polygon approximation: between the inscribed 4-chord polygon and the disc).
    grids = grids_frame([box(0, 0, 1000, 100)])
    _, _, res, rings = run(grids, (0, 0))
    gaps = gap_polygons(res.grids, rings).to_crs(UTM)
    assert len(gaps) == 1
    covered = 1000 * 100 - gaps.iloc[0]["area_m2"]
    chord = 2 * 30**2 * math.sin(math.pi / 8)  # 4 segments per quarter circle
    assert 300 * 30 + chord - 1 <= covered <= 300 * 30 + math.pi * 30**2 / 4 + 1
    assert gaps.iloc[0]["area_m2"] == pytest.approx(gaps.geometry.area.iloc[0], rel=1e-6)
    assert shapely.is_valid(gaps.geometry.to_numpy()).all()
    assert gaps.iloc[0]["threshold_min"] == 5.0


def test_slivers_below_the_minimum_are_dropped():
    # a 60 m × 35 m grid along the covered street: only a 60 × 5 = 300 m² strip is left,
    # below MIN_GAP_M2, so the grid has no gap polygon (while a 100 × 5 strip would stay
    # if the minimum were lowered)
    assert MIN_GAP_M2 > 60 * 5
    grids = grids_frame([box(0, 0, 60, 35)])
    _, _, res, rings = run(grids, (0, 0))
    assert len(gap_polygons(res.grids, rings)) == 0
    kept = gap_polygons(res.grids, rings, min_area_m2=100).to_crs(UTM)
    assert kept.iloc[0]["area_m2"] == pytest.approx(60 * 5, rel=1e-6)


def test_gap_points_and_ranked_list():
    # three grids along the street; the station at x=0 covers the first fully
    grids = grids_frame(
        [box(0, 0, 200, 40), box(400, 0, 600, 40), box(800, 0, 1000, 80)],
        community=["甲", "乙", "丙"],
    )
    _, st, res, rings = run(grids, (0, 0))
    pts = gap_points(res.points, st, distance_m=300, threshold_min=5)
    # every uncovered point is farther than 300 m by hand: leg y + along x
    local = pts.to_crs(UTM)
    d_hand = (local.geometry.y - 4_150_000.0) + (local.geometry.x - 500_000.0)
    np.testing.assert_allclose(pts["walk_m"], d_hand, atol=1e-6)
    assert (pts["walk_m"] > 300).all()
    assert set(pts["grid_id"]) == {"g1", "g2"}
    polys = gap_polygons(res.grids, rings)
    table = gap_list(res.grids, threshold_min=5, polygons=polys, points=pts)
    # g2 is twice as large as g1 and wholly uncovered: it ranks first
    assert list(table["grid_id"]) == ["g2", "g1"]
    assert list(table["rank"]) == [1, 2]
    assert list(table["community"]) == ["丙", "乙"]
    assert table.iloc[0]["uncovered_weight"] == pytest.approx(200 * 80)
    assert table.iloc[0]["coverage_pct"] == pytest.approx(0.0)
    assert table.iloc[0]["station_id"] == "s0"
    assert table.iloc[0]["walk_min_m"] == pytest.approx(810 + 10)
    # the centroid of a wholly uncovered rectangle is its centre
    c = shapely.Point(table.iloc[0]["centroid_lon"], table.iloc[0]["centroid_lat"])
    centre = gpd.GeoSeries([shapely.Point(500_900, 4_150_040)], crs=UTM).to_crs(4326).iloc[0]
    assert c.distance(centre) < 1e-7


def test_gap_list_needs_the_threshold_columns():
    grids = grids_frame([box(0, 0, 200, 40)])
    _, _, res, rings = run(grids, (0, 0))
    with pytest.raises(InputError, match="no 10-minute columns"):
        gap_list(res.grids, threshold_min=10)
    with pytest.raises(InputError, match="no ring for 10 min"):
        gap_polygons(res.grids, rings, thresholds_min=[10])


def test_gap_polygons_equal_the_plain_difference_with_a_holed_ring():
    # a ring with holes and several parts, and grids that cut through it anywhere
    # (including one far outside): each gap is exactly grid − ring, computed directly
    rng = np.random.default_rng(7)
    lines = [
        shapely.LineString(rng.uniform(0, 1500, (4, 2)) + np.array([X0, Y0])) for _ in range(12)
    ]
    ring = shapely.union_all(shapely.buffer(lines, 30.0, quad_segs=4))
    assert any(len(p.interiors) for p in shapely.get_parts(ring))
    rings = gpd.GeoDataFrame(
        {"station_id": ["all"], "threshold_min": [5.0], "distance_m": [300.0]},
        geometry=[ring],
        crs=UTM,
    )
    cells = [
        box(x, y, x + 230, y + 170) for x in range(-100, 1600, 230) for y in range(-50, 1600, 170)
    ]
    cells.append(box(5000, 5000, 5100, 5100))
    grids = grids_frame(cells)
    gaps = gap_polygons(grids, rings, min_area_m2=0.0).to_crs(UTM)
    want = shapely.difference(np.array(cells, dtype=object), ring)
    got = dict(zip(gaps["grid_id"], gaps.geometry, strict=True))
    for i, w in enumerate(want):
        g = got.get(f"g{i}", shapely.Polygon())
        # WGS84 round trip of the output: centimetres, so compare areas and the
        # symmetric difference in m²
        assert shapely.area(g) == pytest.approx(shapely.area(w), abs=0.05), i
        assert shapely.area(shapely.symmetric_difference(g, w)) < 0.5, i
