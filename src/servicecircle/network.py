"""The walking network: load OSM data, apply the walk policy, project, build CSR arrays.

Sources: OSM XML (``.osm``, ``.osm.bz2``, ``.osm.gz``, read by osmnx), OSM PBF (read by
pyrosm), a saved GraphML, or Overpass (place name, polygon or bbox; osmnx with its cache).
All end in one :class:`WalkNetwork`: undirected edges in the local UTM zone (metres), whose
geometry runs from node ``u`` to node ``v`` and whose ``length_m`` is that geometry's length,
so that offsets along an edge and graph weights agree exactly.

Walk policy: :mod:`servicecircle.walkpolicy` classes every way as ``public``, ``private``
or not walkable from its ``highway``, ``foot``, ``access``, ``service`` and ``area`` tags
(OSM's access precedence: ``foot`` over ``access``; shared foot/cycle paths kept). Private
ways (gated compounds, 小区) follow ``private=``:

* ``"exclude"``: dropped;
* ``"destination"`` (default): usable only at the start of a walk from a home, not as a short
  cut between public streets (Valhalla's "private access only at the ends"). Each node where
  private ways meet public ones (a compound's gate) gets a twin on the private side; the
  private ways hang off the twin, and the gate links to its twin one way, with length 0. A
  walk from a station therefore enters a compound at a gate and never leaves it again:
  homes inside reach their own gate along the compound's paths, and no station's reach
  passes through a compound. Stations and siting candidates stand on public ways only;
* ``"include"``: walked like public ways.

``highway=steps`` ways carry ``steps="yes"`` so that presets can avoid them.

Processed networks are cached (``settings.cache_folder/networks``) keyed by the source
file's SHA-256 and the load options, so a second run skips OSM parsing.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import logging
import re
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError
from xml.sax import SAXParseException

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from servicecircle.crs import WGS84, local_utm_crs
from servicecircle.errors import InputError, NetworkError, ServiceCircleWarning
from servicecircle.fileio import atomic_path
from servicecircle.settings import settings
from servicecircle.walkpolicy import NOT_BUILT, PRIVATE_POLICIES, classify

if TYPE_CHECKING:
    import networkx as nx

    from servicecircle.snapping import SegmentIndex

__all__ = [
    "NetworkSummary",
    "WalkNetwork",
    "csr_row_positions",
    "download_network",
    "layer_private",
    "load_network",
    "min_csr",
    "network_from_edges",
    "network_from_graph",
    "private_policy",
    "sniff_network_file",
    "walkable_mask",
    "with_edges",
    "without_avoidable_steps",
]

log = logging.getLogger(__name__)

#: Bump when the cached format or the processing changes.
CACHE_VERSION = 4
_TAGS = ["highway", "access", "foot", "service", "area", "name", "sidewalk"]
#: Edge attributes kept from the OSM ways.
_EDGE_ATTRS = ("highway", "name", "osmid", "walk_access", "steps")


@dataclass(frozen=True)
class NetworkSummary:
    """Size and connectedness of a walking network (lengths in metres)."""

    nodes: int
    edges: int
    total_length_m: float
    components: int
    largest_component_share: float

    def __str__(self) -> str:
        return (
            f"{self.nodes:,} nodes, {self.edges:,} edges, {self.total_length_m / 1000:,.1f} km, "
            f"{self.components:,} component(s), largest holds "
            f"{self.largest_component_share:.1%} of the length"
        )


class WalkNetwork:
    """An undirected walking network in a projected CRS (metres), held as arrays.

    The arrays are the network; the GeoDataFrames ``nodes`` and ``edges`` are built from
    them on first use. Routing, snapping and rings work on the arrays alone, so a network of
    a million nodes does not hold millions of shapely objects unless a caller asks for them.

    Attributes
    ----------
    node_xy
        Node coordinates (m), shape (n, 2).
    edge_u, edge_v
        End node positions of each edge; geometry runs u → v.
    edge_coords, edge_offsets
        All edge vertices (k, 2) and, per edge, the position of its first vertex
        (m + 1 offsets, as in :func:`shapely.to_ragged_array`).
    edge_length_m
        Length of each edge's geometry (m), summed over its segments.
    source
        Where the network came from: file, SHA-256, OSM date, options.
    links
        One-way links of length 0, shape (2, k): ``links[0][i]`` (a gate on the public
        side) leads to ``links[1][i]`` (its twin on the private side), never back; see the
        module docstring (``private="destination"``). Empty for other networks.
    """

    def __init__(
        self,
        node_xy: NDArray[np.float64],
        edge_u: NDArray[np.integer],
        edge_v: NDArray[np.integer],
        edge_coords: NDArray[np.float64],
        edge_offsets: NDArray[np.integer],
        *,
        crs: Any,
        node_osmid: NDArray | None = None,
        edge_attrs: dict[str, NDArray] | None = None,
        source: dict[str, Any] | None = None,
        links: NDArray[np.integer] | None = None,
    ) -> None:
        crs = pyproj.CRS(crs) if crs is not None else None
        if crs is None or not crs.is_projected:
            raise ValueError("WalkNetwork needs a projected CRS (metres)")
        self._crs = crs
        self.node_xy = np.ascontiguousarray(node_xy, dtype=np.float64).reshape(-1, 2)
        n = len(self.node_xy)
        self.node_osmid = np.arange(n) if node_osmid is None else np.asarray(node_osmid)
        self.edge_u = np.asarray(edge_u, dtype=np.int64)
        self.edge_v = np.asarray(edge_v, dtype=np.int64)
        self.edge_coords = np.ascontiguousarray(edge_coords, dtype=np.float64).reshape(-1, 2)
        self.edge_offsets = np.asarray(edge_offsets, dtype=np.int64)
        m = len(self.edge_u)
        self.links = (
            np.empty((2, 0), dtype=np.int64)
            if links is None
            else np.asarray(links, dtype=np.int64).reshape(2, -1)
        )
        self.edge_attrs = {k: np.asarray(v, dtype=object) for k, v in (edge_attrs or {}).items()}
        if (
            len(self.node_osmid) != n
            or len(self.edge_v) != m
            or len(self.edge_offsets) != m + 1
            or (m and (self.edge_offsets[0] != 0 or self.edge_offsets[-1] != len(self.edge_coords)))
            or (np.diff(self.edge_offsets) < 2).any()
            or (m and (min(self.edge_u.min(), self.edge_v.min()) < 0
                       or max(self.edge_u.max(), self.edge_v.max()) >= n))
            or any(len(v) != m for v in self.edge_attrs.values())
            or (self.links.size and (self.links.min() < 0 or self.links.max() >= n))
            or not (np.isfinite(self.node_xy).all() and np.isfinite(self.edge_coords).all())
        ):  # fmt: skip
            raise ValueError("inconsistent WalkNetwork arrays")
        self.source = dict(source or {})

    def __repr__(self) -> str:
        return f"<WalkNetwork {self.summary()} in {self.crs.to_string()}>"

    @property
    def crs(self) -> pyproj.CRS:
        """The projected CRS (UTM, metres) of nodes and edges."""
        return self._crs

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    @cached_property
    def nodes(self) -> gpd.GeoDataFrame:
        """GeoDataFrame of node points indexed 0..n-1, column ``osmid`` (built on first use)."""
        return gpd.GeoDataFrame(
            {"osmid": self.node_osmid}, geometry=shapely.points(self.node_xy), crs=self.crs
        )

    @cached_property
    def edges(self) -> gpd.GeoDataFrame:
        """GeoDataFrame of LineStrings indexed 0..m-1 (built on first use): ``u``, ``v``,
        ``length_m`` (m), and ``highway``, ``name``, ``way`` where known."""
        return gpd.GeoDataFrame(
            {"u": self.edge_u, "v": self.edge_v, "length_m": self.edge_length_m,
             **self.edge_attrs},
            geometry=self.edge_lines(),
            crs=self.crs,
        )  # fmt: skip

    def edge_lines(self, edges: NDArray[np.integer] | None = None) -> NDArray[np.object_]:
        """LineStrings of the given edge positions (default all), built from the arrays."""
        if edges is None:
            return shapely.from_ragged_array(
                shapely.GeometryType.LINESTRING, self.edge_coords, (self.edge_offsets,)
            )
        edges = np.asarray(edges, dtype=np.int64)
        if edges.size == 0:
            return np.empty(0, dtype=object)
        counts = self.edge_offsets[edges + 1] - self.edge_offsets[edges]
        pos = csr_row_positions(self.edge_offsets, edges)
        return shapely.linestrings(
            self.edge_coords[pos], indices=np.repeat(np.arange(edges.size), counts)
        )

    @cached_property
    def edge_vertices(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """All edge vertices (k, 2), their distance (m) along their edge, and the index of
        each edge's first vertex (m + 1 offsets)."""
        coords, starts = self.edge_coords, self.edge_offsets
        along = np.zeros(len(coords))
        if len(coords) > 1:
            seg = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
            seg[starts[1:-1] - 1] = 0.0  # no segment between two edges
            np.cumsum(seg, out=along[1:])
            del seg
            along -= np.repeat(along[starts[:-1]], np.diff(starts))
        return coords, along, starts

    @cached_property
    def edge_ends_on_nodes(self) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Whether each edge's geometry starts exactly on its ``u`` node and ends exactly on
        its ``v`` node (the loaders build them so; hand-built arrays may not)."""
        first, last = self.edge_offsets[:-1], self.edge_offsets[1:] - 1
        on_u = (self.edge_coords[first] == self.node_xy[self.edge_u]).all(axis=1)
        on_v = (self.edge_coords[last] == self.node_xy[self.edge_v]).all(axis=1)
        return on_u, on_v

    @cached_property
    def edge_length_m(self) -> NDArray[np.float64]:
        """Length of each edge's geometry (m): its segments summed edge by edge (not read
        off :attr:`edge_vertices`, whose network-wide running sum loses ~1e-8 m)."""
        if self.n_edges == 0:
            return np.empty(0)
        d = np.diff(self.edge_coords, axis=0)
        seg = np.append(np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]), 0.0)
        seg[self.edge_offsets[1:] - 1] = 0.0  # no segment between two edges
        return np.add.reduceat(seg, self.edge_offsets[:-1])

    @property
    def edge_private(self) -> NDArray[np.bool_]:
        """Whether each edge is a private way usable only from a home (destination-only)."""
        access = self.edge_attrs.get("walk_access")
        if access is None:
            return np.zeros(self.n_edges, dtype=bool)
        return np.asarray(access == "private", dtype=bool)

    @cached_property
    def public_edges(self) -> NDArray[np.int64]:
        """Positions of the edges anyone may walk (stations and sites stand on these)."""
        return np.flatnonzero(~self.edge_private)

    @cached_property
    def graph(self) -> sparse.csr_array:
        """CSR adjacency (n × n) of walk distances (m); parallel edges keep the shortest,
        self-loops are dropped. Symmetric, but for the one-way gate :attr:`links`."""
        u, v, w = self.edge_u, self.edge_v, self.edge_length_m
        keep = u != v
        a, b = np.minimum(u, v)[keep], np.maximum(u, v)[keep]
        # a walk takes the shortest of parallel edges: deduplicate the m undirected pairs
        # first, then mirror them (half the memory of deduplicating 2m directed entries)
        half = min_csr(a, b, w[keep], self.n_nodes).tocoo()
        del a, b, keep
        rows = np.concatenate([half.row, half.col])
        cols = np.concatenate([half.col, half.row])
        data = np.concatenate([half.data, half.data])
        del half
        if self.links.size:  # gate → twin, one way, length 0 (kept as an explicit entry)
            rows = np.concatenate([rows, self.links[0]])
            cols = np.concatenate([cols, self.links[1]])
            data = np.concatenate([data, np.zeros(self.links.shape[1])])
        return min_csr(rows, cols, data, self.n_nodes)

    @cached_property
    def node_edges(self) -> sparse.csr_array:
        """Incidence (n × m) in CSR: the edges at each node, in ``indices`` per row."""
        m = self.n_edges
        rows = np.concatenate([self.edge_u, self.edge_v])
        cols = np.concatenate([np.arange(m), np.arange(m)])
        data = np.ones(rows.size, dtype=np.int8)
        return sparse.csr_array((data, (rows, cols)), shape=(self.n_nodes, m))

    @cached_property
    def edge_tree(self) -> shapely.STRtree:
        """Spatial index of edge geometries (for geometric queries; snapping uses the
        lighter :attr:`segment_index`)."""
        return shapely.STRtree(self.edge_lines())

    @cached_property
    def segment_index(self) -> SegmentIndex:
        """Index of points along every edge segment, for nearest-edge snapping."""
        from servicecircle.snapping import SegmentIndex

        return SegmentIndex.build(self)

    @cached_property
    def public_segment_index(self) -> SegmentIndex:
        """:attr:`segment_index` of the public edges only (where stations stand)."""
        if not self.edge_private.any():
            return self.segment_index
        from servicecircle.snapping import SegmentIndex

        return SegmentIndex.build(self, self.public_edges)

    @cached_property
    def node_kdtree(self) -> cKDTree:
        """k-d tree of node coordinates (for bounded per-station reach)."""
        return cKDTree(self.node_xy)

    def summary(self) -> NetworkSummary:
        """Counts, total length (m) and connected components."""
        n_comp, labels = csgraph.connected_components(self.graph, directed=False)
        comp_len = np.bincount(labels[self.edge_u], weights=self.edge_length_m, minlength=n_comp)
        total = float(self.edge_length_m.sum())
        share = float(comp_len.max() / total) if total > 0 else 1.0
        return NetworkSummary(self.n_nodes, self.n_edges, total, int(n_comp), share)

    def to_networkx(self) -> nx.Graph:
        """A networkx Graph with ``length_m`` weights (shortest parallel edge), for
        cross-checks and for users who want networkx algorithms; a DiGraph when the network
        has one-way gate :attr:`links` (private ways usable only from a home)."""
        import networkx as nx

        # one-way gate links: a directed graph (both ways stored elsewhere); else one entry
        # per undirected edge
        directed = bool(self.links.size)
        coo = (self.graph if directed else sparse.triu(self.graph)).tocoo()
        g = nx.DiGraph() if directed else nx.Graph()
        g.add_nodes_from(range(self.n_nodes))
        g.add_weighted_edges_from(
            zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True),
            weight="length_m",
        )
        return g


def min_csr(
    rows: NDArray[np.int64], cols: NDArray[np.int64], data: NDArray[np.float64], n: int
) -> sparse.csr_array:
    """n × n CSR keeping the smallest weight of duplicate (row, col) entries (scipy would sum)."""
    # one int64 key and a stable argsort are ~4x faster than a lexsort on three arrays
    key = np.asarray(rows, dtype=np.int64) * n + np.asarray(cols, dtype=np.int64)
    order = np.argsort(key, kind="stable")
    key = key[order]
    data = np.asarray(data, dtype=np.float64)[order]
    del order
    if key.size and (key[1:] == key[:-1]).any():
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        data = np.minimum.reduceat(data, first)
        key = key[first]
    # int32 is what scipy.sparse.csgraph works in
    index = np.int32 if max(n, key.size) < 2**31 - 1 else np.int64
    r, c = np.divmod(key, n)
    del key
    indptr = np.searchsorted(r, np.arange(n + 1)).astype(index)
    return sparse.csr_array((data, c.astype(index), indptr), shape=(n, n))


def csr_row_positions(indptr: NDArray[np.int64], rows: NDArray[np.int64]) -> NDArray[np.int64]:
    """Positions in ``indices``/``data`` of all entries of the given CSR rows, in order."""
    start, stop = indptr[rows], indptr[rows + 1]
    counts = stop - start
    return np.repeat(start - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(counts.sum())


# --------------------------------------------------------------------------------------------
# building


def network_from_edges(
    edges: gpd.GeoDataFrame,
    *,
    crs: pyproj.CRS | None = None,
    source: dict[str, Any] | None = None,
    node_ids: tuple[str, str] = ("u", "v"),
) -> WalkNetwork:
    """Build a :class:`WalkNetwork` from LineString edges that meet at shared end points.

    Parameters
    ----------
    edges
        LineStrings in any CRS. With ``node_ids`` columns (default ``u``, ``v``) those ids
        name the end nodes; without them, end points with equal coordinates are one node.
        Reversed duplicates (the same way in both directions) are dropped.
    crs
        Projected CRS (metres) for the network; default the UTM zone of the edges.
    """
    if edges.crs is None:
        raise ValueError("edges need a CRS")
    edges = edges[~edges.geometry.is_empty & edges.geometry.notna()]
    if crs is None:
        wgs = edges.geometry.to_crs(WGS84)
        lon, lat = shapely.get_coordinates(wgs.to_numpy()).T
        crs = local_utm_crs(lon, lat)
    geoms = edges.geometry.to_crs(crs).to_numpy()
    kinds = shapely.get_type_id(geoms)
    if (kinds != shapely.GeometryType.LINESTRING).any():
        bad = int(np.flatnonzero(kinds != shapely.GeometryType.LINESTRING)[0])
        raise ValueError(
            f"edge {edges.index[bad]!r} is a {geoms[bad].geom_type}, not a "
            "LineString; explode multi-part lines into edges first"
        )
    m = len(geoms)
    _, coords, (offsets,) = shapely.to_ragged_array(geoms, include_z=False)
    start, end = coords[offsets[:-1]], coords[offsets[1:] - 1]
    xy = np.concatenate([start, end])
    if all(c in edges.columns for c in node_ids):
        ids = np.concatenate([edges[node_ids[0]].to_numpy(), edges[node_ids[1]].to_numpy()])
    else:
        _, ids = np.unique(np.round(xy, 6), axis=0, return_inverse=True)
        ids = ids.ravel()
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    u, v = inverse[:m], inverse[m:]
    attrs = {}
    for col in _EDGE_ATTRS:
        if col in edges.columns:
            attrs[col if col != "osmid" else "way"] = edges[col].map(_flat).to_numpy()
    # one undirected edge per way piece: reversed copies normalise to the same geometry.
    # Only edges sharing both end points can be copies, so only those are compared.
    ends = np.sort(np.concatenate([start, end], axis=1).view("f8,f8").reshape(m, 2), axis=1)
    ends = pd.DataFrame(ends.view(np.float64).reshape(m, 4))
    maybe = np.flatnonzero(ends.duplicated(keep=False).to_numpy())
    keep = np.ones(m, dtype=bool)
    if maybe.size:
        key = shapely.to_wkb(shapely.normalize(geoms[maybe]))
        keep[maybe] = ~pd.Series(key).duplicated().to_numpy()
    if not keep.all():
        counts = np.diff(offsets)[keep]
        coords = coords[np.repeat(keep, np.diff(offsets))]
        offsets = np.r_[0, np.cumsum(counts)]
    # node positions are edge end points, so offsets along edges meet the nodes exactly
    return WalkNetwork(
        xy[first], u[keep], v[keep], coords, offsets, crs=crs, node_osmid=uniq,
        edge_attrs={k: a[keep] for k, a in attrs.items()}, source=source,
    )  # fmt: skip


def _flat(value: Any) -> Any:
    """osmnx merges attributes of simplified ways into lists; keep one readable string."""
    if isinstance(value, list | tuple | set):
        vals = [str(x) for x in value if x is not None and str(x) != "nan"]
        return ";".join(dict.fromkeys(vals)) if vals else None
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def private_policy(private: str = "destination", *, keep_private: bool | None = None) -> str:
    """The private-way policy (``keep_private``, the older name: True → include)."""
    if keep_private is not None:
        return "include" if keep_private else "exclude"
    if private not in PRIVATE_POLICIES:
        raise InputError(
            f"private={private!r} is not a policy for private ways; choose "
            f"{', '.join(PRIVATE_POLICIES)}"
        )
    return private


def walkable_mask(
    edges: pd.DataFrame, *, private: str = "destination", keep_private: bool | None = None
) -> NDArray[np.bool_]:
    """Which OSM ways a pedestrian may use under the walk policy (see
    :mod:`servicecircle.walkpolicy`); private ways unless ``private="exclude"``."""
    policy = private_policy(private, keep_private=keep_private)
    classes, _ = classify(edges)
    return (classes == "public") | ((classes == "private") & (policy != "exclude"))


def with_edges(net: WalkNetwork, keep: NDArray[np.bool_]) -> WalkNetwork:
    """The network with only the edges where ``keep`` is true (nodes and links stay)."""
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return net
    counts = np.diff(net.edge_offsets)[keep]
    coords = net.edge_coords[np.repeat(keep, np.diff(net.edge_offsets))]
    return WalkNetwork(
        net.node_xy,
        net.edge_u[keep],
        net.edge_v[keep],
        coords,
        np.r_[0, np.cumsum(counts)],
        crs=net.crs,
        node_osmid=net.node_osmid,
        edge_attrs={k: v[keep] for k, v in net.edge_attrs.items()},
        source=net.source,
        links=net.links,
    )


def _components(net: WalkNetwork, edges: NDArray[np.bool_]) -> NDArray[np.int32]:
    """Connected-part label of every node over the chosen edges only (undirected)."""
    rows = np.concatenate([net.edge_u[edges], net.edge_v[edges]])
    cols = np.concatenate([net.edge_v[edges], net.edge_u[edges]])
    g = sparse.csr_array(
        (np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(net.n_nodes, net.n_nodes)
    )
    return csgraph.connected_components(g, directed=False)[1]


def without_avoidable_steps(net: WalkNetwork) -> WalkNetwork:
    """The network without the steps that another way avoids (for the ``elderly`` preset).

    A public steps edge (``highway=steps``) is left out when its two ends are joined by
    public ways without steps, however long that way is; steps that are the only way
    between two parts of the network stay, so nobody is cut off (a compound's paths are no
    other way, and steps inside a compound stay).
    """
    steps = net.edge_attrs.get("steps")
    if steps is None:
        return net
    is_steps = np.asarray(steps == "yes", dtype=bool)
    if not is_steps.any():
        return net
    # another way: public ways without steps (a walk never crosses a compound)
    label = _components(net, ~is_steps & ~net.edge_private)
    other_way = label[net.edge_u] == label[net.edge_v]
    return with_edges(net, ~(is_steps & other_way & ~net.edge_private))


#: Public ways that connect to the rest only through private ones are inside the compound
#: when their connected part is shorter than this (m): a courtyard footway, not a district.
INNER_PUBLIC_M = 1_000.0


def _inner_public(net: WalkNetwork, private: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Public edges inside compounds: parts of the public network shorter than
    :data:`INNER_PUBLIC_M` that touch a private way (reached only through the compound);
    never the largest part."""
    public = ~private
    label = _components(net, public)
    length = np.bincount(
        label[net.edge_u[public]], weights=net.edge_length_m[public], minlength=label.max() + 1
    )
    touches = np.zeros(label.max() + 1, dtype=bool)
    touches[label[net.edge_u[private]]] = touches[label[net.edge_v[private]]] = True
    inner_part = touches & (length < INNER_PUBLIC_M)
    inner_part[np.argmax(length)] = False  # the street network itself is never inside
    return public & inner_part[label[net.edge_u]]


def layer_private(net: WalkNetwork) -> WalkNetwork:
    """The network with its private ways made usable only from a home (destination-only).

    Every node where private and public edges meet gets a twin: the private edges there
    end on the twin instead, and a one-way link of length 0 leads from the node to its twin
    (see the module docstring). Public ways reached only through private ones (a footway in
    a compound's courtyard, in a part shorter than :data:`INNER_PUBLIC_M`) count as the
    compound's. Nothing else changes: geometry, lengths and attributes (``walk_access``
    says ``private`` for every edge inside a compound).
    """
    private = net.edge_private
    if not private.any() or net.links.size:
        return net
    private = private | _inner_public(net, private)
    n = net.n_nodes
    on_public = np.zeros(n, dtype=bool)
    on_private = np.zeros(n, dtype=bool)
    on_public[net.edge_u[~private]] = on_public[net.edge_v[~private]] = True
    on_private[net.edge_u[private]] = on_private[net.edge_v[private]] = True
    gates = np.flatnonzero(on_public & on_private)
    twin = np.arange(n, dtype=np.int64)
    twin[gates] = n + np.arange(gates.size)
    u, v = net.edge_u.copy(), net.edge_v.copy()
    u[private], v[private] = twin[u[private]], twin[v[private]]
    attrs = dict(net.edge_attrs)
    attrs["walk_access"] = np.where(private, "private", "public").astype(object)
    return WalkNetwork(
        np.concatenate([net.node_xy, net.node_xy[gates]]),
        u,
        v,
        net.edge_coords,
        net.edge_offsets,
        crs=net.crs,
        node_osmid=np.concatenate([net.node_osmid, net.node_osmid[gates]]),
        edge_attrs=attrs,
        source=net.source,
        links=np.stack([gates, twin[gates]]),
    )


def network_from_graph(
    graph: Any,
    *,
    private: str = "destination",
    keep_private: bool | None = None,
    simplify: bool = True,
    source: dict[str, Any] | None = None,
) -> WalkNetwork:
    """Build a :class:`WalkNetwork` from an unprojected osmnx MultiDiGraph (WGS84), with
    the walk policy applied (``private``: see the module docstring)."""
    import osmnx as ox

    policy = private_policy(private, keep_private=keep_private)

    where = f"{source['file']}: " if source and source.get("file") else ""
    if graph.number_of_edges() == 0:
        raise NetworkError(
            f"{where}the OSM data holds no ways (streets); check that the extract covers the "
            "area and was exported with its ways"
        )
    nodes, edges = ox.convert.graph_to_gdfs(graph, fill_edge_geometry=True)
    classes, steps = classify(edges)
    keep = (classes == "public") | ((classes == "private") & (policy != "exclude"))
    if not keep.any():
        way = edges["osmid"].map(_flat) if "osmid" in edges.columns else pd.Series(edges.index)
        highway = edges["highway"].map(_flat) if "highway" in edges.columns else None
        per_way = pd.DataFrame({"way": way.to_numpy(), "highway": highway})
        per_way = per_way.drop_duplicates("way")
        ways = len(per_way)
        kinds = per_way["highway"].value_counts() if highway is not None else None
        seen = (
            f" (highway: {', '.join(f'{k} {v}' for k, v in kinds.head(5).items())})"
            if kinds is not None and len(kinds)
            else " (none has a highway tag)"
        )
        raise NetworkError(
            f"{where}the OSM data holds no walkable ways: none of its {ways:,} way(s) is one a "
            f"pedestrian may use{seen}; "
            "motorways, cycleways without foot access, construction, foot=no, access=no"
            + (
                " and access=private (private='destination' keeps those)"
                if policy == "exclude"
                else ""
            )
            + " are left out. Use an extract with streets or footpaths"
        )
    # the class travels with the edge: simplification never merges across a change
    walk_access = np.where((classes == "private") & (policy == "destination"), "private", "public")
    edges = edges.assign(walk_access=walk_access, steps=np.where(steps, "yes", "no"))[keep]
    used = np.unique(
        np.concatenate([edges.index.get_level_values(0), edges.index.get_level_values(1)])
    )
    nodes = nodes.loc[used]
    g = ox.convert.graph_from_gdfs(nodes, edges, graph_attrs=graph.graph)
    if simplify and not g.graph.get("simplified"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = ox.simplification.simplify_graph(g, edge_attrs_differ=["walk_access", "steps"])
    _, edges = ox.convert.graph_to_gdfs(g, fill_edge_geometry=True)
    edges = edges.reset_index()
    net = network_from_edges(edges, source=source)
    return layer_private(net) if policy == "destination" else net


# --------------------------------------------------------------------------------------------
# loading (file, cache, Overpass)


def load_network(
    source: str | Path,
    *,
    private: str = "destination",
    keep_private: bool | None = None,
    simplify: bool = True,
    use_cache: bool | None = None,
) -> WalkNetwork:
    """Load a walking network from an OSM file (XML, PBF) or a GraphML.

    Parameters
    ----------
    source
        ``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.xml``, ``.osm.pbf``/``.pbf`` or ``.graphml``.
    private
        Private ways (paths inside gated compounds, 小区): ``"destination"`` (default) usable
        only from a home to the compound's gate, ``"exclude"`` dropped, ``"include"`` walked
        like public ways.
    keep_private
        Older name: ``True`` is ``private="include"``, ``False`` is ``"exclude"``.
    simplify
        Merge chains of degree-2 nodes into single edges (distances are unchanged).
    use_cache
        Read/write the processed-network cache; default ``settings.use_cache``.
    """
    path = Path(source)
    if path.is_dir():
        raise NetworkError(f"{path}: is a folder; give the network file inside it")
    if not path.is_file():
        raise NetworkError(f"{path}: network file not found; check the path")
    name = path.name.lower()
    kinds = {
        ".osm": "xml",
        ".osm.bz2": "xml",
        ".osm.gz": "xml",
        ".xml": "xml",
        ".osm.xml": "xml",
        ".pbf": "pbf",
        ".osm.pbf": "pbf",
        ".graphml": "graphml",
    }
    kind = next((k for suffix, k in kinds.items() if name.endswith(suffix)), None)
    if kind is None:
        raise NetworkError(
            f"{path.name}: unknown network file type; use .osm, .osm.bz2, .osm.gz, .osm.pbf or "
            ".graphml (or download_network(place=...))"
        )
    use_cache = settings.use_cache if use_cache is None else use_cache
    digest = _sha256(path)
    policy = private_policy(private, keep_private=keep_private)
    options = {"private": policy, "simplify": simplify, "version": CACHE_VERSION}
    key = hashlib.sha256(json.dumps([digest, options], sort_keys=True).encode()).hexdigest()[:24]
    cache_file = Path(settings.cache_folder) / "networks" / f"{key}.npz"
    if use_cache and cache_file.is_file():
        try:
            net = _read_cache(cache_file)
            log.info("network from cache %s", cache_file)
            # the same content under another name: report the file that was asked for
            net.source.update(file=path.name, path=str(path))
            return net
        except (OSError, ValueError, KeyError) as exc:  # a broken cache is rebuilt, not fatal
            log.warning("ignoring unreadable network cache %s: %s", cache_file, exc)
    head = sniff_network_file(path, kind)
    meta = {
        "file": path.name,
        "path": str(path),
        "sha256": digest,
        "format": kind,
        "osm_date": _osm_date_of(head) if kind == "xml" else None,
        **options,
    }
    if kind == "xml":
        graph = _graph_from_xml(path)
    elif kind == "pbf":
        graph = _graph_from_pbf(path)
    else:
        graph = _graph_from_graphml(path)
    net = network_from_graph(graph, private=policy, simplify=simplify, source=meta)
    check_connectivity(net)
    if use_cache:
        _write_cache(net, cache_file)
    return net


# --------------------------------------------------------------------------------------------
# reading network files: sniffing the head, and damaged files as NetworkError

#: Bytes read (after decompression) to tell what a network file holds.
SNIFF_BYTES = 4096
#: What a damaged or cut-off download raises while it is decompressed or parsed.
_DAMAGED = (EOFError, OSError, zlib.error, UnicodeDecodeError, ExpatError, SAXParseException,
            ParseError)  # fmt: skip


def _damaged(path: Path, what: str, exc: BaseException | None = None) -> NetworkError:
    detail = f" ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return NetworkError(
        f"{path.name}: could not be read as {what}: the file looks truncated or corrupt"
        f"{detail if exc is not None else ''}; download or export it again"
    )


def _opener(path: Path) -> Any:
    """``open`` for the file, through bz2 or gzip when its name says it is compressed."""
    return {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix.lower(), open)


def _read_head(path: Path, what: str, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of the file's content (decompressed), or a NetworkError."""
    suffix = path.suffix.lower()
    magic = {".bz2": (b"BZh", "bzip2"), ".gz": (b"\x1f\x8b", "gzip")}.get(suffix)
    try:
        with path.open("rb") as f:
            raw = f.read(max(size, 16))
    except OSError as exc:
        raise NetworkError(f"{path.name}: cannot be read ({exc.strerror or exc}); check the "
                           "file's permissions") from None  # fmt: skip
    if not raw:
        raise NetworkError(
            f"{path.name}: the file is empty (0 bytes); the download or copy did not finish: "
            "download or export it again"
        )
    if magic is not None and not raw.startswith(magic[0]):
        plain = path.name[: -len(suffix)]
        kind = _describe_head(raw)
        if kind == "OSM XML":
            raise NetworkError(
                f"{path.name}: has a {suffix} name but is not {magic[1]}-compressed: it holds "
                f"plain OSM XML; rename it to {plain}"
            )
        raise NetworkError(
            f"{path.name}: is not a {magic[1]} file (it starts like {kind}); the file is "
            "corrupt or misnamed: download it again"
        )
    if magic is None:
        return raw[:size]
    try:
        with _opener(path)(path, "rb") as f:
            return f.read(size)
    except _DAMAGED as exc:
        raise _damaged(path, what, exc) from None


def _root_tag(text: str) -> str | None:
    """The name of the first element of an XML text (after declarations and comments)."""
    body = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", text, flags=re.S | re.I)
    m = re.match(r"\s*<([A-Za-z_][\w.:-]*)", body)
    return m.group(1) if m else None


def _describe_head(head: bytes) -> str:
    """What a file's first bytes look like, in words ('an HTML page', 'OSM XML', ...)."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    low = text[:1024].lower()
    if not text:
        return "an empty text"
    if low.startswith("<!doctype html") or "<html" in low[:512]:
        return "an HTML page"
    if head[4:64].find(b"OSMHeader") >= 0 or head[4:64].find(b"OSMData") >= 0:
        return "OSM PBF (binary)"
    if head.startswith(b"BZh"):
        return "bzip2-compressed data"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if text.startswith(("{", "[")):
        return "JSON"
    if text.startswith("<"):
        root = _root_tag(text)
        if root == "osm":
            return "OSM XML"
        if root == "graphml":
            return "GraphML"
        return f"XML with root element <{root}>" if root else "XML"
    if b"\x00" in head[:512]:
        return "binary data"
    first = text.splitlines()[0][:40] if text.splitlines() else text[:40]
    return f"text ({first!r})"


def sniff_network_file(path: str | Path, kind: str) -> bytes:
    """Check that a network file holds what its name says before parsing it.

    ``kind`` is ``"xml"``, ``"pbf"`` or ``"graphml"``. Reads the first :data:`SNIFF_BYTES`
    bytes (decompressed for ``.bz2``/``.gz``) and raises :class:`NetworkError` naming the
    file when it is empty, cut off, or something else: an HTML page saved under an
    ``.osm`` name (an error page of a download), JSON, PBF named ``.osm``, XML that is not
    OSM. Returns the head.
    """
    path = Path(path)
    what = {"xml": "OSM XML", "pbf": "OSM PBF", "graphml": "GraphML"}[kind]
    head = _read_head(path, what)
    described = _describe_head(head)
    if kind == "pbf":
        if described == "OSM PBF (binary)":
            return head
        hint = {
            "OSM XML": "it holds OSM XML: rename it to .osm",
            "an HTML page": "it starts like an HTML page, probably an error page saved "
            "instead of the download",
        }.get(described, f"it starts like {described}")
        raise NetworkError(f"{path.name}: is not OSM PBF ({hint}); download the extract again")
    if described == what:
        return head
    if described == "an empty text":
        raise NetworkError(
            f"{path.name}: holds no data (only blank space); download or export it again"
        )
    fixes = {
        "an HTML page": "probably an error or login page saved instead of the download; "
        "download the extract again (e.g. from download.geofabrik.de or Overpass with "
        "[out:xml])",
        "JSON": "Overpass answers JSON unless asked for XML: download it again with [out:xml]",
        "OSM PBF (binary)": "it is OSM PBF: rename it to .osm.pbf",
        "OSM XML": "it is OSM XML: rename it to .osm",
        "GraphML": "it is GraphML: rename it to .graphml",
        "bzip2-compressed data": "it is bzip2-compressed: rename it to .osm.bz2",
        "gzip-compressed data": "it is gzip-compressed: rename it to .osm.gz",
    }
    fix = fixes.get(described, "check that this is the file you meant and download it again")
    raise NetworkError(f"{path.name}: is not {what} (it starts like {described}); {fix}")


def check_connectivity(net: WalkNetwork, *, min_share: float = 0.95) -> NetworkSummary:
    """Warn when the largest connected component holds less than ``min_share`` of the length."""
    summary = net.summary()
    if summary.largest_component_share < min_share:
        warnings.warn(
            f"walking network {net.source.get('file', '')}: the largest connected part holds "
            f"only {summary.largest_component_share:.1%} of the street length "
            f"({summary.components:,} parts); stations on small parts reach little. Check the "
            "extract's edges, or private='include' if compounds' paths connect the streets",
            ServiceCircleWarning,
            stacklevel=2,
        )
    return summary


@contextlib.contextmanager
def _osmnx_tags() -> Iterator[None]:
    """Make osmnx keep the tags the walk policy reads, for the duration of one load."""
    import osmnx as ox

    old = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = list(dict.fromkeys(old + _TAGS))
    try:
        yield
    finally:
        ox.settings.useful_tags_way = old


def _graph_from_xml(path: Path) -> Any:
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    with _osmnx_tags(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ox.graph.graph_from_xml(
                path, bidirectional=True, simplify=False, retain_all=True
            )
        except InsufficientResponseError:
            raise NetworkError(
                f"{path.name}: is OSM XML but holds no ways (streets); check that the extract "
                "covers the area and was exported with its ways"
            ) from None
        except _DAMAGED as exc:
            raise _damaged(path, "OSM XML", exc) from None


def _graph_from_pbf(path: Path) -> Any:
    import osmnx as ox
    import pyrosm

    try:
        osm = pyrosm.OSM(str(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nodes, edges = osm.get_network(network_type="all", nodes=True)
    except Exception as exc:  # pyrosm and protobuf raise many kinds for a damaged file
        raise _damaged(path, "OSM PBF", exc) from exc
    if edges is None or len(edges) == 0:
        raise NetworkError(
            f"{path.name}: is OSM PBF but holds no ways (streets); check that the extract "
            "covers the area and was exported with its ways"
        )
    edges = edges.rename(columns={"id": "osmid"})
    nodes = nodes.rename(columns={"id": "osmid"}).set_index("osmid")
    nodes["x"], nodes["y"] = nodes["lon"].astype(float), nodes["lat"].astype(float)
    nodes = gpd.GeoDataFrame(nodes[["x", "y"]], geometry=nodes.geometry, crs=WGS84)
    cols = [c for c in [*_TAGS, "osmid"] if c in edges.columns]
    fwd = edges[["u", "v", *cols, "geometry"]].copy()
    rev = fwd.copy()
    rev["u"], rev["v"] = fwd["v"].to_numpy(), fwd["u"].to_numpy()
    rev["geometry"] = shapely.reverse(fwd.geometry.to_numpy())
    both = pd.concat([fwd, rev], ignore_index=True)
    both["key"] = both.groupby(["u", "v"]).cumcount()
    both = gpd.GeoDataFrame(both, geometry="geometry", crs=WGS84).set_index(["u", "v", "key"])
    both["length"] = 0.0  # osmnx wants it; our lengths come from projected geometry
    both["osmid"] = both.get("osmid", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ox.convert.graph_from_gdfs(nodes, both, graph_attrs={"crs": "epsg:4326"})


def _graph_from_graphml(path: Path) -> Any:
    """An osmnx graph from a GraphML file, checked for what the network needs.

    osmnx's own GraphML (every value stored as text) loads through
    :func:`osmnx.io.load_graphml`. Other GraphML (e.g. ``networkx.write_graphml``, which
    stores typed numbers) is accepted when it holds what a street network needs: a ``crs``
    graph attribute and numeric node ``x``/``y``; what is missing is named.
    """
    import networkx as nx
    import osmnx as ox

    try:
        raw = nx.read_graphml(path, node_type=str, force_multigraph=True)
    except (nx.NetworkXError, KeyError, ValueError, *_DAMAGED) as exc:
        raise _damaged(path, "GraphML", exc) from None
    missing = _graphml_missing(raw)
    if missing:
        raise NetworkError(
            f"{path.name}: is GraphML but not a street network osmnx can use: "
            + "; ".join(missing)
            + ". Save the graph with osmnx.save_graphml (from osmnx.graph_from_*), or load "
            "the OSM file (.osm, .osm.pbf) itself"
        )
    # osmnx's loader converts text values; typed values go through it as text too
    for _, data in raw.nodes(data=True):
        for k, v in data.items():
            data[k] = str(v)
    for *_, data in raw.edges(keys=True, data=True):
        for k, v in data.items():
            data[k] = str(v)
    raw.graph = {k: str(v) for k, v in raw.graph.items() if not isinstance(v, dict)}
    text = "\n".join(nx.generate_graphml(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ox.io.load_graphml(graphml_str=text)
        except (ValueError, TypeError, KeyError, AttributeError, SyntaxError) as exc:
            raise NetworkError(
                f"{path.name}: is GraphML but osmnx cannot read its attributes "
                f"({type(exc).__name__}: {exc}); save the graph with osmnx.save_graphml"
            ) from exc


def _graphml_missing(graph: Any) -> list[str]:
    """What a GraphML graph lacks to be a street network (empty when nothing)."""
    out = []
    if "crs" not in graph.graph:
        out.append("the graph has no 'crs' attribute (e.g. 'epsg:4326')")
    n = graph.number_of_nodes()
    if n == 0:
        return [*out, "it has no nodes"]

    def number(value: Any) -> bool:
        try:
            return bool(np.isfinite(float(value)))
        except (TypeError, ValueError):
            return False

    bad = [str(k) for k, d in graph.nodes(data=True)
           if not (number(d.get("x")) and number(d.get("y")))]  # fmt: skip
    if bad:
        out.append(
            f"{len(bad):,} of {n:,} nodes have no numeric 'x'/'y' coordinates "
            f"(first: node {bad[0]!r})"
        )
    if graph.number_of_edges() == 0:
        out.append("it has no edges")
    elif not any("highway" in d for *_, d in graph.edges(keys=True, data=True)):
        out.append("no edge has a 'highway' attribute, so no edge is known to be walkable")
    return out


def download_network(
    *,
    place: str | None = None,
    polygon: shapely.Polygon | shapely.MultiPolygon | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    private: str = "destination",
    keep_private: bool | None = None,
    simplify: bool = True,
) -> WalkNetwork:
    """Download a walking network from OpenStreetMap (Overpass) through osmnx and its cache.

    Give exactly one of ``place`` (a geocodable name such as ``"芝罘区, 烟台市, 山东省"``),
    ``polygon`` (WGS84 degrees) or ``bbox`` (west, south, east, north in degrees, the
    osmnx 2 order). The way filter is :func:`overpass_filter`. Responses are cached under
    ``settings.cache_folder/overpass`` (when ``settings.use_cache``); a repeated call reads
    the cache. Bad arguments raise :class:`InputError`; a failed download raises
    :class:`NetworkError` naming the area and the way out (offline: an OSM file).
    """
    import osmnx as ox

    what = _download_area(place, polygon, bbox)
    policy = private_policy(private, keep_private=keep_private)
    custom_filter = overpass_filter(private=policy)
    old = (ox.settings.use_cache, ox.settings.cache_folder, ox.settings.requests_timeout)
    ox.settings.use_cache = settings.use_cache
    ox.settings.cache_folder = str(Path(settings.cache_folder) / "overpass")
    ox.settings.requests_timeout = settings.overpass_timeout_s
    try:
        with _osmnx_tags(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # network_type="walk" makes osmnx keep every way in both directions
            kw = {
                "network_type": "walk",
                "custom_filter": custom_filter,
                "simplify": False,
                "retain_all": True,
            }
            if place is not None:
                graph = ox.graph.graph_from_place(place, **kw)
            elif polygon is not None:
                graph = ox.graph.graph_from_polygon(polygon, **kw)
            else:
                graph = ox.graph.graph_from_bbox(tuple(float(x) for x in bbox), **kw)
    except Exception as exc:  # requests/osmnx raise many kinds; all mean "no data came"
        raise NetworkError(_download_failure(what, exc)) from None
    finally:
        ox.settings.use_cache, ox.settings.cache_folder, ox.settings.requests_timeout = old
    meta = {
        "overpass": place if place is not None else what,
        "private": policy,
        "simplify": simplify,
        "osm_date": None,
        "format": "overpass",
    }
    return network_from_graph(graph, private=policy, simplify=simplify, source=meta)


def _download_area(
    place: str | None,
    polygon: shapely.Polygon | shapely.MultiPolygon | None,
    bbox: tuple[float, float, float, float] | None,
) -> str:
    """Check the area arguments of :func:`download_network`; returns a readable name."""
    given = [name for name, x in (("place", place), ("polygon", polygon), ("bbox", bbox))
             if x is not None]  # fmt: skip
    if len(given) != 1:
        got = f"got {' and '.join(given)}" if given else "got none"
        raise InputError(
            f"download_network: give exactly one of place, polygon or bbox ({got}), e.g. "
            "place='芝罘区, 烟台市, 山东省'"
        )
    if place is not None:
        if not isinstance(place, str) or not place.strip():
            raise InputError(f"download_network: place must be a non-empty name, got {place!r}")
        return repr(place)
    if polygon is not None:
        if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon) or polygon.is_empty:
            raise InputError(
                "download_network: polygon must be a shapely Polygon or MultiPolygon in WGS84, "
                f"got {type(polygon).__name__}"
            )
        w, s, e, n = polygon.bounds
        if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
            raise InputError(
                f"download_network: polygon bounds {polygon.bounds} are not WGS84 degrees; "
                "reproject it to EPSG:4326 (longitude, latitude) first"
            )
        return f"polygon {tuple(round(x, 5) for x in polygon.bounds)}"
    order = "bbox must be (west, south, east, north) in WGS84 degrees"
    try:
        w, s, e, n = (float(x) for x in bbox)
    except (TypeError, ValueError):
        raise InputError(f"download_network: {order}, got {bbox!r}") from None
    if not all(np.isfinite([w, s, e, n])):
        raise InputError(f"download_network: {order}, got {bbox!r}")

    def valid(b: tuple[float, float, float, float]) -> bool:
        w, s, e, n = b
        return -180 <= w < e <= 180 and -90 <= s < n <= 90

    if not valid((w, s, e, n)):
        # the two usual slips: latitude first, and osmnx 1's (north, south, east, west)
        for slip, fixed in (
            ("latitude first", (s, w, n, e)),
            ("in osmnx 1's order (north, south, east, west)", (n, s, e, w)),
        ):
            if valid(fixed):
                raise InputError(
                    f"download_network: {order}; {tuple(bbox)!r} looks {slip}. "
                    f"Did you mean {fixed!r}?"
                )
        raise InputError(
            f"download_network: {order}, with west < east and south < north; got {bbox!r}"
        )
    return f"bbox (west, south, east, north) {(w, s, e, n)!r}"


def _download_failure(what: str, exc: Exception) -> str:
    """A NetworkError message for a failed download: what failed, why, and the way out."""
    detail = f"{type(exc).__name__}: {exc}".rstrip(".")
    offline = "offline, pass an OSM file instead with --osm FILE (.osm, .osm.bz2, .osm.pbf)"
    text = str(exc)
    if "Nominatim" in text or "geocod" in text.lower():
        return (
            f"OpenStreetMap's geocoder (Nominatim) found no area for {what} ({detail}). "
            "Check the spelling, add the city and province (e.g. '芝罘区, 烟台市, 山东省'), or "
            f"give a polygon or bbox; {offline}"
        )
    if "No data elements" in text:
        return (
            f"OpenStreetMap returned no walkable ways for {what} ({detail}). Check that the "
            f"area covers streets; {offline}"
        )
    return (
        f"could not download the walking network for {what} from OpenStreetMap: "
        f"{detail}. Check the internet connection and try again (finished downloads are "
        f"cached in {Path(settings.cache_folder) / 'overpass'}); {offline}"
    )


#: ``highway`` values the Overpass filter leaves out: not ways on the ground, whatever the
#: tags (the rest, motorways included, may be opened by ``foot=yes``).
_NEVER_WALKED = "|".join(sorted(NOT_BUILT))


def overpass_filter(*, private: str = "destination", keep_private: bool | None = None) -> str:
    """The Overpass way filter of the walk policy: every way the policy may keep.

    Overpass cannot express "``foot`` overrides ``access``" in one filter, so it leaves out
    only what is never walked (not built, area outlines, ``foot=no``) and
    downloads go through :mod:`servicecircle.walkpolicy` again. Overpass matches
    case-sensitively; the policy, blind to case, may drop a ``foot=No`` way it passed.
    ``private`` does not change the filter: private ways with ``foot=yes`` are public.
    """
    private_policy(private, keep_private=keep_private)  # checked, the same filter for every policy
    return f'["highway"]["area"!~"^yes$"]["highway"!~"^({_NEVER_WALKED})$"]["foot"!~"^no$"]'


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise NetworkError(
            f"{path.name}: cannot be read ({exc.strerror or exc}); check the file's permissions"
        ) from None
    return h.hexdigest()


def _osm_date_of(head: bytes) -> str | None:
    """The Overpass snapshot date (``osm_base``) in the head of an OSM XML file."""
    m = re.search(r'osm_base="([^"]+)"', head.decode("utf-8", errors="replace"))
    return m.group(1) if m else None


def _write_cache(net: WalkNetwork, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        # OSM ids stay integers; other ids (generated, GraphML strings) are kept as text
        "node_osmid": net.node_osmid
        if net.node_osmid.dtype.kind in "iu"
        else net.node_osmid.astype(str),
        "node_xy": net.node_xy,
        "u": net.edge_u,
        "v": net.edge_v,
        "coords": net.edge_coords,
        "offsets": net.edge_offsets,
        "meta": np.array(json.dumps({"crs": net.crs.to_wkt(), "source": net.source})),
        "links": net.links,
    }
    for col, values in net.edge_attrs.items():
        arrays[f"attr_{col}"] = pd.Series(values).fillna("").astype(str).to_numpy(dtype=str)
    try:
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(f, **arrays)
    except OSError as exc:  # a cache we cannot write only costs time
        log.warning("could not write network cache %s: %s", path, exc)


def _ids(values: NDArray) -> NDArray:
    return values if values.dtype.kind in "iu" else values.astype(object)


def _read_cache(path: Path) -> WalkNetwork:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        attrs = {}
        for key in z.files:
            if key.startswith("attr_"):
                values = z[key].astype(object)
                values[values == ""] = None
                attrs[key.removeprefix("attr_")] = values
        return WalkNetwork(
            z["node_xy"], z["u"], z["v"], z["coords"], z["offsets"],
            crs=pyproj.CRS.from_wkt(meta["crs"]), node_osmid=_ids(z["node_osmid"]),
            edge_attrs=attrs, source={**meta["source"], "cached": str(path)},
            links=z["links"] if "links" in z.files else None,
        )  # fmt: skip
