"""Walking network extras: GraphML round trip, datum hints on real streets, the load cache,
stations appended to the CSR."""

from __future__ import annotations

import re
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pytest
import shapely
from scipy.sparse import csgraph
from tests.netfixtures import lines_network, points

from servicecircle import datums, reach, snapping
from servicecircle import network as netmod
from servicecircle.errors import NetworkError, ServiceCircleWarning, SnapError
from servicecircle.sample_data import helsinki_pbf


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(netmod.settings, "cache_folder", tmp_path / "cache")
    monkeypatch.setattr(netmod.settings, "use_cache", True)
    return tmp_path / "cache"


def _quiet_load(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        return netmod.load_network(path, **kwargs)


# --------------------------------------------------------------------------------------------
# GraphML round trip


def test_graphml_round_trip_gives_the_same_network(tmp_path):
    # the osmnx graph our PBF loader builds, saved by osmnx as GraphML
    graph = netmod._graph_from_pbf(helsinki_pbf())
    graphml = tmp_path / "helsinki.graphml"
    ox.io.save_graphml(graph, graphml)
    # the gated-compound layering round-trips too: the same gates, twins and links
    layered = [_quiet_load(p, use_cache=False) for p in (helsinki_pbf(), graphml)]
    assert layered[0].links.shape == layered[1].links.shape
    assert layered[0].links.shape[1] > 0  # Helsinki has private ways that meet streets
    assert layered[0].n_nodes == layered[1].n_nodes
    # distances on an undirected network (private ways walked like public ones)
    direct = _quiet_load(helsinki_pbf(), use_cache=False, private="include")
    loaded = _quiet_load(graphml, use_cache=False, private="include")
    assert loaded.source["format"] == "graphml"
    assert loaded.n_nodes == direct.n_nodes
    assert len(loaded.edges) == len(direct.edges)
    assert loaded.edge_length_m.sum() == pytest.approx(direct.edge_length_m.sum(), rel=1e-6)
    assert loaded.crs == direct.crs
    # walk distances from a few nodes: networkx on the PBF network's edge table against
    # scipy on the GraphML network, nodes matched by OSM id
    ref = nx.Graph()
    for u, v, w in zip(direct.edge_u, direct.edge_v, direct.edge_length_m, strict=True):
        a, b = direct.nodes["osmid"].iat[u], direct.nodes["osmid"].iat[v]
        if a != b and (not ref.has_edge(a, b) or ref[a][b]["w"] > w):
            ref.add_edge(a, b, w=float(w))
    pos = {int(o): i for i, o in enumerate(loaded.nodes["osmid"])}
    rng = np.random.default_rng(5)
    sources = rng.choice(direct.nodes["osmid"].to_numpy(), 4, replace=False)
    dist = csgraph.dijkstra(loaded.graph, indices=[pos[int(s)] for s in sources], limit=2000)
    for row, s in zip(dist, sources, strict=True):
        expected = nx.single_source_dijkstra_path_length(ref, s, cutoff=2000, weight="w")
        assert len(expected) > 50
        got = {int(loaded.nodes["osmid"].iat[i]): d for i, d in enumerate(row) if np.isfinite(d)}
        assert set(got) == {int(o) for o in expected}
        for o, d in expected.items():
            assert got[int(o)] == pytest.approx(d, rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------------------------
# datum hints on real streets (central Shanghai)


@pytest.fixture(scope="module")
def shanghai(shared_data):
    return _quiet_load(shared_data / "shanghai" / "shanghai_center_drive.osm.bz2", use_cache=False)


def _node_lonlat(net):
    ll = net.nodes.to_crs(4326).geometry.to_numpy()
    return shapely.get_coordinates(ll).T


def _far_after_shift(net, lon, lat, min_m):
    """Positions of nodes that land farther than ``min_m`` from every street once their
    coordinates are written in another datum (measured with shapely, not our snapping)."""
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(net.crs).to_numpy()
    tree = shapely.STRtree(net.edges.geometry.to_numpy())
    _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    return np.flatnonzero(dist > min_m)


def _stations(lon, lat, crs="EPSG:4326"):
    st = gpd.GeoDataFrame(
        {"station_id": [f"SH-{i:02d}" for i in range(len(lon))], "name": "驿站"},
        geometry=gpd.points_from_xy(lon, lat),
        crs=4326,
    )
    st.attrs["source"] = {"crs": crs}
    return st


@pytest.mark.parametrize(
    ("datum", "shift"), [("gcj02", datums.wgs84_to_gcj02), ("bd09", datums.wgs84_to_bd09)]
)
def test_real_stations_in_a_chinese_datum_declared_wgs84_get_the_datum_hint(shanghai, datum, shift):
    lon, lat = _node_lonlat(shanghai)
    x, y = shift(lon, lat)  # what AMap (gcj02) or Baidu (bd09) would show for these nodes
    far = _far_after_shift(shanghai, x, y, min_m=300)
    assert far.size >= 12
    pick = np.random.default_rng(1).choice(far, 12, replace=False)
    stations = _stations(x[pick], y[pick])  # declared WGS84, but really gcj02 / bd09
    sn = snapping.snap_to_edges(shanghai, stations)
    with pytest.raises(SnapError, match=r"12 of 12 station\(s\).*gcj02.*bd09") as info:
        snapping.check_station_snaps(shanghai, stations, sn, max_snap_m=250)
    problems = info.value.problems
    assert len(problems) == 12
    for line in problems:
        # read in the right datum each station is back on its node: 0 m away
        assert f"read as {datum} it would be 0 m away: try crs='{datum}'" in line


def test_a_few_gcj02_stations_among_good_ones_warn_with_the_hint(shanghai):
    lon, lat = _node_lonlat(shanghai)
    x, y = datums.wgs84_to_gcj02(lon, lat)
    far = _far_after_shift(shanghai, x, y, min_m=300)
    rng = np.random.default_rng(2)
    bad = rng.choice(far, 3, replace=False)
    good = rng.choice(np.setdiff1d(np.arange(lon.size), far), 9, replace=False)
    stations = _stations(np.r_[x[bad], lon[good]], np.r_[y[bad], lat[good]])
    sn = snapping.snap_to_edges(shanghai, stations)
    with pytest.warns(ServiceCircleWarning, match="3 of 12 station") as record:
        problems = snapping.check_station_snaps(shanghai, stations, sn, max_snap_m=250)
    assert "try crs='gcj02'" in str(record[0].message)
    assert [p.split(" ")[1] for p in problems] == ["SH-00", "SH-01", "SH-02"]
    assert all("try crs='gcj02'" in p for p in problems)


def test_wgs84_stations_declared_gcj02_get_the_wgs84_hint(shanghai):
    lon, lat = _node_lonlat(shanghai)
    # declared gcj02, so the loader moved them by the GCJ-02 → WGS84 inverse
    x, y = datums.gcj02_to_wgs84(lon, lat)
    far = _far_after_shift(shanghai, x, y, min_m=300)
    pick = np.random.default_rng(3).choice(far, 8, replace=False)
    stations = _stations(x[pick], y[pick], crs="gcj02")
    sn = snapping.snap_to_edges(shanghai, stations)
    with pytest.raises(SnapError) as info:
        snapping.check_station_snaps(shanghai, stations, sn, max_snap_m=250)
    assert all("read as wgs84 it would be 0 m away: try crs='EPSG:4326'" in p
               for p in info.value.problems)  # fmt: skip


# --------------------------------------------------------------------------------------------
# the processed-network cache

_OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand" >
  <meta osm_base="2025-01-02T03:04:05Z"/>
  <node id="1" lat="37.5400" lon="121.3900"/>
  <node id="2" lat="37.5400" lon="121.3910"/>
  <node id="3" lat="37.5408" lon="{lon3}"/>
  <node id="4" lat="37.5408" lon="121.3900"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/>
    <tag k="name" v="胜利路"/></way>
  <way id="11"><nd ref="2"/><nd ref="3"/><nd ref="4"/><tag k="highway" v="footway"/></way>
  <way id="12"><nd ref="4"/><nd ref="1"/><tag k="highway" v="motorway"/></way>
</osm>
"""


def _write_osm(path, lon3="121.3910"):
    path.write_text(_OSM.format(lon3=lon3), encoding="utf-8")
    return path


def _arrays(net):
    coords = shapely.get_coordinates(net.edges.geometry.to_numpy())
    return {
        "node_xy": net.node_xy,
        "osmid": net.nodes["osmid"].astype(str).to_numpy(),
        "u": net.edge_u,
        "v": net.edge_v,
        "length_m": net.edge_length_m,
        "coords": coords,
        "highway": net.edges["highway"].to_numpy(dtype=str),
    }


def _parser_must_not_run(monkeypatch):
    def fail(path):
        raise AssertionError(f"OSM parser called for {path}: the cache was missed")

    monkeypatch.setattr(netmod, "_graph_from_xml", fail)


def test_second_load_reads_the_cache_and_gives_identical_arrays(tmp_path, cache, monkeypatch):
    osm = _write_osm(tmp_path / "block.osm")
    first = _quiet_load(osm, simplify=False)
    assert "cached" not in first.source
    assert len(list(cache.glob("networks/*.npz"))) == 1
    _parser_must_not_run(monkeypatch)
    second = _quiet_load(osm, simplify=False)
    assert second.source["cached"].endswith(".npz")
    for key, value in _arrays(first).items():
        np.testing.assert_array_equal(_arrays(second)[key], value, err_msg=key)
    assert second.crs == first.crs
    assert second.source["sha256"] == first.source["sha256"]
    assert second.source["osm_date"] == "2025-01-02T03:04:05Z"
    # the hand-checkable content: motorway dropped, 3 pieces kept, lengths by geometry
    assert sorted(first.edges["highway"]) == ["footway", "footway", "residential"]
    assert set(first.edges["name"].dropna()) == {"胜利路"}


def test_changed_file_content_misses_the_cache(tmp_path, cache, monkeypatch):
    osm = _write_osm(tmp_path / "block.osm")
    first = _quiet_load(osm, simplify=False)
    _write_osm(osm, lon3="121.3920")  # node 3 moves ~88 m east; same name, same size
    with monkeypatch.context() as m:
        _parser_must_not_run(m)
        with pytest.raises(AssertionError, match="the cache was missed"):
            _quiet_load(osm, simplify=False)
    changed = _quiet_load(osm, simplify=False)
    assert "cached" not in changed.source
    assert changed.source["sha256"] != first.source["sha256"]
    assert changed.edge_length_m.sum() > first.edge_length_m.sum() + 100  # 2 legs longer
    assert len(list(cache.glob("networks/*.npz"))) == 2


def test_load_options_have_their_own_cache_entries(tmp_path, cache, monkeypatch):
    osm = _write_osm(tmp_path / "block.osm")
    plain = _quiet_load(osm, simplify=False)
    simple = _quiet_load(osm, simplify=True)
    assert len(list(cache.glob("networks/*.npz"))) == 2
    assert len(simple.edges) < len(plain.edges)  # 2-3-4 is one piece once simplified
    assert simple.edge_length_m.sum() == pytest.approx(plain.edge_length_m.sum(), rel=1e-9)
    _parser_must_not_run(monkeypatch)
    assert len(_quiet_load(osm, simplify=True).edges) == len(simple.edges)


def test_unreadable_cache_is_rebuilt_and_no_cache_means_no_files(tmp_path, cache):
    osm = _write_osm(tmp_path / "block.osm")
    _quiet_load(osm, simplify=False)
    (npz,) = cache.glob("networks/*.npz")
    npz.write_bytes(b"not a zip file")
    rebuilt = _quiet_load(osm, simplify=False)
    assert "cached" not in rebuilt.source
    assert len(rebuilt.edges) == 3
    assert _quiet_load(osm, simplify=False).source.get("cached")  # written again
    other = _write_osm(tmp_path / "other.osm", lon3="121.3915")
    _quiet_load(other, use_cache=False)
    assert len(list(cache.glob("networks/*.npz"))) == 1


def test_cache_does_not_hide_a_missing_file(tmp_path, cache):
    osm = _write_osm(tmp_path / "block.osm")
    _quiet_load(osm)
    osm.unlink()
    with pytest.raises(NetworkError, match="network file not found"):
        netmod.load_network(osm)


# --------------------------------------------------------------------------------------------
# stations appended to the network's CSR


def test_station_on_a_closed_way_takes_the_shorter_way_round():
    # one closed way (a 400 m square, u == v at the corner (0, 0)) and a spur to the east
    net = lines_network([(0, 0), (400, 0), (400, 400), (0, 400), (0, 0)], [(0, 0), (-50, 0)])
    sn = snapping.snap_to_edges(net, points((100, 5), (-20, 3)))
    r = reach.nearest_station(net, sn.iloc[:1])
    corner = int(np.argmin(np.hypot(*(net.node_xy - net.node_xy.min(axis=0) - [50, 0]).T)))
    # by hand: leg 5 + 100 m back along the loop, not 5 + 1,500 m the other way round
    assert r.dist_m[corner] == pytest.approx(105.0)
    assert r.dist_m.max() == pytest.approx(155.0)  # the spur's dead end, 50 m further
    both = reach.nearest_station(net, sn)
    assert both.dist_m[corner] == pytest.approx(23.0)  # the second station: leg 3 + 20 m
    assert both.station[corner] == 1


def test_array_network_matches_its_geodataframes():
    net = lines_network([(0, 0), (30, 40), (30, 100)], [(30, 100), (90, 100)], [(0, 0), (-5, 0)])
    edges = net.edges
    # lengths from the arrays equal shapely's lengths of the built LineStrings
    np.testing.assert_allclose(net.edge_length_m, shapely.length(edges.geometry), rtol=1e-15)
    assert net.edge_length_m[0] == pytest.approx(50.0 + 60.0)
    # every edge runs from its u node to its v node
    first = shapely.get_point(edges.geometry, 0)
    last = shapely.get_point(edges.geometry, -1)
    assert shapely.equals(first, net.nodes.geometry.iloc[net.edge_u].to_numpy()).all()
    assert shapely.equals(last, net.nodes.geometry.iloc[net.edge_v].to_numpy()).all()
    # a subset of edge lines is the same geometry as the frame's
    sub = net.edge_lines(np.array([2, 0]))
    assert shapely.equals(sub, edges.geometry.to_numpy()[[2, 0]]).all()


def test_inconsistent_arrays_are_refused():
    from servicecircle.network import WalkNetwork

    xy = np.array([[0.0, 0.0], [1.0, 0.0]])
    coords = np.array([[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="projected"):
        WalkNetwork(xy, [0], [1], coords, [0, 2], crs=4326)
    with pytest.raises(ValueError, match="inconsistent"):
        WalkNetwork(xy, [0], [2], coords, [0, 2], crs=32651)  # node 2 does not exist
    with pytest.raises(ValueError, match="inconsistent"):
        WalkNetwork(xy, [0], [1], coords, [0, 1, 2], crs=32651)  # offsets for two edges


# --------------------------------------------------------------------------------------------
# files that are not what their names say, GraphML from networkx


def test_a_copy_under_another_name_reports_its_own_name_from_the_cache(tmp_path, cache):
    first = _quiet_load(_write_osm(tmp_path / "block.osm"))
    copy = tmp_path / "copy.osm"
    copy.write_bytes((tmp_path / "block.osm").read_bytes())
    second = _quiet_load(copy)
    assert "cached" in second.source
    assert (first.source["file"], second.source["file"]) == ("block.osm", "copy.osm")
    assert second.source["path"] == str(copy)


def test_graphml_written_by_networkx_with_typed_values_loads(tmp_path, cache):
    g = nx.MultiDiGraph(crs="epsg:4326")
    g.add_node(1, x=121.39, y=37.54)  # floats, as networkx writes them (osmnx writes text)
    g.add_node(2, x=121.391, y=37.54)
    g.add_node(3, x=121.391, y=37.5408)
    g.add_edge(1, 2, highway="residential", osmid=5)
    g.add_edge(2, 3, highway="motorway", osmid=6)
    nx.write_graphml(g, tmp_path / "typed.graphml")
    net = _quiet_load(tmp_path / "typed.graphml", simplify=False)
    assert (net.n_nodes, net.n_edges) == (2, 1)  # the motorway is not walkable
    assert net.edge_length_m[0] == pytest.approx(88.1, abs=0.5)  # 0.001° of longitude at 37.5°


@pytest.mark.parametrize(
    ("name", "content", "kind", "message"),
    [
        ("a.osm", b"<html><body>502 Bad Gateway</body></html>", "xml", "starts like an HTML page"),
        ("a.osm", b"\xef\xbb\xbf  <?xml version='1.0'?><osm version='0.6'/>", "xml", None),
        ("a.osm", b"<?xml version='1.0'?>\n<!-- c --><gpx/>", "xml", "root element <gpx>"),
        ("a.osm", b"\x00\x00\x00\x0d\x0a\x09OSMHeader" + b"\x00" * 20, "xml", "it is OSM PBF"),
        ("a.osm", b"id,lon,lat\n1,2,3\n", "xml", "starts like text ('id,lon,lat')"),
        ("a.graphml", b"<?xml version='1.0'?><graphml xmlns='x'/>", "graphml", None),
        ("a.graphml", b"<?xml version='1.0'?><osm/>", "graphml", "it is OSM XML: rename"),
        ("a.osm.gz", b"<osm/>", "xml", "has a .gz name but is not gzip-compressed"),
        ("a.osm.gz", b"\x1f\x8b" + b"\x00" * 30, "xml", "looks truncated or corrupt"),
        ("a.osm.pbf", b"BZh91AY&SY", "pbf", "starts like bzip2-compressed data"),
    ],
)
def test_network_files_are_sniffed_before_parsing(tmp_path, name, content, kind, message):
    path = tmp_path / name
    path.write_bytes(content)
    if message is None:
        assert netmod.sniff_network_file(path, kind).startswith(content[:16])
        return
    with pytest.raises(NetworkError, match=re.escape(message)):
        netmod.sniff_network_file(path, kind)
