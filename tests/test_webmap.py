"""The coverage map: encoding against the format's reference, layers counted by hand,
escaping of hostile names, offline assets, and the size of a Zhifu-sized district."""

from __future__ import annotations

import json
import re

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from tests import mapfixtures as mf

from servicecircle import webmap, webpage
from servicecircle.errors import ExportError, InputError

UTM = mf.UTM
TO_WGS = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def decode_polyline(text: str) -> list[tuple[float, float]]:
    """Reference decoder written from the format's description: (lat, lon) pairs."""
    values, shift, result = [], 0, 0
    for ch in text:
        b = ord(ch) - 63
        result |= (b & 0x1F) << shift
        shift += 5
        if b < 0x20:
            values.append(~(result >> 1) if result & 1 else result >> 1)
            shift, result = 0, 0
    lat = lon = 0
    out = []
    for i in range(0, len(values), 2):
        lat += values[i]
        lon += values[i + 1]
        out.append((lat / 1e5, lon / 1e5))
    return out


def layers(m: folium.Map) -> dict[str, webpage.DataLayer]:
    """The map's data layers by runtime role."""
    out = {}
    for child in m._children.values():
        if isinstance(child, webpage.DataLayer):
            out[json.loads(child.config_json)["role"]] = child
    return out


def features(layer: webpage.DataLayer) -> list[dict]:
    return json.loads(layer.data_json)


@pytest.fixture(scope="module")
def small() -> dict[str, gpd.GeoDataFrame]:
    return mf.district(n_side=4, n_stations=6, street_m=150.0)


small_map = mf.map_of


# --------------------------------------------------------------------------- encoding


def test_polyline_matches_the_format_reference():
    pts = np.array([[38.5, -120.2], [40.7, -120.95], [43.252, -126.453]])
    ints = np.round(pts * 1e5).astype(np.int64)
    assert webmap.encode_polyline(ints) == "_p~iF~ps|U_ulLnnqC_mqNvxq`@"


def test_polyline_round_trips_through_an_independent_decoder():
    rng = np.random.default_rng(3)
    ints = np.cumsum(rng.integers(-300_000, 300_000, size=(500, 2)), axis=0)
    ints[10] = ints[9]  # zero deltas
    ints[0] = [3_745_000, 12_139_000]  # Zhifu, in 1e-5 degrees
    decoded = np.array(decode_polyline(webmap.encode_polyline(ints)))
    np.testing.assert_allclose(decoded, ints / 1e5, atol=1e-9)


def test_densified_square_is_simplified_and_stays_in_place():
    corners = [(0, 0), (300, 0), (300, 300), (0, 300)]
    box = shapely.Polygon([(mf.X0 + x, mf.Y0 + y) for x, y in corners])
    dense = shapely.segmentize(box, 5.0)
    assert shapely.get_num_coordinates(dense) > 200
    grids = gpd.GeoDataFrame({"grid_id": ["A"]}, geometry=[dense], crs=UTM)
    stations = gpd.GeoDataFrame(
        {"station_id": ["S"], "name": ["s"], "tier": ["station"]},
        geometry=[shapely.Point(mf.X0, mf.Y0)],
        crs=UTM,
    )
    m = webmap.coverage_map(grids, stations, tiles="none")
    (feat,) = features(layers(m)["grids"])
    (ring,) = feat["polygons"][0]
    got = np.array(decode_polyline(ring))[:, ::-1]  # lon, lat
    xy = np.array(corners, dtype=float) + np.array([mf.X0, mf.Y0])
    want = np.column_stack(TO_WGS.transform(xy[:, 0], xy[:, 1]))
    assert len(got) == 4  # corners only; Leaflet closes the ring
    for lon, lat in want:  # every corner present within the 1e-5 degree rounding
        assert np.min(np.hypot(got[:, 0] - lon, got[:, 1] - lat)) < 1e-5


def test_coverage_classes_by_hand():
    got = webmap.coverage_class([0.0, 0.2499, 0.25, 0.5, 0.75, 0.8999, 0.9, 1.0, np.nan])
    assert got.tolist() == [0, 0, 1, 2, 3, 3, 4, 4, -1]


# --------------------------------------------------------------------------- layers


def test_layers_and_counts(small):
    m = small_map(small)
    by_role = layers(m)
    assert set(by_role) == {
        "grids",
        "ring_5",
        "ring_10",
        "ring_15",
        "gaps",
        "resources",
        "stations",
        "sites",
    }
    assert by_role["grids"].n_features == 16
    assert by_role["stations"].n_features == 6
    assert by_role["sites"].n_features == 3
    assert by_role["resources"].n_features == 600
    n_gaps = int((small["gaps"]["threshold_min"] == 5.0).sum())
    assert by_role["gaps"].n_features == n_gaps
    names = [layer.layer_name for layer in m._children.values() if hasattr(layer, "layer_name")]
    assert names[-8:] == mf.EXPECTED_LAYERS
    # the grid colours follow the 5-min coverage: the first four grids were set by hand
    classes = [f["properties"]["cls"] for f in features(by_role["grids"])][:4]
    assert classes == [0, 2, 4, -1]  # 0 %, 50 %, 100 %, no demand


def test_rings_are_dissolved_per_threshold_and_reprojected(small):
    m = small_map(small)
    ring = features(layers(m)["ring_15"])
    assert len(ring) == 1
    rings = small["rings"]
    want = shapely.union_all(rings[rings["threshold_min"] == 15].geometry.to_numpy())
    west, south, east, north = gpd.GeoSeries([want], crs=UTM).to_crs("EPSG:4326").total_bounds
    pts = np.array([p for poly in ring[0]["polygons"] for r in poly for p in decode_polyline(r)])
    lat, lon = pts[:, 0], pts[:, 1]
    tol = 3e-5  # 2 m simplification + rounding, in degrees
    assert lon.min() == pytest.approx(west, abs=tol)
    assert lon.max() == pytest.approx(east, abs=tol)
    assert lat.min() == pytest.approx(south, abs=tol)
    assert lat.max() == pytest.approx(north, abs=tol)


def test_union_rings_are_used_as_given(small):
    rings = small["rings"]
    union = gpd.GeoDataFrame(
        {"station_id": "all", "threshold_min": [5.0]},
        geometry=[shapely.Point(mf.X0, mf.Y0).buffer(100.0)],
        crs=UTM,
    )
    both = gpd.GeoDataFrame(
        gpd.pd.concat([rings, union], ignore_index=True), geometry="geometry", crs=UTM
    )
    m = webmap.coverage_map(small["grids"], small["stations"], rings=both, tiles="none")
    assert set(layers(m)) == {"grids", "stations", "ring_5"}


def test_resources_cluster_only_when_many(small):
    many = small_map(small)
    few = small_map({**small, "resources": small["resources"].iloc[:50]})
    assert json.loads(layers(many)["resources"].config_json)["cluster"] is True
    assert json.loads(layers(few)["resources"].config_json)["cluster"] is False
    assert "leaflet.markercluster.js" in many.get_root().render()
    assert "leaflet.markercluster.js" not in few.get_root().render()


def test_missing_optional_columns_are_tolerated():
    grids = gpd.GeoDataFrame(
        geometry=[shapely.box(mf.X0, mf.Y0, mf.X0 + 100, mf.Y0 + 100)], crs=UTM
    ).to_crs("EPSG:4326")
    stations = gpd.GeoDataFrame(geometry=[shapely.Point(mf.X0 + 50, mf.Y0 + 50)], crs=UTM).to_crs(
        "EPSG:4326"
    )
    m = webmap.coverage_map(grids, stations, tiles="none")
    by_role = layers(m)
    assert by_role["grids"].layer_name == "网格 grids"
    assert features(by_role["stations"])[0]["properties"]["cls"] == "station"
    html = m.get_root().render()
    assert "图例 legend" in html


def test_unknown_threshold_names_the_computed_ones(small):
    with pytest.raises(InputError, match=r"coverage_7min.*5, 10, 15"):
        webmap.coverage_map(small["grids"], small["stations"], threshold_min=7, tiles="none")


def test_missing_crs_is_an_input_error(small):
    rings = small["rings"].set_crs(None, allow_override=True)
    with pytest.raises(InputError, match="rings have no coordinate system"):
        webmap.coverage_map(small["grids"], small["stations"], rings=rings, tiles="none")


def test_gaps_of_the_chosen_threshold_only(small):
    gaps = small["gaps"].copy()
    other = gaps.assign(threshold_min=10.0)
    both = gpd.GeoDataFrame(gpd.pd.concat([gaps, other]), crs=gaps.crs)
    m = webmap.coverage_map(small["grids"], small["stations"], gaps=both, tiles="none")
    assert layers(m)["gaps"].n_features == len(gaps)
    m10 = webmap.coverage_map(
        small["grids"], small["stations"], gaps=both, threshold_min=10, tiles="none"
    )
    assert layers(m10)["gaps"].n_features == len(other)


# --------------------------------------------------------------------------- page


def test_hostile_names_never_reach_the_page_as_markup(small, tmp_path):
    path = webmap.save_map(small_map(small), tmp_path / "m.html")
    html = path.read_text(encoding="utf-8")
    assert "<img src=x onerror" not in html
    assert "alert(3)</script>" not in html
    assert "<script>alert" not in html
    # the same map with plain names has exactly as many script elements
    plain = mf.district(n_side=4, n_stations=6, street_m=150.0, hostile=False)
    plain_html = small_map(plain).get_root().render()
    assert html.count("<script") == plain_html.count("<script")
    # Jinja syntax in a name is kept as text, not evaluated ({{ 7*7 }} is not 49)
    assert "\\u007b{ 7*7 }}" in html


def test_hostile_metadata_is_escaped(small):
    meta = {**mf.META, "network": {"source": mf.HOSTILE, "osm_date": "<b>2025</b>"}}
    m = webmap.coverage_map(small["grids"], small["stations"], metadata=meta, tiles="none")
    html = m.get_root().render()
    assert "<img src=x" not in html
    assert "<b>2025" not in html


def test_legend_escapes_text_exactly_once(small):
    """A name with ``&`` and ``<`` reads as typed: escaped once, never ``&amp;amp;``."""
    meta = {**mf.META, "network": {"source": "a&b <c>.osm", "osm_date": "2025-05-20"}}
    res = small["stations"].head(2).assign(category=["医疗&养老", "养老 <院>"])
    m = webmap.coverage_map(
        small["grids"], small["stations"], resources=res, metadata=meta, tiles="none"
    )
    # the legend travels as JSON in a script: decode it as the page does
    html = m.get_root().render().replace("\\u0026", "&").replace("\\u003c", "<")
    html = html.replace("\\u003e", ">")
    assert "a&amp;b &lt;c&gt;.osm" in html
    assert "医疗&amp;养老" in html
    assert "养老 &lt;院&gt;" in html
    assert "&amp;amp;" not in html
    assert "&amp;lt;" not in html


def test_legend_states_settings_and_source(small):
    html = small_map(small).get_root().render()
    for text in (
        "60 m/min",
        "5 / 10 / 15 min = 300 / 600 / 900 m",
        "frontage width: 30 m",
        "zhifu.osm.pbf",
        "OSM 2025-05-20",
        "OpenStreetMap contributors",
        "0–25%",
        "90–100%",
    ):
        assert text in html, text


def test_page_loads_nothing_from_the_network(small, tmp_path):
    html = webmap.save_map(small_map(small), tmp_path / "m.html").read_text(encoding="utf-8")
    assert not re.findall(r"<script[^>]+src=", html)
    assert not re.findall(r"<link[^>]+href=", html)
    assert "jquery" not in html.lower()
    for asset in ("leaflet/leaflet.js", "leaflet-search", "Control.FullScreen.js", "map.js"):
        assert asset in html
    assert "url(images/layers.png)" not in html  # inlined as a data URI


def test_basemap_is_the_only_online_part(small):
    html = small_map(small, tiles="OpenStreetMap").get_root().render()
    assert "tile.openstreetmap.org" in html
    assert not re.findall(r"<script[^>]+src=", html)


def test_saving_twice_inlines_assets_once(small, tmp_path):
    m = small_map(small)
    webmap.save_map(m, tmp_path / "a.html")
    html = webmap.save_map(m, tmp_path / "b.html").read_text(encoding="utf-8")
    for asset in ("leaflet/leaflet.js", "leaflet/leaflet.css", "servicecircle/map.js"):
        assert html.count(f"/* {asset} */") == 1


def test_save_map_reports_an_unwritable_place(small, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write the map"):
        webmap.save_map(small_map(small), blocker / "m.html")


def test_zhifu_sized_map_stays_under_5_mb(tmp_path):
    m = mf.zhifu_map()
    path = webmap.save_map(m, tmp_path / "zhifu.html")
    report = webmap.map_size_report(path)
    print(f"\nZhifu-sized synthetic map: {report}")
    assert report["bytes"] == path.stat().st_size
    assert report["within_limit"]
    assert report["bytes"] < 5_000_000
    by_role = layers(m)
    assert by_role["grids"].n_features == 1024
    assert by_role["stations"].n_features == 302


def test_multipolygon_grids_keep_every_part():
    a = shapely.box(mf.X0, mf.Y0, mf.X0 + 100, mf.Y0 + 100)
    b = shapely.box(mf.X0 + 300, mf.Y0, mf.X0 + 400, mf.Y0 + 100)
    hole = shapely.box(mf.X0 + 600, mf.Y0, mf.X0 + 900, mf.Y0 + 300).difference(
        shapely.box(mf.X0 + 700, mf.Y0 + 100, mf.X0 + 800, mf.Y0 + 200)
    )
    grids = gpd.GeoDataFrame(
        {"grid_id": ["M", "H"]}, geometry=[shapely.MultiPolygon([a, b]), hole], crs=UTM
    )
    stations = gpd.GeoDataFrame(geometry=[shapely.Point(mf.X0, mf.Y0)], crs=UTM)
    feats = features(layers(webmap.coverage_map(grids, stations, tiles="none"))["grids"])
    assert [len(f["polygons"]) for f in feats] == [2, 1]  # two parts; one polygon
    assert len(feats[1]["polygons"][0]) == 2  # exterior and its hole


def test_offline_keeps_cdn_links_only_for_folium_popups_and_icons():
    plain = folium.Map(tiles=None)
    html = webmap.make_offline(plain).get_root().render()
    assert "code.jquery.com" not in html
    assert "awesome-markers" not in html
    assert "/* leaflet/leaflet.js */" in html
    marker = folium.Map(tiles=None)
    folium.Marker([37.5, 121.4], popup=folium.Popup("p"), icon=folium.Icon()).add_to(marker)
    html = webmap.make_offline(marker).get_root().render()
    assert "code.jquery.com" in html  # folium.Popup runs jQuery: online only
    assert "awesome-markers" in html
    assert "cdn.jsdelivr.net/npm/leaflet@" not in html  # Leaflet itself stays inline


def test_inlined_css_leaves_no_file_relative_urls(small):
    html = small_map(small).get_root().render()
    assert "leaflet.markercluster.js" in html
    assert "leaflet-search" in html
    css = "".join(re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL))
    refs = set(re.findall(r"url\(['\"]?([^'\")]+)", css))
    relative = {r for r in refs if not r.startswith(("data:", "#"))}
    # Leaflet's default marker image is only fetched for an icon-less L.Marker: none here
    assert relative <= {"images/marker-icon.png"}
