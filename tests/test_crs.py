"""Tests for servicecircle.crs: declared coordinate systems and the local UTM zone.

The UTM zones are checked against pyproj's own database query (``query_utm_crs_info``),
which is independent of the zone arithmetic in the module.
"""

from __future__ import annotations

import re

import numpy as np
import pyproj
import pytest
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from servicecircle.crs import WGS84, DeclaredCRS, local_utm_crs, parse_crs
from servicecircle.errors import CRSError, InputError


@pytest.mark.parametrize(
    ("value", "datum", "epsg"),
    [
        ("gcj02", "gcj02", 4326),
        ("gcj-02", "gcj02", 4326),
        ("GCJ02", "gcj02", 4326),
        (" GCJ-02 ", "gcj02", 4326),
        ("amap", "gcj02", 4326),
        ("高德", "gcj02", 4326),
        ("bd09", "bd09", 4326),
        ("BD-09", "bd09", 4326),
        ("baidu", "bd09", 4326),
        ("wgs84", None, 4326),
        ("WGS-84", None, 4326),
        ("4326", None, 4326),
        (4326, None, 4326),
        ("EPSG:4326", None, 4326),
        ("epsg: 32651", None, 32651),
        ("EPSG:32651", None, 32651),
        (32651, None, 32651),
        ("+proj=utm +zone=51 +datum=WGS84 +units=m", None, 32651),
    ],
)
def test_parse_crs_aliases(value, datum, epsg):
    declared = parse_crs(value)
    assert declared.datum == datum
    assert declared.crs.to_epsg() == epsg


def test_parse_crs_labels_and_geographic():
    assert parse_crs("amap").label == "gcj02"
    assert parse_crs("baidu").label == "bd09"
    assert parse_crs("wgs84").label == "EPSG:4326"
    assert parse_crs(32651).label == "EPSG:32651"
    assert parse_crs("gcj02").is_geographic
    assert parse_crs(4326).is_geographic
    assert not parse_crs(32651).is_geographic


def test_parse_crs_passes_through_crs_objects():
    declared = DeclaredCRS(WGS84, "bd09")
    assert parse_crs(declared) is declared
    utm = pyproj.CRS.from_epsg(32651)
    assert parse_crs(utm) == DeclaredCRS(utm)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            None, "stations.csv: no coordinate system declared; use an EPSG code", id="none"
        ),
        pytest.param("", "stations.csv: no coordinate system declared", id="empty"),
        pytest.param("   ", "stations.csv: no coordinate system declared", id="blank"),
        pytest.param(
            "gcj-2",
            "stations.csv: unknown coordinate system 'gcj-2' (did you mean 'gcj02'?)",
            id="gcj-2",
        ),
        pytest.param("bd9", "unknown coordinate system 'bd9' (did you mean 'bd09'?)", id="bd9"),
        pytest.param("wgs48", "(did you mean 'wgs84'?)", id="wgs48"),
        pytest.param(99999, "stations.csv: unknown EPSG code 99999; use an EPSG code", id="99999"),
        pytest.param("EPSG:99999", "stations.csv: unknown EPSG code 99999", id="EPSG:99999"),
        pytest.param("99999", "stations.csv: unknown EPSG code 99999", id="str-99999"),
        pytest.param(
            "not a crs", "unknown coordinate system 'not a crs'; use an EPSG", id="garbage"
        ),
    ],
)
def test_parse_crs_errors(value, message):
    with pytest.raises(CRSError, match=re.escape(message)) as info:
        parse_crs(value, what="stations.csv")
    assert "'gcj02' (AMap/Tencent) or 'bd09' (Baidu)" in str(info.value)
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, ValueError)


def test_no_suggestion_for_unrelated_names():
    with pytest.raises(CRSError) as info:
        parse_crs("not a crs")
    assert "did you mean" not in str(info.value)


CITIES = {
    "zhifu": (121.39, 37.54),
    "shanghai": (121.47, 31.23),
    "helsinki": (24.94, 60.17),
    "sydney": (151.21, -33.87),
}


def _pyproj_utm(lon: float, lat: float) -> set[int]:
    """The WGS84 UTM zones pyproj's database lists for one point (independent reference)."""
    infos = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    return {int(i.code) for i in infos if i.auth_name == "EPSG"}


@pytest.mark.parametrize(("lon", "lat"), CITIES.values(), ids=CITIES.keys())
def test_local_utm_crs_matches_pyproj(lon, lat):
    expected = _pyproj_utm(lon, lat)
    assert len(expected) == 1  # none of these cities lies on a zone edge
    got = local_utm_crs([lon - 0.05, lon + 0.05], [lat - 0.05, lat + 0.05])
    assert got.to_epsg() in expected
    assert got.is_projected
    assert got.axis_info[0].unit_name == "metre"


def test_local_utm_crs_documented_values():
    assert local_utm_crs([121.39], [37.54]).to_epsg() == 32651
    assert local_utm_crs([24.94], [60.17]).to_epsg() == 32635
    assert local_utm_crs([151.21], [-33.87]).to_epsg() == 32756


def test_local_utm_crs_uses_bbox_centre_and_ignores_nan():
    lon = np.array([121.30, 121.50, np.nan])
    lat = np.array([37.45, 37.60, 37.5])
    assert local_utm_crs(lon, lat).to_epsg() == 32651


def test_local_utm_crs_rejects_no_finite_coordinates():
    with pytest.raises(CRSError, match="cannot choose a UTM zone: no finite coordinates"):
        local_utm_crs([np.nan], [np.inf])
