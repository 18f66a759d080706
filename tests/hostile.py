"""A small real-looking district on disk for the hostile-input and kill tests.

A 6 × 6 street grid (100 m blocks) of OSM XML near Zhifu (121.39 E, 37.53 N), three stations
as a CSV, four grid polygons as GeoJSON, a boundary and buildings: every input a command
reads, in a temporary folder, so a test can check that none of them changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import shapely

LON0, LAT0 = 121.39, 37.53
DLON, DLAT = 100 / 88_000, 100 / 111_000  # about 100 m at 37.5° N
N = 6


def node_lonlat(i: int, j: int) -> tuple[float, float]:
    return LON0 + i * DLON, LAT0 + j * DLAT


def osm_xml() -> str:
    """OSM XML of an N × N grid of residential streets, node ids 1.., way ids 1000.."""
    nodes, ways = [], []
    nid = {}
    for i in range(N):
        for j in range(N):
            k = len(nid) + 1
            nid[i, j] = k
            lon, lat = node_lonlat(i, j)
            nodes.append(f'  <node id="{k}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    w = 1000
    for i in range(N):
        for line in ([(i, j) for j in range(N)], [(j, i) for j in range(N)]):
            refs = "".join(f'<nd ref="{nid[p]}"/>' for p in line)
            ways.append(
                f'  <way id="{w}" version="1">{refs}'
                '<tag k="highway" v="residential"/><tag k="name" v="幸福路"/></way>'
            )
            w += 1
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<osm version="0.6" generator="servicecircle tests">\n'
        '  <meta osm_base="2024-05-01T00:00:00Z"/>\n' + "\n".join(nodes + ways) + "\n</osm>\n"
    )


def make_district(folder: Path) -> dict[str, Path]:
    """Write every input kind into ``folder``; return name → path."""
    folder.mkdir(parents=True, exist_ok=True)
    osm = folder / "district.osm"
    osm.write_text(osm_xml(), encoding="utf-8")
    stations = folder / "驿站.csv"
    rows = ["编号,名称,级别,经度,纬度"]
    for k, (i, j) in enumerate([(1, 1), (4, 2), (2, 4)], start=1):
        lon, lat = node_lonlat(i, j)
        rows.append(f"ZF-{k},驿站{k},驿站,{lon + DLON / 2:.7f},{lat:.7f}")
    stations.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")
    x0, y0 = node_lonlat(0, 0)
    x1, y1 = node_lonlat(N - 1, N - 1)
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    quads = [shapely.box(x0, y0, xm, ym), shapely.box(xm, y0, x1, ym),
             shapely.box(x0, ym, xm, y1), shapely.box(xm, ym, x1, y1)]  # fmt: skip
    grids = gpd.GeoDataFrame(
        {"编号": ["G1", "G2", "G3", "G4"], "街道": ["向阳", "向阳", "东山", "东山"],
         "社区": ["甲", "乙", "丙", "丁"], "人口": [100, 200, 300, 400]},
        geometry=quads, crs=4326,
    )  # fmt: skip
    grids_path = folder / "网格.geojson"
    grids.to_file(grids_path, driver="GeoJSON")
    boundary = folder / "boundary.geojson"
    gpd.GeoDataFrame({"name": ["芝罘"]}, geometry=[shapely.box(x0, y0, x1, y1)], crs=4326).to_file(
        boundary, driver="GeoJSON"
    )
    buildings = folder / "buildings.geojson"
    blds = []
    for i in range(N - 1):
        for j in range(N - 1):
            cx, cy = node_lonlat(i, j)
            cx, cy = cx + DLON / 2, cy + DLAT / 2
            blds.append(shapely.box(cx - DLON / 8, cy - DLAT / 8, cx + DLON / 8, cy + DLAT / 8))
    gpd.GeoDataFrame({"floors": [6] * len(blds)}, geometry=blds, crs=4326).to_file(
        buildings, driver="GeoJSON"
    )
    resources = folder / "resources.csv"
    lon, lat = node_lonlat(3, 3)
    resources.write_text(f"name,category,lon,lat\r\n卫生站,医疗,{lon:.7f},{lat:.7f}\r\n", "utf-8")
    return {
        "osm": osm,
        "stations": stations,
        "grids": grids_path,
        "boundary": boundary,
        "buildings": buildings,
        "resources": resources,
    }


def snapshot(folder: Path, *, skip: tuple[str, ...] = ("cache",)) -> dict[str, str]:
    """Every file and folder below ``folder`` (relative path → SHA-256, or ``"<dir>"``)."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        if rel_root.parts and rel_root.parts[0] in skip:
            continue
        for d in dirs:
            if (rel_root / d).parts[0] not in skip:
                out[str(rel_root / d)] = "<dir>"
        for f in files:
            p = Path(root) / f
            out[str(rel_root / f)] = (
                "<link>" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
            )
    return out


def whole_set(folder: Path) -> dict:
    """The manifest of an output set after checking the folder is exactly what it lists."""
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    listed = {f["name"] for f in manifest["files"]}
    assert present == listed | {"manifest.json"}, (present, listed)
    for f in manifest["files"]:
        data = (folder / f["name"]).read_bytes()
        assert len(data) == f["bytes"], f["name"]
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["name"]
    return manifest


def hidden(folder: Path) -> Iterator[Path]:
    """Hidden leftovers (staging folders, locks, temporary files) anywhere below ``folder``."""
    yield from folder.rglob(".*")
