"""The README's first command: `servicecircle demo`, offline, and the map it writes in Chromium."""

from __future__ import annotations

import csv
import subprocess
import sys
import warnings

import geopandas as gpd
import pytest
import shapely
from tests.browser_util import open_map

from servicecircle import network as netmod
from servicecircle.demo import run_demo
from servicecircle.errors import ServiceCircleWarning


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`servicecircle demo` as a user runs it, piped (so without progress lines)."""
    folder = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "servicecircle.cli", "demo", "--out-dir", str(folder),
         "--tiles", "none"],
        capture_output=True,
        text=True,
        env={"SERVICECIRCLE_CACHE": str(folder / "cache"), "PATH": "/usr/bin:/bin"},
        cwd=folder,
        check=False,
        timeout=600,
    )  # fmt: skip
    return folder, proc


def test_demo_prints_source_summary_and_paths(demo_run):
    folder, proc = demo_run
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("data: ")
    assert "Helsinki.osm.pbf" in lines[0]
    assert "OSM date" in lines[0]
    for t, d in ((5, 300), (10, 600), (15, 900)):
        assert any(f"{t} min ({d} m)" in line for line in lines)
    assert "most uncovered grids at 5 min:" in proc.stdout
    assert "5 proposed new sites would lift 5-min coverage to" in proc.stdout
    assert f"map: {folder / 'demo' / 'demo.html'}" in proc.stdout
    assert "[1/" not in proc.stderr  # quiet when piped: no progress lines
    html = folder / "demo" / "demo.html"
    assert html.stat().st_size < 5_000_000
    grids_csv = folder / "demo" / "demo_grids.csv"
    assert grids_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    assert (folder / "demo" / "demo.gpkg").exists()


def test_demo_coverage_figures_add_up_from_the_grid_table(demo_run):
    folder, proc = demo_run
    rows = list(csv.DictReader((folder / "demo" / "demo_grids.csv")
                               .read_text("utf-8-sig").splitlines()))  # fmt: skip
    weight = sum(float(r["weight"]) for r in rows)
    for t in (5, 10, 15):
        covered = sum(float(r[f"covered_{t}min"]) for r in rows)
        line = next(x for x in proc.stdout.splitlines() if f"{t} min (" in x)
        printed = float(line.rsplit(":", 1)[1].strip().rstrip("%"))
        assert printed == pytest.approx(100 * covered / weight, abs=0.06)


def test_demo_map_in_chromium(demo_run, tmp_path):
    folder, _ = demo_run
    rows = list(csv.DictReader((folder / "demo" / "demo_grids.csv")
                               .read_text("utf-8-sig").splitlines()))  # fmt: skip
    shot = tmp_path / "demo.png"
    report = open_map(folder / "demo" / "demo.html", screenshot=shot)
    print(f"demo map: {report['load_ms']} ms to load, {report['wall_ms']} ms to ready")
    assert report["console_errors"] == []
    assert report["external_requests"] == []  # --tiles none: nothing from the internet
    assert report["dialogs"] == []
    assert report["n_grid_features"] == len(rows)
    assert report["n_station_markers"] == 34
    names = " ".join(report["layer_names"])
    for word in ("网格", "驿站", "5-min walk", "15-min walk", "gaps", "资源地图", "建议选址"):
        assert word in names
    assert shot.stat().st_size > 10_000


@pytest.mark.shared_data
def test_demo_place_downloads_through_osmnx(shared_data, tmp_path, monkeypatch):
    """`--place` wiring, offline: osmnx's downloads answered from a real extract."""
    import osmnx as ox

    osm = shared_data / "nanjing" / "nanjing_xuanwu_osm_bbox.osm.bz2"
    monkeypatch.setenv("SERVICECIRCLE_CACHE", str(tmp_path / "cache"))
    asked: dict[str, object] = {}

    def fake_download(*, place, **kwargs):
        asked["network"] = place
        return netmod.load_network(osm)

    def fake_features(place, tags):
        asked["features"] = (place, sorted(tags))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ox.features_from_xml(osm, tags=tags)

    def fake_geocode(place):
        asked["boundary"] = place
        box = shapely.box(118.765, 32.035, 118.795, 32.052)
        return gpd.GeoDataFrame({"name": [place]}, geometry=[box], crs=4326)

    monkeypatch.setattr(netmod, "download_network", fake_download)
    monkeypatch.setattr(ox, "features_from_place", fake_features)
    monkeypatch.setattr(ox, "geocode_to_gdf", fake_geocode)
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)  # small extract: far stations
        result = run_demo(
            out_dir=tmp_path, place="玄武区, 南京市", tiles="none", report=lines.append
        )
    assert asked["network"] == asked["boundary"] == "玄武区, 南京市"
    assert asked["features"] == (
        "玄武区, 南京市",
        ["amenity", "building", "leisure", "shop", "tourism"],
    )
    assert lines[0].startswith("data: 玄武区, 南京市 (OSM date: 2021-06-12")
    # the grids cover the geocoded boundary, not the network's hull
    union = result.analysis.grids.to_crs(32650).union_all()
    boundary = gpd.GeoSeries([shapely.box(118.765, 32.035, 118.795, 32.052)], crs=4326)
    assert union.symmetric_difference(boundary.to_crs(32650).iloc[0]).area < 1.0
    assert result.analysis.coverage.demand["kind"] == "buildings"
    assert result.map_path.exists()
