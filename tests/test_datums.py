"""Tests for servicecircle.datums against independently published reference values.

Every expected coordinate below is copied from the cited public source (never produced
by this module).  Distances are measured with ``pyproj.Geod`` (WGS84 ellipsoid), which is
independent of the module under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon

from servicecircle.datums import (
    DATUMS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    transform_geometry,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

pytestmark = pytest.mark.filterwarnings("error")

GEOD = Geod(ellps="WGS84")


def geod_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres on the WGS84 ellipsoid (independent metric)."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2))
    )
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# ---------------------------------------------------------------------------------------
# 1. Published reference values
# ---------------------------------------------------------------------------------------

# Source: wandergis/coordtransform, README.md ("示例用法" section), input (116.404, 39.915)
# in (lng, lat) order; the same numbers are printed in the README's browser example.
#   bd09togcj02:   [ 116.39762729119315, 39.90865673957631 ]
#   gcj02tobd09:   [ 116.41036949371029, 39.92133699351021 ]
#   wgs84togcj02:  [ 116.41024449916938, 39.91640428150164 ]
#   gcj02towgs84:  [ 116.39775550083061, 39.91359571849836 ]
WANDERGIS_INPUT = (116.404, 39.915)


def test_wandergis_readme_wgs84_to_gcj02():
    # wandergis/coordtransform README.md: wgs84togcj02(116.404, 39.915)
    lon, lat = wgs84_to_gcj02(*WANDERGIS_INPUT)
    assert lon == pytest.approx(116.41024449916938, abs=1e-6)
    assert lat == pytest.approx(39.91640428150164, abs=1e-6)


def test_wandergis_readme_gcj02_to_bd09():
    # wandergis/coordtransform README.md: gcj02tobd09(116.404, 39.915)
    lon, lat = gcj02_to_bd09(*WANDERGIS_INPUT)
    assert lon == pytest.approx(116.41036949371029, abs=1e-6)
    assert lat == pytest.approx(39.92133699351021, abs=1e-6)


def test_wandergis_readme_bd09_to_gcj02_one_step_approximation():
    # wandergis/coordtransform README.md: bd09togcj02(116.404, 39.915).  coordtransform
    # uses the closed-form one-step approximation (subtracting the perturbations), not
    # an exact inverse; such approximations are off by centimetres up to about a metre,
    # so we only require agreement within 0.5 m.
    lon, lat = bd09_to_gcj02(*WANDERGIS_INPUT)
    assert geod_m(lon, lat, 116.39762729119315, 39.90865673957631) < 0.5


def test_wandergis_readme_gcj02_to_wgs84_one_step_approximation():
    # wandergis/coordtransform README.md: gcj02towgs84(116.404, 39.915).  coordtransform
    # uses the one-step approximation 2*gcj - wgs84togcj02(gcj), which differs from the
    # exact inverse by centimetres to a few metres; here we require agreement within
    # 0.5 m (eviltransform's tests allow 5 m for the same approximation).
    lon, lat = gcj02_to_wgs84(*WANDERGIS_INPUT)
    assert geod_m(lon, lat, 116.39775550083061, 39.91359571849836) < 0.5


# Source: googollee/eviltransform, python/test.py (identical rows in go/transform_test.go
# and javascript/test.js), TESTS = [# wgsLat, wgsLng, gcjLat, gcjLng ...].  Note the
# (lat, lng) column order there.
EVILTRANSFORM_TESTS = [
    pytest.param(31.1774276, 121.5272106, 31.17530398364597, 121.531541859215, id="shanghai"),
    pytest.param(22.543847, 113.912316, 22.540796131694766, 113.9171764808363, id="shenzhen"),
    pytest.param(39.911954, 116.377817, 39.91334545536069, 116.38404722455657, id="beijing"),
]


@pytest.mark.parametrize(("wgs_lat", "wgs_lng", "gcj_lat", "gcj_lng"), EVILTRANSFORM_TESTS)
def test_eviltransform_wgs84_to_gcj02(wgs_lat, wgs_lng, gcj_lat, gcj_lng):
    # googollee/eviltransform python/test.py test_wgs2gcj asserts 6 decimal places.
    lon, lat = wgs84_to_gcj02(wgs_lng, wgs_lat)
    assert lon == pytest.approx(gcj_lng, abs=1e-6)
    assert lat == pytest.approx(gcj_lat, abs=1e-6)


@pytest.mark.parametrize(("wgs_lat", "wgs_lng", "gcj_lat", "gcj_lng"), EVILTRANSFORM_TESTS)
def test_eviltransform_gcj02_to_wgs84_exact(wgs_lat, wgs_lng, gcj_lat, gcj_lng):
    # googollee/eviltransform python/test.py test_gcj2wgs_exact: the exact (iterative)
    # inverse must land within 0.5 m of the published WGS84 point.
    lon, lat = gcj02_to_wgs84(gcj_lng, gcj_lat)
    d = geod_m(lon, lat, wgs_lng, wgs_lat)
    assert d < 0.5
    # The published GCJ values carry full double precision, so an exact inverse should in
    # fact recover the WGS84 input to within the 1 cm inversion tolerance.
    assert d < 0.02


# Source: CRAN package geoChina by Jun Cai (mirror: cran/geoChina), man/wgs2gcj.Rd,
# man/gcj2wgs.Rd, man/gcj2bd.Rd, man/bd2gcj.Rd, man/wgs2bd.Rd examples:
#   "latitude/longitude coordinates of Beijing railway station
#    WGS-84: (39.90105, 116.42079)  GCJ-02: (39.90245, 116.42703)
#    BD-09:  (39.90851, 116.43351)"
# All values are printed rounded to 5 decimals (+-0.55 m each in input and output), so
# the comparison allows 1.5 m.
BJ_STATION = {
    "wgs84": (116.42079, 39.90105),
    "gcj02": (116.42703, 39.90245),
    "bd09": (116.43351, 39.90851),
}


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("wgs84", "gcj02"),  # man/wgs2gcj.Rd
        ("gcj02", "wgs84"),  # man/gcj2wgs.Rd
        ("gcj02", "bd09"),  # man/gcj2bd.Rd
        ("bd09", "gcj02"),  # man/bd2gcj.Rd
        ("wgs84", "bd09"),  # man/wgs2bd.Rd
        ("bd09", "wgs84"),  # man/bd2wgs.Rd (same station)
    ],
)
def test_geochina_beijing_railway_station(source, target):
    lon, lat = convert(*BJ_STATION[source], source=source, target=target)
    assert geod_m(lon, lat, *BJ_STATION[target]) < 1.5


# Source: hujiulong/gcoord, test/unit/transform.spec.js, 'transform - position':
#   transform([123, 45], WGS84, GCJ02) -> 123.00607541, 45.00197815
#   transform([123, 45], WGS84, BD09)  -> 123.0124491,  45.0083293
#   transform([123, 45], GCJ02, WGS84) -> 122.99395597, 44.99804071
#   transform([123, 45], GCJ02, BD09)  -> 123.00636499, 45.00636899
#   transform([123, 45], BD09, WGS84)  -> 122.98762210, 44.99171540
#   transform([123, 45], BD09, GCJ02)  -> 122.99363304, 44.99365430
# gcoord itself checks these with toBeCloseTo(x, 5), i.e. |error| < 5e-6 degrees.
# Forward closed formulas (published to 7-8 decimals) are asserted to 1e-6 degrees.
# gcoord's inverses are approximate (one-step for BD-09 -> GCJ-02, an iteration with its
# own threshold for GCJ-02 -> WGS84), so they are asserted to gcoord's own 5e-6 degrees.
FWD_TOL, INV_TOL = 1e-6, 5e-6
GCOORD_123_45 = [
    ("wgs84", "gcj02", 123.00607541, 45.00197815, FWD_TOL),
    ("wgs84", "bd09", 123.0124491, 45.0083293, FWD_TOL),
    ("gcj02", "bd09", 123.00636499, 45.00636899, FWD_TOL),
    ("gcj02", "wgs84", 122.99395597, 44.99804071, INV_TOL),
    ("bd09", "wgs84", 122.98762210, 44.99171540, INV_TOL),
    ("bd09", "gcj02", 122.99363304, 44.99365430, INV_TOL),
]


@pytest.mark.parametrize(("source", "target", "exp_lon", "exp_lat", "tol"), GCOORD_123_45)
def test_gcoord_transform_spec_123_45(source, target, exp_lon, exp_lat, tol):
    lon, lat = convert(123, 45, source=source, target=target)
    assert lon == pytest.approx(exp_lon, abs=tol)
    assert lat == pytest.approx(exp_lat, abs=tol)


# Source: hujiulong/gcoord, test/fixtures/china-cities.json ("coords": {"WGS84": [lng, lat],
# "GCJ02": [...], "BD09": [...]}), six cities spread over China.  gcoord's own
# test/unit/transform.spec.ts checks WGS84<->GCJ02 to 4 decimals and GCJ02<->BD09 to 5.
# The fixture's WGS84/GCJ02 pairs agree with the closed GCJ-02 formula to about
# 6e-6 degrees (~0.6 m), so those legs are asserted to 1e-5 degrees; the GCJ02/BD09
# pairs agree to their 7-decimal rounding and are asserted to 1e-6 degrees.
GCOORD_CITIES = [
    pytest.param(
        (114.0164322, 33.0133556),
        (114.022306, 33.0115324),
        (114.0287781, 33.0176697),
        id="zhumadian",
    ),
    pytest.param(
        (92.0499619, 31.4784436),
        (92.0512438, 31.4762063),
        (92.0576832, 31.4824421),
        id="nagqu",
    ),
    pytest.param(
        (123.4253306, 41.8032629),
        (123.4314787, 41.8057023),
        (123.438095, 41.8114013),
        id="shenyang",
    ),
    pytest.param(
        (116.0414035, 43.9312805),
        (116.0482308, 43.9334573),
        (116.0546232, 43.9397782),
        id="xilinhot",
    ),
    pytest.param(
        (108.6503952, 21.9828281),
        (108.6541485, 21.9799392),
        (108.6607283, 21.9856319),
        id="qinzhou",
    ),
    pytest.param(
        (98.4937175, 39.7319946),
        (98.4943595, 39.7328234),
        (98.5008441, 39.7388949),
        id="jiuquan",
    ),
]


@pytest.mark.parametrize(("wgs", "gcj", "bd"), GCOORD_CITIES)
def test_gcoord_china_cities(wgs, gcj, bd):
    np.testing.assert_allclose(np.hstack(wgs84_to_gcj02(*wgs)), gcj, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.hstack(gcj02_to_wgs84(*gcj)), wgs, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.hstack(gcj02_to_bd09(*gcj)), bd, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.hstack(bd09_to_gcj02(*bd)), gcj, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.hstack(wgs84_to_bd09(*wgs)), bd, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.hstack(bd09_to_wgs84(*bd)), wgs, rtol=0, atol=1e-5)


def test_gcoord_china_cities_vectorised():
    # Same hujiulong/gcoord fixture rows, converted in one array call.
    wgs = np.array([p.values[0] for p in GCOORD_CITIES])
    gcj = np.array([p.values[1] for p in GCOORD_CITIES])
    bd = np.array([p.values[2] for p in GCOORD_CITIES])
    lon, lat = wgs84_to_gcj02(wgs[:, 0], wgs[:, 1])
    assert lon.shape == (len(GCOORD_CITIES),)
    np.testing.assert_allclose(np.column_stack([lon, lat]), gcj, rtol=0, atol=1e-5)
    lon, lat = bd09_to_wgs84(bd[:, 0], bd[:, 1])
    np.testing.assert_allclose(np.column_stack([lon, lat]), wgs, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------
# 2. Round-trip properties (inside mainland China, away from the coarse box's edges,
#    where GCJ-02 is not one-to-one)
# ---------------------------------------------------------------------------------------

china_lon = st.floats(min_value=73.5, max_value=135.0)
china_lat = st.floats(min_value=18.0, max_value=53.5)
ZHIFU = (121.40, 37.54)


@settings(max_examples=200, deadline=None)
@given(lon=china_lon, lat=china_lat)
@example(lon=ZHIFU[0], lat=ZHIFU[1])
@example(lon=121.4, lat=37.5)
def test_round_trip_wgs84_gcj02(lon, lat):
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    d = geod_m(lon, lat, *back)
    assert d < 1.0
    assert d < 0.01  # default tol_m is 1 cm


@settings(max_examples=200, deadline=None)
@given(lon=china_lon, lat=china_lat)
@example(lon=ZHIFU[0], lat=ZHIFU[1])
def test_round_trip_wgs84_bd09(lon, lat):
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    d = geod_m(lon, lat, *back)
    assert d < 1.0
    assert d < 0.01


@settings(max_examples=100, deadline=None)
@given(lon=china_lon, lat=china_lat)
@example(lon=ZHIFU[0], lat=ZHIFU[1])
def test_round_trip_gcj02_bd09(lon, lat):
    back = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert geod_m(lon, lat, *back) < 0.01


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(china_lon, china_lat), min_size=1, max_size=40))
def test_round_trip_vectorised(points):
    lon, lat = np.array(points).T
    for forward, inverse in [
        (wgs84_to_gcj02, gcj02_to_wgs84),
        (wgs84_to_bd09, bd09_to_wgs84),
    ]:
        back_lon, back_lat = inverse(*forward(lon, lat))
        assert back_lon.shape == lon.shape
        assert np.all(geod_m(lon, lat, back_lon, back_lat) < 1.0)


# ---------------------------------------------------------------------------------------
# 3. Magnitude sanity (independent facts: GCJ-02 shifts by a few hundred metres, BD-09
#    by roughly a kilometre)
# ---------------------------------------------------------------------------------------


def test_offset_magnitudes_at_zhifu():
    gcj = wgs84_to_gcj02(*ZHIFU)
    bd = wgs84_to_bd09(*ZHIFU)
    assert 400.0 <= geod_m(*ZHIFU, *gcj) <= 600.0
    assert 1000.0 <= geod_m(*ZHIFU, *bd) <= 1500.0


# ---------------------------------------------------------------------------------------
# 4. Edge cases, API contract and geometries
# ---------------------------------------------------------------------------------------

HELSINKI = (24.94, 60.17)


def test_outside_china_gcj02_is_wgs84_exactly():
    assert not in_china(*HELSINKI)
    for func in (wgs84_to_gcj02, gcj02_to_wgs84):
        lon, lat = func(*HELSINKI)
        assert lon == HELSINKI[0]
        assert lat == HELSINKI[1]


def test_in_china_box():
    # Bounds of the coarse box used by coordtransform / eviltransform / PRCoords:
    # lon 72.004..137.8347, lat 0.8293..55.8271.
    lon = [121.40, 24.94, 72.003, 72.004, 137.8347, 137.8348, 100.0, 100.0, np.nan]
    lat = [37.54, 60.17, 30.0, 30.0, 30.0, 30.0, 0.8292, 55.8271, 30.0]
    expected = [True, False, False, True, True, False, False, True, False]
    result = in_china(lon, lat)
    assert result.dtype == np.bool_
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize(
    "func",
    [
        wgs84_to_gcj02,
        gcj02_to_wgs84,
        gcj02_to_bd09,
        bd09_to_gcj02,
        wgs84_to_bd09,
        bd09_to_wgs84,
    ],
)
def test_nan_propagates_without_warnings(func):
    lon = np.array([np.nan, 121.40, 121.40, np.nan])
    lat = np.array([37.54, np.nan, 37.54, np.nan])
    out_lon, out_lat = func(lon, lat)
    assert out_lon.dtype == np.float64
    assert out_lat.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(out_lon), [True, True, False, True])
    np.testing.assert_array_equal(np.isnan(out_lat), [True, True, False, True])


def test_scalar_and_list_inputs_give_float64_arrays():
    lon, lat = wgs84_to_gcj02(121, 37)  # ints are fine
    assert isinstance(lon, np.ndarray)
    assert lon.shape == ()
    assert lon.dtype == np.float64
    lon, lat = gcj02_to_bd09(121.4, 37.54)
    assert isinstance(lat, np.ndarray)
    assert lat.shape == ()
    lon, lat = bd09_to_wgs84([121.4, 121.5], 37.54)  # broadcasting
    assert lon.shape == lat.shape == (2,)
    lon, lat = gcj02_to_wgs84(np.full((2, 3), 121.4), np.full((2, 3), 37.54))
    assert lon.shape == (2, 3)


def test_convert_identity_and_names():
    assert DATUMS == ("wgs84", "gcj02", "bd09")
    for datum in DATUMS:
        lon, lat = convert([121.4, 24.94], [37.54, 60.17], source=datum, target=datum)
        np.testing.assert_array_equal(lon, [121.4, 24.94])
        np.testing.assert_array_equal(lat, [37.54, 60.17])
    # target defaults to WGS84 (reference: geoChina Beijing railway station, above)
    lon, lat = convert(*BJ_STATION["gcj02"], source="gcj02")
    assert geod_m(lon, lat, *BJ_STATION["wgs84"]) < 1.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"source": "wgs-84"},
        {"source": "gcj02", "target": "mercator"},
        {"source": "epsg:4326", "target": "bd09"},
    ],
)
def test_unknown_datum_raises_with_allowed_names(kwargs):
    with pytest.raises(ValueError, match=r"'wgs84', 'gcj02', 'bd09'"):
        convert(121.4, 37.54, **kwargs)
    with pytest.raises(ValueError, match=r"'wgs84', 'gcj02', 'bd09'"):
        transform_geometry(Polygon([(0, 0), (1, 0), (1, 1)]), **kwargs)


def test_invalid_tolerance_raises():
    with pytest.raises(ValueError, match="tol_m"):
        gcj02_to_wgs84(121.4, 37.54, tol_m=0.0)


def _polygon_with_hole() -> Polygon:
    shell = [(121.30, 37.45), (121.50, 37.45), (121.50, 37.60), (121.30, 37.60)]
    hole = [(121.38, 37.50), (121.42, 37.50), (121.42, 37.55), (121.38, 37.55)]
    return Polygon(shell, [hole])


def _assert_vertices_converted(src, out, func):
    coords = shapely.get_coordinates(src)
    exp_lon, exp_lat = func(coords[:, 0], coords[:, 1])
    np.testing.assert_allclose(
        shapely.get_coordinates(out), np.column_stack([exp_lon, exp_lat]), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize(
    ("source", "target", "func"),
    [
        ("wgs84", "gcj02", wgs84_to_gcj02),
        ("bd09", "wgs84", bd09_to_wgs84),
        ("gcj02", "bd09", gcj02_to_bd09),
    ],
)
def test_transform_geometry_polygon(source, target, func):
    poly = _polygon_with_hole()
    out = transform_geometry(poly, source=source, target=target)
    assert isinstance(out, Polygon)
    assert out.is_valid
    assert len(out.interiors) == 1
    assert len(out.exterior.coords) == len(poly.exterior.coords)
    assert out.exterior.is_ring
    _assert_vertices_converted(poly, out, func)


def test_transform_geometry_multipolygon_and_array():
    poly = _polygon_with_hole()
    other = Polygon([(116.30, 39.85), (116.45, 39.85), (116.45, 39.95)])
    multi = MultiPolygon([poly, other])
    out = transform_geometry(multi, source="wgs84", target="bd09")
    assert isinstance(out, MultiPolygon)
    assert out.is_valid
    assert len(out.geoms) == 2
    assert [len(p.interiors) for p in out.geoms] == [1, 0]
    _assert_vertices_converted(multi, out, wgs84_to_bd09)

    arr = np.array([poly, None, other], dtype=object)
    out_arr = transform_geometry(arr, source="gcj02")  # target defaults to WGS84
    assert isinstance(out_arr, np.ndarray)
    assert out_arr.shape == (3,)
    assert out_arr[1] is None
    _assert_vertices_converted(poly, out_arr[0], gcj02_to_wgs84)
    _assert_vertices_converted(other, out_arr[2], gcj02_to_wgs84)


def test_transform_geometry_geoseries_keeps_index_and_crs():
    gpd = pytest.importorskip("geopandas")
    series = gpd.GeoSeries(
        [_polygon_with_hole(), shapely.Point(121.4, 37.54)],
        index=["zone", "depot"],
        crs="EPSG:4326",
        name="geom",
    )
    out = transform_geometry(series, source="wgs84", target="gcj02")
    assert isinstance(out, gpd.GeoSeries)
    assert list(out.index) == ["zone", "depot"]
    assert out.crs == series.crs
    assert out.name == "geom"
    _assert_vertices_converted(series.iloc[0], out.iloc[0], wgs84_to_gcj02)
    _assert_vertices_converted(series.iloc[1], out.iloc[1], wgs84_to_gcj02)
