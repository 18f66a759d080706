"""Tests for servicecircle.inputs: bad inputs give one clear error, good inputs load right.

Every input is written in ``tmp_path`` by the test itself. Each bad-input case checks the
exception class and that the message names the file, the row / feature / column and the fix,
and that the reader left every input file byte-identical. Expected coordinates come from
independent references: a pyproj ``Transformer`` for projected input, and
``servicecircle.datums`` (tested on its own against published vectors) for GCJ-02 / BD-09.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import Point, box

from servicecircle import datums
from servicecircle.errors import CRSError, InputError, ServiceCircleWarning
from servicecircle.inputs import (
    TIERS,
    check_alignment,
    read_buildings,
    read_grids,
    read_resources,
    read_stations,
)

# --------------------------------------------------------------------------------------------
# helpers


def msg(*parts: str) -> str:
    """A regex that finds the literal ``parts`` in this order (across lines)."""
    return "(?s)" + ".*".join(re.escape(p) for p in parts)


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def square(lon: float, lat: float, d: float = 0.01) -> dict:
    """GeoJSON polygon: the square with south-west corner (lon, lat) and side d degrees."""
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


def feature(geometry: dict | None, **props: object) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def collection(*features: dict) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False)


Build = Callable[[Path], Path]


def text_file(name: str, text: str, encoding: str = "utf-8") -> Build:
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(text.encode(encoding))
        return path

    return build


def bytes_file(name: str, data: bytes) -> Build:
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return build


def gpkg_file(name: str, layers: dict[str, gpd.GeoDataFrame]) -> Build:
    def build(tmp: Path) -> Path:
        path = tmp / name
        for layer, frame in layers.items():
            frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")
        return path

    return build


def nothing(name: str) -> Build:
    return lambda tmp: tmp / name


def stations(**kw: object) -> Callable[[Path], object]:
    return lambda path: read_stations(path, **kw)


def grids(**kw: object) -> Callable[[Path], object]:
    return lambda path: read_grids(path, **kw)


def stations_and_grids(stations_csv: str, grids_geojson: str) -> Build:
    """Writes stations.csv and grids.geojson; returns the folder."""

    def build(tmp: Path) -> Path:
        (tmp / "stations.csv").write_text(stations_csv, encoding="utf-8")
        (tmp / "grids.geojson").write_text(grids_geojson, encoding="utf-8")
        return tmp

    return build


def align(folder: Path) -> None:
    st = read_stations(folder / "stations.csv", crs=4326)
    gr = read_grids(folder / "grids.geojson", crs=4326)
    check_alignment(st, gr)


# Zhifu, Yantai (lon/lat); a UTM 51N point near it; Helsinki.
LON, LAT = 121.39, 37.54
UTM_X, UTM_Y = 358_700.0, 4_155_600.0
GOOD_CSV = f"id,name,lon,lat\n1,a,{LON},{LAT}\n2,b,{LON + 0.01},{LAT}\n3,c,{LON},{LAT + 0.01}\n"
UTM_FRAME = gpd.GeoDataFrame(
    {"name": ["g1"]}, geometry=[box(UTM_X, UTM_Y, UTM_X + 100, UTM_Y + 100)], crs=32651
)
WGS_FRAME = gpd.GeoDataFrame({"name": ["p"]}, geometry=[Point(LON, LAT)], crs=4326)
GBK_CSV = "编号,名称,经度,纬度\n1,毓璜顶街道驿站,121.39,37.54\n2,向阳街道驿站,121.40,37.53\n"


@dataclass(frozen=True)
class Bad:
    """A bad input: how to build it, how to read it, the error class and message."""

    build: Build
    read: Callable[[Path], object]
    error: type[Exception]
    match: str


CASES = [
    # ---- coordinate columns -----------------------------------------------------------------
    pytest.param(
        Bad(
            text_file("stations.csv", "id,name,lat\n1,a,37.5\n"),
            stations(crs=4326),
            InputError,
            msg("stations.csv: no longitude/x column; the columns are id, name, lat", "x_col="),
        ),
        id="missing-coordinate-columns",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lng,longitude,lat\n1,121.4,121.4,37.5\n"),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: several columns could be the longitude/x coordinate (lng, "
                "longitude); choose one with x_col="
            ),
        ),
        id="ambiguous-lng-longitude",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "编号,经度,lon,纬度\n1,121.4,121.4,37.5\n"),
            stations(crs="gcj02"),
            InputError,
            msg(
                "stations.csv: several columns could be the longitude/x coordinate (经度, lon)",
                "x_col=",
            ),
        ),
        id="ambiguous-jingdu-lon",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,121.4,37.5\n"),
            stations(crs=4326, x_col="Lon"),
            InputError,
            msg(
                "stations.csv: no column 'Lon' for longitude/x; the columns are id, lon, lat",
                "pass one of them",
            ),
        ),
        id="explicit-x-col-absent",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,121.4,37.5\n"),
            stations(crs=4326, x_col="lon", y_col="lon"),
            InputError,
            msg("stations.csv: the x and y columns are both 'lon'", "y_col="),
        ),
        id="x-and-y-same-column",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,121.4,37.5\n2,abc,37.5\n3,121.4,37.5\n"),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: column 'lon' has 1 missing or non-numeric value(s)",
                "coordinates must be decimal numbers",
                "row 3: 'abc'",
            ),
        ),
        id="non-numeric-coordinate",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,121.4,37.5\n2,121.4,37.5\n3,121.4,\n"),
            stations(crs=4326),
            InputError,
            msg("stations.csv: column 'lat' has 1 missing", "decimal numbers", "row 4: empty"),
        ),
        id="empty-coordinate-cell",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,121.4,37.5\n\n3,121°24',37.5\n"),
            stations(crs=4326),
            InputError,
            msg("stations.csv: column 'lon'", "decimal numbers", 'row 4: "121°24\'"'),
        ),
        id="blank-line-keeps-excel-row-numbers",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", 'id,name,lon,lat\n1,"two\nlines",121.4,37.5\n2,b,x,37.5\n'),
            stations(crs=4326),
            InputError,
            msg("stations.csv: column 'lon'", "row 3: 'x'"),
        ),
        id="quoted-newline-is-one-excel-row",
    ),
    # ---- coordinate values -------------------------------------------------------------------
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,121.4,37.5\n2,121.4,95\n"),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: 1 row(s) have coordinates outside longitude −180..180 / latitude "
                "−90..90",
                "Correct these values",
                "row 3: (121.4, 95)",
            ),
        ),
        id="latitude-out-of-range",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,37.50,121.40\n2,37.51,121.41\n"),
            stations(crs="gcj02"),
            InputError,
            msg(
                "stations.csv: longitude and latitude look swapped in 2 of 2 row(s)",
                "x_col= (longitude) and y_col= (latitude)",
                "row 2: (37.5, 121.4)",
                "row 3: (37.51, 121.41)",
            ),
        ),
        id="swapped-gcj02",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,37.50,121.40\n2,37.51,121.41\n"),
            stations(crs=4326),
            InputError,
            msg("stations.csv: longitude and latitude look swapped", "x_col=", "row 2"),
        ),
        id="swapped-wgs84",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", f"id,x,y\n1,{UTM_X},{UTM_Y}\n2,{UTM_X + 50},{UTM_Y}\n"),
            stations(crs="EPSG:4326"),
            InputError,
            msg(
                "stations.csv: 2 row(s) have coordinates outside",
                "the range of EPSG:4326",
                "look like metres: declare the projected EPSG code (e.g. EPSG:32651)",
                f"row 2: ({UTM_X:g}, {UTM_Y:g})",
            ),
        ),
        id="projected-declared-4326",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,lon,lat\n1,24.94,60.17\n2,24.95,60.16\n"),
            stations(crs="gcj02"),
            CRSError,
            msg(
                "stations.csv: 2 row(s) lie outside China, where gcj02 is not defined",
                "declare crs='EPSG:4326'",
                "row 2: (24.94, 60.17)",
            ),
        ),
        id="gcj02-outside-china",
    ),
    pytest.param(
        Bad(
            text_file(
                "grids.geojson",
                collection(feature(square(LON, LAT)), feature(square(24.94, 60.17))),
            ),
            grids(crs="gcj02"),
            CRSError,
            msg(
                "grids.geojson: 1 feature(s) lie outside China",
                "declare crs='EPSG:4326'",
                "feature 2: (24.94, 60.17)",
            ),
        ),
        id="gcj02-outside-china-polygon-names-feature",
    ),
    # ---- ids and attributes ------------------------------------------------------------------
    pytest.param(
        Bad(
            text_file("stations.csv", GOOD_CSV.replace("\n1,a", "\n7,a").replace("\n3,c", "\n7,c")),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: 1 problem(s) in the stations",
                "duplicate id '7' in column 'id' at row 2, row 4; ids must be unique",
            ),
        ),
        id="duplicate-station-ids",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", GOOD_CSV.replace("\n2,b", "\n,b")),
            stations(crs=4326),
            InputError,
            msg("stations.csv: 1 problem(s)", "row 3: empty id in column 'id'; fill it in"),
        ),
        id="empty-station-id",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", f"id,lon,lat,tier\n1,{LON},{LAT},驿站\n2,{LON},{LAT},市级\n"),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: 1 problem(s) in the stations",
                "unknown tier label(s) in column 'tier': '市级' (1×: row 3)",
                "Known: district (区级中心), subdistrict (街道中心), station (驿站)",
                "tier_map={'市级': 'station'}",
            ),
        ),
        id="unknown-tier",
    ),
    pytest.param(
        Bad(
            text_file(
                "grids.geojson",
                collection(
                    feature(square(LON, LAT), 人口=100), feature(square(LON + 0.01, LAT), 人口=-5)
                ),
            ),
            grids(crs=4326),
            InputError,
            msg(
                "grids.geojson: 1 problem(s) in the grids",
                "feature 2: population -5 in column '人口' is below 0",
                "correct it or leave it empty",
            ),
        ),
        id="negative-population",
    ),
    pytest.param(
        Bad(
            text_file("grids.geojson", collection(feature(square(LON, LAT), population="很多"))),
            grids(crs=4326),
            InputError,
            msg(
                "grids.geojson: 1 problem(s) in the grids",
                "feature 1: population '很多' in column 'population' is not a number",
                "write a plain number",
            ),
        ),
        id="non-numeric-population",
    ),
    pytest.param(
        Bad(
            text_file("buildings.csv", f"lon,lat,floors\n{LON},{LAT},6\n{LON},{LAT},-1\n"),
            lambda p: read_buildings(p, crs=4326),
            InputError,
            msg("buildings.csv: 1 problem(s)", "row 3: floors -1 in column 'floors' is below 0"),
        ),
        id="negative-floors",
    ),
    pytest.param(
        Bad(
            text_file("grids.geojson", collection(feature(square(LON, LAT), gid="a"))),
            grids(crs=4326, id_col="grid"),
            InputError,
            msg("grids.geojson: no column 'grid'; the columns are gid", "pass one of them"),
        ),
        id="explicit-id-col-absent",
    ),
    # ---- empty and malformed tables ----------------------------------------------------------
    pytest.param(
        Bad(
            bytes_file("stations.csv", b""),
            stations(crs=4326),
            InputError,
            msg("stations.csv: the file is empty (0 bytes)", "export or copy it again"),
        ),
        id="empty-file",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "\n \n\n"),
            stations(crs=4326),
            InputError,
            msg("stations.csv: holds no text, only blank lines; pick the right file"),
        ),
        id="blank-lines-only",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", "id,name,lon,lat\n"),
            stations(crs=4326),
            InputError,
            msg("stations.csv: has a header row but no data rows; add the data below the header"),
        ),
        id="header-only",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", f"id,lon,lat,id\n1,{LON},{LAT},2\n"),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: column name(s) id appear more than once in the header (row 1)",
                "rename them",
            ),
        ),
        id="duplicate-column-names",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", f"id,name,lon,lat\n1,a,{LON},{LAT}\n2,b,c,{LON},{LAT}\n"),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: 1 row(s) have more cells than the 4 columns of the header",
                "quote it",
                "row 3: 5 cells",
            ),
        ),
        id="row-with-extra-cells",
    ),
    # ---- encodings and disguised files -------------------------------------------------------
    pytest.param(
        Bad(
            text_file("stations.csv", GBK_CSV, encoding="gbk"),
            stations(crs="gcj02", encoding="utf-8"),
            InputError,
            msg(
                "stations.csv: not valid utf-8 (byte 0x",
                "on line 1)",
                "looks like GBK",
                "pass encoding='gbk'",
            ),
        ),
        id="gbk-read-as-utf8",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", GOOD_CSV),
            stations(crs=4326, encoding="utf-9"),
            InputError,
            msg("stations.csv: unknown encoding 'utf-9'; try utf-8 or gbk"),
        ),
        id="unknown-encoding",
    ),
    pytest.param(
        Bad(
            bytes_file("stations.csv", b"id,lon,lat\n1,121.4,37.5\n2,\xff\xfe\xff,37.5\n"),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: text is neither UTF-8 nor GBK (byte 0xff in row 3 fits neither)",
                "save it from Excel as 'CSV UTF-8'",
            ),
        ),
        id="neither-utf8-nor-gbk",
    ),
    pytest.param(
        Bad(
            bytes_file("stations.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"[Content_Types].xml" * 9),
            stations(crs=4326),
            InputError,
            msg(
                "stations.csv: has a .csv name but holds a ZIP archive or Excel workbook (.xlsx)",
                "save it from Excel as 'CSV UTF-8'",
            ),
        ),
        id="xlsx-named-csv",
    ),
    pytest.param(
        Bad(
            text_file("stations.geojson", GOOD_CSV),
            stations(crs=4326),
            InputError,
            msg(
                "stations.geojson: has a .geojson name but holds text (CSV-like), not GeoJSON",
                "rename it to what it is",
            ),
        ),
        id="csv-named-geojson",
    ),
    pytest.param(
        Bad(
            text_file("grids.gpkg", "this is not a database\n"),
            grids(crs=4326),
            InputError,
            msg(
                "grids.gpkg: has a .gpkg name but holds text (CSV-like), not GeoPackage",
                "export it again",
            ),
        ),
        id="text-named-gpkg",
    ),
    pytest.param(
        Bad(
            text_file("grids.geojson", collection(feature(square(LON, LAT)))[:70]),
            grids(crs=4326),
            InputError,
            msg("grids.geojson: could not be read as GeoJSON", "export it again"),
        ),
        id="truncated-geojson",
    ),
    pytest.param(
        Bad(
            text_file("grids.geojson", collection()),
            grids(crs=4326),
            InputError,
            msg("grids.geojson: holds no features; pick the right file or layer"),
        ),
        id="geojson-without-features",
    ),
    pytest.param(
        Bad(
            bytes_file("stations.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64),
            stations(crs=4326),
            InputError,
            msg(
                "stations.xls: unsupported file type '.xls'",
                "save it from Excel or WPS as 'CSV UTF-8' (.csv)",
            ),
        ),
        id="unsupported-xls",
    ),
    pytest.param(
        Bad(
            text_file("grids.kml", "<kml></kml>"),
            grids(crs=4326),
            InputError,
            msg("grids.kml: unsupported file type '.kml'; convert it to GeoJSON or GeoPackage"),
        ),
        id="unsupported-kml",
    ),
    pytest.param(
        Bad(
            nothing("nope.csv"),
            stations(crs=4326),
            InputError,
            msg("nope.csv: file not found; check the path"),
        ),
        id="file-not-found",
    ),
    pytest.param(
        Bad(
            lambda tmp: tmp,
            stations(crs=4326),
            InputError,
            msg(": is a folder; give the file inside it"),
        ),
        id="folder-not-file",
    ),
    # ---- CRS declarations --------------------------------------------------------------------
    pytest.param(
        Bad(
            text_file("stations.csv", GOOD_CSV),
            stations(crs="gcj-2"),
            CRSError,
            msg(
                "stations.csv: unknown coordinate system 'gcj-2' (did you mean 'gcj02'?)",
                "use an EPSG code such as EPSG:4326",
            ),
        ),
        id="unknown-crs-string",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", GOOD_CSV),
            stations(crs=99999),
            CRSError,
            msg("stations.csv: unknown EPSG code 99999", "'gcj02' (AMap/Tencent)"),
        ),
        id="unknown-epsg-code",
    ),
    pytest.param(
        Bad(
            text_file("stations.csv", GOOD_CSV),
            stations(crs=None),
            CRSError,
            msg("stations.csv: no coordinate system declared", "'bd09' (Baidu)"),
        ),
        id="no-crs-declared",
    ),
    pytest.param(
        Bad(
            gpkg_file("grids.gpkg", {"grids": UTM_FRAME}),
            grids(crs="gcj02"),
            CRSError,
            msg(
                "grids.gpkg: the file is stored in EPSG:32651 (projected) but was declared gcj02",
                "declare EPSG:32651 instead",
            ),
        ),
        id="gpkg-utm-declared-gcj02",
    ),
    pytest.param(
        Bad(
            text_file("grids.geojson", collection(feature(square(LON, LAT)))),
            grids(crs="EPSG:32651"),
            CRSError,
            msg(
                "grids.geojson: the file says it is in EPSG:4326 but EPSG:32651 was declared",
                "declare EPSG:4326 if the file is right",
            ),
        ),
        id="geojson-wgs84-declared-utm",
    ),
    pytest.param(
        Bad(
            gpkg_file("stations.gpkg", {"a": WGS_FRAME, "b": WGS_FRAME}),
            stations(crs=4326),
            InputError,
            msg("stations.gpkg: has 2 layers (a, b); choose one with layer=NAME"),
        ),
        id="multilayer-gpkg-without-layer",
    ),
    pytest.param(
        Bad(
            gpkg_file("stations.gpkg", {"a": WGS_FRAME, "b": WGS_FRAME}),
            stations(crs=4326, layer="c"),
            InputError,
            msg("stations.gpkg: has no layer 'c'; its layers are a, b", "layer=NAME"),
        ),
        id="gpkg-unknown-layer",
    ),
    # ---- geometries --------------------------------------------------------------------------
    pytest.param(
        Bad(
            text_file(
                "grids.geojson",
                collection(feature(point(LON, LAT)), feature(point(LON + 0.01, LAT))),
            ),
            grids(crs=4326),
            InputError,
            msg(
                "grids.geojson: 2 of 2 feature(s) have the wrong geometry type",
                "red grids must be polygons (Polygon or MultiPolygon)",
                "export them as polygons",
                "feature 1: Point",
                "feature 2: Point",
            ),
        ),
        id="grids-are-points",
    ),
    pytest.param(
        Bad(
            text_file(
                "grids.geojson",
                collection(
                    feature(square(LON, LAT)), feature({"type": "Polygon", "coordinates": []})
                ),
            ),
            grids(crs=4326),
            InputError,
            msg(
                "grids.geojson: 1 feature(s) have no geometry; remove them or draw their red grids",
                "feature 2: empty geometry",
            ),
        ),
        id="grid-empty-geometry",
    ),
    pytest.param(
        Bad(
            text_file("grids.geojson", collection(feature(None), feature(square(LON, LAT)))),
            grids(crs=4326),
            InputError,
            msg("grids.geojson: 1 feature(s) have no geometry", "feature 1: empty geometry"),
        ),
        id="grid-null-geometry",
    ),
    pytest.param(
        Bad(
            text_file("grids.csv", GOOD_CSV),
            grids(crs=4326),
            InputError,
            msg(
                "grids.csv: red grids must be polygons, but this is a table",
                "export the grid boundaries as GeoJSON",
            ),
        ),
        id="grids-from-table",
    ),
    pytest.param(
        Bad(
            text_file(
                "stations.geojson",
                collection(
                    feature({"type": "MultiPoint", "coordinates": [[LON, LAT], [LON, LAT + 0.01]]})
                ),
            ),
            stations(crs=4326),
            InputError,
            msg(
                "stations.geojson: 1 feature(s) are multi-points with several points",
                "give one point per station",
                "feature 1: 2 points",
            ),
        ),
        id="station-multipoint",
    ),
    pytest.param(
        Bad(
            stations_and_grids(GOOD_CSV, collection(feature(square(LON + 0.06, LAT)))),
            align,
            CRSError,
            msg(
                "every station in stations.csv (declared EPSG:4326) is at least",
                "m from the grids in grids.geojson (declared EPSG:4326)",
                "AMap/Tencent = gcj02, Baidu = bd09",
                "check the crs= of each",
            ),
        ),
        id="grids-far-from-stations",
    ),
]


def test_at_least_24_bad_input_cases():
    assert len(CASES) >= 24


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Bad, tmp_path: Path) -> None:
    path = case.build(tmp_path)
    before = digests(tmp_path)
    with pytest.raises(case.error, match=case.match):
        case.read(path)
    assert digests(tmp_path) == before  # inputs are never written to


def test_bad_input_errors_are_value_errors(tmp_path: Path) -> None:
    path = text_file("stations.csv", "id,lon\n1,2\n")(tmp_path)
    with pytest.raises(ValueError, match="no latitude/y column"):
        read_stations(path, crs=4326)


# --------------------------------------------------------------------------------------------
# repaired polygons and alignment warnings


def test_bowtie_grid_is_repaired_with_a_warning(tmp_path: Path) -> None:
    # a bow-tie: the ring crosses itself at (121.41, 37.51); feature 1 is a valid square
    bowtie = [[121.40, 37.50], [121.42, 37.52], [121.42, 37.50], [121.40, 37.52], [121.40, 37.50]]
    path = text_file(
        "grids.geojson",
        collection(
            feature(square(121.45, 37.50), name="ok"),
            feature({"type": "Polygon", "coordinates": [bowtie]}, name="bow"),
        ),
    )(tmp_path)
    before = digests(tmp_path)
    with pytest.warns(
        ServiceCircleWarning,
        match=msg(
            "grids.geojson: repaired 1 invalid polygon(s)",
            "feature 2: Self-intersection",
            "check them in a GIS",
        ),
    ):
        out = read_grids(path, crs=4326)
    assert digests(tmp_path) == before
    repaired = out.geometry.iloc[1]
    assert repaired.is_valid
    assert repaired.geom_type == "MultiPolygon"
    assert len(repaired.geoms) == 2
    # two triangles, each with base 0.02° (the vertical side) and height 0.01° (to the
    # crossing point): 2 × ½ × 0.02 × 0.01 = 0.0002 square degrees
    assert repaired.area == pytest.approx(0.0002, rel=1e-9)
    assert repaired.bounds == pytest.approx((121.40, 37.50, 121.42, 37.52))
    assert out.geometry.iloc[0].area == pytest.approx(0.0001, rel=1e-9)  # untouched


def test_check_alignment_accepts_matching_layers(tmp_path: Path) -> None:
    folder = stations_and_grids(GOOD_CSV, collection(feature(square(LON, LAT, 0.02))))(tmp_path)
    align(folder)  # neither raises nor warns (warnings are errors here)


def test_check_alignment_accepts_grids_covering_part_of_the_stations(tmp_path: Path) -> None:
    # two of three stations lie ~9 km east of the only grid: grids of one community,
    # stations of the whole district. That is no sign of a wrong datum: no warning.
    far = f"id,lon,lat\n1,{LON},{LAT}\n2,{LON + 0.1},{LAT}\n3,{LON + 0.1},{LAT + 0.01}\n"
    folder = stations_and_grids(far, collection(feature(square(LON, LAT, 0.005))))(tmp_path)
    align(folder)


def test_check_alignment_warns_when_most_grids_have_no_station_near(tmp_path: Path) -> None:
    # three grids, ~9 km apart; the one station is inside the first: 1 of 3 grids (33 %)
    # has a station within 1,000 m
    csv_text = f"id,lon,lat\n1,{LON + 0.002},{LAT + 0.002}\n"
    grids = collection(
        feature(square(LON, LAT, 0.005)),
        feature(square(LON + 0.1, LAT, 0.005)),
        feature(square(LON + 0.1, LAT + 0.1, 0.005)),
    )
    folder = stations_and_grids(csv_text, grids)(tmp_path)
    with pytest.warns(
        ServiceCircleWarning,
        match=msg("only 33% of the grids in grids.geojson", "have a station", "check that both"),
    ):
        align(folder)


# --------------------------------------------------------------------------------------------
# encodings and column detection


def test_gbk_csv_is_detected(tmp_path: Path) -> None:
    path = text_file("stations.csv", GBK_CSV, encoding="gbk")(tmp_path)
    before = digests(tmp_path)
    out = read_stations(path, crs="gcj02")
    assert digests(tmp_path) == before
    assert out["name"].tolist() == ["毓璜顶街道驿站", "向阳街道驿站"]
    assert out["station_id"].tolist() == ["1", "2"]
    assert out.attrs["source"]["encoding"] == "gbk"
    assert out.attrs["source"]["crs"] == "gcj02"
    assert out.crs.to_epsg() == 4326


def test_utf8_bom_csv(tmp_path: Path) -> None:
    path = text_file("stations.csv", GBK_CSV, encoding="utf-8-sig")(tmp_path)
    out = read_stations(path, crs="gcj02")
    assert out["station_id"].tolist() == ["1", "2"]  # the BOM is not part of '编号'
    assert out["name"].iloc[0] == "毓璜顶街道驿站"
    assert out.attrs["source"]["encoding"] == "utf-8-sig"


def test_utf16_tab_separated_excel_unicode_text(tmp_path: Path) -> None:
    text = GBK_CSV.replace(",", "\t").replace("\n", "\r\n")
    path = text_file("stations.txt", text, encoding="utf-16")(tmp_path)
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    out = read_stations(path, crs="gcj02")
    assert out["name"].tolist() == ["毓璜顶街道驿站", "向阳街道驿站"]
    assert out.attrs["source"]["encoding"] == "utf-16"


@pytest.mark.parametrize(
    ("xname", "yname"),
    [("经度", "纬度"), ("lon", "lat"), ("x", "y"), ("lon_bd09", "lat_bd09"), ("LNG", "Latitude")],
)
def test_coordinate_columns_are_found(tmp_path: Path, xname: str, yname: str) -> None:
    path = text_file("stations.csv", f"name,{yname},{xname}\na,37.54,121.39\nb,37.53,121.4\n")(
        tmp_path
    )
    out = read_stations(path, crs=4326)
    np.testing.assert_allclose(out.geometry.x, [121.39, 121.4])
    np.testing.assert_allclose(out.geometry.y, [37.54, 37.53])
    assert xname not in out.columns
    assert yname not in out.columns


def test_exact_name_beats_pattern_name(tmp_path: Path) -> None:
    path = text_file("stations.csv", "lon,lon_bd09,lat\n121.39,121.40,37.54\n")(tmp_path)
    out = read_stations(path, crs=4326)
    assert out.geometry.x.iloc[0] == pytest.approx(121.39)
    assert out["lon_bd09"].iloc[0] == "121.40"


def test_explicit_columns(tmp_path: Path) -> None:
    text = "east_deg,north_deg,lng,longitude\n121.39,37.54,1,2\n"
    path = text_file("stations.csv", text)(tmp_path)
    out = read_stations(path, crs=4326, x_col="east_deg", y_col="north_deg")
    assert (out.geometry.x.iloc[0], out.geometry.y.iloc[0]) == pytest.approx((121.39, 37.54))


def test_station_ids_default_and_names_fall_back(tmp_path: Path) -> None:
    path = text_file("stations.csv", f"lon,lat,name\n{LON},{LAT},甲\n{LON},{LAT},\n")(tmp_path)
    out = read_stations(path, crs=4326)
    assert out["station_id"].tolist() == ["S1", "S2"]
    assert out["name"].tolist() == ["甲", "S2"]
    assert out["tier"].tolist() == ["station", "station"]


def test_chinese_tiers_are_mapped(tmp_path: Path) -> None:
    rows = ["区级中心", "街道中心", "驿站", "District", ""]
    text = "id,lon,lat,级别\n" + "".join(f"{i},{LON},{LAT},{t}\n" for i, t in enumerate(rows))
    out = read_stations(text_file("stations.csv", text)(tmp_path), crs=4326)
    assert out["tier"].tolist() == ["district", "subdistrict", "station", "district", "station"]
    assert set(out["tier"]) <= set(TIERS)


def test_grid_columns_are_mapped(tmp_path: Path) -> None:
    path = text_file(
        "grids.geojson",
        collection(
            feature(
                square(LON, LAT),
                编号="g1",
                街道="毓璜顶街道",
                社区="市府街社区",
                网格="第一网格",
                人口=1200,
            ),
            feature(
                square(LON + 0.01, LAT),
                编号="g2",
                街道="毓璜顶街道",
                社区="市府街社区",
                网格="第二网格",
                人口=None,
            ),
        ),
    )(tmp_path)
    out = read_grids(path, crs=4326)
    assert out.columns[:5].tolist() == [
        "grid_id",
        "subdistrict",
        "community",
        "grid_name",
        "population",
    ]
    assert out["grid_id"].tolist() == ["g1", "g2"]
    assert out["subdistrict"].tolist() == ["毓璜顶街道"] * 2
    assert out["community"].tolist() == ["市府街社区"] * 2
    assert out["grid_name"].tolist() == ["第一网格", "第二网格"]
    assert out["population"].iloc[0] == 1200.0
    assert np.isnan(out["population"].iloc[1])
    assert out.attrs["source"]["kind"] == "grids"


# --------------------------------------------------------------------------------------------
# coordinate systems land in the right place


def test_projected_csv_lands_at_the_right_lonlat(tmp_path: Path) -> None:
    xs, ys = [UTM_X, UTM_X + 500.0], [UTM_Y, UTM_Y - 250.0]
    text = "id,x,y\n" + "".join(
        f"{i},{x},{y}\n" for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    )
    out = read_stations(text_file("stations.csv", text)(tmp_path), crs="EPSG:32651")
    ref = pyproj.Transformer.from_crs(32651, 4326, always_xy=True)
    lon, lat = ref.transform(xs, ys)
    np.testing.assert_allclose(out.geometry.x, lon, atol=1e-9)
    np.testing.assert_allclose(out.geometry.y, lat, atol=1e-9)
    assert 121.2 < lon[0] < 121.6
    assert 37.4 < lat[0] < 37.7  # Zhifu
    assert out.attrs["source"]["crs"] == "EPSG:32651"


def test_projected_gpkg_lands_at_the_right_lonlat(tmp_path: Path) -> None:
    path = gpkg_file("grids.gpkg", {"grids": UTM_FRAME})(tmp_path)
    out = read_grids(path, crs=32651)
    ref = UTM_FRAME.to_crs(4326)
    assert shapely.equals_exact(out.geometry.iloc[0], ref.geometry.iloc[0], tolerance=1e-9)


def test_bd09_csv_lands_where_datums_says(tmp_path: Path) -> None:
    bx, by = np.array([121.3997, 121.4452]), np.array([37.5440, 37.5351])
    text = "lon_bd09,lat_bd09\n" + "".join(f"{x},{y}\n" for x, y in zip(bx, by, strict=True))
    out = read_stations(text_file("stations.csv", text)(tmp_path), crs="bd09")
    lon, lat = datums.bd09_to_wgs84(bx, by)
    np.testing.assert_allclose(out.geometry.x, lon, atol=1e-9)
    np.testing.assert_allclose(out.geometry.y, lat, atol=1e-9)
    # and BD-09 really moved them: about a kilometre at Zhifu
    _, _, dist = pyproj.Geod(ellps="WGS84").inv(bx, by, lon, lat)
    assert np.all((dist > 800) & (dist < 1600))


def test_gcj02_geojson_lands_where_datums_says(tmp_path: Path) -> None:
    path = text_file("grids.geojson", collection(feature(square(LON, LAT))))(tmp_path)
    out = read_grids(path, crs="amap")
    ring = np.array(square(LON, LAT)["coordinates"][0])
    lon, lat = datums.gcj02_to_wgs84(ring[:, 0], ring[:, 1])
    got = shapely.get_coordinates(out.geometry.iloc[0])
    np.testing.assert_allclose(got[:, 0], lon, atol=1e-9)
    np.testing.assert_allclose(got[:, 1], lat, atol=1e-9)


def test_resources_polygons_become_points_inside(tmp_path: Path) -> None:
    path = text_file(
        "resources.geojson",
        collection(
            feature(square(LON, LAT), name="公园", 类别="park"),
            feature(point(LON + 0.02, LAT), name="食堂"),
        ),
    )(tmp_path)
    out = read_resources(path, crs=4326)
    assert out.geom_type.tolist() == ["Point", "Point"]
    assert shapely.contains(shapely.geometry.shape(square(LON, LAT)), out.geometry.iloc[0])
    assert out["category"].tolist() == ["park", "other"]
    assert out["resource_id"].tolist() == ["R1", "R2"]


# --------------------------------------------------------------------------------------------
# real data: Yantai bus stops (BD-09) against the Zhifu boundary (GCJ-02)

#: Stops inside the boundary, counted independently in GCJ-02 terms (shared/data/README.md).
ZHIFU_STOPS_INSIDE = 3274


@pytest.mark.shared_data
def test_real_zhifu_stops_inside_boundary(shared_data: Path) -> None:
    stops_csv = shared_data / "zhifu" / "yantai_bus_stops_bd09.csv"
    boundary_json = shared_data / "zhifu" / "zhifu_boundary_gcj02.geojson"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (stops_csv, boundary_json)}

    stops = read_stations(stops_csv, crs="bd09")
    boundary = read_grids(boundary_json, crs="gcj02")
    assert len(stops) == 5434
    assert len(boundary) == 1
    zhifu = boundary.geometry.iloc[0]
    assert zhifu.geom_type == "MultiPolygon"
    assert len(zhifu.geoms) == 21
    inside = int(shapely.contains_xy(zhifu, stops.geometry.x, stops.geometry.y).sum())
    assert abs(inside - ZHIFU_STOPS_INSIDE) <= 8, inside  # measured: 3274

    # the same stops wrongly read as WGS84: ~1.3 km off, a visibly different count
    wrong = read_stations(stops_csv, crs="EPSG:4326")
    wrong_inside = int(shapely.contains_xy(zhifu, wrong.geometry.x, wrong.geometry.y).sum())
    assert abs(wrong_inside - ZHIFU_STOPS_INSIDE) > 50, wrong_inside  # measured: 3168
    _, _, shift = pyproj.Geod(ellps="WGS84").inv(
        stops.geometry.x, stops.geometry.y, wrong.geometry.x, wrong.geometry.y
    )
    assert 1000 < np.median(shift) < 1600

    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (stops_csv, boundary_json)}
    assert after == before


def test_excel_trailing_commas_and_blank_rows_load(tmp_path: Path) -> None:
    text = f"id,lon,lat,,\r\n1,{LON},{LAT},,\r\n,,,,\r\n3,{LON},{LAT + 0.01}\r\n\r\n"
    out = read_stations(text_file("stations.csv", text)(tmp_path), crs=4326)
    assert out["station_id"].tolist() == ["1", "3"]
    assert out.columns.tolist() == ["station_id", "name", "tier", "id", "geometry"]
    assert out.attrs["source"]["rows"] == 2


# --------------------------------------------------------------------------------------------
# encodings: a BOM over GBK text, and files that mix UTF-8 and GBK rows


def test_utf8_bom_over_gbk_text_is_read_as_gbk_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GBK_CSV.encode("gbk"))
    with pytest.warns(ServiceCircleWarning, match=r"byte-order mark, but its text is GBK"):
        st = read_stations(path, crs=4326)
    assert list(st["name"]) == ["毓璜顶街道驿站", "向阳街道驿站"]
    assert st.attrs["source"]["encoding"] == "gbk"


def test_rows_in_two_encodings_are_refused_naming_both_rows(tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_bytes(
        "编号,名称,经度,纬度\n1,毓璜顶街道驿站,121.39,37.54\n".encode()
        + "2,向阳街道驿站,121.40,37.53\n".encode("gbk")
    )
    with pytest.raises(InputError, match=r"mixes two text encodings: row 1 is UTF-8 but row 3"):
        read_stations(path, crs=4326)


def test_pure_gbk_with_one_character_names_is_not_taken_for_mixed(tmp_path: Path) -> None:
    # one GBK character passes as UTF-8 now and then (as a Latin letter), never as Chinese
    names = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]
    names = [n for n in names if _gbk(n)]
    rows = "".join(f"{i},{n},121.39,37.54\n" for i, n in enumerate(names, start=1))
    path = tmp_path / "stations.csv"
    path.write_bytes(("id,name,lon,lat\n" + rows).encode("gbk"))
    st = read_stations(path, crs=4326)
    assert list(st["name"]) == names


def _gbk(text: str) -> bool:
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# shapefile companions, non-finite numbers


@pytest.mark.parametrize(("drop", "named"), [(".dbf", "grids.dbf"), (".shx", "grids.shx")])
def test_shapefile_without_a_companion_file_is_refused(tmp_path: Path, drop, named) -> None:
    frame = gpd.GeoDataFrame({"gid": ["a"]}, geometry=[box(LON, LAT, LON + 0.01, LAT + 0.01)],
                             crs=4326)  # fmt: skip
    frame.to_file(tmp_path / "grids.shp", engine="pyogrio")
    (tmp_path / "grids.shp").with_suffix(drop).unlink()
    with pytest.raises(
        InputError, match=msg(f"grids.shp: the Shapefile's companion file(s) {named}")
    ):
        read_grids(tmp_path / "grids.shp", crs=4326)


def test_shapefile_without_prj_loads_with_the_declared_crs(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"gid": ["a"]}, geometry=[box(LON, LAT, LON + 0.01, LAT + 0.01)],
                             crs=4326)  # fmt: skip
    frame.to_file(tmp_path / "grids.shp", engine="pyogrio")
    (tmp_path / "grids.prj").unlink()
    assert list(read_grids(tmp_path / "grids.shp", crs=4326)["gid"]) == ["a"]


def test_infinite_population_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "grids.geojson"
    path.write_text(collection(feature(square(LON, LAT), 人口="1e999")), encoding="utf-8")
    with pytest.raises(InputError, match=msg("feature 1: population '1e999'", "not a finite")):
        read_grids(path, crs=4326)


# --------------------------------------------------------------------------------------------
# overlapping grids, and boundaries


def _grid_file(tmp_path: Path, *squares: tuple[float, float, float]) -> Path:
    path = tmp_path / "grids.geojson"
    feats = [feature(square(x, y, d), grid_id=f"G{i + 1}") for i, (x, y, d) in enumerate(squares)]
    path.write_text(collection(*feats), encoding="utf-8")
    return path


def test_overlapping_grids_are_refused_naming_the_pairs(tmp_path: Path) -> None:
    d = 0.01
    path = _grid_file(tmp_path, (LON, LAT, d), (LON + d / 2, LAT, d), (LON + 2 * d, LAT, d))
    with pytest.raises(InputError) as info:
        read_grids(path, crs=4326)
    assert "1 pair(s) of grids overlap by more than 1% of the smaller grid" in str(info.value)
    assert "allow_overlaps=True" in str(info.value)
    [line] = info.value.problems
    assert line.startswith("G1 (feature 1) and G2 (feature 2): ")
    assert line.endswith("50% of the smaller")
    # nested layers are the user's choice
    assert len(read_grids(path, crs=4326, allow_overlaps=True)) == 3


def test_slivers_and_shared_edges_are_not_overlaps(tmp_path: Path) -> None:
    d = 0.01  # ~0.9 × 1.1 km; the second grid reaches 0.5 % of a side into the first
    path = _grid_file(tmp_path, (LON, LAT, d), (LON + d * 0.995, LAT, d), (LON, LAT + d, d))
    assert len(read_grids(path, crs=4326)) == 3


def test_overlap_check_takes_a_district_of_grids_quickly() -> None:
    import time

    from servicecircle.inputs import check_overlaps

    cells = [
        box(
            LON + i % 32 * 0.002,
            LAT + i // 32 * 0.002,
            LON + (i % 32 + 1) * 0.002,
            LAT + (i // 32 + 1) * 0.002,
        )
        for i in range(1024)
    ]
    cells.append(box(LON + 0.0005, LAT + 0.0005, LON + 0.0015, LAT + 0.0015))  # inside cell 0
    geoms = gpd.GeoSeries(cells, crs=4326)
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        check_overlaps(geoms)
    assert time.perf_counter() - t0 < 2.0
    assert info.value.problems == [
        f"#1 (feature 1) and #1025 (feature 1025): {info.value.problems[0].split(': ')[1]}"
    ]
    assert "100% of the smaller" in info.value.problems[0]


def test_boundary_of_several_overlapping_polygons_is_read(tmp_path: Path) -> None:
    from servicecircle.inputs import read_boundary

    d = 0.01
    path = _grid_file(tmp_path, (LON, LAT, d), (LON + d / 2, LAT, d))
    out = read_boundary(path, crs=4326)
    assert len(out) == 2
    assert out.crs.to_epsg() == 4326
    assert out.attrs["source"]["kind"] == "boundary"
    lines = tmp_path / "line.geojson"
    line = {"type": "LineString", "coordinates": [[LON, LAT], [LON + d, LAT]]}
    lines.write_text(collection(feature(line)))
    with pytest.raises(InputError, match="a boundary must be polygons"):
        read_boundary(lines, crs=4326)


def test_nan_coordinates_in_a_geojson_name_the_feature(tmp_path: Path) -> None:
    path = tmp_path / "stations.geojson"
    path.write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
        f'"geometry":{{"type":"Point","coordinates":[{LON},{LAT}]}}}},'
        '{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[NaN,1]}}]}'
    )
    with pytest.raises(InputError, match=msg("1 feature(s) have coordinates that are not numbers",
                                             "feature 2: NaN or infinite")):  # fmt: skip
        read_stations(path, crs=4326)
