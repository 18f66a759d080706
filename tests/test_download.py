"""Overpass download (network.download_network) without internet: osmnx is monkeypatched.

The fake osmnx functions record their arguments and the osmnx settings in force at call
time, and return a small hand-made osmnx graph (WGS84, at Zhifu) or raise the errors that
osmnx and requests raise when the network, the geocoder or Overpass fail.
"""

from __future__ import annotations

import networkx as nx
import osmnx as ox
import pyproj
import pytest
import requests
import shapely
from osmnx._errors import InsufficientResponseError, ResponseStatusCodeError

from servicecircle import network as netmod
from servicecircle.errors import InputError, NetworkError

PLACE = "芝罘区, 烟台市, 山东省"
# a 90 m × 90 m block at Zhifu (lon, lat)
A, B, C, D = (121.3900, 37.5400), (121.3910, 37.5400), (121.3910, 37.5408), (121.3900, 37.5408)
WAYS = [  # (from, to, tags)
    (A, B, {"highway": "residential", "name": "胜利路"}),
    (B, C, {"highway": "footway"}),
    (C, D, {"highway": "service", "access": "private"}),  # a gated compound's lane
    (D, A, {"highway": "motorway"}),
]
GEOD = pyproj.Geod(ellps="WGS84")
FIXED = r"\(121\.38, 37\.53, 121\.4, 37\.55\)"  # the bbox the messages should suggest


def geodesic_m(p, q) -> float:
    return GEOD.inv(p[0], p[1], q[0], q[1])[2]


def hand_graph() -> nx.MultiDiGraph:
    """What osmnx returns for the block: every way in both directions, WGS84."""
    g = nx.MultiDiGraph(crs="epsg:4326")
    for i, (x, y) in enumerate((A, B, C, D), start=1):
        g.add_node(i, x=x, y=y, street_count=2)
    ids = {A: 1, B: 2, C: 3, D: 4}
    for way, (p, q, tags) in enumerate(WAYS, start=100):
        for a, b in ((p, q), (q, p)):
            g.add_edge(ids[a], ids[b], osmid=way, length=geodesic_m(a, b), oneway=False, **tags)
    return g


class FakeOsmnx:
    """Stands in for osmnx's graph_from_* functions; records calls and settings."""

    def __init__(self, monkeypatch, *, raises: Exception | None = None, graph=None) -> None:
        self.calls: list[tuple[str, tuple, dict, dict]] = []
        self.raises = raises
        self.graph = graph if graph is not None else hand_graph()
        for name in ("graph_from_place", "graph_from_polygon", "graph_from_bbox"):
            monkeypatch.setattr(ox.graph, name, self._fake(name))

    def _fake(self, name):
        def fake(*args, **kwargs):
            state = {
                "use_cache": ox.settings.use_cache,
                "cache_folder": ox.settings.cache_folder,
                "requests_timeout": ox.settings.requests_timeout,
                "useful_tags_way": list(ox.settings.useful_tags_way),
            }
            self.calls.append((name, args, kwargs, state))
            if self.raises is not None:
                raise self.raises
            return self.graph.copy()

        return fake


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(netmod.settings, "cache_folder", tmp_path / "cache")
    monkeypatch.setattr(netmod.settings, "use_cache", True)
    return tmp_path / "cache"


def test_place_goes_to_graph_from_place_with_the_walk_filter_and_our_cache(cache, monkeypatch):
    fake = FakeOsmnx(monkeypatch)
    before = (ox.settings.use_cache, ox.settings.cache_folder, list(ox.settings.useful_tags_way))
    net = netmod.download_network(place=PLACE, simplify=False)
    assert len(fake.calls) == 1
    name, args, kwargs, state = fake.calls[0]
    assert name == "graph_from_place"
    assert args == (PLACE,)
    assert kwargs == {
        "network_type": "walk",
        "custom_filter": netmod.overpass_filter(),
        "simplify": False,
        "retain_all": True,
    }
    # Overpass responses land in our cache folder, with our timeout
    assert state["use_cache"] is True
    assert state["cache_folder"] == str(cache / "overpass")
    assert state["requests_timeout"] == netmod.settings.overpass_timeout_s
    # the tags the walk policy reads are kept by osmnx during the call
    assert {"highway", "access", "foot", "service", "area"} <= set(state["useful_tags_way"])
    # and osmnx's settings are put back afterwards
    after = (ox.settings.use_cache, ox.settings.cache_folder, list(ox.settings.useful_tags_way))
    assert after == before
    # the walk policy applies to what came back: no motorway; the private lane is kept for
    # walks from the compound's homes only: one gate, C (D meets only the dropped motorway)
    assert sorted(net.edges["highway"]) == ["footway", "residential", "service"]
    assert net.edge_private.tolist() == [e == "service" for e in net.edges["highway"]]
    assert net.links.shape == (2, 1)
    assert net.crs.to_epsg() == 32651  # UTM 51N at Zhifu
    expected = geodesic_m(A, B) + geodesic_m(B, C) + geodesic_m(C, D)
    assert net.edge_length_m.sum() == pytest.approx(expected, rel=1e-3)  # UTM scale ≤ 4e-4
    assert net.source["overpass"] == PLACE
    assert net.source["format"] == "overpass"


def test_simplified_download_keeps_the_length(cache, monkeypatch):
    FakeOsmnx(monkeypatch)
    net = netmod.download_network(place=PLACE, private="exclude")
    # A-B-C is one chain once the motorway and the private lane are gone
    assert len(net.edges) == 1
    assert net.edge_length_m.sum() == pytest.approx(geodesic_m(A, B) + geodesic_m(B, C), rel=1e-3)
    # simplification never merges a private lane into a public chain
    layered = netmod.download_network(place=PLACE)
    assert sorted(layered.edges["walk_access"]) == ["private", "public"]


def test_private_policy_keeps_the_filter_and_chooses_the_private_lane(cache, monkeypatch):
    fake = FakeOsmnx(monkeypatch)
    nets = {p: netmod.download_network(place=PLACE, private=p, simplify=False)
            for p in ("exclude", "destination", "include")}  # fmt: skip
    # one filter for every policy: private ways with foot=yes are public, so Overpass
    # must bring every private way; the policy chooses after the download
    assert {c[2]["custom_filter"] for c in fake.calls} == {netmod.overpass_filter()}
    assert '"access"' not in netmod.overpass_filter()
    assert sorted(nets["exclude"].edges["highway"]) == ["footway", "residential"]
    for p in ("destination", "include"):
        assert sorted(nets[p].edges["highway"]) == ["footway", "residential", "service"]
        assert nets[p].source["private"] == p
    assert not nets["include"].edge_private.any()
    assert nets["include"].links.size == 0
    # the older keep_private=True is private="include"
    old = netmod.download_network(place=PLACE, keep_private=True, simplify=False)
    assert old.source["private"] == "include"


def test_use_cache_false_reaches_osmnx(cache, monkeypatch):
    fake = FakeOsmnx(monkeypatch)
    monkeypatch.setattr(netmod.settings, "use_cache", False)
    netmod.download_network(place=PLACE)
    assert fake.calls[0][3]["use_cache"] is False


def test_polygon_and_bbox_go_to_their_own_osmnx_functions(cache, monkeypatch):
    fake = FakeOsmnx(monkeypatch)
    polygon = shapely.box(121.38, 37.53, 121.40, 37.55)
    netmod.download_network(polygon=polygon)
    netmod.download_network(bbox=(121.38, 37.53, 121.40, 37.55))
    (n1, a1, k1, _), (n2, a2, k2, _) = fake.calls
    assert n1 == "graph_from_polygon"
    assert a1[0].equals(polygon)
    assert n2 == "graph_from_bbox"
    assert a2 == ((121.38, 37.53, 121.40, 37.55),)  # osmnx 2: (left, bottom, right, top)
    for kw in (k1, k2):
        assert kw["custom_filter"] == netmod.overpass_filter()
        assert kw["network_type"] == "walk"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"exactly one of place, polygon or bbox \(got none\)"),
        ({"place": PLACE, "bbox": (121.38, 37.53, 121.40, 37.55)}, r"got place and bbox"),
        (
            {"place": PLACE, "polygon": shapely.box(121.38, 37.53, 121.4, 37.55),
             "bbox": (121.38, 37.53, 121.40, 37.55)},
            r"got place and polygon and bbox",
        ),
        ({"place": "  "}, "non-empty name"),
        ({"polygon": shapely.Point(121.39, 37.54)}, "Polygon or MultiPolygon in WGS84"),
        # a polygon in UTM metres, not degrees
        ({"polygon": shapely.box(500_000, 4_150_000, 501_000, 4_151_000)}, "not WGS84 degrees"),
        ({"bbox": (121.38, 37.53, 121.40)}, r"\(west, south, east, north\)"),
        ({"bbox": ("a", 37.53, 121.40, 37.55)}, r"\(west, south, east, north\)"),
        # latitude first: the message offers the fix
        ({"bbox": (37.53, 121.38, 37.55, 121.40)}, rf"latitude first.*{FIXED}"),
        # osmnx 1.x order (north, south, east, west)
        ({"bbox": (37.55, 37.53, 121.40, 121.38)}, rf"osmnx 1.*{FIXED}"),
        # east < west
        ({"bbox": (121.40, 37.53, 121.38, 37.55)}, "west < east and south < north"),
        ({"bbox": (121.38, 37.55, 121.40, 37.53)}, "west < east and south < north"),
    ],
)  # fmt: skip
def test_bad_area_arguments_are_input_errors(cache, monkeypatch, kwargs, message):
    fake = FakeOsmnx(monkeypatch)
    with pytest.raises(InputError, match=message):
        netmod.download_network(**kwargs)
    assert fake.calls == []  # nothing was sent to Overpass


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='overpass-api.de'): Max retries exceeded"
        ),
        requests.exceptions.ReadTimeout("read timed out (180 s)"),
        ResponseStatusCodeError("504 Gateway Timeout"),
    ],
)
def test_network_failure_says_the_place_and_the_offline_way_out(cache, monkeypatch, error):
    FakeOsmnx(monkeypatch, raises=error)
    before = (ox.settings.use_cache, ox.settings.cache_folder, ox.settings.requests_timeout)
    with pytest.raises(NetworkError) as info:
        netmod.download_network(place=PLACE)
    msg = str(info.value)
    assert PLACE in msg
    assert type(error).__name__ in msg
    assert "internet" in msg
    assert "--osm FILE" in msg
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__  # one clear line, no osmnx traceback
    assert (ox.settings.use_cache, ox.settings.cache_folder, ox.settings.requests_timeout) == before


def test_unknown_place_asks_to_check_the_name(cache, monkeypatch):
    error = InsufficientResponseError("Nominatim geocoder returned 0 results for query 'Zhifuu'.")
    FakeOsmnx(monkeypatch, raises=error)
    with pytest.raises(NetworkError, match=r"geocoder.*'Zhifuu'.*spelling.*--osm FILE"):
        netmod.download_network(place="Zhifuu")


def test_area_without_ways_says_so(cache, monkeypatch):
    error = InsufficientResponseError("No data elements in server response. Check query location")
    FakeOsmnx(monkeypatch, raises=error)
    with pytest.raises(NetworkError, match=r"no walkable ways for bbox.*--osm FILE"):
        netmod.download_network(bbox=(121.90, 37.90, 121.91, 37.91))  # open sea


def test_download_of_only_motorways_is_a_clear_error(cache, monkeypatch):
    g = nx.MultiDiGraph(crs="epsg:4326")
    g.add_node(1, x=A[0], y=A[1])
    g.add_node(2, x=B[0], y=B[1])
    g.add_edge(1, 2, osmid=1, highway="motorway", length=geodesic_m(A, B))
    FakeOsmnx(monkeypatch, graph=g)
    with pytest.raises(NetworkError, match="no walkable ways"):
        netmod.download_network(place=PLACE)
