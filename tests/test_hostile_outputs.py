"""Hostile outputs and options: nothing lost, nothing half-written, one clear line, exit 2.

Every row is a command a careful QA engineer tried: an output spelled as one of the run's
inputs (relative, through ``..``, a symlink, a hard link, a shapefile's companion), a folder
of the user's own files in the way, an earlier set without ``--overwrite``, an absurd
option. Each row asserts: exit code 2, one ``error:`` line (no traceback) matching the row's
message, and every file below the test folder exactly as before: the inputs byte-identical
and no output, partial or whole, created.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.hostile import make_district, snapshot

from servicecircle.cli import main

CRS = "EPSG:4326"


@dataclass
class Case:
    """One hostile command: ``args(d)`` builds the command line from the district ``d``."""

    id: str
    args: Callable[[dict[str, Path]], list[object]]
    message: str
    prep: Callable[[dict[str, Path]], None] = field(default=lambda d: None)


def st(d):
    return ["--osm", d["osm"], "--stations", d["stations"], "--stations-crs", CRS]


def an(d):
    """The analysis inputs with real grids."""
    return [*st(d), "--grids", d["grids"], "--grids-crs", CRS]


def out(d):
    return ["--out-dir", d["out"]]


def _earlier_set(name: str) -> Callable[[dict[str, Path]], None]:
    def prep(d):
        shutil.copytree(d["done"], d["out"] / name)

    return prep


def _user_folder(name: str) -> Callable[[dict[str, Path]], None]:
    def prep(d):
        (d["out"] / name).mkdir(parents=True)
        (d["out"] / name / "我的笔记.txt").write_text("不要删除", "utf-8")

    return prep


def _link(kind: str, name: str, to: str) -> Callable[[dict[str, Path]], None]:
    def prep(d):
        (os.symlink if kind == "soft" else os.link)(d[to], d["root"] / name)

    return prep


def _shapefile(d):
    import geopandas as gpd

    gpd.read_file(d["grids"]).to_file(d["root"] / "grids.shp")


def _input_inside_set(name: str, what: str) -> Callable[[dict[str, Path]], None]:
    def prep(d):
        _earlier_set(name)(d)
        shutil.copy(d[what], d["out"] / name / d[what].name)

    return prep


def _two_layers(d):
    import geopandas as gpd

    g = gpd.read_file(d["grids"])
    g.to_file(d["root"] / "two.gpkg", layer="网格")
    g.to_file(d["root"] / "two.gpkg", layer="other")


IS_INPUT = "is an input file.*never replace inputs"
HOLDS_INPUT = "holds an input file"
NOT_OURS = "did not write.*never replaced"

CASES = [
    # ---- data loss: an output over an input, however spelled
    Case("map-out-is-osm", lambda d: ["map", *an(d), "--out", d["osm"]], IS_INPUT),
    Case("map-out-is-osm-overwrite",
         lambda d: ["map", *an(d), "--out", d["osm"], "--overwrite"], IS_INPUT),
    Case("map-out-is-boundary-overwrite",
         lambda d: ["map", *st(d), "--boundary", d["boundary"], "--boundary-crs", CRS,
                    "--out", d["boundary"], "--overwrite"], IS_INPUT),
    Case("map-out-is-buildings-overwrite",
         lambda d: ["map", *an(d), "--buildings", d["buildings"], "--buildings-crs", CRS,
                    "--out", d["buildings"], "--overwrite"], IS_INPUT),
    Case("map-out-is-resources-overwrite",
         lambda d: ["map", *an(d), "--resources", d["resources"], "--resources-crs", CRS,
                    "--out", d["resources"], "--overwrite"], IS_INPUT),
    Case("map-out-is-stations-via-dotdot",
         lambda d: ["map", *an(d), "--out", d["out"] / ".." / d["stations"].name,
                    "--overwrite"], IS_INPUT,
         prep=lambda d: d["out"].mkdir()),
    Case("map-out-is-stations-relative",
         lambda d: ["map", *an(d), "--out", Path(os.path.relpath(d["stations"])),
                    "--overwrite"], IS_INPUT),
    Case("map-out-is-a-symlink-to-grids",
         lambda d: ["map", *an(d), "--out", d["root"] / "soft.html", "--overwrite"], IS_INPUT,
         prep=_link("soft", "soft.html", "grids")),
    Case("map-out-is-a-hard-link-to-stations",
         lambda d: ["map", *an(d), "--out", d["root"] / "hard.html", "--overwrite"], IS_INPUT,
         prep=_link("hard", "hard.html", "stations")),
    Case("map-out-is-the-grids-shapefiles-dbf",
         lambda d: ["map", *st(d), "--grids", d["root"] / "grids.shp", "--grids-crs", CRS,
                    "--out", d["root"] / "grids.dbf", "--overwrite"], IS_INPUT,
         prep=_shapefile),
    Case("grids-out-is-boundary-overwrite",
         lambda d: ["grids", "--osm", d["osm"], "--boundary", d["boundary"],
                    "--boundary-crs", CRS, "--out", d["boundary"], "--overwrite"], IS_INPUT),
    Case("grids-out-is-osm-as-gpkg-name",
         lambda d: ["grids", "--osm", d["root"] / "net.gpkg", "--out", d["root"] / "net.gpkg",
                    "--overwrite"], IS_INPUT,
         prep=lambda d: shutil.copy(d["osm"], d["root"] / "net.gpkg")),
    Case("demo-set-holds-its-osm",
         lambda d: ["demo", "--osm", d["out"] / "demo" / "district.osm", *out(d)], HOLDS_INPUT,
         prep=_input_inside_set("demo", "osm")),
    Case("demo-over-a-folder-of-user-files",
         lambda d: ["demo", "--osm", d["osm"], *out(d)], NOT_OURS, prep=_user_folder("demo")),
    Case("demo-out-dir-is-a-file",
         lambda d: ["demo", "--osm", d["osm"], "--out-dir", d["stations"]], "is a file"),
    Case("coverage-set-holds-the-stations-overwrite",
         lambda d: ["coverage", "--osm", d["osm"],
                    "--stations", d["out"] / "coverage" / d["stations"].name,
                    "--stations-crs", CRS, *out(d), "--overwrite"], HOLDS_INPUT,
         prep=_input_inside_set("coverage", "stations")),
    Case("coverage-earlier-set-without-overwrite",
         lambda d: ["coverage", *an(d), *out(d)], "earlier run.*--overwrite",
         prep=_earlier_set("coverage")),
    Case("coverage-set-with-a-users-file-added-overwrite",
         lambda d: ["coverage", *an(d), *out(d), "--overwrite"],
         "did not write.*笔记.docx.*never replaced",
         prep=lambda d: (_earlier_set("coverage")(d),
                         (d["out"] / "coverage" / "笔记.docx").write_bytes(b"mine"))),
    Case("tier-map-file-inside-the-set-overwrite",
         lambda d: ["coverage", *an(d), *out(d), "--overwrite",
                    "--tier-map", d["out"] / "coverage" / "tiers.csv"],
         "holds an input file|did not write",
         prep=lambda d: (_earlier_set("coverage")(d), (d["out"] / "coverage" / "tiers.csv")
                         .write_text("驿站,station\n", encoding="utf-8"))),
    Case("coverage-over-a-folder-of-user-files-overwrite",
         lambda d: ["coverage", *an(d), *out(d), "--overwrite"], NOT_OURS,
         prep=_user_folder("coverage")),
    Case("coverage-set-name-is-a-file",
         lambda d: ["coverage", *an(d), *out(d)], "not a folder",
         prep=lambda d: (d["out"].mkdir(), (d["out"] / "coverage").write_text("x"))),
    Case("gaps-out-dir-is-a-file",
         lambda d: ["gaps", *an(d), "--out-dir", d["grids"]], "is a file, not a folder"),
    Case("sites-set-holds-the-premises",
         lambda d: ["sites", *an(d), "-k", "2", "--candidates", "premises",
                    "--premises", d["out"] / "sites" / d["resources"].name,
                    "--premises-crs", CRS, *out(d), "--overwrite"], HOLDS_INPUT,
         prep=_input_inside_set("sites", "resources")),
    Case("gaps-earlier-set-without-overwrite",
         lambda d: ["gaps", *an(d), *out(d)], "earlier run.*--overwrite",
         prep=_earlier_set("gaps")),
    Case("map-out-is-a-folder",
         lambda d: ["map", *an(d), "--out", d["root"]], "is a folder"),
    Case("map-out-exists-without-overwrite",
         lambda d: ["map", *an(d), "--out", d["root"] / "old.html"], "already exists",
         prep=lambda d: (d["root"] / "old.html").write_text("<p>old</p>")),
    Case("grids-out-exists-without-overwrite",
         lambda d: ["grids", "--osm", d["osm"], "--out", d["root"] / "old.geojson"],
         "already exists", prep=lambda d: (d["root"] / "old.geojson").write_text("{}")),
    Case("grids-out-not-a-grid-format",
         lambda d: ["grids", "--osm", d["osm"], "--out", d["root"] / "grids.csv"],
         r"\.geojson or \.gpkg"),
    # ---- options a user can get wrong: the option is named, nothing runs
    Case("speed-inf", lambda d: ["coverage", *an(d), *out(d), "--speed", "inf"], "--speed"),
    Case("speed-nan", lambda d: ["coverage", *an(d), *out(d), "--speed", "nan"], "--speed"),
    Case("speed-zero", lambda d: ["coverage", *an(d), *out(d), "--speed", "0"], "--speed"),
    Case("speed-negative",
         lambda d: ["coverage", *an(d), *out(d), "--speed", "-60"], "--speed"),
    Case("frontage-negative",
         lambda d: ["coverage", *an(d), *out(d), "--frontage", "-5"], "--frontage"),
    Case("max-snap-negative",
         lambda d: ["coverage", *an(d), *out(d), "--max-snap", "-1"], "--max-snap"),
    Case("lattice-zero", lambda d: ["coverage", *an(d), *out(d), "--lattice", "0"], "--lattice"),
    Case("lattice-negative",
         lambda d: ["coverage", *an(d), *out(d), "--lattice", "-20"], "--lattice"),
    Case("lattice-nan", lambda d: ["coverage", *an(d), *out(d), "--lattice", "nan"], "--lattice"),
    Case("lattice-tiny-bounded",
         lambda d: ["coverage", *an(d), *out(d), "--lattice", "0.01"], "limit"),
    Case("gaps-threshold-absurd",
         lambda d: ["gaps", *an(d), *out(d), "--threshold", "1e12"], "--threshold"),
    Case("gaps-threshold-zero",
         lambda d: ["gaps", *an(d), *out(d), "--threshold", "0"], "--threshold"),
    Case("gaps-threshold-negative",
         lambda d: ["gaps", *an(d), *out(d), "--threshold", "-5"], "--threshold"),
    Case("map-threshold-not-a-walk-threshold",
         lambda d: ["map", *an(d), "--out", d["root"] / "m.html", "--threshold", "7"],
         "--threshold"),
    Case("tier-minutes-unknown-tier",
         lambda d: ["coverage", *an(d), *out(d), "--tier-minutes", "town=5"], "tier=minutes"),
    Case("tier-minutes-not-a-number",
         lambda d: ["coverage", *an(d), *out(d), "--tier-minutes", "station=abc"],
         "tier=minutes"),
    Case("format-unknown", lambda d: ["coverage", *an(d), *out(d), "--format", "shp"],
         "--format.*unknown format"),
    Case("format-empty", lambda d: ["coverage", *an(d), *out(d), "--format", ","], "--format"),
    Case("encoding-without-chinese",
         lambda d: ["coverage", *an(d), *out(d), "--encoding", "latin1"],
         "cannot hold Chinese"),
    Case("encoding-unknown",
         lambda d: ["coverage", *an(d), *out(d), "--encoding", "klingon"], "klingon"),
    Case("weight-unknown",
         lambda d: ["coverage", *an(d), *out(d), "--weight", "people"], "--weight"),
    Case("preset-unknown",
         lambda d: ["coverage", *an(d), *out(d), "--preset", "fast"], "fast"),
    Case("sites-method-unknown",
         lambda d: ["sites", *an(d), *out(d), "--method", "best"], "--method"),
    Case("sites-candidates-unknown",
         lambda d: ["sites", *an(d), *out(d), "--candidates", "shops"], "--candidates"),
    Case("sites-premises-without-candidates",
         lambda d: ["sites", *an(d), *out(d), "--premises", d["resources"],
                    "--premises-crs", CRS], "--premises"),
    Case("sites-k-zero", lambda d: ["sites", *an(d), *out(d), "-k", "0"], "-k|--k"),
    Case("sites-k-negative", lambda d: ["sites", *an(d), *out(d), "-k", "-3"], "-k|--k"),
    Case("sites-target-above-one",
         lambda d: ["sites", *an(d), *out(d), "--method", "lscp", "--target", "1.5"],
         "--target"),
    Case("sites-time-limit-negative",
         lambda d: ["sites", *an(d), *out(d), "--time-limit", "-1"], "--time-limit"),
    Case("sites-spacing-zero",
         lambda d: ["sites", *an(d), *out(d), "--spacing", "0"], "--spacing"),
    Case("n-grids-zero", lambda d: ["coverage", *st(d), *out(d), "--n-grids", "0"], "--n-grids"),
    Case("tiles-url-without-attribution",
         lambda d: ["map", *an(d), "--out", d["root"] / "m.html",
                    "--tiles", "https://tiles.example/{z}/{x}/{y}.png"], "--tiles"),
    Case("tiles-unknown-name",
         lambda d: ["map", *an(d), "--out", d["root"] / "m.html", "--tiles", "Googel"],
         "--tiles"),
    Case("unknown-option", lambda d: ["coverage", *an(d), "--speeed", "60"], "No such option"),
    Case("missing-stations-crs",
         lambda d: ["coverage", "--osm", d["osm"], "--stations", d["stations"]],
         "Missing option.*--stations-crs"),
    Case("grids-without-crs",
         lambda d: ["coverage", *st(d), "--grids", d["grids"], *out(d)], "--grids-crs"),
    Case("check-grids-without-crs",
         lambda d: ["check", "--stations", d["stations"], "--stations-crs", CRS,
                    "--grids", d["grids"]], "--grids-crs"),
    Case("stations-file-missing",
         lambda d: ["coverage", "--osm", d["osm"], "--stations", d["root"] / "无.csv",
                    "--stations-crs", CRS, *out(d)], "无.csv"),
    Case("osm-file-missing",
         lambda d: ["coverage", "--osm", d["root"] / "none.osm", *an(d)[2:], *out(d)],
         "none.osm"),
    Case("network-file-missing",
         lambda d: ["network", d["root"] / "none.osm.pbf"], "none.osm.pbf"),
    Case("osm-is-a-folder",
         lambda d: ["coverage", "--osm", d["root"], *an(d)[2:], *out(d)], str(Path())),
    Case("stations-crs-unknown",
         lambda d: ["check", "--stations", d["stations"], "--stations-crs", "gcj-2"],
         "unknown coordinate system"),
    Case("gpkg-with-two-layers-names-the-layer-option",
         lambda d: ["coverage", *st(d), "--grids", d["root"] / "two.gpkg", "--grids-crs", CRS,
                    *out(d)], r"网格, other.*--layer grids=", prep=_two_layers),
    Case("layer-option-unknown-input",
         lambda d: ["coverage", *an(d), *out(d), "--layer", "town=x"], "--layer"),
    Case("csv-without-coordinates-names-x-col",
         lambda d: ["coverage", "--osm", d["osm"], "--stations", d["resources"].with_name("a.csv"),
                    "--stations-crs", CRS, *out(d)], "--x-col",
         prep=lambda d: d["resources"].with_name("a.csv").write_text("a,b\n1,2\n")),
    Case("private-policy-unknown",
         lambda d: ["coverage", *an(d), *out(d), "--private", "sometimes"], "--private"),
    Case("network-private-policy-unknown",
         lambda d: ["network", d["osm"], "--private", "never"], "--private"),
    Case("demo-osm-and-place",
         lambda d: ["demo", "--osm", d["osm"], "--place", "芝罘区", *out(d)], "--place"),
]  # fmt: skip


@pytest.fixture(scope="module")
def done_set(tmp_path_factory):
    """A real earlier output set (``coverage`` on the small district), to copy into rows."""
    root = tmp_path_factory.mktemp("earlier")
    d = make_district(root)
    os.environ.setdefault("SERVICECIRCLE_CACHE", str(root / "cache"))
    args = ["coverage", *an(d), "--out-dir", root / "out", "--format", "csv"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
    assert done.value.code in (None, 0)
    return root / "out" / "coverage"


def run_cli(args: list[object], capsys) -> tuple[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
    code = done.value.code
    return (0 if code is None else int(code)), capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_command(case, tmp_path, capsys, monkeypatch, done_set):
    monkeypatch.setenv("SERVICECIRCLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    d = make_district(tmp_path)
    d.update(root=tmp_path, out=tmp_path / "out", done=done_set)
    case.prep(d)
    before = snapshot(tmp_path)
    code, err = run_cli(case.args(d), capsys)
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning: ")]
    assert lines, err
    assert lines[0].startswith("error: "), err
    assert all(ln.startswith("  ") for ln in lines[1:]), err  # listed problems only
    assert re.search(case.message, lines[0]), lines[0]
    assert snapshot(tmp_path) == before  # inputs byte-identical, nothing written


def _stations_with_labels(d):
    rows = ["编号,名称,级别,经度,纬度,地址"]
    for k, (label, x) in enumerate([("小区驿站", 1), ("街道党工委", 3), ("小区驿站", 4)], 1):
        rows.append(f"ZF-{k},驿站{k},{label},{121.39 + x * 0.00114:.5f},37.53,幸福路{k}号")
    path = d["root"] / "labels.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_unknown_tier_labels_are_listed_at_once_and_mapped_by_tier_map(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    d = make_district(tmp_path)
    d.update(root=tmp_path)
    labels = _stations_with_labels(d)
    code, err = run_cli(["check", "--stations", labels, "--stations-crs", CRS], capsys)
    assert code == 2
    assert "'小区驿站' (2×: row 2, row 4); '街道党工委' (1×: row 3)" in err
    assert "--tier-map 小区驿站=station,街道党工委=station" in err
    # mapped inline, or by a two-column file with a header: the tiers come out as mapped
    table = tmp_path / "tiers.csv"
    table.write_text("label,tier\n小区驿站,station\n街道党工委,subdistrict\n", encoding="utf-8")
    for mapping in ("小区驿站=station,街道党工委=subdistrict", str(table)):
        code, _ = run_cli(
            ["check", "--stations", labels, "--stations-crs", CRS, "--tier-map", mapping], capsys
        )
        assert code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SystemExit) as done:
            main(["check", "--stations", str(labels), "--stations-crs", CRS,
                  "--tier-map", str(table)])  # fmt: skip
    assert done.value.code in (None, 0)
    assert "tiers: station 2, subdistrict 1" in capsys.readouterr().out
    # a tier that does not exist is named
    code, err = run_cli(
        ["check", "--stations", labels, "--stations-crs", CRS, "--tier-map", "小区驿站=town"],
        capsys,
    )
    assert code == 2
    assert "'小区驿站' → 'town'" in err


def test_the_users_own_columns_travel_to_every_output(tmp_path, capsys, monkeypatch):
    import geopandas as gpd
    import pyogrio

    monkeypatch.chdir(tmp_path)
    d = make_district(tmp_path)
    d.update(root=tmp_path)
    grids = gpd.read_file(d["grids"])
    grids["网格长"] = ["张三", "李四", "王五", "赵六"]
    grids.to_file(tmp_path / "grids2.geojson", driver="GeoJSON")
    labels = _stations_with_labels(d)
    out = tmp_path / "out"
    for command in ("coverage", "gaps"):
        code, err = run_cli(
            [command, "--osm", d["osm"], "--stations", labels, "--stations-crs", CRS,
             "--grids", tmp_path / "grids2.geojson", "--grids-crs", CRS, "--out-dir", out,
             "--tier-map", "小区驿站=station,街道党工委=subdistrict"],
            capsys,
        )  # fmt: skip
        assert code == 0, err
    table = (out / "coverage" / "coverage_grids.csv").read_text("utf-8-sig")
    assert table.splitlines()[0].endswith("网格长")
    assert "张三" in table
    gap_list = (out / "gaps" / "gaps_gap_list.csv").read_text("utf-8-sig")
    assert "网格长" in gap_list.splitlines()[0]
    stations = pyogrio.read_dataframe(out / "coverage" / "coverage.gpkg", layer="stations")
    assert sorted(stations["地址"]) == ["幸福路1号", "幸福路2号", "幸福路3号"]


def test_user_columns_named_like_ours_do_not_break_the_outputs(tmp_path, capsys, monkeypatch):
    """A grid file with its own rank, fid and WEIGHT columns (QGIS exports have fid)."""
    import geopandas as gpd

    monkeypatch.chdir(tmp_path)
    d = make_district(tmp_path)
    grids = gpd.read_file(d["grids"])
    grids["rank"] = [4, 3, 2, 1]
    grids["fid"] = ["a", "b", "c", "d"]
    grids["WEIGHT"] = 1.0
    grids["网格长"] = ["张三", "李四", "王五", "赵六"]
    grids.to_file(tmp_path / "g.geojson", driver="GeoJSON")
    for command in ("coverage", "gaps"):
        code, err = run_cli(
            [command, "--osm", d["osm"], "--stations", d["stations"], "--stations-crs", CRS,
             "--grids", tmp_path / "g.geojson", "--grids-crs", CRS, "--out-dir",
             tmp_path / "out"],
            capsys,
        )  # fmt: skip
        assert code == 0, err
    header = (tmp_path / "out" / "gaps" / "gaps_gap_list.csv").read_text("utf-8-sig")
    columns = header.splitlines()[0].split(",")
    assert columns.count("rank") == 1
    assert columns[0] == "rank"  # ours: 1 = most uncovered
    assert "网格长" in columns
