"""Exports: CSV for Excel (BOM / GBK), RFC 7946 GeoJSON, GeoPackage, sidecars, safe writes.

References are independent of the module: raw bytes and the ``csv``/``json``/``sqlite3``
modules, hand-computed rounding, pyproj transforms and the shoelace formula.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon

from servicecircle import exports
from servicecircle.errors import ExportError
from servicecircle.settings import WalkSettings

BOM = b"\xef\xbb\xbf"
UTM51 = "EPSG:32651"


# --------------------------------------------------------------------------------------------
# synthetic layers following the data contracts


@pytest.fixture
def meta() -> dict:
    return {
        "tool": "servicecircle",
        "version": "0.1.0",
        "created": "2024-05-01T10:00:00+08:00",
        "walk": WalkSettings.from_preset("gb50180").as_dict(),
        "analysis_crs": UTM51,
        "network": {"source": "zhifu.osm.bz2", "osm_date": "2024-04-30", "sha256": "ab" * 32},
        "inputs": {"stations": {"file": "驿站.csv", "crs": "gcj02"}},
        "demand": {"kind": "buildings", "lattice_m": 20, "weight": "area"},
    }


def _tri(x0: float, y0: float, d: float = 0.01) -> Polygon:
    return Polygon([(x0, y0), (x0 + d, y0), (x0 + d, y0 + d), (x0, y0)])


@pytest.fixture
def grids(meta: dict) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(
        {
            "grid_id": ["G1", "G2", "G3"],
            "subdistrict": ["幸福街道", "<b>x</b>", None],
            "community": ["和平社区", 'a,b "quoted"', "line\nbreak"],
            "grid_name": ["一网格", "二网格", "三网格"],
            "population": [1200.0, np.nan, 30.0],
            "n_points": [10, 0, 3],
            "weight": [1234.5678, 0.0, 10.0],
            "area_m2": [5000.04, 2500.0, 100.0],
            "covered_5min": [617.28391, 0.0, 10.0],
            "uncovered_5min": [617.28389, 0.0, 0.0],
            "coverage_5min": [0.123456, np.nan, 1.0],
            "walk_median_m": [123.456, np.inf, 50.0],
            "walk_p90_m": [400.04, np.inf, 80.0],
            "station_id": ["S1", None, "S1"],
            "station_name": ["幸福驿站", None, "幸福驿站"],
            "walk_min_m": [12.345, np.inf, 0.0],
        },
        geometry=[
            _tri(121.40, 31.20),
            MultiPolygon([_tri(121.42, 31.20), _tri(121.44, 31.20)]),
            _tri(121.46, 31.20),
        ],
        crs="EPSG:4326",
    )
    gdf.attrs["settings"] = meta
    return gdf


@pytest.fixture
def stations() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"station_id": ["S1", "S2"], "name": ["幸福驿站", "<b>x</b>"], "tier": ["station"] * 2},
        geometry=[Point(121.4012345678, 31.2012345678), Point(121.45, 31.21)],
        crs="EPSG:4326",
    )


# a 200 m × 200 m square in UTM 51N near Shanghai, drawn clockwise on purpose
SQUARE_UTM = [(350000, 3450000), (350000, 3450200), (350200, 3450200), (350200, 3450000)]


@pytest.fixture
def rings() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "station_id": ["S1"],
            "threshold_min": [5.0],
            "distance_m": [300.0],
            "length_m": [812.34],
            "area_m2": [40000.0],
        },
        geometry=[Polygon(SQUARE_UTM)],
        crs=UTM51,
    )


@pytest.fixture
def layers(grids, stations, rings) -> dict:
    gaps = gpd.GeoDataFrame(
        {
            "grid_id": ["G1"],
            "subdistrict": ["幸福街道"],
            "community": ["和平社区"],
            "grid_name": ["一网格"],
            "threshold_min": [5.0],
            "area_m2": [123.0],
        },
        geometry=[_tri(121.40, 31.20, 0.001)],
        crs="EPSG:4326",
    )
    gap_points = gpd.GeoDataFrame(
        {
            "grid_id": ["G1", "G1"],
            "threshold_min": [5.0, 5.0],
            "weight": [1.0, 2.0],
            "walk_m": [320.0, np.inf],
            "station_id": ["S1", None],
        },
        geometry=[Point(121.401, 31.201), Point(121.402, 31.202)],
        crs="EPSG:4326",
    )
    rollup = pd.DataFrame(
        {
            "level": ["district", "subdistrict"],
            "subdistrict": [None, "幸福街道"],
            "community": [None, None],
            "grid_id": [None, None],
            "grid_name": [None, None],
            "n_grids": [3, 1],
            "weight": [1244.5678, 1234.5678],
            "covered_5min": [627.28391, 617.28391],
            "uncovered_5min": [617.28389, 617.28389],
            "coverage_5min": [0.50400, 0.5],
        }
    )
    return {
        "grids": grids,
        "stations": stations,
        "rings": rings,
        "gaps": gaps,
        "gap_points": gap_points,
        "rollup": rollup,
    }


def _read_csv_excel_style(raw: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode(encoding), newline="")))


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# --------------------------------------------------------------------------------------------
# CSV


def test_csv_starts_with_bom_and_keeps_chinese_names(tmp_path, grids):
    out = exports.write_csv(grids, tmp_path / "grids.csv")
    raw = out.read_bytes()
    assert raw.startswith(BOM)
    rows = _read_csv_excel_style(raw, "utf-8-sig")
    header, body = rows[0], rows[1:]
    assert header == [c for c in grids.columns if c != "geometry"]
    assert len(body) == 3
    col = {name: i for i, name in enumerate(header)}
    assert body[0][col["subdistrict"]] == "幸福街道"
    assert body[0][col["station_name"]] == "幸福驿站"
    assert body[1][col["subdistrict"]] == "<b>x</b>"
    assert body[1][col["community"]] == 'a,b "quoted"'
    assert body[2][col["community"]] == "line\nbreak"
    assert body[2][col["subdistrict"]] == ""  # None
    # Excel line ends between records; the only bare \n is the one inside a quoted cell
    assert raw.count(b"\r\n") == 4
    assert raw.count(b"\n") == 5


def test_csv_values_rounded_and_inf_nan_empty(tmp_path, grids):
    raw = exports.write_csv(grids, tmp_path / "g.csv").read_bytes()
    header, *body = _read_csv_excel_style(raw, "utf-8-sig")
    col = {name: i for i, name in enumerate(header)}
    g1, g2 = body[0], body[1]
    assert g1[col["coverage_5min"]] == "0.1235"  # share: 4 decimals
    assert g1[col["walk_median_m"]] == "123.5"  # metres: 0.1
    assert g1[col["walk_min_m"]] == "12.3"
    assert g1[col["area_m2"]] == "5000.0"
    assert g1[col["weight"]] == "1234.57"
    assert g1[col["covered_5min"]] == "617.28"
    assert g1[col["n_points"]] == "10"
    assert g2[col["walk_median_m"]] == ""  # inf = unreachable
    assert g2[col["walk_p90_m"]] == ""
    assert g2[col["coverage_5min"]] == ""  # NaN (weight 0)
    assert g2[col["population"]] == ""


def test_csv_per_tier_columns_are_rounded_like_the_others(tmp_path, grids):
    tiers = grids.assign(
        covered_tier_station=1234.56789, coverage_tier_station=0.123456,
        covered_tiered=9.87654, coverage_tiered=0.987654,
    )  # fmt: skip
    raw = exports.write_csv(tiers, tmp_path / "t.csv").read_bytes()
    header, first, *_ = _read_csv_excel_style(raw, "utf-8-sig")
    row = dict(zip(header, first, strict=True))
    assert row["covered_tier_station"] == "1234.57"  # weights: 0.01
    assert row["coverage_tier_station"] == "0.1235"  # shares: 4 decimals
    assert row["covered_tiered"] == "9.88"
    assert row["coverage_tiered"] == "0.9877"
    described = exports.describe_columns(
        ["covered_tier_station", "coverage_tiered"], {"tier_minutes": {"station": 5}}
    )
    assert described["covered_tier_station"] == (
        "demand weight within the station tier's threshold (5 min) of its stations"
    )
    assert "any tier" in described["coverage_tiered"]


def test_csv_gbk_for_old_excel(tmp_path, grids):
    raw = exports.write_csv(grids, tmp_path / "g.csv", encoding="gbk").read_bytes()
    assert not raw.startswith(BOM)
    assert "幸福街道".encode("gbk") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    header, *body = _read_csv_excel_style(raw, "gbk")
    assert body[0][header.index("community")] == "和平社区"
    side = json.loads(exports.sidecar_path(tmp_path / "g.csv").read_text(encoding="utf-8"))
    assert side["export"]["encoding"] == "gbk"


def test_csv_gbk_refuses_characters_it_cannot_hold(tmp_path, grids):
    grids.loc[1, "station_name"] = "咖啡☕驿站"
    with pytest.raises(ExportError, match=r"'station_name', row 3 \(grid_id=G2\).*utf-8-sig"):
        exports.write_csv(grids, tmp_path / "g.csv", encoding="gbk")
    assert _listing(tmp_path) == set()
    # the default encoding holds it
    raw = exports.write_csv(grids, tmp_path / "g.csv").read_bytes()
    assert "咖啡☕驿站" in raw.decode("utf-8-sig")


def test_csv_unknown_encoding_is_an_export_error(tmp_path, grids):
    with pytest.raises(ExportError, match="unknown CSV encoding 'klingon'"):
        exports.write_csv(grids, tmp_path / "g.csv", encoding="klingon")


def test_csv_points_get_wgs84_lon_lat(tmp_path, stations):
    utm = stations.to_crs(UTM51)
    raw = exports.write_csv(utm, tmp_path / "s.csv").read_bytes()
    header, *body = _read_csv_excel_style(raw, "utf-8-sig")
    assert header == ["station_id", "name", "tier", "lon", "lat"]
    lon, lat = float(body[0][3]), float(body[0][4])
    assert lon == pytest.approx(121.4012346, abs=1.5e-7)
    assert lat == pytest.approx(31.2012346, abs=1.5e-7)
    assert len(body[0][3].split(".")[1]) <= 7


def test_csv_of_plain_table_and_sidecar(tmp_path, layers, meta):
    out = exports.write_csv(layers["rollup"], tmp_path / "rollup.csv", metadata=meta)
    header, *body = _read_csv_excel_style(out.read_bytes(), "utf-8-sig")
    assert header == list(layers["rollup"].columns)
    assert body[0][header.index("coverage_5min")] == "0.504"
    side = json.loads((tmp_path / "rollup.csv.meta.json").read_text(encoding="utf-8"))
    assert side["walk"]["speed_m_per_min"] == 60.0
    assert side["walk"]["distances_m"] == [300.0, 500.0, 1000.0]
    assert side["walk"]["frontage_m"] == 30.0
    assert side["analysis_crs"] == UTM51
    assert side["network"] == meta["network"]
    assert side["inputs"]["stations"]["file"] == "驿站.csv"
    assert side["created"] == meta["created"]
    export = side["export"]
    assert export["file"] == "rollup.csv"
    assert export["format"] == "csv"
    assert export["encoding"] == "utf-8-sig"
    (layer,) = export["layers"]
    assert layer["rows"] == 2
    assert list(layer["columns"]) == header
    # gb50180: 10 min stands for 500 m, not 10 × 60
    cols = exports.describe_columns(["coverage_10min", "covered_7.5min"], meta)
    assert "500 m" in cols["coverage_10min"]
    assert "7.5 min" in cols["covered_7.5min"]
    assert "(300 m)" in layer["columns"]["coverage_5min"]


def test_settings_come_from_attrs_and_missing_keys_are_fine(tmp_path, grids, stations):
    exports.write_csv(grids, tmp_path / "g.csv")
    side = json.loads((tmp_path / "g.csv.meta.json").read_text(encoding="utf-8"))
    assert side["demand"]["weight"] == "area"
    exports.write_csv(stations, tmp_path / "s.csv")  # no attrs, no metadata
    side = json.loads((tmp_path / "s.csv.meta.json").read_text(encoding="utf-8"))
    assert side["tool"] == "servicecircle"
    assert "walk" not in side
    assert side["created"]


# --------------------------------------------------------------------------------------------
# CSV formula injection (CWE-1236): text cells Excel would evaluate get a leading '

HYPERLINK = '=HYPERLINK("http://x","点击")'


@pytest.fixture
def risky() -> gpd.GeoDataFrame:
    """Station-like points whose names come straight from user data."""
    return gpd.GeoDataFrame(
        {
            "station_id": ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"],
            "name": [HYPERLINK, "+1", "-驿站", "@SUM(1)", "\t=1", "幸福街道驿站", "a=b",
                     None, "\r=2"],
            "community": pd.array(["和平社区", "+cmd|' /C calc'!A0", None, "", "社区-1",
                                   "和平社区", "和平社区", "和平社区", "和平社区"],
                                  dtype="string"),
            "walk_m": [-3.5, 12.0, None, -40.0, 0.0, 7.5, 300.0, -0.5, 1.0],
            "n_grids": [-2, 0, 1, 3, -1, 5, 6, 7, 8],
            "code": pd.Series([-1, "=1+1", None, 2.5, "x", -0.5, "y", "z", "w"], dtype=object),
        },
        geometry=[Point(121.5, 31.25)] * 9,
        crs="EPSG:4326",
    )  # fmt: skip


# written by hand: exactly the cells starting with = + - @ tab or CR carry the quote
RISKY_HEADER = ["station_id", "name", "community", "walk_m", "n_grids", "code", "lon", "lat"]
RISKY_GUARDED = [
    ["S1", "'" + HYPERLINK, "和平社区", "-3.5", "-2", "-1", "121.5", "31.25"],
    ["S2", "'+1", "'+cmd|' /C calc'!A0", "12.0", "0", "'=1+1", "121.5", "31.25"],
    ["S3", "'-驿站", "", "", "1", "", "121.5", "31.25"],
    ["S4", "'@SUM(1)", "", "-40.0", "3", "2.5", "121.5", "31.25"],
    ["S5", "'\t=1", "社区-1", "0.0", "-1", "x", "121.5", "31.25"],
    ["S6", "幸福街道驿站", "和平社区", "7.5", "5", "-0.5", "121.5", "31.25"],
    ["S7", "a=b", "和平社区", "300.0", "6", "y", "121.5", "31.25"],
    ["S8", "", "和平社区", "-0.5", "7", "z", "121.5", "31.25"],
    ["S9", "'\r=2", "和平社区", "1.0", "8", "w", "121.5", "31.25"],
]
# (row, column); numbers in the mixed "code" column (-1, -0.5) are not text: left alone
RISKY_CHANGED = {(0, 1), (1, 1), (1, 2), (1, 5), (2, 1), (3, 1), (4, 1), (8, 1)}


def test_csv_formula_guard_quotes_exactly_the_risky_text_cells(tmp_path, risky):
    raw = exports.write_csv(risky, tmp_path / "s.csv").read_bytes()
    header, *body = _read_csv_excel_style(raw, "utf-8-sig")
    assert header == RISKY_HEADER
    assert body == RISKY_GUARDED
    raw_plain = exports.write_csv(risky, tmp_path / "p.csv", formula_guard=False).read_bytes()
    _, *plain = _read_csv_excel_style(raw_plain, "utf-8-sig")
    for i, (got, unguarded) in enumerate(zip(body, plain, strict=True)):
        for j, (cell, before) in enumerate(zip(got, unguarded, strict=True)):
            if (i, j) in RISKY_CHANGED:
                assert cell == "'" + before
            else:
                assert cell.encode("utf-8") == before.encode("utf-8")
    # the raw bytes: the quote sits inside the CSV quoting, the rest is untouched
    assert b'"\'=HYPERLINK(""http://x"",""' + "点击".encode() + b'"")"' in raw
    assert "\r\nS6,幸福街道驿站,和平社区,7.5,5,-0.5,121.5,31.25\r\n".encode() in raw
    assert "\r\nS7,a=b,和平社区,300.0,6,y,121.5,31.25\r\n".encode() in raw
    # numbers stay numbers for pandas (and Excel): negatives are not quoted
    back = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
    assert back["walk_m"].tolist()[:2] == [-3.5, 12.0]
    assert math.isnan(back["walk_m"][2])
    assert back["n_grids"].tolist() == [-2, 0, 1, 3, -1, 5, 6, 7, 8]
    assert back["name"][0] == "'" + HYPERLINK
    side = json.loads(exports.sidecar_path(tmp_path / "s.csv").read_text(encoding="utf-8"))
    assert side["export"]["formula_guard"] == {
        "applied": True,
        "cells_changed": 8,
        "headers_changed": 0,
    }
    assert side["export"]["layers"][0]["rows"] == 9


def test_csv_formula_guard_off_writes_cells_as_given(tmp_path, risky):
    out = exports.write_csv(risky, tmp_path / "s.csv", formula_guard=False)
    header, *body = _read_csv_excel_style(out.read_bytes(), "utf-8-sig")
    assert header == RISKY_HEADER
    assert [row[1] for row in body] == [
        HYPERLINK, "+1", "-驿站", "@SUM(1)", "\t=1", "幸福街道驿站", "a=b", "", "\r=2",
    ]  # fmt: skip
    assert body[1][2] == "+cmd|' /C calc'!A0"
    side = json.loads(exports.sidecar_path(out).read_text(encoding="utf-8"))
    assert side["export"]["formula_guard"] == {
        "applied": False,
        "cells_changed": 0,
        "headers_changed": 0,
    }


def test_csv_formula_guard_quotes_risky_column_names(tmp_path):
    # attribute names come from the user's files too (a GeoJSON property, a CSV header)
    frame = pd.DataFrame({"=cmd|' /C calc'!A0": ["x"], "@名称": ["y"], "a-b": [1], "-1": [2]})
    out = exports.write_csv(frame, tmp_path / "h.csv")
    header, row = _read_csv_excel_style(out.read_bytes(), "utf-8-sig")
    assert header == ["'=cmd|' /C calc'!A0", "'@名称", "a-b", "'-1"]
    assert row == ["x", "y", "1", "2"]
    side = json.loads(exports.sidecar_path(out).read_text(encoding="utf-8"))
    assert side["export"]["formula_guard"]["headers_changed"] == 3
    plain = exports.write_csv(frame, tmp_path / "p.csv", formula_guard=False)
    assert _read_csv_excel_style(plain.read_bytes(), "utf-8-sig")[0] == list(frame.columns)
    assert frame.columns[0] == "=cmd|' /C calc'!A0"  # the caller's frame is untouched


def test_csv_formula_guard_counts_zero_on_clean_tables(tmp_path, grids):
    exports.write_csv(grids, tmp_path / "g.csv")
    side = json.loads((tmp_path / "g.csv.meta.json").read_text(encoding="utf-8"))
    assert side["export"]["formula_guard"] == {
        "applied": True,
        "cells_changed": 0,
        "headers_changed": 0,
    }


def test_csv_formula_guard_leaves_gbk_errors_naming_the_value_as_given(tmp_path, risky):
    risky.loc[1, "name"] = "=咖啡☕"
    with pytest.raises(ExportError, match=r"'name', row 3 \(station_id=S2\): '=咖啡☕' has '☕'"):
        exports.write_csv(risky, tmp_path / "s.csv", encoding="gbk")
    assert _listing(tmp_path) == set()
    risky.loc[1, "name"] = "+1"
    raw = exports.write_csv(risky, tmp_path / "s.csv", encoding="gbk").read_bytes()
    _, *body = _read_csv_excel_style(raw, "gbk")
    assert body == RISKY_GUARDED


def test_formula_guard_never_touches_geojson_or_gpkg(tmp_path, risky, meta):
    written = exports.export_all(
        tmp_path, {"stations": risky}, metadata=meta, csv_layers=["stations"]
    )
    assert [p.name for p in written] == [
        "coverage_stations.csv",
        "coverage_stations.geojson",
        "coverage.gpkg",
    ]
    _, *body = _read_csv_excel_style(written[0].read_bytes(), "utf-8-sig")
    assert body == RISKY_GUARDED
    names = [HYPERLINK, "+1", "-驿站", "@SUM(1)", "\t=1", "幸福街道驿站", "a=b", None, "\r=2"]
    doc = json.loads(written[1].read_text(encoding="utf-8"))
    assert [f["properties"]["name"] for f in doc["features"]] == names
    assert doc["features"][1]["properties"]["community"] == "+cmd|' /C calc'!A0"
    assert doc["features"][0]["properties"]["walk_m"] == -3.5
    gpkg = pyogrio.read_dataframe(written[2], layer="stations")
    assert gpkg["name"].tolist()[:7] == names[:7]
    assert gpkg["name"][8] == "\r=2"
    assert gpkg["community"][1] == "+cmd|' /C calc'!A0"
    for p in written[1:]:
        side = json.loads(exports.sidecar_path(p).read_text(encoding="utf-8"))
        assert "formula_guard" not in side["export"]
    side = json.loads(exports.sidecar_path(written[0]).read_text(encoding="utf-8"))
    assert side["export"]["formula_guard"] == {
        "applied": True,
        "cells_changed": 8,
        "headers_changed": 0,
    }
    # export_all passes the switch on to write_csv
    (off,) = exports.export_all(
        tmp_path / "off", {"stations": risky}, formats=["csv"], csv_layers=["stations"],
        formula_guard=False,
    )  # fmt: skip
    _, *body = _read_csv_excel_style(off.read_bytes(), "utf-8-sig")
    assert body[0][1] == HYPERLINK
    assert body[2][1] == "-驿站"


def test_metadata_made_json_safe():
    out = exports.prepare_metadata(
        {"a": np.float64(1.5), "b": float("nan"), "c": Path("/x/y.csv"), "d": (1, np.int64(2))}
    )
    assert json.loads(json.dumps(out, allow_nan=False))["a"] == 1.5
    assert out["b"] is None
    assert out["c"] == "/x/y.csv"
    assert out["d"] == [1, 2]


# --------------------------------------------------------------------------------------------
# GeoJSON


def _coords(geometry: dict) -> list[list[float]]:
    out: list[list[float]] = []

    def walk(c):
        if isinstance(c[0], int | float):
            out.append(c)
        else:
            for part in c:
                walk(part)

    walk(geometry["coordinates"])
    return out


def _signed_area(ring: list[list[float]]) -> float:
    return 0.5 * sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)
    )


def test_geojson_is_rfc7946(tmp_path, rings, meta):
    out = exports.write_geojson(rings, tmp_path / "rings.geojson", metadata=meta)
    doc = json.loads(out.read_bytes().decode("utf-8"))
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    (feature,) = doc["features"]
    pts = _coords(feature["geometry"])
    for lon, lat in pts:
        assert 121.0 < lon < 122.0  # lon first
        assert 31.0 < lat < 32.0
        assert round(lon, 7) == lon
        assert round(lat, 7) == lat
    # RFC 7946 §3.1.6: exterior rings counterclockwise (the input was clockwise)
    assert _signed_area(feature["geometry"]["coordinates"][0]) > 0
    # independent reprojection back to UTM: still the 200 m square (1e-7° ≈ 1 cm)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", UTM51, always_xy=True)
    ring = [list(to_utm.transform(lon, lat)) for lon, lat in pts]
    assert abs(_signed_area(ring)) == pytest.approx(40000.0, abs=2.0)
    assert feature["properties"]["length_m"] == 812.3
    if pyogrio.__gdal_version__ >= (3, 9, 0):
        assert doc["servicecircle"]["walk"]["speed_m_per_min"] == 60.0
        assert doc["servicecircle"]["network"]["osm_date"] == "2024-04-30"
    side = json.loads((tmp_path / "rings.geojson.meta.json").read_text(encoding="utf-8"))
    assert side["export"]["format"] == "geojson"
    assert side["export"]["layers"][0]["crs"] == "EPSG:4326"


def test_geojson_round_trip_and_nulls(tmp_path, grids):
    out = exports.write_geojson(grids, tmp_path / "grids.geojson")
    doc = json.loads(out.read_text(encoding="utf-8"))
    props = [f["properties"] for f in doc["features"]]
    assert props[0]["subdistrict"] == "幸福街道"
    assert props[1]["subdistrict"] == "<b>x</b>"
    assert props[1]["walk_median_m"] is None  # inf
    assert props[1]["coverage_5min"] is None  # NaN
    assert props[0]["coverage_5min"] == 0.1235
    assert doc["features"][1]["geometry"]["type"] == "MultiPolygon"
    back = pyogrio.read_dataframe(out)
    assert back.crs.to_epsg() == 4326
    assert list(back["grid_id"]) == ["G1", "G2", "G3"]
    assert list(back["station_name"][[0, 2]]) == ["幸福驿站", "幸福驿站"]
    for got, want in zip(back.geometry, grids.geometry, strict=True):
        assert got.symmetric_difference(want).area < 1e-12  # degrees²; same shape


def test_geojson_empty_layer(tmp_path, grids):
    out = exports.write_geojson(grids.iloc[:0], tmp_path / "none.geojson")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["features"] == []
    assert "crs" not in doc


def test_geojson_refuses_a_table(tmp_path, layers):
    with pytest.raises(ValueError, match="no geometry"):
        exports.write_geojson(layers["rollup"], tmp_path / "r.geojson")


# --------------------------------------------------------------------------------------------
# GeoPackage


def test_gpkg_layers_values_and_metadata(tmp_path, layers, meta):
    out = exports.write_gpkg(tmp_path / "all.gpkg", layers, metadata=meta)
    listed = dict(pyogrio.list_layers(out))
    assert listed == {
        "grids": "MultiPolygon",  # Polygon + MultiPolygon promoted
        "stations": "Point",
        "rings": "Polygon",
        "gaps": "Polygon",
        "gap_points": "Point",
        "rollup": None,
        "settings": None,
    }
    grids = pyogrio.read_dataframe(out, layer="grids")
    assert grids.crs.to_epsg() == 4326
    expected = [c for c in layers["grids"].columns if c != "geometry"]
    assert [c for c in grids.columns if c != "geometry"] == expected
    assert list(grids["subdistrict"][:2]) == ["幸福街道", "<b>x</b>"]
    assert math.isnan(grids["walk_median_m"][1])  # inf stored as null
    assert grids["coverage_5min"][0] == 0.1235
    rings = pyogrio.read_dataframe(out, layer="rings")
    assert rings.crs.to_epsg() == 4326
    assert rings.to_crs(UTM51).area.iloc[0] == pytest.approx(40000.0, rel=1e-4)
    rollup = pyogrio.read_dataframe(out, layer="rollup", read_geometry=False)
    assert list(rollup["level"]) == ["district", "subdistrict"]
    assert rollup["subdistrict"][1] == "幸福街道"

    info = pyogrio.read_info(out, layer="grids")
    carried = json.loads(info["layer_metadata"]["servicecircle"])
    assert carried["walk"]["distances_m"] == [300.0, 500.0, 1000.0]
    assert carried["network"]["source"] == "zhifu.osm.bz2"
    settings = pyogrio.read_dataframe(out, layer="settings", read_geometry=False)
    table = dict(zip(settings["key"], settings["value"], strict=True))
    assert table["walk.speed_m_per_min"] == "60.0"
    assert table["walk.thresholds_min"] == "[5.0, 10.0, 15.0]"
    assert table["network.osm_date"] == "2024-04-30"
    assert table["analysis_crs"] == UTM51

    with sqlite3.connect(out) as db:
        (desc,) = db.execute(
            "select description from gpkg_contents where table_name = 'grids'"
        ).fetchone()
    assert "网格" in desc
    side = json.loads((tmp_path / "all.gpkg.meta.json").read_text(encoding="utf-8"))
    assert [lay["name"] for lay in side["export"]["layers"]] == list(layers)
    assert _listing(tmp_path) == {"all.gpkg", "all.gpkg.meta.json"}


def test_gpkg_failure_midway_leaves_nothing_and_keeps_old_file(tmp_path, layers, monkeypatch):
    real = pyogrio.write_dataframe
    calls = []

    def flaky(*args, **kwargs):
        calls.append(kwargs.get("layer"))
        if len(calls) == 3:
            raise RuntimeError("disk pulled out")
        return real(*args, **kwargs)

    monkeypatch.setattr(pyogrio, "write_dataframe", flaky)
    with pytest.raises(RuntimeError, match="disk pulled out"):
        exports.write_gpkg(tmp_path / "new.gpkg", layers)
    assert _listing(tmp_path) == set()

    old = tmp_path / "old.gpkg"
    old.write_bytes(b"previous export")
    exports.sidecar_path(old).write_text("{}", encoding="utf-8")
    calls.clear()
    with pytest.raises(RuntimeError):
        exports.write_gpkg(old, layers, overwrite=True)
    assert old.read_bytes() == b"previous export"
    assert exports.sidecar_path(old).read_text(encoding="utf-8") == "{}"
    assert _listing(tmp_path) == {"old.gpkg", "old.gpkg.meta.json"}


def _ring_chunk(i0: int, n: int, *, multi_at: int | None = None) -> gpd.GeoDataFrame:
    """``n`` squares 100 m apart in UTM 51N; row ``multi_at`` is a two-part MultiPolygon."""
    geoms = []
    for i in range(i0, i0 + n):
        sq = Polygon([(x + 100 * i, y) for x, y in SQUARE_UTM])
        far = Polygon([(x + 100 * i, y + 1000) for x, y in SQUARE_UTM])
        geoms.append(MultiPolygon([sq, far]) if i == multi_at else sq)
    return gpd.GeoDataFrame(
        {"station_id": [f"站{i}" for i in range(i0, i0 + n)], "distance_m": 300.0},
        geometry=geoms,
        crs=UTM51,
    )


def test_gpkg_streamed_layer_equals_the_whole_layer(tmp_path, meta, stations):
    # first chunk all Polygon, a MultiPolygon only in the last one; the middle chunk's
    # columns in another order (written by name, not by position)
    chunks = [_ring_chunk(0, 3), _ring_chunk(3, 2)[["distance_m", "geometry", "station_id"]]]
    chunks.append(_ring_chunk(5, 4, multi_at=7))
    held = []

    def stream():
        for c in chunks:
            held.append(len(c))
            yield c

    out = exports.write_gpkg(
        tmp_path / "s.gpkg", {"stations": stations, "rings": stream()}, metadata=meta
    )
    whole = exports.write_gpkg(
        tmp_path / "w.gpkg", {"rings": pd.concat([chunks[0], chunks[2]])}, metadata=meta
    )
    assert held == [3, 2, 4]
    assert dict(pyogrio.list_layers(out))["rings"] == "MultiPolygon"
    got = pyogrio.read_dataframe(out, layer="rings")
    assert list(got.columns) == ["station_id", "distance_m", "geometry"]
    assert list(got["station_id"]) == [f"站{i}" for i in range(9)]
    assert (got["distance_m"] == 300.0).all()
    # same shapes as written: areas in UTM (each square 200 m × 200 m, row 7 two of them)
    areas = got.to_crs(UTM51).area.to_numpy()
    np.testing.assert_allclose(areas, [40000.0] * 7 + [80000.0, 40000.0], rtol=1e-6)
    # rows 0-2 and 5-8 equal the same rows written as one whole layer
    ref = pyogrio.read_dataframe(whole, layer="rings")
    mine = got.iloc[[0, 1, 2, 5, 6, 7, 8]].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine.drop(columns="geometry"), ref.drop(columns="geometry"))
    assert mine.geometry.geom_equals_exact(ref.geometry, tolerance=0).all()
    info = pyogrio.read_info(out, layer="rings")
    assert json.loads(info["layer_metadata"]["servicecircle"])["walk"]["speed_m_per_min"] == 60.0
    side = json.loads(exports.sidecar_path(out).read_text(encoding="utf-8"))
    lay = {x["name"]: x for x in side["export"]["layers"]}
    assert lay["rings"]["rows"] == 9
    assert lay["rings"]["geometry_types"] == ["MultiPolygon", "Polygon"]
    assert lay["stations"]["rows"] == len(stations)


def test_gpkg_streamed_layer_failures_leave_nothing_and_close_the_stream(tmp_path, meta):
    closed = []

    def stream(*later):
        try:
            yield _ring_chunk(0, 2)
            yield from later
        finally:
            closed.append(True)

    plain = pd.DataFrame(_ring_chunk(2, 1).drop(columns="geometry"))
    ints = _ring_chunk(2, 1).assign(distance_m=1, station_id=7)
    bad = [
        (stream(_ring_chunk(2, 1).drop(columns="distance_m")), r"chunk 1 has other columns"),
        (stream(_ring_chunk(2, 1).assign(extra=1)), r"extra \['extra'\]"),
        (stream(ints), r"'station_id' is int64 in chunk 1 but \w+ in the first chunk"),
        (stream(plain), r"chunk 1 is a DataFrame, not a GeoDataFrame"),
        (iter([]), r"'rings' came with no chunk"),
    ]
    for chunks, message in bad:
        with pytest.raises(ValueError, match=message):
            exports.write_gpkg(tmp_path / "a.gpkg", {"rings": chunks}, metadata=meta)

    def broken():
        yield _ring_chunk(0, 2)
        raise RuntimeError("rings failed")

    with pytest.raises(RuntimeError, match="rings failed"):
        exports.write_gpkg(tmp_path / "b.gpkg", {"rings": broken()}, metadata=meta)
    assert closed == [True] * 4  # every stream run to its clean-up
    assert _listing(tmp_path) == set()
    # ints may widen into the first chunk's float column
    ok = exports.write_gpkg(
        tmp_path / "c.gpkg",
        {"rings": iter([_ring_chunk(0, 1), _ring_chunk(1, 1).assign(distance_m=500)])},
        metadata=meta,
    )
    assert list(pyogrio.read_dataframe(ok, layer="rings")["distance_m"]) == [300.0, 500.0]


# --------------------------------------------------------------------------------------------
# safe writing: atomic, overwrite policy, inputs protected


def test_csv_failure_midway_keeps_old_file(tmp_path, grids, monkeypatch):
    target = tmp_path / "g.csv"
    target.write_bytes(b"old,content\r\n")

    def partial(self, path, *args, **kwargs):
        Path(path).write_text("grid_id,subdis", encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", partial)
    with pytest.raises(ExportError, match=r"g\.csv.*No space left"):
        exports.write_csv(grids, target, overwrite=True)
    assert target.read_bytes() == b"old,content\r\n"
    assert _listing(tmp_path) == {"g.csv"}


def test_failed_rename_leaves_old_output(tmp_path, grids, monkeypatch):
    target = tmp_path / "g.csv"
    target.write_bytes(b"old")
    real = os.replace

    def refuse(src, dst):
        if Path(dst).name == "g.csv":
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ExportError, match="Permission denied"):
        exports.write_csv(grids, target, overwrite=True)
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == {"g.csv"}  # no temp files, no orphan sidecar


def test_existing_output_needs_overwrite(tmp_path, grids):
    target = tmp_path / "g.csv"
    exports.write_csv(grids, target)
    first = target.read_bytes()
    grids.loc[0, "grid_name"] = "新名字"
    with pytest.raises(ExportError, match=r"already exists; pass --overwrite"):
        exports.write_csv(grids, target)
    assert target.read_bytes() == first
    exports.write_csv(grids, target, overwrite=True)
    assert "新名字" in target.read_bytes().decode("utf-8-sig")
    # a leftover sidecar alone also counts as an existing output
    target.unlink()
    with pytest.raises(ExportError, match=r"g\.csv\.meta\.json already exists"):
        exports.write_csv(grids, target)


def test_input_file_never_overwritten(tmp_path, grids, stations):
    src = tmp_path / "stations.csv"
    src.write_bytes(b"id,lon,lat\r\n1,121.4,31.2\r\n")
    before = src.read_bytes()
    with pytest.raises(ExportError, match="is an input file"):
        exports.write_csv(grids, src, overwrite=True, protect=[src])
    # found through attrs["source"]["path"] as inputs.read_* record it
    stations.attrs["source"] = {"kind": "stations", "file": src.name, "path": str(src)}
    with pytest.raises(ExportError, match="outputs never replace inputs"):
        exports.write_csv(stations, tmp_path / "." / "stations.csv", overwrite=True)
    # another name for the same file: a hard link and a symbolic link
    os.link(src, tmp_path / "hard.csv")
    os.symlink(src, tmp_path / "soft.csv")
    for alias in ("hard.csv", "soft.csv"):
        with pytest.raises(ExportError, match="is an input file"):
            exports.write_csv(grids, tmp_path / alias, overwrite=True, protect=[src])
    assert src.read_bytes() == before


def test_unwritable_folder_is_an_export_error(tmp_path, grids):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ExportError, match=r"cannot write .*not_a_folder"):
        exports.write_csv(grids, blocker / "out" / "g.csv")
    (tmp_path / "adir").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        exports.write_csv(grids, tmp_path / "adir", overwrite=True)


# --------------------------------------------------------------------------------------------
# export_all


def test_export_all_writes_every_format(tmp_path, layers, meta):
    out_dir = tmp_path / "new" / "out"
    written = exports.export_all(out_dir, {**layers, "gap_list": None}, metadata=meta)
    names = [p.name for p in written]
    assert names == [
        "coverage_grids.csv",
        "coverage_rollup.csv",
        "coverage_grids.geojson",
        "coverage_stations.geojson",
        "coverage_rings.geojson",
        "coverage_gaps.geojson",
        "coverage_gap_points.geojson",
        "coverage.gpkg",
    ]
    assert _listing(out_dir) == set(names) | {n + ".meta.json" for n in names} | {"manifest.json"}
    manifest = json.loads((out_dir / "manifest.json").read_text("utf-8"))
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == _listing(out_dir) - {"manifest.json"}
    for name, entry in listed.items():
        data = (out_dir / name).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".")]  # no leftovers
    for p in written:
        side = json.loads(exports.sidecar_path(p).read_text(encoding="utf-8"))
        assert side["walk"]["frontage_m"] == 30.0
        assert side["export"]["file"] == p.name
    assert (out_dir / "coverage_grids.csv").read_bytes().startswith(BOM)


def test_export_all_writes_a_set_and_never_replaces_other_files(tmp_path, layers):
    (tmp_path / "x.gpkg").write_bytes(b"keep")
    # a folder of the user's own files is never an output set, not even with overwrite
    for overwrite in (False, True):
        with pytest.raises(ExportError, match="did not write"):
            exports.export_all(tmp_path, layers, stem="x", overwrite=overwrite)
    assert _listing(tmp_path) == {"x.gpkg"}
    out = tmp_path / "set"
    exports.export_all(out, layers, stem="x", formats=["csv"])
    first = _listing(out)
    with pytest.raises(ExportError, match=r"earlier run.*--overwrite"):
        exports.export_all(out, layers, stem="x", formats=["gpkg"])
    assert _listing(out) == first
    written = exports.export_all(
        out, layers, stem="x", formats=["gpkg"], overwrite=True, encoding="gbk"
    )
    assert written == [out / "x.gpkg"]
    # the new set replaced the old one whole: no CSV of the first run is left beside it
    assert _listing(out) == {"x.gpkg", "x.gpkg.meta.json", "manifest.json"}
    assert _listing(tmp_path) == {"x.gpkg", "set"}


def test_export_all_options(tmp_path, layers):
    with pytest.raises(ExportError, match=r"unknown export format.*shp"):
        exports.export_all(tmp_path / "a", layers, formats=["shp"])
    with pytest.raises(ValueError, match="letters, digits"):
        exports.export_all(tmp_path / "b", {"网格": layers["grids"]})
    assert _listing(tmp_path) == set()  # nothing half-made
    written = exports.export_all(
        tmp_path / "c", layers, formats=["CSV"], csv_layers=["stations"], encoding="gbk"
    )
    assert [p.name for p in written] == ["coverage_stations.csv", "coverage_rollup.csv"]
    raw = written[0].read_bytes()
    assert "幸福驿站".encode("gbk") in raw
