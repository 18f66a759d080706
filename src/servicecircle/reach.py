"""Walk distances from stations: one multi-source run, per-station bounded runs, points.

Stations sit on edges, not nodes. Each station becomes a virtual node with one-way links
to both ends of its edge, weighted by its leg plus the distance along the edge; being
one-way, no walk can pass *through* a station as a shortcut. One
``scipy.sparse.csgraph.dijkstra(min_only=True)`` run from all virtual nodes then gives every
node its distance (m) to the nearest station and which station that is. A point on the same
edge as a station is also measured directly along the edge.

Per-station reach (for rings and siting) never builds a dense stations × nodes matrix: each
station runs on the sub-network inside a Euclidean ball of radius ``limit_m`` around it,
which holds every walk of at most ``limit_m`` (a walk never ends farther than its length),
so the bounded distances are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

from servicecircle.network import csr_row_positions, min_csr

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = ["NodeReach", "StationReach", "nearest_station", "point_distances", "station_reach"]


@dataclass(frozen=True)
class NodeReach:
    """Distance (m) from every node to its nearest station, and that station's position.

    ``dist_m`` is ``inf`` and ``station`` is ``-1`` where no station is within the limit.
    """

    dist_m: NDArray[np.float64]
    station: NDArray[np.int64]


@dataclass(frozen=True)
class StationReach:
    """Nodes each station reaches within a limit, as CSR-like ragged arrays.

    The nodes of station ``i`` are ``node[indptr[i]:indptr[i+1]]`` with walk distances
    ``dist_m[...]`` (m, leg included).
    """

    indptr: NDArray[np.int64]
    node: NDArray[np.int64]
    dist_m: NDArray[np.float64]
    limit_m: float

    def of(self, i: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Reached nodes and their distances (m) for station position ``i``."""
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.node[a:b], self.dist_m[a:b]


def _augmented_graph(network: WalkNetwork, snapped: pd.DataFrame) -> sparse.csr_array:
    """The network's CSR with one row appended per station: its one-way links to both ends
    of its edge (``n + i`` is station ``i``). Appending rows to the cached CSR avoids
    re-sorting the whole graph for every run."""
    g = network.graph
    n, k = network.n_nodes, len(snapped)
    edge = snapped["edge"].to_numpy(dtype=np.int64)
    u, v = network.edge_u[edge], network.edge_v[edge]
    to_u = snapped["to_u_m"].to_numpy(dtype=np.float64)
    to_v = snapped["to_v_m"].to_numpy(dtype=np.float64)
    loop = u == v  # a station on a closed way: one link, the shorter way round
    cols = np.column_stack([u, v])
    w = np.column_stack([np.where(loop, np.minimum(to_u, to_v), to_u), to_v])
    keep = np.column_stack([np.ones(k, dtype=bool), ~loop])
    indptr = np.concatenate([g.indptr, g.indptr[-1] + np.cumsum(keep.sum(axis=1))])
    itype = np.int32 if indptr[-1] < np.iinfo(np.int32).max and n + k < 2**31 else np.int64
    return sparse.csr_array(
        (
            np.concatenate([g.data, w[keep]]),
            np.concatenate([g.indices, cols[keep]]).astype(itype),
            indptr.astype(itype),
        ),
        shape=(n + k, n + k),
    )


def nearest_station(
    network: WalkNetwork, snapped: pd.DataFrame, *, limit_m: float = np.inf
) -> NodeReach:
    """Walk distance (m) from every node to the nearest station, in one Dijkstra run.

    Parameters
    ----------
    network
        The walking network.
    snapped
        Stations snapped with :func:`~servicecircle.snapping.snap_to_edges`.
    limit_m
        Stop the search at this distance (m); farther nodes get ``inf``.
    """
    n, k = network.n_nodes, len(snapped)
    if k == 0:
        return NodeReach(np.full(n, np.inf), np.full(n, -1, dtype=np.int64))
    aug = _augmented_graph(network, snapped)
    dist, _, sources = csgraph.dijkstra(
        aug,
        directed=True,
        indices=np.arange(n, n + k),
        limit=limit_m,
        min_only=True,
        return_predecessors=True,
    )
    station = np.where(sources[:n] >= 0, sources[:n] - n, -1).astype(np.int64)
    return NodeReach(dist[:n], station)


def point_distances(
    network: WalkNetwork,
    reach: NodeReach,
    points: pd.DataFrame,
    stations: pd.DataFrame,
) -> pd.DataFrame:
    """Walk distance (m) from snapped points to their nearest station, legs included.

    Parameters
    ----------
    reach
        :func:`nearest_station` result for ``stations``.
    points, stations
        Snapped points and stations (:func:`~servicecircle.snapping.snap_to_edges`).

    Returns
    -------
    DataFrame
        Indexed like ``points``: ``dist_m`` (``inf`` when unreached) and ``station``
        (position in ``stations``, -1 when unreached).
    """
    edge = points["edge"].to_numpy(dtype=np.int64)
    u, v = network.edge_u[edge], network.edge_v[edge]
    via_u = reach.dist_m[u] + points["to_u_m"].to_numpy()
    via_v = reach.dist_m[v] + points["to_v_m"].to_numpy()
    use_v = via_v < via_u
    dist = np.where(use_v, via_v, via_u)
    station = np.where(use_v, reach.station[v], reach.station[u])
    # a station on the same edge: straight along the edge, not via an end node
    st_edge = stations["edge"].to_numpy(dtype=np.int64)
    shared = np.flatnonzero(np.isin(edge, st_edge))
    if shared.size:
        p = pd.DataFrame(
            {"i": shared, "edge": edge[shared], "off": points["offset_m"].to_numpy()[shared],
             "leg": points["leg_m"].to_numpy()[shared]}
        )  # fmt: skip
        s = pd.DataFrame(
            {"s": np.arange(len(stations)), "edge": st_edge,
             "s_off": stations["offset_m"].to_numpy(), "s_leg": stations["leg_m"].to_numpy()}
        )  # fmt: skip
        pairs = p.merge(s, on="edge")
        direct = pairs["leg"] + pairs["s_leg"] + (pairs["off"] - pairs["s_off"]).abs()
        pairs = pairs.assign(direct=direct).sort_values("direct").drop_duplicates("i")
        i = pairs["i"].to_numpy()
        better = pairs["direct"].to_numpy() < dist[i]
        dist[i[better]] = pairs["direct"].to_numpy()[better]
        station[i[better]] = pairs["s"].to_numpy()[better]
    station = np.where(np.isfinite(dist), station, -1)
    return pd.DataFrame({"dist_m": dist, "station": station}, index=points.index)


def station_reach(
    network: WalkNetwork,
    snapped: pd.DataFrame,
    *,
    limit_m: float,
    progress: Callable[[int], None] | None = None,
) -> StationReach:
    """Nodes each station reaches within ``limit_m`` metres, exactly, without a dense matrix.

    Each station runs Dijkstra on the sub-network inside a ball of radius
    ``limit_m − leg`` around its projection point (see the module docstring).
    ``progress`` is called with the number of stations done.
    """
    n = network.n_nodes
    tree = network.node_kdtree
    col_map = np.full(n, -1, dtype=np.int64)  # reused: global node → local position
    graph = network.graph
    indptr = [0]
    nodes_out: list[NDArray[np.int64]] = []
    dist_out: list[NDArray[np.float64]] = []
    edge = snapped["edge"].to_numpy(dtype=np.int64)
    to_u, to_v = snapped["to_u_m"].to_numpy(), snapped["to_v_m"].to_numpy()
    legs = snapped["leg_m"].to_numpy()
    snap_xy = snapped[["snap_x", "snap_y"]].to_numpy()
    for i in range(len(snapped)):
        radius = limit_m - legs[i]
        local = np.asarray(tree.query_ball_point(snap_xy[i], r=max(radius, 0.0)), dtype=np.int64)
        ends = np.array([network.edge_u[edge[i]], network.edge_v[edge[i]]])
        local = np.union1d(local, ends)
        nodes, dist = _local_dijkstra(graph, local, col_map, ends, np.array([to_u[i], to_v[i]]))
        keep = dist <= limit_m
        nodes_out.append(nodes[keep])
        dist_out.append(dist[keep])
        indptr.append(indptr[-1] + int(keep.sum()))
        if progress is not None:
            progress(i + 1)
    return StationReach(
        np.asarray(indptr, dtype=np.int64),
        np.concatenate(nodes_out) if nodes_out else np.empty(0, dtype=np.int64),
        np.concatenate(dist_out) if dist_out else np.empty(0),
        float(limit_m),
    )


def _local_dijkstra(
    graph: sparse.csr_array,
    local: NDArray[np.int64],
    col_map: NDArray[np.int64],
    seeds: NDArray[np.int64],
    seed_dist: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Dijkstra on the sub-graph induced by ``local`` from a virtual source with ``seeds``."""
    m = local.size
    col_map[local] = np.arange(m)
    pos = csr_row_positions(graph.indptr, local)
    counts = graph.indptr[local + 1] - graph.indptr[local]
    cols = col_map[graph.indices[pos]]
    rows = np.repeat(np.arange(m), counts)
    inside = cols >= 0
    seed_local = col_map[seeds]
    col_map[local] = -1
    rows = np.concatenate([rows[inside], np.full(seeds.size, m)])
    cols = np.concatenate([cols[inside], seed_local])
    data = np.concatenate([graph.data[pos][inside], seed_dist])
    sub = min_csr(rows, cols, data, m + 1)
    dist = csgraph.dijkstra(sub, directed=True, indices=m)
    return local, dist[:m]
