"""Walking network: walk policy, building from lines, OSM loaders, cache, summary."""

from __future__ import annotations

import itertools
import re
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from tests.netfixtures import lines_network

from servicecircle import network as netmod
from servicecircle.errors import InputError, NetworkError, ServiceCircleWarning
from servicecircle.sample_data import helsinki_pbf


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(netmod.settings, "cache_folder", tmp_path / "cache")
    return tmp_path / "cache"


def test_walk_policy_follows_osmnx_walk_filter_with_documented_changes():
    edges = pd.DataFrame(
        {
            "highway": ["footway", "motorway", "cycleway", "residential", "service", "steps",
                        "construction", "primary", "path", "residential"],
            "access": [None, None, None, "private", None, None, None, None, None, None],
            "foot": [None, None, None, None, None, None, None, "no", None, None],
            "service": [None, None, None, None, "private", None, None, None, None, None],
            "sidewalk": [None] * 9 + ["separate"],
        }
    )  # fmt: skip
    expected = [True, False, False, False, False, True, False, False, True, True]
    assert netmod.walkable_mask(edges, private="exclude").tolist() == expected
    assert netmod.walkable_mask(edges, keep_private=False).tolist() == expected
    # private ways (rows 3 and 4) are kept for walks from a home (default) or always
    for policy in ("destination", "include"):
        kept = netmod.walkable_mask(edges, private=policy)
        assert kept.tolist() == [e or i in (3, 4) for i, e in enumerate(expected)]
    with pytest.raises(InputError, match="private='sometimes'"):
        netmod.walkable_mask(edges, private="sometimes")


def test_lines_become_nodes_at_shared_ends_and_lengths_are_geometric():
    net = lines_network([(0, 0), (100, 0)], [(100, 0), (100, 50), (130, 90)], [(100, 0), (0, 0)])
    # the third line reverses the first: one undirected edge remains
    assert net.n_nodes == 3
    assert len(net.edges) == 2
    assert sorted(net.edge_length_m.round(6)) == [100.0, 100.0]
    s = net.summary()
    assert s.components == 1
    assert s.total_length_m == pytest.approx(200.0)


def test_parallel_edges_keep_the_shortest_weight():
    net = lines_network([(0, 0), (100, 0)], [(0, 0), (50, 40), (100, 0)])
    assert len(net.edges) == 2
    g = net.graph
    assert g[[0], [1]][0] == pytest.approx(100.0)
    assert g[[1], [0]][0] == pytest.approx(100.0)


def test_connectivity_warning_names_the_share():
    net = lines_network([(0, 0), (100, 0)], [(500, 500), (500, 600)])
    with pytest.warns(ServiceCircleWarning, match=r"largest connected part holds only 50\.0%"):
        netmod.check_connectivity(net)


@pytest.fixture(scope="module")
def helsinki():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        return netmod.load_network(helsinki_pbf(), use_cache=False)


def test_helsinki_pbf_is_a_projected_walking_network(helsinki):
    assert helsinki.crs.to_epsg() == 32635
    s = helsinki.summary()
    assert s.nodes > 1000
    assert s.edges > 1000
    assert s.largest_component_share > 0.9
    assert "footway" in set(helsinki.edges["highway"])
    # geometry runs from u to v: first/last vertex equal the node positions
    geoms = helsinki.edges.geometry.to_numpy()
    first = shapely.get_coordinates(shapely.get_point(geoms, 0))
    last = shapely.get_coordinates(shapely.get_point(geoms, -1))
    np.testing.assert_allclose(first, helsinki.node_xy[helsinki.edge_u], atol=1e-6)
    np.testing.assert_allclose(last, helsinki.node_xy[helsinki.edge_v], atol=1e-6)


def test_cache_round_trip_gives_the_same_network(cache):
    src = helsinki_pbf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        first = netmod.load_network(src)
        second = netmod.load_network(src)
    assert "cached" in second.source
    assert "cached" not in first.source
    assert list(cache.glob("networks/*.npz"))
    np.testing.assert_array_equal(first.edge_u, second.edge_u)
    np.testing.assert_array_equal(first.edge_v, second.edge_v)
    np.testing.assert_array_equal(first.node_xy, second.node_xy)
    np.testing.assert_array_equal(first.node_osmid, second.node_osmid)
    assert first.node_osmid.dtype == second.node_osmid.dtype
    assert set(first.edge_attrs) == set(second.edge_attrs) >= {"highway", "name"}
    for col in first.edge_attrs:
        a = pd.Series(first.edge_attrs[col]).fillna("")
        b = pd.Series(second.edge_attrs[col]).fillna("")
        assert (a == b).all(), col
    np.testing.assert_allclose(first.edge_length_m, second.edge_length_m)
    assert shapely.equals_exact(
        first.edges.geometry.to_numpy(), second.edges.geometry.to_numpy(), tolerance=1e-9
    ).all()
    assert second.crs == first.crs


def test_osm_xml_is_filtered_to_highways(shared_data, cache):
    # the Nanjing extract holds buildings too; only highway ways may become edges
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        net = netmod.load_network(shared_data / "nanjing" / "nanjing_xuanwu_osm_bbox.osm.bz2")
    assert net.edges["highway"].notna().all()
    assert net.crs.to_epsg() == 32650
    assert net.source["osm_date"] == "2021-06-12T07:41:41Z"


def test_shanghai_unsimplified_counts(shared_data, cache):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        net = netmod.load_network(
            shared_data / "shanghai" / "shanghai_center_drive.osm.bz2", simplify=False
        )
    # README: 21,786 raw nodes; ways of non-walk classes and their lone nodes are dropped
    assert 20_000 < net.n_nodes <= 21_786
    # total length is independent of simplification, and equals networkx's sum of weights
    g = nx.Graph()
    for u, v, w in zip(net.edge_u, net.edge_v, net.edge_length_m, strict=True):
        if u != v and (not g.has_edge(u, v) or g[u][v]["w"] > w):
            g.add_edge(int(u), int(v), w=float(w))
    assert nx.number_connected_components(g) == net.summary().components


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("roads.shp", b"x", "unknown network file type"),
        ("broken.osm", b"<osm><way", "not valid OSM XML|could not be read"),
    ],
)
def test_bad_network_files_are_clear_errors(tmp_path, cache, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NetworkError, match=message):
        netmod.load_network(path)


def test_missing_network_file(tmp_path):
    with pytest.raises(NetworkError, match="network file not found"):
        netmod.load_network(tmp_path / "nope.osm")


def test_network_from_edges_takes_3d_lines_and_refuses_multilines():
    lines = [
        shapely.LineString([(0, 0, 5), (100, 0, 6)]),
        shapely.LineString([(100, 0), (100, 50)]),
    ]
    net = netmod.network_from_edges(gpd.GeoDataFrame(geometry=lines, crs=32651), crs=32651)
    assert net.edge_length_m == pytest.approx([100.0, 50.0])  # lengths on the map, not 3D
    assert net.n_nodes == 3
    multi = shapely.MultiLineString([[(0, 0), (1, 0)], [(2, 0), (3, 0)]])
    with pytest.raises(ValueError, match="MultiLineString"):
        netmod.network_from_edges(gpd.GeoDataFrame(geometry=[multi], crs=32651), crs=32651)


def test_network_from_edges_needs_a_crs():
    with pytest.raises(ValueError, match="CRS"):
        netmod.network_from_edges(gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])]))


def _overpass_keeps(flt: str, tags: dict[str, str]) -> bool:
    """Evaluate an Overpass tag filter the way Overpass does: ``[k]`` needs the key,
    ``[k!~re]`` passes when the key is absent or its value does not match ``re``, ``,i``
    makes the match blind to case."""
    for key, op, pattern, flag in re.findall(
        r'\["([^"]+)"(?:(!~|~)"([^"]*)"(,i)?)?\]', flt
    ):  # fmt: skip
        value = tags.get(key)
        found = value is not None and bool(
            op and re.search(pattern, value, flags=re.IGNORECASE if flag else 0)
        )
        ok = value is not None if op == "" else (not found if op == "!~" else found)
        if not ok:
            return False
    return True


@pytest.mark.parametrize("private", ["exclude", "destination", "include"])
def test_overpass_filter_never_drops_a_way_the_policy_keeps(private):
    values = {
        "highway": ["footway", "Residential", "cycleway", "motorway_link", "no", "unknown",
                    "Construction", "path", "service", "steps", "pedestrian", "NO", "proposed"],
        "foot": [None, "no", "No", "yes", "designated", "unknown", "private"],
        "access": [None, "private", "Private", "no_private", "yes", "no"],
        "area": [None, "yes", "YES", "yesno", "no"],
        "service": [None, "private", "driveway"],
    }  # fmt: skip
    rows = [
        {k: v for k, v in zip(values, combo, strict=True) if v is not None}
        for combo in itertools.product(*values.values())
    ]
    frame = pd.DataFrame(rows)
    policy = netmod.walkable_mask(frame, private=private)
    flt = netmod.overpass_filter(private=private)
    overpass = np.array([_overpass_keeps(flt, r) for r in rows])
    assert policy.any()
    assert not policy.all()
    # Overpass never drops a way the policy keeps (downloads are filtered by it again) ...
    assert not (policy & ~overpass).any()
    # ... and leaves out what is never walked: not built, area outlines, foot=no
    never = np.array(
        [r["highway"] in ("no", "proposed") or r.get("area") == "yes" or r.get("foot") == "no"
         for r in rows]
    )  # fmt: skip
    assert not (overpass & never).any()
