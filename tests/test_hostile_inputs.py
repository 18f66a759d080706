"""Hostile inputs through the whole command line: one clear error, never a traceback.

Issue #13: a user's mistake (a cut-off download, an HTML page saved as ``.osm``, a
Shapefile without its ``.dbf``, overlapping grids, ``--speed inf``, a 1 cm lattice, ...)
must end in exit code 2 and one ``error: ...`` line on stderr (plus ``  - `` lines listing
the problems) that names the file and the fix. Each row of :data:`ROWS` builds its
hostile files next to a small, good set of inputs (a hand-written OSM XML street grid at
Zhifu, two stations, two grids), runs the CLI in-process and checks:

* ``SystemExit`` with code 2;
* stderr is one ``error:`` line plus optional problem lines, with no ``Traceback``;
* the message matches the row's pattern;
* every input file is byte-identical afterwards, and the output folder holds no file;
* no warning of any kind was raised on the way (library warnings included).

The baseline row checks the good inputs succeed, so every other row fails for its own
hostile change. The network cache points at a folder of this module, so the suite is
hermetic and the good network is parsed once.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import pytest
from shapely.geometry import box

from servicecircle import sample_data
from servicecircle.cli import main
from servicecircle.errors import ServiceCircleWarning
from servicecircle.settings import settings

# --------------------------------------------------------------------------------------------
# the good inputs: a 6 × 6 street grid ~100 m apart at Zhifu, two stations, two grids

LON0, LAT0, DLON, DLAT, N = 121.39, 37.53, 0.00113, 0.0009, 6


def osm_xml(*, highway: str = "residential", ways: bool = True) -> bytes:
    """OSM XML of an N × N street grid (rows ``highway``, columns footways)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">',
           '  <meta osm_base="2025-01-02T03:04:05Z"/>']  # fmt: skip

    def nid(i: int, j: int) -> int:
        return 1000 + i * N + j

    for i in range(N):
        for j in range(N):
            out.append(
                f'  <node id="{nid(i, j)}" version="1" lat="{LAT0 + i * DLAT:.7f}" '
                f'lon="{LON0 + j * DLON:.7f}"/>'
            )
    if ways:
        for i in range(N):
            row = "".join(f'<nd ref="{nid(i, j)}"/>' for j in range(N))
            col = "".join(f'<nd ref="{nid(j, i)}"/>' for j in range(N))
            foot = "footway" if highway == "residential" else highway
            out.append(f'  <way id="{2 * i + 1}" version="1">{row}<tag k="highway" v="{highway}"/>'
                       "</way>")  # fmt: skip
            out.append(f'  <way id="{2 * i + 2}" version="1">{col}<tag k="highway" v="{foot}"/>'
                       "</way>")  # fmt: skip
    out.append("</osm>")
    return ("\n".join(out) + "\n").encode()


STATIONS_CSV = "id,name,lon,lat\nS1,东站,121.3925,37.5320\nS2,西站,121.3940,37.5330\n"


def grid_frame(**columns: object) -> gpd.GeoDataFrame:
    boxes = [box(121.3905, 37.5305, 121.3928, 37.5340), box(121.3928, 37.5305, 121.3950, 37.5340)]
    return gpd.GeoDataFrame({"grid_id": ["G1", "G2"], **columns}, geometry=boxes, crs=4326)


def write_base(folder: Path) -> None:
    (folder / "net.osm").write_bytes(osm_xml())
    (folder / "stations.csv").write_text(STATIONS_CSV, encoding="utf-8")
    (folder / "grids.geojson").write_text(grid_frame().to_json(), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# builders of hostile files

Build = Callable[[Path], None]


def put(name: str, data: bytes | str) -> Build:
    def build(folder: Path) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        (folder / name).write_bytes(raw)

    return build


def folder_named(name: str) -> Build:
    return lambda folder: (folder / name).mkdir()


def nothing(folder: Path) -> None:
    return None


def graphml(name: str, graph: nx.Graph) -> Build:
    def build(folder: Path) -> None:
        nx.write_graphml(graph, folder / name)

    return build


def typed_graph(*, crs: bool, xy: bool) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph(**({"crs": "epsg:4326"} if crs else {}))
    for k in range(3):
        g.add_node(k, **({"x": LON0 + k * DLON, "y": LAT0} if xy else {}))
    g.add_edge(0, 1, highway="residential")
    g.add_edge(1, 2, highway="residential")
    return g


def truncated_graphml(folder: Path) -> None:
    nx.write_graphml(typed_graph(crs=True, xy=True), folder / "net.graphml")
    raw = (folder / "net.graphml").read_bytes()
    (folder / "net.graphml").write_bytes(raw[: len(raw) // 2])


def truncated_pbf(folder: Path) -> None:
    raw = Path(sample_data.helsinki_pbf()).read_bytes()
    (folder / "cut.osm.pbf").write_bytes(raw[: len(raw) // 2])


def grids_file(name: str, frame: gpd.GeoDataFrame, *, drop: tuple[str, ...] = ()) -> Build:
    def build(folder: Path) -> None:
        path = folder / name
        driver = {".geojson": "GeoJSON", ".shp": "ESRI Shapefile", ".gpkg": "GPKG"}[path.suffix]
        frame.to_file(path, driver=driver, engine="pyogrio")
        for ext in drop:
            path.with_suffix(ext).unlink()

    return build


def two_layer_gpkg(folder: Path) -> None:
    pts = gpd.GeoDataFrame({"id": ["S1"]}, geometry=gpd.points_from_xy([121.3925], [37.532]),
                           crs=4326)  # fmt: skip
    for layer in ("a", "b"):
        pts.to_file(folder / "stations.gpkg", layer=layer, driver="GPKG", engine="pyogrio")


def geojson(name: str, *features: dict) -> Build:
    return put(name, json.dumps({"type": "FeatureCollection", "features": list(features)}))


def feature(geometry: dict | None, **props: object) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def line(*xy: tuple[float, float]) -> dict:
    return {"type": "LineString", "coordinates": [list(p) for p in xy]}


# --------------------------------------------------------------------------------------------
# commands

IN, OUT = "{in}", "{out}"


def network_cmd(name: str) -> list[str]:
    return ["network", f"{IN}/{name}"]


def coverage_cmd(
    *extra: str,
    osm: str = "net.osm",
    stations: str = "stations.csv",
    grids: str | None = "grids.geojson",
) -> list[str]:
    args = ["coverage", "--osm", f"{IN}/{osm}", "--stations", f"{IN}/{stations}",
            "--stations-crs", "EPSG:4326"]  # fmt: skip
    if grids is not None:
        args += ["--grids", f"{IN}/{grids}", "--grids-crs", "EPSG:4326"]
    return [*args, "--out-dir", OUT, *extra]


def check_cmd(stations: str = "stations.csv", grids: str | None = None, *extra: str) -> list[str]:
    args = ["check", "--stations", f"{IN}/{stations}", "--stations-crs", "EPSG:4326", *extra]
    if grids is not None:
        args += ["--grids", f"{IN}/{grids}", "--grids-crs", "EPSG:4326"]
    return args


@dataclass(frozen=True)
class Row:
    id: str
    build: Build
    args: list[str]
    match: str


def row(id: str, build: Build, args: list[str], match: str) -> pytest.ParameterSet:
    return pytest.param(Row(id, build, args, match), id=id)


HTML = b"<!DOCTYPE html>\n<html><head><title>Error</title></head><body>Rate limited</body></html>"
GPX = b'<?xml version="1.0"?>\n<gpx version="1.1" creator="x"><trk/></gpx>\n'
MIXED = "id,name,lon,lat\nS1,东城驿站,121.3925,37.532\n".encode() + (
    "S2,西城驿站,121.394,37.533\n".encode("gbk")
)
FAR_CSV = "id,name,lon,lat\nS1,近,121.3925,37.5320\nS2,远,121.59,37.53\nS3,零,0,0\n"
GBK_WITH_BOM_BAD = b"\xef\xbb\xbfid,name,lon,lat\nS1,\xff\xfe\xff,121.3925,37.532\n"

ROWS = [
    # ---- network files ----------------------------------------------------------------------
    row("osm-bz2-truncated", put("cut.osm.bz2", bz2.compress(osm_xml())[:400]),
        network_cmd("cut.osm.bz2"),
        r"cut\.osm\.bz2: could not be read as OSM XML: the file looks truncated or corrupt.*"
        r"download or export it again"),
    row("osm-gz-truncated", put("cut.osm.gz", gzip.compress(osm_xml())[:400]),
        network_cmd("cut.osm.gz"), r"cut\.osm\.gz: .*looks truncated or corrupt"),
    row("osm-xml-truncated", put("cut.osm", osm_xml()[:1500]),
        network_cmd("cut.osm"), r"cut\.osm: could not be read as OSM XML: .*truncated or corrupt"),
    row("osm-bz2-garbage-after-magic", put("bad.osm.bz2", b"BZh91AY&SY" + b"\x00" * 200),
        network_cmd("bad.osm.bz2"), r"bad\.osm\.bz2: .*truncated or corrupt"),
    row("html-saved-as-osm", put("page.osm", HTML),
        network_cmd("page.osm"),
        r"page\.osm: is not OSM XML \(it starts like an HTML page\); .*download the extract"),
    row("html-saved-as-osm-bz2", put("page.osm.bz2", bz2.compress(HTML)),
        network_cmd("page.osm.bz2"), r"page\.osm\.bz2: is not OSM XML \(it starts like an HTML"),
    row("empty-osm", put("empty.osm", b""),
        network_cmd("empty.osm"), r"empty\.osm: the file is empty \(0 bytes\)"),
    row("blank-osm", put("blank.osm", b"\n  \n\t\n"),
        network_cmd("blank.osm"), r"blank\.osm: holds no data \(only blank space\)"),
    row("osm-without-walkable-ways", put("motorway.osm", osm_xml(highway="motorway")),
        network_cmd("motorway.osm"),
        r"motorway\.osm: the OSM data holds no walkable ways: none of its 12 way\(s\) is one a "
        r"pedestrian may use \(highway: motorway 12\)"),
    row("osm-nodes-only", put("nodes.osm", osm_xml(ways=False)),
        network_cmd("nodes.osm"), r"nodes\.osm: .*holds no ways"),
    row("json-saved-as-osm", put("overpass.osm", b'{"version": 0.6, "elements": []}'),
        network_cmd("overpass.osm"), r"overpass\.osm: is not OSM XML \(it starts like JSON\).*"
        r"\[out:xml\]"),
    row("gpx-saved-as-osm", put("track.osm", GPX),
        network_cmd("track.osm"), r"track\.osm: is not OSM XML \(it starts like XML with root "
        r"element <gpx>\)"),
    row("plain-xml-named-bz2", put("plain.osm.bz2", osm_xml(highway="service")),
        network_cmd("plain.osm.bz2"),
        r"plain\.osm\.bz2: has a \.bz2 name but is not bzip2-compressed.*rename it to plain\.osm"),
    row("pbf-truncated", truncated_pbf, network_cmd("cut.osm.pbf"),
        r"cut\.osm\.pbf: could not be read as OSM PBF: the file looks truncated or corrupt"),
    row("html-saved-as-pbf", put("page.osm.pbf", HTML),
        network_cmd("page.osm.pbf"), r"page\.osm\.pbf: is not OSM PBF \(it starts like an HTML"),
    row("osm-xml-named-pbf", put("xml.osm.pbf", osm_xml(highway="service")),
        network_cmd("xml.osm.pbf"), r"xml\.osm\.pbf: is not OSM PBF \(it holds OSM XML: rename"),
    row("graphml-plain-networkx", graphml("plain.graphml", nx.path_graph(4)),
        network_cmd("plain.graphml"),
        r"plain\.graphml: is GraphML but not a street network.*no 'crs' attribute.*"
        r"4 of 4 nodes have no numeric 'x'/'y'"),
    row("graphml-without-xy", graphml("noxy.graphml", typed_graph(crs=True, xy=False)),
        network_cmd("noxy.graphml"), r"noxy\.graphml: .*3 of 3 nodes have no numeric 'x'/'y'"),
    row("graphml-truncated", truncated_graphml, network_cmd("net.graphml"),
        r"net\.graphml: could not be read as GraphML: the file looks truncated or corrupt"),
    row("network-unknown-suffix", put("streets.txt", "a,b\n"),
        network_cmd("streets.txt"), r"streets\.txt: unknown network file type"),
    row("network-is-a-folder", folder_named("extract.osm"),
        network_cmd("extract.osm"), r"extract\.osm: is a folder"),
    row("network-not-found", nothing, network_cmd("missing.osm.pbf"),
        r"missing\.osm\.pbf: network file not found"),
    row("coverage-with-html-network", put("page.osm", HTML),
        coverage_cmd(osm="page.osm"), r"page\.osm: is not OSM XML \(it starts like an HTML page"),
    # ---- walk settings ----------------------------------------------------------------------
    row("speed-inf", nothing, coverage_cmd("--speed", "inf"), r"must be a finite number, got inf"),
    row("speed-nan", nothing, coverage_cmd("--speed", "nan"), r"must be a finite number, got nan"),
    row("speed-zero", nothing, coverage_cmd("--speed", "0"), r"between 20 and 150 .*got 0"),
    row("speed-negative", nothing, coverage_cmd("--speed", "-60"), r"between 20 and 150"),
    row("speed-in-km-per-hour", nothing, coverage_cmd("--speed", "4.5"),
        r"got 4\.5; the unit is m/min: 4\.5 km/h is 75 m/min"),
    row("frontage-negative", nothing, coverage_cmd("--frontage", "-1"),
        r"between 0 and 200 metres, got -1"),
    row("frontage-absurd", nothing, coverage_cmd("--frontage", "1e9"),
        r"between 0 and 200 metres, got 1e\+09"),
    row("max-snap-negative", nothing, coverage_cmd("--max-snap", "-5"),
        r"> 0 and at most 2,000 metres, got -5"),
    row("max-snap-inf", nothing, coverage_cmd("--max-snap", "inf"), r"finite number, got inf"),
    # ---- resources a user option can blow up ------------------------------------------------
    row("lattice-one-centimetre", nothing, coverage_cmd("--lattice", "0.01"),
        r"0\.01 would make about 1\.5e\+09 demand points in 2 grid\(s\) of 0\.15 km²; the "
        r"limit is 5,000,000; use .*at least 1 m, or give buildings"),
    row("lattice-nan", nothing, coverage_cmd("--lattice", "nan"), r"lattice"),
    # ---- stations ---------------------------------------------------------------------------
    row("csv-mixed-utf8-and-gbk", put("mixed.csv", MIXED), check_cmd("mixed.csv"),
        r"mixed\.csv: mixes two text encodings: row 2 is UTF-8 but row 3 is not"),
    row("csv-bom-then-neither", put("odd.csv", GBK_WITH_BOM_BAD), check_cmd("odd.csv"),
        r"odd\.csv: text is neither UTF-8 nor GBK \(byte 0xff in row 2"),
    row("csv-empty", put("empty.csv", b""), check_cmd("empty.csv"),
        r"empty\.csv: the file is empty \(0 bytes\)"),
    row("csv-header-only", put("head.csv", "id,name,lon,lat\n"), check_cmd("head.csv"),
        r"head\.csv: has a header row but no data rows"),
    row("csv-nan-coordinate", put("nan.csv", "id,lon,lat\nS1,nan,37.53\nS2,121.39,37.53\n"),
        check_cmd("nan.csv"), r"nan\.csv: column 'lon' has 1 missing or non-numeric(?s:.*)row 2"),
    row("csv-inf-coordinate", put("inf.csv", "id,lon,lat\nS1,121.39,37.53\nS2,121.39,inf\n"),
        check_cmd("inf.csv"), r"inf\.csv: column 'lat' has 1 missing(?s:.*)  - row 3"),
    row("geojson-nan-coordinate",
        put("pts.geojson", '{"type":"FeatureCollection","features":[{"type":"Feature",'
            '"properties":{},"geometry":{"type":"Point","coordinates":[NaN,37.53]}}]}'),
        check_cmd("pts.geojson"),
        r"pts\.geojson: 1 feature\(s\) have coordinates that are not numbers(?s:.*)feature 1"),
    row("gpkg-two-layers", two_layer_gpkg, check_cmd("stations.gpkg"),
        r"stations\.gpkg: has 2 layers \(a, b\)"),
    row("stations-mostly-far-away", put("far.csv", FAR_CSV), coverage_cmd(stations="far.csv"),
        r"2 of 3 station\(s\) lie farther than 250 m .*do not line up(?s:.*)"
        r"  - station S2 \(远\): 17,\d{3} m from the nearest walkable edge(?s:.*)"
        r"  - station S3 \(零\): [\d,]+ m from"),
    row("station-alone-at-null-island", put("zero.csv", "id,name,lon,lat\nS1,零,0,0.001\n"),
        check_cmd("zero.csv", "grids.geojson"),
        r"every station in zero\.csv \(declared EPSG:4326\) is at least [\d,]+ m from the grids"),
    row("stations-xlsx-named-csv", put("st.csv", b"PK\x03\x04" + b"\x00" * 64),
        check_cmd("st.csv"), r"st\.csv: has a \.csv name but holds a ZIP archive or Excel"),
    # ---- grids ------------------------------------------------------------------------------
    row("grids-overlap", grids_file("over.geojson", gpd.GeoDataFrame(
            {"grid_id": ["G1", "G2", "G3"]},
            geometry=[box(121.3905, 37.5305, 121.3930, 37.5340),
                      box(121.3920, 37.5305, 121.3950, 37.5340),
                      box(121.3950, 37.5305, 121.3960, 37.5340)], crs=4326)),
        check_cmd("stations.csv", "over.geojson"),
        r"over\.geojson: 1 pair\(s\) of grids overlap by more than 1% of the smaller grid"
        r"(?s:.*)  - G1 \(feature 1\) and G2 \(feature 2\): [\d,]+ m² in common, 40% of the "
        r"smaller"),
    row("grids-overlap-in-coverage", grids_file("over.geojson", gpd.GeoDataFrame(
            {"grid_id": ["A", "B"]},
            geometry=[box(121.3905, 37.5305, 121.3950, 37.5340),
                      box(121.3910, 37.5310, 121.3940, 37.5330)], crs=4326)),
        coverage_cmd(grids="over.geojson"), r"A \(feature 1\) and B \(feature 2\)"),
    row("grids-are-lines", geojson("lines.geojson", feature(line((121.39, 37.53), (121.4, 37.54)))),
        check_cmd("stations.csv", "lines.geojson"),
        r"lines\.geojson: 1 of 1 feature\(s\) have the wrong geometry type(?s:.*)LineString"),
    row("grids-zero-features", geojson("none.geojson"), check_cmd("stations.csv", "none.geojson"),
        r"none\.geojson: holds no features"),
    row("grids-shp-without-dbf", grids_file("grids.shp", grid_frame(), drop=(".dbf",)),
        check_cmd("stations.csv", "grids.shp"),
        r"grids\.shp: the Shapefile's companion file\(s\) grids\.dbf \(attribute table"),
    row("grids-shp-without-shx", grids_file("grids.shp", grid_frame(), drop=(".shx",)),
        check_cmd("stations.csv", "grids.shp"), r"grids\.shp: .*grids\.shx \(shape index\)"),
    row("grids-population-infinite",
        grids_file("pop.geojson", grid_frame(population=["1e400", "10"])),
        check_cmd("stations.csv", "pop.geojson"),
        r"pop\.geojson: 1 problem\(s\)(?s:.*)feature 1: population '1e400' .*not a finite number"),
    row("grids-truncated-geojson", put("cut.geojson", grid_frame().to_json()[:150]),
        check_cmd("stations.csv", "cut.geojson"),
        r"cut\.geojson: could not be read as GeoJSON: .*damaged or cut off"),
    row("grids-as-table", put("grids.csv", STATIONS_CSV), coverage_cmd(grids="grids.csv"),
        r"grids\.csv: red grids must be polygons, but this is a table"),
    row("weight-population-without-column", nothing, coverage_cmd("--weight", "population"),
        r"needs a population column in the grids"),
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# the runner


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("network-cache")


@pytest.fixture(autouse=True)
def hermetic_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICECIRCLE_CACHE", str(cache_dir))
    monkeypatch.setattr(settings, "cache_folder", cache_dir)


def run(args: list[str], inp: Path, out: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    argv = [a.replace(IN, str(inp)).replace(OUT, str(out)) for a in args]
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning, ours or a library's, fails the row
        with pytest.raises(SystemExit) as done:
            main(argv)
    captured = capsys.readouterr()
    return done.value.code, captured.err + ("\n" + captured.out if "Traceback" in captured.out
                                            else "")  # fmt: skip


def test_at_least_40_rows() -> None:
    assert len(ROWS) >= 40
    ids = [p.values[0].id for p in ROWS]
    assert len(ids) == len(set(ids))


def test_the_good_inputs_succeed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    write_base(inp)
    code, _ = run(["network", f"{IN}/net.osm"], inp, out, capsys)
    assert code in (None, 0)
    code, err = run(coverage_cmd(), inp, out, capsys)
    assert code in (None, 0), err
    assert any(out.rglob("coverage_grids.csv"))


@pytest.mark.parametrize("case", ROWS)
def test_hostile_input(case: Row, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    write_base(inp)
    case.build(inp)
    before = digests(inp)
    code, err = run(case.args, inp, out, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.rstrip("\n").split("\n")
    assert lines[0].startswith("error: "), err
    assert all(ln.startswith(("  - ", "  ... and ")) for ln in lines[1:]), err
    assert re.search(case.match, err), f"{case.match!r} not in:\n{err}"
    assert digests(inp) == before  # inputs are never written
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))  # no output


def test_a_far_station_is_left_out_of_every_product(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """One station of three 18 km off: a warning naming it, and no output mentions it."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    write_base(inp)
    far = (
        "id,name,lon,lat\nS1,东站,121.3925,37.5320\nS2,西站,121.3940,37.5330\nS9,远,121.59,37.53\n"
    )
    (inp / "stations.csv").write_text(far, encoding="utf-8")
    argv = [a.replace(IN, str(inp)).replace(OUT, str(out)) for a in coverage_cmd()]
    capsys.readouterr()
    with warnings.catch_warnings():
        # the CLI shows our warnings as 'warning:' lines; any other warning fails the test
        warnings.simplefilter("error")
        warnings.simplefilter("default", ServiceCircleWarning)
        with pytest.raises(SystemExit) as done:
            main(argv)
    assert done.value.code in (None, 0)
    printed = capsys.readouterr()
    err = printed.err
    assert "stations: 2 (1 more left out: farther than --max-snap" in printed.out
    assert re.search(r"warning: 1 of 3 station\(s\) lie farther than 250 m .*left out", err), err
    assert "  - station S9 (远): 17,1" in err
    stations = gpd.read_file(next(out.rglob("coverage.gpkg")), layer="stations")
    assert sorted(stations["station_id"]) == ["S1", "S2"]
    grids = next(out.rglob("coverage_grids.csv")).read_text("utf-8-sig")
    assert "S9" not in grids
    assert "S1" in grids
    meta = json.loads(next(out.rglob("coverage_grids.csv.meta.json")).read_text("utf-8"))
    assert [d["station_id"] for d in meta["stations_dropped"]] == ["S9"]
    # the left-out stations get their own table, for Excel, with the reason
    dropped = next(out.rglob("coverage_stations_dropped.csv")).read_text("utf-8-sig")
    assert "S9" in dropped
    assert "S1" not in dropped
    assert "17,1" in dropped  # its distance to the network, in the reason
