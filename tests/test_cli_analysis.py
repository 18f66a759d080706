"""`servicecircle coverage` and `gaps` end to end on the real Helsinki extract."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from servicecircle import sample_data
from servicecircle.cli import main
from servicecircle.errors import ServiceCircleWarning


@pytest.fixture(scope="module")
def helsinki_inputs(tmp_path_factory):
    """Stations as a GBK CSV (as old Excel saves it) and four grid polygons as GeoJSON."""
    folder = tmp_path_factory.mktemp("inputs")
    pbf = sample_data.helsinki_pbf()
    st = sample_data.stations_from_pois(sample_data.osm_pois(pbf))
    path = folder / "驿站.csv"
    with path.open("w", encoding="gbk", newline="") as f:
        w = csv.writer(f)
        w.writerow(["编号", "名称", "级别", "经度", "纬度"])
        for i, row in enumerate(st.itertuples()):
            name = "<img src=x onerror=alert(1)>" if i == 0 else f"驿站{i}"
            w.writerow([row.station_id, name, row.tier, row.geometry.x, row.geometry.y])
    x0, y0, x1, y1 = st.total_bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    quads = [shapely.box(x0, y0, xm, ym), shapely.box(xm, y0, x1, ym),
             shapely.box(x0, ym, xm, y1), shapely.box(xm, ym, x1, y1)]  # fmt: skip
    grids = gpd.GeoDataFrame(
        {"编号": ["G1", "G2", "G3", "G4"], "街道": ["东", "东", "西", "西"],
         "社区": ["甲", "乙", "丙", None], "人口": [100, 200, 300, 400]},
        geometry=quads,
        crs=4326,
    )  # fmt: skip
    gpath = folder / "网格.geojson"
    grids.to_file(gpath, driver="GeoJSON")
    return pbf, path, gpath


def _args(pbf, stations, grids, out):
    return ["--osm", str(pbf), "--stations", str(stations), "--stations-crs", "EPSG:4326",
            "--grids", str(grids), "--grids-crs", "EPSG:4326", "--out-dir", str(out)]  # fmt: skip


def test_coverage_command_writes_all_three_formats(helsinki_inputs, tmp_path, capsys):
    pbf, stations, grids = helsinki_inputs
    before = stations.read_bytes(), grids.read_bytes()
    out = tmp_path / "out"
    with (
        pytest.raises(SystemExit) as done,
        pytest.warns(ServiceCircleWarning, match="G4.*unassigned"),
    ):
        main(["coverage", *_args(pbf, stations, grids, out)])
    assert done.value.code in (None, 0)
    printed = capsys.readouterr().out
    assert "5 min (300 m)" in printed
    assert (stations.read_bytes(), grids.read_bytes()) == before  # inputs untouched
    out = out / "coverage"  # the command's output set
    raw = (out / "coverage_grids.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert [r["grid_id"] for r in rows] == ["G1", "G2", "G3", "G4"]
    # population weights: each grid's weight is its population, coverage = covered / weight
    for r, pop in zip(rows, [100, 200, 300, 400], strict=True):
        assert float(r["weight"]) == pytest.approx(pop)
        assert float(r["coverage_5min"]) == pytest.approx(float(r["covered_5min"]) / pop, abs=1e-4)
    rollup = list(csv.DictReader((out / "coverage_rollup.csv").read_text("utf-8-sig").splitlines()))
    district = next(r for r in rollup if r["level"] == "district")
    assert float(district["weight"]) == pytest.approx(1000)
    assert any(r["community"] == "unassigned" for r in rollup)
    layers = {name for name, _ in pyogrio.list_layers(out / "coverage.gpkg")}
    assert {"grids", "stations", "rings", "rings_union", "rollup"} <= layers
    rings = pyogrio.read_dataframe(out / "coverage.gpkg", layer="rings")
    assert set(rings["threshold_min"]) == {5.0, 10.0, 15.0}
    meta = json.loads((out / "coverage_grids.csv.meta.json").read_text("utf-8"))
    assert meta["walk"]["speed_m_per_min"] == 60
    assert meta["network"]["source"] == pbf.name
    # a second run refuses to replace the outputs without --overwrite
    with pytest.raises(SystemExit) as again:
        main(["coverage", *_args(pbf, stations, grids, out.parent)])
    assert again.value.code == 2
    assert "--overwrite" in capsys.readouterr().err


def test_gaps_command_ranks_grids(helsinki_inputs, tmp_path, capsys):
    pbf, stations, grids = helsinki_inputs
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done, pytest.warns(ServiceCircleWarning):
        main(["gaps", *_args(pbf, stations, grids, out), "--threshold", "5", "--format=csv,gpkg"])
    assert done.value.code in (None, 0)
    out = out / "gaps"
    table = list(csv.DictReader((out / "gaps_gap_list.csv").read_text("utf-8-sig").splitlines()))
    unc = [float(r["uncovered_weight"]) for r in table]
    assert unc == sorted(unc, reverse=True)
    assert [int(r["rank"]) for r in table] == list(range(1, len(table) + 1))
    layers = {name for name, _ in pyogrio.list_layers(out / "gaps.gpkg")}
    assert {"gaps", "gap_points", "grids", "stations", "rings_union", "gap_list"} <= layers
    pts = pyogrio.read_dataframe(out / "gaps.gpkg", layer="gap_points")
    assert (pts["walk_m"].fillna(np.inf) > 300).all()
    assert not list(out.glob("*.geojson"))  # only the formats asked for


def test_bad_tier_option_is_one_clear_line(helsinki_inputs, tmp_path, capsys):
    pbf, stations, grids = helsinki_inputs
    with pytest.raises(SystemExit) as done:
        main(["coverage", *_args(pbf, stations, grids, tmp_path), "--tier-minutes", "town=5"])
    assert done.value.code == 2
    assert "tier=minutes" in capsys.readouterr().err


def test_map_command_shows_hostile_names_as_text(helsinki_inputs, tmp_path, capsys):
    from tests.browser_util import open_map

    pbf, stations, grids = helsinki_inputs
    out = tmp_path / "map.html"
    args = ["map", "--osm", str(pbf), "--stations", str(stations), "--stations-crs",
            "EPSG:4326", "--grids", str(grids), "--grids-crs", "EPSG:4326", "--out", str(out),
            "--tiles", "none"]  # fmt: skip
    with pytest.raises(SystemExit) as done, pytest.warns(ServiceCircleWarning):
        main(args)
    assert done.value.code in (None, 0)
    assert f"map: {out}" in capsys.readouterr().out
    assert "<img src=x onerror" not in out.read_text("utf-8")  # only ever escaped
    report = open_map(out, open_roles=("stations",))
    assert report["dialogs"] == []
    assert report["console_errors"] == []
    assert report["n_grid_features"] == 4
    assert report["n_station_markers"] == 34
    assert any("<img src=x onerror=alert(1)>" in t for t in report["opened_texts"])
    # an existing map is not replaced without --overwrite
    with pytest.raises(SystemExit) as again:
        main(args)
    assert again.value.code == 2


@pytest.mark.shared_data
def test_shanghai_gaps_with_generated_grids(shared_data, tmp_path, capsys):
    """The seeds' scale: 302 stations (GCJ-02), 1,024 generated grids in 150/12."""
    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "out"
    args = ["gaps", "--osm", str(shared_data / "shanghai" / "shanghai_center_drive.osm.bz2"),
            "--stations", str(repo / "data" / "shanghai_stations_302_gcj02.csv"),
            "--stations-crs", "gcj02", "--out-dir", str(out)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)  # the extract's small parts
        with pytest.raises(SystemExit) as done:
            main(args)
    assert done.value.code in (None, 0)
    out = out / "gaps"
    grids = pyogrio.read_dataframe(out / "gaps.gpkg", layer="grids")
    assert len(grids) == 1024
    assert grids["community"].nunique() == 150
    assert grids["subdistrict"].nunique() == 12
    stations = pyogrio.read_dataframe(out / "gaps.gpkg", layer="stations")
    assert len(stations) == 302
    table = list(csv.DictReader((out / "gaps_gap_list.csv").read_text("utf-8-sig").splitlines()))
    unc = [float(r["uncovered_weight"]) for r in table]
    assert unc == sorted(unc, reverse=True)
    # the gap list holds exactly the grids with uncovered 5-minute demand
    assert len(table) == int((grids["uncovered_5min"] > 0.005).sum())
    for name in ("gaps_gap_list.csv", "gaps_gaps.geojson", "gaps.gpkg"):
        assert (out / name).exists()
        assert (out / f"{name}.meta.json").exists()


def test_output_mistakes_stop_before_the_analysis(helsinki_inputs, tmp_path, capsys):
    pbf, stations, grids = helsinki_inputs
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x", encoding="utf-8")
    for extra, expected in (
        (["--out-dir", str(a_file)], "is a file, not a folder"),
        (["--encoding", "latin1"], "cannot hold Chinese names"),
        (["--weight", "people"], "'people' is not one of"),
    ):
        args = _args(pbf, stations, grids, tmp_path / "out")
        with pytest.raises(SystemExit) as done:
            main(["coverage", *args, *extra])
        assert done.value.code == 2
        err = capsys.readouterr().err
        assert expected in err
        assert "Loading" not in err  # nothing was loaded
    assert not (tmp_path / "out").exists()


def test_sites_command_gain_matches_coverage_with_the_new_stations(
    helsinki_inputs, tmp_path, capsys
):
    """The proposed sites, added as stations, give the coverage the command reported."""
    from servicecircle import inputs
    from servicecircle.coverage import compute_coverage
    from servicecircle.network import load_network

    pbf, stations, grids = helsinki_inputs
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done, pytest.warns(ServiceCircleWarning):
        main(["sites", *_args(pbf, stations, grids, out), "-k", "3", "--method", "mclp"])
    assert done.value.code in (None, 0)
    printed = capsys.readouterr().out
    sites = pyogrio.read_dataframe(out / "sites" / "sites.gpkg", layer="sites")
    assert list(sites["rank"]) == [1, 2, 3]
    first = printed.splitlines()[0]
    assert "with 3 new site(s) (mclp" in first
    after = float(first.split("→")[1].split("%")[0])
    # independent check: rerun the coverage with the sites as extra stations
    st = inputs.read_stations(stations, crs="EPSG:4326")
    extra = sites.assign(station_id=sites["site_id"], tier="station")[
        ["station_id", "name", "tier", "geometry"]
    ]
    both = gpd.GeoDataFrame(pd.concat([st, extra], ignore_index=True), crs=4326)
    gr = inputs.read_grids(grids, crs="EPSG:4326")
    with pytest.warns(ServiceCircleWarning):
        res = compute_coverage(load_network(pbf), both, gr)
    assert res.summary().iloc[0]["coverage_pct"] == pytest.approx(after, abs=0.06)


@pytest.mark.shared_data
def test_a_wrongly_declared_datum_stops_with_the_option_to_pass(shared_data, tmp_path, capsys):
    """The project's GCJ-02 station list declared WGS84 (issue #14): stop, name the fix."""
    repo = Path(__file__).resolve().parent.parent
    osm = shared_data / "shanghai" / "shanghai_center_drive.osm.bz2"
    stations = repo / "data" / "shanghai_stations_302_gcj02.csv"
    before = stations.read_bytes()
    base = ["--osm", str(osm), "--stations", str(stations)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)  # the extract's small parts
        for command in (["check"], ["coverage", "--out-dir", str(tmp_path / "out")]):
            with pytest.raises(SystemExit) as done:
                main([*command, *base, "--stations-crs", "EPSG:4326"])
            assert done.value.code == 2
            err = capsys.readouterr().err
            line = next(x for x in err.splitlines() if x.startswith("error: "))
            assert (
                "shanghai_stations_302_gcj02.csv: the coordinates fit the streets as gcj02" in line
            )
            assert "the declared EPSG:4326" in line
            assert line.endswith("declare --stations-crs gcj02, or --trust-crs to keep EPSG:4326")
        assert not (tmp_path / "out").exists()  # nothing written
        # declared right, the check says so; trusted, the wrong declaration is kept
        with pytest.raises(SystemExit) as done:
            main(["check", *base, "--stations-crs", "gcj02"])
        assert done.value.code in (None, 0)
        assert "declared gcj02; median distance to a street as gcj02 0 m" in capsys.readouterr().out
        with pytest.raises(SystemExit) as done:
            main(["check", *base, "--stations-crs", "EPSG:4326", "--trust-crs"])
        assert done.value.code in (None, 0)
        assert "fits clearly better as gcj02" in capsys.readouterr().out
    assert stations.read_bytes() == before


def test_buildings_and_resources_from_the_osm_file_itself(helsinki_inputs, tmp_path, capsys):
    """`--buildings osm` and `--resources FILE.osm.pbf`, as the demo reads them."""
    from servicecircle import sample_data as sd

    pbf, stations, grids = helsinki_inputs
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done, pytest.warns(ServiceCircleWarning):
        main(["coverage", *_args(pbf, stations, grids, out), "--buildings", "osm",
              "--format", "csv"])  # fmt: skip
    assert done.value.code in (None, 0)
    meta = json.loads((out / "coverage" / "coverage_grids.csv.meta.json").read_text("utf-8"))
    assert meta["demand"]["kind"] == "buildings"
    rows = list(csv.DictReader((out / "coverage" / "coverage_grids.csv").read_text(
        "utf-8-sig").splitlines()))  # fmt: skip
    # every building of the extract inside a grid is one demand point (centroids, by hand)
    b = sd.osm_buildings(pbf)
    g = gpd.read_file(grids)
    inside = gpd.sjoin(
        gpd.GeoDataFrame(geometry=b.geometry.representative_point(), crs=b.crs).to_crs(g.crs),
        g, predicate="within",
    )  # fmt: skip
    assert sum(int(r["n_points"]) for r in rows) == pytest.approx(len(inside), rel=0.02)
    html = tmp_path / "m.html"
    with pytest.raises(SystemExit) as done, pytest.warns(ServiceCircleWarning):
        main(["map", "--osm", str(pbf), "--stations", str(stations), "--stations-crs",
              "EPSG:4326", "--grids", str(grids), "--grids-crs", "EPSG:4326", "--resources",
              str(pbf), "--tiles", "none", "--out", str(html)])  # fmt: skip
    assert done.value.code in (None, 0)
    assert "资源地图" in html.read_text("utf-8")
