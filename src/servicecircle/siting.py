"""Where new stations would close the gaps: candidates, a coverage matrix, greedy, MCLP, LSCP.

Candidates are network nodes thinned to a spacing, a point of each grid snapped onto the
network, or a user's list of premises (which keep their own position and walk their leg,
like stations). The coverage matrix says which demand point each candidate reaches within
the walk distance, from the same network distances as the coverage itself
(:mod:`servicecircle.reach`: legs at both ends, via either end of the point's edge, or
straight along an edge the two share). Points the existing stations already reach count as
covered and stay so; the solvers only add.

Solvers, all on one reduced problem (points already covered, points no candidate reaches
and zero weights dropped; points with the same set of candidates merged into one row with
their summed weight; for the exact models, candidates whose points are a subset of another
candidate's dropped, which never changes the optimum):

``greedy``
    pick the candidate with the largest marginal covered weight, repeat. Fast, and within
    ``1 − 1/e`` of the optimum (coverage is submodular); each pick's gain is reported.
``mclp``
    maximal covering location problem: the ``k`` new sites that cover the most weight,
    exactly, as a mixed-integer programme (``scipy.optimize.milp``, HiGHS).
``lscp``
    location set covering, partial form: the fewest new sites that lift the covered share
    (existing + new) to a target; among those, the most weight.

Every solver returns its picks ranked in greedy order, so ``gain_weight`` is the weight
each pick adds to those before it and the cumulative share climbs to the solver's total.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree

from servicecircle.coverage import CoverageResult, station_edges
from servicecircle.crs import WGS84
from servicecircle.errors import InputError
from servicecircle.network import csr_row_positions
from servicecircle.reach import StationReach, station_reach
from servicecircle.settings import MAX_DISTANCE_M
from servicecircle.snapping import snap_homes, snap_to_edges

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = [
    "MAX_CANDIDATES",
    "MAX_MATRIX_ENTRIES",
    "METHODS",
    "candidate_sites",
    "greedy_sites",
    "lscp_sites",
    "mclp_sites",
    "propose_sites",
    "site_coverage_matrix",
]

Method = Literal["greedy", "mclp", "lscp"]
#: the solvers of :func:`propose_sites`
METHODS: tuple[str, ...] = ("greedy", "mclp", "lscp")
#: default candidate spacing (m) along the network
DEFAULT_SPACING_M = 100.0
#: walks within this (m) of the distance count as arriving: candidates pass through WGS84,
#: which moves them by ~1e-9 m, and a hand-placed site exactly 300 m away should reach
_TIE_M = 1e-6
#: a sum of row nnz² above this skips the dominated-candidate pass (it costs that many steps)
_DOMINANCE_BUDGET = 200_000_000
#: Most candidate sites one run takes: each runs its own bounded walk. Shanghai's centre at
#: 100 m spacing has a few thousand; more means a spacing typed too small on a big network.
MAX_CANDIDATES = 100_000
#: Most (demand point, candidate) pairs the coverage matrix may hold, estimated before it
#: is built as candidates × the open demand points in a circle of the walk distance
#: (an upper bound: walks along streets reach less than the circle). About 5 bytes each.
MAX_MATRIX_ENTRIES = 400_000_000

# ------------------------------------------------------------------------------ candidates


def candidate_sites(
    network: WalkNetwork,
    *,
    spacing_m: float | None = DEFAULT_SPACING_M,
    grids: gpd.GeoDataFrame | None = None,
    premises: gpd.GeoDataFrame | None = None,
    edges: NDArray[np.int64] | None = None,
) -> gpd.GeoDataFrame:
    """Candidate positions for new stations.

    Parameters
    ----------
    network
        The walking network (local UTM, metres).
    spacing_m
        Network nodes thinned so that no two candidates are closer than this (m, straight
        line); junctions with more streets are kept first. ``None`` for no node candidates.
    grids
        Red grids (any CRS): one candidate per grid, its centroid (a point on its surface
        when the centroid falls outside) moved onto the nearest street.
    premises
        Points (or polygons, taken at a point on their surface) a planner could use, any
        CRS, e.g. vacant shops or community rooms. Kept where they are; they walk their leg
        to the street like stations. Ids from ``site_id``/``resource_id``/``station_id``/
        ``id`` when unique, names from ``name``.
    edges
        Only place node and grid candidates on these edge positions (e.g.
        :func:`~servicecircle.coverage.station_edges`, the parts of the network demand
        points walk on); default all.

    Returns
    -------
    GeoDataFrame
        WGS84: ``site_id`` (``N<osmid>``, ``grid-<grid_id>`` or the premises' id),
        ``source`` (``"node"``, ``"grid"``, ``"premises"``), ``name`` (the streets at a node,
        the grid's name, the premises' name) and point geometry.
    """
    parts: list[gpd.GeoDataFrame] = []
    if spacing_m is not None:
        if not (np.isfinite(spacing_m) and spacing_m > 0):
            raise InputError(f"spacing_m must be a positive number of metres, got {spacing_m}")
        parts.append(_node_candidates(network, float(spacing_m), edges))
    if grids is not None and len(grids):
        parts.append(_grid_candidates(network, grids, edges))
    if premises is not None and len(premises):
        parts.append(_premises_candidates(premises))
    if not parts:
        raise InputError(
            "no candidate sites: give a node spacing (e.g. 100 m), grids or a premises file"
        )
    n = sum(len(part) for part in parts)
    if n > MAX_CANDIDATES:
        sizes = ", ".join(f"{len(part):,} {part['source'].iloc[0]}" for part in parts if len(part))
        raise InputError(
            f"{n:,} candidate sites ({sizes}); the limit is {MAX_CANDIDATES:,}, since each "
            "runs its own walk. Use a larger spacing_m (e.g. 100 m), fewer premises, or "
            "candidates on the grids only"
        )
    out = pd.concat([p.to_crs(WGS84) for p in parts], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)
    dup = out["site_id"][out["site_id"].duplicated()]
    if len(dup):
        raise InputError(
            f"candidate site ids are not unique: {', '.join(map(str, dup.unique()[:5]))}; "
            "give the premises unique ids"
        )
    return out


def _node_candidates(
    network: WalkNetwork, spacing_m: float, edges: NDArray[np.int64] | None
) -> gpd.GeoDataFrame:
    if edges is None:
        nodes = np.unique(np.concatenate([network.edge_u, network.edge_v]))
    else:
        e = np.asarray(edges, dtype=np.int64)
        nodes = np.unique(np.concatenate([network.edge_u[e], network.edge_v[e]]))
    g = network.graph
    degree = (g.indptr[nodes + 1] - g.indptr[nodes]).astype(np.int64)
    keep = nodes[_thin(network.node_xy[nodes], degree, spacing_m)]
    osmid = network.node_osmid[keep]
    return gpd.GeoDataFrame(
        {
            "site_id": [f"N{x}" for x in osmid],
            "source": "node",
            "name": _street_names(network, keep),
        },
        geometry=shapely.points(network.node_xy[keep]),
        crs=network.crs,
    )


def _thin(xy: NDArray[np.float64], priority: NDArray[np.int64], spacing_m: float) -> NDArray:
    """Positions of a subset of ``xy`` with no two closer than ``spacing_m``, chosen greedily
    by ``priority`` (high first, then position). Sorted ascending."""
    if len(xy) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((np.arange(len(xy)), -priority))
    # two points in a cell of side spacing/√2 are always closer than the spacing, so at
    # most one per cell survives; keeping the cell's best first shrinks the pair search
    cell = np.floor(xy[order] / (spacing_m / math.sqrt(2))).astype(np.int64)
    _, first = np.unique(cell, axis=0, return_index=True)
    cand = order[np.sort(first)]  # still in priority order
    pairs = cKDTree(xy[cand]).query_pairs(r=spacing_m, output_type="ndarray")
    m = cand.size
    if pairs.size == 0:
        return np.sort(cand)
    both = np.concatenate([pairs, pairs[:, ::-1]])
    adj = sparse.csr_array(
        (np.ones(len(both), dtype=np.int8), (both[:, 0], both[:, 1])), shape=(m, m)
    )
    alive = np.ones(m, dtype=bool)
    for i in range(m):  # greedy maximal independent set, in priority order
        if alive[i]:
            nb = adj.indices[adj.indptr[i] : adj.indptr[i + 1]]
            alive[nb[nb > i]] = False
    return np.sort(cand[alive])


def _street_names(network: WalkNetwork, nodes: NDArray[np.int64]) -> list[str | None]:
    """The names of the streets meeting at each node ("淮海中路/陕西南路"), at most two."""
    if "name" not in network.edge_attrs or nodes.size == 0:
        return [None] * nodes.size
    inc = network.node_edges
    pos = csr_row_positions(inc.indptr, nodes)
    counts = inc.indptr[nodes + 1] - inc.indptr[nodes]
    frame = pd.DataFrame(
        {
            "node": np.repeat(np.arange(nodes.size), counts),
            "name": network.edge_attrs["name"][inc.indices[pos]],
        }
    ).dropna()
    frame = frame[frame["name"].astype(str).str.len() > 0].drop_duplicates()
    joined = frame.groupby("node")["name"].agg(lambda s: "/".join(map(str, s.iloc[:2])))
    return [joined.get(i) for i in range(nodes.size)]


def _grid_candidates(
    network: WalkNetwork, grids: gpd.GeoDataFrame, edges: NDArray[np.int64] | None
) -> gpd.GeoDataFrame:
    if "grid_id" not in grids.columns:
        raise InputError("grid candidates need a grid_id column in the grids")
    geoms = grids.geometry.to_crs(network.crs).to_numpy()
    centre = shapely.centroid(geoms)
    inside = shapely.contains(geoms, centre)
    centre = np.where(inside, centre, shapely.point_on_surface(geoms))
    snap = snap_to_edges(network, gpd.GeoSeries(centre, crs=network.crs), edges=edges)
    names = grids["grid_name"] if "grid_name" in grids.columns else grids["grid_id"]
    names = names.where(names.notna(), grids["grid_id"])
    return gpd.GeoDataFrame(
        {
            "site_id": [f"grid-{g}" for g in grids["grid_id"]],
            "source": "grid",
            "name": names.astype(str).to_numpy(),
        },
        geometry=shapely.points(snap[["snap_x", "snap_y"]].to_numpy()),
        crs=network.crs,
    )


def _premises_candidates(premises: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if premises.crs is None:
        raise InputError("the premises have no coordinate system; declare their CRS")
    geoms = premises.geometry.to_numpy()
    bad = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if bad.size:
        raise InputError(
            f"{bad.size} premises have no geometry (first at row {bad[0] + 1}); drop or fix them"
        )
    pts = np.where(
        shapely.get_type_id(geoms) == shapely.GeometryType.POINT,
        geoms,
        shapely.point_on_surface(geoms),
    )
    ids = None
    for col in ("site_id", "resource_id", "station_id", "id"):
        if col in premises.columns and premises[col].notna().all() and premises[col].is_unique:
            ids = premises[col].astype(str).to_numpy()
            break
    if ids is None:
        ids = np.array([f"P{i + 1:04d}" for i in range(len(premises))], dtype=object)
    names = premises["name"].to_numpy() if "name" in premises.columns else ids
    return gpd.GeoDataFrame(
        {"site_id": ids, "source": "premises", "name": names},
        geometry=pts,
        crs=premises.crs,
    )


# ------------------------------------------------------------------------------ matrix


def site_coverage_matrix(
    network: WalkNetwork,
    sites_snapped: pd.DataFrame,
    points_snapped: pd.DataFrame,
    *,
    distance_m: float,
    site_reach: StationReach | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 65_536,
) -> sparse.csr_array:
    """Which points each site reaches within ``distance_m`` metres of walking, exactly.

    Same definitions as :func:`~servicecircle.reach.point_distances`: a point's walk to a
    site is its leg plus the distance along its edge to either end plus the site's bounded
    network distance to that end (legs included), or, when the two share an edge, straight
    along it. No dense sites × nodes matrix: one bounded run per site
    (:func:`~servicecircle.reach.station_reach`), then the points' edge ends look up the
    sites that reach them, in chunks of ``chunk`` points.

    Parameters
    ----------
    sites_snapped, points_snapped
        :func:`~servicecircle.snapping.snap_to_edges` output of the sites and the points.
    distance_m
        Walk distance (m), legs included.
    site_reach
        A precomputed ``station_reach`` of the sites with ``limit_m >= distance_m``.
    progress
        Passed to ``station_reach``: called with the number of sites done.

    Returns
    -------
    scipy.sparse.csr_array
        Boolean, n_points × n_sites, sorted indices. Walks longer than ``distance_m`` by
        less than a micrometre count (coordinates pass through WGS84 and back).
    """
    n_p, n_s = len(points_snapped), len(sites_snapped)
    if n_p == 0 or n_s == 0:
        return sparse.csr_array((n_p, n_s), dtype=bool)
    if site_reach is None:
        site_reach = station_reach(network, sites_snapped, limit_m=distance_m, progress=progress)
    elif site_reach.limit_m < distance_m:
        raise ValueError(f"site_reach holds {site_reach.limit_m} m, less than {distance_m} m")
    # node-major view of the (site, node, distance) triples
    site_of = np.repeat(np.arange(n_s, dtype=np.int64), np.diff(site_reach.indptr))
    order = np.argsort(site_reach.node, kind="stable")
    nd_site, nd_dist = site_of[order], site_reach.dist_m[order]
    nptr = np.searchsorted(site_reach.node[order], np.arange(network.n_nodes + 1))
    edge = points_snapped["edge"].to_numpy(dtype=np.int64)
    ends = (network.edge_u[edge], network.edge_v[edge])
    legs = (
        points_snapped["to_u_m"].to_numpy(dtype=np.float64),
        points_snapped["to_v_m"].to_numpy(dtype=np.float64),
    )
    d_row, d_col = _same_edge_pairs(sites_snapped, points_snapped, distance_m)
    indptr = np.zeros(n_p + 1, dtype=np.int64)
    cols_out: list[NDArray[np.int64]] = []
    for a in range(0, n_p, chunk):
        b = min(a + chunk, n_p)
        rows_c, cols_c = [], []
        for end, to in zip(ends, legs, strict=True):
            e, t = end[a:b], to[a:b]
            counts = nptr[e + 1] - nptr[e]
            pos = csr_row_positions(nptr, e)
            ok = nd_dist[pos] + np.repeat(t, counts) <= distance_m + _TIE_M
            rows_c.append(np.repeat(np.arange(a, b, dtype=np.int64), counts)[ok])
            cols_c.append(nd_site[pos[ok]])
        lo, hi = np.searchsorted(d_row, [a, b])
        rows_c.append(d_row[lo:hi])
        cols_c.append(d_col[lo:hi])
        key = np.unique(np.concatenate(rows_c) * n_s + np.concatenate(cols_c))
        r, c = np.divmod(key, n_s)
        indptr[a + 1 : b + 1] = np.bincount(r - a, minlength=b - a)
        cols_out.append(c)
    indptr = np.cumsum(indptr)
    indices = np.concatenate(cols_out)
    itype = np.int32 if indices.size < 2**31 and n_s < 2**31 else np.int64
    return sparse.csr_array(
        (np.ones(indices.size, dtype=bool), indices.astype(itype), indptr.astype(itype)),
        shape=(n_p, n_s),
    )


def _same_edge_pairs(
    sites: pd.DataFrame, points: pd.DataFrame, distance_m: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(point, site) pairs on one edge within ``distance_m`` straight along it, by point."""
    s = pd.DataFrame(
        {"site": np.arange(len(sites)), "edge": sites["edge"].to_numpy(dtype=np.int64),
         "s_off": sites["offset_m"].to_numpy(), "s_leg": sites["leg_m"].to_numpy()}
    )  # fmt: skip
    edge = points["edge"].to_numpy(dtype=np.int64)
    on = np.flatnonzero(np.isin(edge, s["edge"].to_numpy()))
    if on.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    p = pd.DataFrame(
        {"point": on, "edge": edge[on], "off": points["offset_m"].to_numpy()[on],
         "leg": points["leg_m"].to_numpy()[on]}
    )  # fmt: skip
    pairs = p.merge(s, on="edge")
    d = pairs["leg"] + pairs["s_leg"] + (pairs["off"] - pairs["s_off"]).abs()
    pairs = pairs[d.to_numpy() <= distance_m + _TIE_M].sort_values("point", kind="stable")
    return pairs["point"].to_numpy(np.int64), pairs["site"].to_numpy(np.int64)


# ------------------------------------------------------------------------------ solvers


@dataclass(frozen=True)
class _Problem:
    """The reduced problem: rows are groups of open points with the same candidate set."""

    a: sparse.csr_array  # rows × kept sites, 0/1 float
    w: NDArray[np.float64]  # row weights
    sites: NDArray[np.int64]  # original site position of each column
    n_sites: int  # original number of sites
    existing: float  # weight already covered
    total: float  # all weight
    n_open: int  # open points reachable by some site

    @property
    def max_weight(self) -> float:
        """Covered weight with every candidate built."""
        return self.existing + float(self.w.sum())


def _reduce(
    matrix: Any,
    weights: Any,
    covered: Any,
    *,
    drop_dominated: bool,
) -> _Problem:
    a = sparse.csr_array(matrix, copy=True)  # tidied in place below
    n, m = a.shape
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != n:
        raise InputError(f"{w.size} weights for a matrix of {n} points; give one weight per point")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("point weights must be finite and non-negative")
    cov = np.zeros(n, dtype=bool) if covered is None else np.asarray(covered, dtype=bool).ravel()
    if cov.size != n:
        raise InputError(f"{cov.size} covered flags for {n} points; give one per point")
    a.sum_duplicates()
    a.eliminate_zeros()
    open_ = ~cov & (np.diff(a.indptr) > 0) & (w > 0)
    sub = a[np.flatnonzero(open_)]
    sub.sort_indices()
    # points with the same set of candidates are one row with their summed weight
    ind = sub.indices
    keys = [ind[s:e].tobytes() for s, e in zip(sub.indptr[:-1], sub.indptr[1:], strict=True)]
    group = pd.factorize(pd.Series(keys, dtype=object))[0]
    first = np.unique(group, return_index=True)[1]
    rw = np.bincount(group, weights=w[open_], minlength=first.size)
    rows = sub[first]
    cols = np.flatnonzero(np.bincount(rows.indices, minlength=m) > 0)
    if drop_dominated and cols.size:
        sizes = np.diff(rows.indptr).astype(np.float64)
        if float((sizes**2).sum()) <= _DOMINANCE_BUDGET:
            cols = cols[~_dominated(rows[:, cols])]
    rows = sparse.csr_array(rows[:, cols], dtype=np.float64)
    return _Problem(
        a=rows,
        w=rw,
        sites=cols.astype(np.int64),
        n_sites=m,
        existing=float(w[cov].sum()),
        total=float(w.sum()),
        n_open=int(open_.sum()),
    )


def _dominated(a: sparse.csr_array, block: int = 1024) -> NDArray[np.bool_]:
    """Columns whose rows are a subset of another column's (identical ones: all but the
    first). Some optimum never needs them: swapping one for its superset loses nothing."""
    a = sparse.csc_array(a, dtype=np.int32)
    at = sparse.csr_array(a.T)
    size = np.diff(a.indptr)
    out = np.zeros(a.shape[1], dtype=bool)
    for lo in range(0, a.shape[1], block):
        hi = min(lo + block, a.shape[1])
        ov = sparse.coo_array(at @ a[:, lo:hi])
        k, j = ov.row, ov.col + lo
        hit = (ov.data == size[j]) & (k != j)
        hit &= (size[k] > size[j]) | ((size[k] == size[j]) & (k < j))
        out[j[hit]] = True
    return out


def _greedy(
    p: _Problem,
    *,
    k: int | None,
    target_weight: float | None = None,
    columns: NDArray[np.int64] | None = None,
) -> tuple[list[int], list[float]]:
    """Greedy picks (column positions in ``p.a``) and their exact marginal gains."""
    a = p.a
    csc = sparse.csc_array(a)
    gains = a.T @ p.w
    if columns is not None:
        allowed = np.zeros(a.shape[1], dtype=bool)
        allowed[columns] = True
        gains = np.where(allowed, gains, -np.inf)
    done = np.zeros(a.shape[0], dtype=bool)
    got = p.existing
    picks: list[int] = []
    gain_list: list[float] = []
    tol = 1e-12 * max(p.total, 1.0)
    while k is None or len(picks) < k:
        if target_weight is not None and got >= target_weight:
            break
        j = int(np.argmax(gains)) if gains.size else -1
        if j < 0 or not gains[j] > tol:
            break
        rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        new = rows[~done[rows]]
        g = float(p.w[new].sum())
        done[new] = True
        counts = a.indptr[new + 1] - a.indptr[new]
        pos = csr_row_positions(a.indptr, new)
        # incremental update: only the columns sharing a newly covered row lose gain
        gains -= np.bincount(
            a.indices[pos], weights=np.repeat(p.w[new], counts), minlength=a.shape[1]
        )
        gains[j] = -np.inf
        if g <= tol:
            break
        picks.append(j)
        gain_list.append(g)
        got += g
    return picks, gain_list


def _frame(p: _Problem, picks: list[int], gains: list[float], info: dict[str, Any]) -> pd.DataFrame:
    cum = p.existing + np.cumsum(np.asarray(gains, dtype=np.float64))
    total = p.total if p.total > 0 else np.nan
    out = pd.DataFrame(
        {
            "rank": np.arange(1, len(picks) + 1, dtype=np.int64),
            "site": p.sites[np.asarray(picks, dtype=np.int64)],
            "gain_weight": np.asarray(gains, dtype=np.float64),
            "covered_weight": cum,
            "share": cum / total,
        }
    )
    final = float(cum[-1]) if len(cum) else p.existing
    out.attrs.update(
        {
            "existing_weight": p.existing,
            "total_weight": p.total,
            "existing_share": p.existing / total,
            "covered_weight": final,
            "share": final / total,
            "max_share": p.max_weight / total,
            "n_points_open": p.n_open,
            "n_rows": int(p.a.shape[0]),
            "n_sites": p.n_sites,
            "n_sites_kept": int(p.a.shape[1]),
            **info,
        }
    )
    return out


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise InputError(f"the number of new sites k must be a whole number >= 0, got {k!r}")
    return int(k)


def _check_share(target_share: Any) -> float:
    try:
        t = float(target_share)
    except (TypeError, ValueError):
        t = math.nan
    if not 0 < t <= 1:
        raise InputError(
            f"target share must be a fraction in (0, 1], e.g. 0.9 for 90 %, got {target_share!r}"
        )
    return t


def greedy_sites(
    matrix: Any,
    weights: Any,
    k: int | None = None,
    *,
    covered: Any = None,
    target_share: float | None = None,
) -> pd.DataFrame:
    """Greedy siting: repeatedly add the site with the largest marginal covered weight.

    Parameters
    ----------
    matrix
        n_points × n_sites boolean (sparse or dense): point ``i`` is within the walk
        distance of site ``j`` (:func:`site_coverage_matrix`).
    weights
        Demand weight of each point (m², residents, ...).
    k
        At most this many sites; stops earlier when no site adds weight.
    covered
        Boolean per point: already covered by existing stations (adds nothing).
    target_share
        Stop once the covered share (existing + new, 0..1) reaches this.

    Returns
    -------
    DataFrame
        One row per pick in order: ``rank`` (1..), ``site`` (column of ``matrix``),
        ``gain_weight`` (weight this pick adds), ``covered_weight`` and ``share``
        (cumulative, existing included). ``attrs`` hold the totals and ``status``.
    """
    if k is None and target_share is None:
        raise InputError("greedy siting needs k (number of sites) or a target share")
    k = None if k is None else _check_k(k)
    t = None if target_share is None else _check_share(target_share)
    start = time.perf_counter()
    p = _reduce(matrix, weights, covered, drop_dominated=False)
    target = None if t is None else t * p.total
    picks, gains = _greedy(p, k=k, target_weight=target)
    got = p.existing + sum(gains)
    status = "greedy"
    if target is not None and got < target * (1 - 1e-12):
        status = "greedy (target not reached)"
    info = {"method": "greedy", "status": status, "objective": got, "k": k, "target_share": t,
            "time_s": time.perf_counter() - start}  # fmt: skip
    return _frame(p, picks, gains, info)


def _solve(
    c: NDArray[np.float64],
    integrality: NDArray[np.int8],
    constraints: list[LinearConstraint],
    *,
    time_limit_s: float,
    mip_gap: float,
) -> Any:
    if not time_limit_s > 0:
        raise InputError(f"solver time limit must be positive seconds, got {time_limit_s}")
    return milp(
        c,
        integrality=integrality,
        bounds=Bounds(0, 1),
        constraints=constraints,
        options={"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_gap)},
    )


def _coverage_rows(p: _Problem) -> sparse.csr_array:
    """``y_r − Σ_j a_rj x_j ≤ 0`` as one sparse block ``[−A | I]``."""
    r = p.a.shape[0]
    return sparse.hstack([-p.a, sparse.eye_array(r, format="csr")], format="csr")


def mclp_sites(
    matrix: Any,
    weights: Any,
    k: int,
    *,
    covered: Any = None,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-6,
) -> pd.DataFrame:
    """Maximal covering: the ``k`` new sites that cover the most weight, existing kept.

    Mixed-integer programme (``scipy.optimize.milp``, HiGHS) on the reduced problem (see the
    module docstring): maximise ``Σ w_r y_r`` subject to ``y_r ≤ Σ_j a_rj x_j``,
    ``Σ x_j ≤ k``, ``x`` binary, ``0 ≤ y ≤ 1`` (integral at the optimum).

    Parameters
    ----------
    matrix, weights, covered
        As in :func:`greedy_sites`.
    k
        Number of new sites. Fewer rows come back when fewer sites add weight.
    time_limit_s
        Solver time limit (s). On expiry the best solution found is returned with
        ``attrs["status"] == "time_limit"`` and its proven gap; when none was found, the
        greedy answer (``"time_limit (greedy)"``).
    mip_gap
        Relative optimality gap at which the solver stops (default 1e-6: exact for any
        practical purpose).

    Returns
    -------
    DataFrame
        As :func:`greedy_sites` (picks ordered greedily among the optimal set); ``attrs``:
        ``status`` (``"optimal"``, ``"time_limit"``, ...), ``objective`` (covered weight,
        existing included), ``bound`` (proven upper bound on it), ``gap``.
    """
    k = _check_k(k)
    start = time.perf_counter()
    p = _reduce(matrix, weights, covered, drop_dominated=True)
    chosen, status, bound, gap = _mclp(p, k, time_limit_s=time_limit_s, mip_gap=mip_gap)
    picks, gains = _greedy(p, k=None, columns=chosen)
    got = p.existing + sum(gains)
    if bound < got:  # rounding; NaN (no bound known) stays NaN
        bound = got
    info = {"method": "mclp", "k": k, "status": status, "objective": got, "bound": bound,
            "gap": gap, "time_s": time.perf_counter() - start}  # fmt: skip
    return _frame(p, picks, gains, info)


def _mclp(
    p: _Problem, k: int, *, time_limit_s: float, mip_gap: float
) -> tuple[NDArray[np.int64], str, float, float]:
    """(chosen columns, status, upper bound on covered weight, relative gap) of the MCLP."""
    r, m = p.a.shape
    if m <= k:  # every useful site fits
        return np.arange(m), "optimal", p.max_weight, 0.0
    scale = p.w.max()
    c = np.concatenate([np.zeros(m), -p.w / scale])
    card = sparse.csr_array(
        (np.ones(m), (np.zeros(m, dtype=np.int64), np.arange(m))), shape=(1, m + r)
    )
    res = _solve(
        c,
        _integrality(p),
        [LinearConstraint(_coverage_rows(p), -np.inf, 0.0), LinearConstraint(card, 0, k)],
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
    )
    bound = p.existing - _num(res, "mip_dual_bound") * scale
    gap = _num(res, "mip_gap")
    if res.x is not None and res.status == 0:
        return np.flatnonzero(res.x[:m] > 0.5), "optimal", bound, gap
    # stopped early: keep the better of the solver's incumbent and the greedy answer
    greedy = np.asarray(_greedy(p, k=k)[0], dtype=np.int64)
    if res.x is not None:
        best = np.flatnonzero(res.x[:m] > 0.5)
        if _weight_of(p, best) >= _weight_of(p, greedy):
            return best, _status_name(res), bound, gap
    return greedy, f"{_status_name(res)} (greedy)", bound, gap


def _num(res: Any, name: str) -> float:
    """A numeric field of a milp result; NaN when the solver gave none."""
    value = getattr(res, name, None)
    return float(value) if value is not None else math.nan


def _integrality(p: _Problem) -> NDArray[np.int8]:
    """x (sites) binary, y (rows) continuous: integral anyway once x is."""
    r, m = p.a.shape
    return np.concatenate([np.ones(m, dtype=np.int8), np.zeros(r, dtype=np.int8)])


def _status_name(res: Any) -> str:
    if res.status == 1:
        return "time_limit"
    return {2: "infeasible", 3: "unbounded"}.get(res.status, f"solver: {res.message}")


def lscp_sites(
    matrix: Any,
    weights: Any,
    target_share: float,
    *,
    covered: Any = None,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-6,
) -> pd.DataFrame:
    """Fewest new sites so the covered share (existing + new) reaches ``target_share``.

    Partial set covering, solved exactly as a search over the number of sites ``n``: the
    most weight ``n`` sites can cover (:func:`mclp_sites`) grows with ``n``, so the answer is
    the least ``n`` whose optimum reaches the target, and that optimum is also the set of
    ``n`` sites covering the most. The greedy answer bounds ``n`` from above (it is usually
    optimal or one more, so ``n − 1`` is tried first), the sum of the largest single-site
    gains from below; the range between is bisected. (The direct model, ``min Σ x`` with a
    covered-weight row, stalled HiGHS's presolve for minutes at district scale; maximal
    covering models solve well.)

    Parameters
    ----------
    matrix, weights, covered
        As in :func:`greedy_sites`.
    target_share
        Covered share to reach, 0..1 (existing included).
    time_limit_s
        Time limit (s) for the whole search. When it runs out the best set found is
        returned with ``status == "time_limit"`` and ``bound``, the proven least number.
    mip_gap
        As in :func:`mclp_sites`.

    Raises
    ------
    InputError
        When even every candidate together stays below the target (says the most that can
        be reached).
    """
    t = _check_share(target_share)
    if not time_limit_s > 0:
        raise InputError(f"solver time limit must be positive seconds, got {time_limit_s}")
    start = time.perf_counter()
    p = _reduce(matrix, weights, covered, drop_dominated=True)
    need = t * p.total - p.existing
    reach_w = float(p.w.sum())
    if need > reach_w * (1 + 1e-9) + 1e-12 * p.total:
        raise InputError(
            f"a covered share of {t:.1%} cannot be reached: existing stations cover "
            f"{p.existing / p.total:.1%} and all {p.n_sites:,} candidates together reach "
            f"{p.max_weight / p.total:.1%}. Lower the target, add candidates (a smaller "
            "spacing, premises) or allow a longer walk"
        )
    best = np.empty(0, dtype=np.int64)
    status, lo, solves = "optimal", 0, 0
    if need > 0:
        # a hair of slack so a target equal to the maximum is not lost to rounding
        need = min(need, reach_w) * (1 - 1e-9)
        best = np.asarray(_greedy(p, k=None, target_weight=p.existing + need)[0], dtype=np.int64)
        hi, best_optimal = best.size, False
        singles = np.sort(p.a.T @ p.w)[::-1]
        lo = int(np.searchsorted(np.cumsum(singles), need)) + 1  # no fewer can reach it
        first = True
        while lo < hi:
            mid = hi - 1 if first else (lo + hi) // 2
            first = False
            left = time_limit_s - (time.perf_counter() - start)
            if left <= 0:
                status = "time_limit"
                break
            chosen, st, bound, _ = _mclp(p, mid, time_limit_s=left, mip_gap=mip_gap)
            solves += 1
            if _weight_of(p, chosen) >= need:
                hi, best, best_optimal = mid, chosen, st == "optimal"
            elif st == "optimal" or bound - p.existing < need:
                lo = mid + 1  # proven: no ``mid`` sites reach the target
            else:
                status = "time_limit"
                break
        if status == "optimal":
            lo = hi
            if not best_optimal:  # the most weight the fewest sites can cover
                left = max(time_limit_s - (time.perf_counter() - start), 0.1 * time_limit_s)
                chosen, st, _, _ = _mclp(p, hi, time_limit_s=left, mip_gap=mip_gap)
                solves += 1
                if _weight_of(p, chosen) >= _weight_of(p, best):
                    best = chosen
                if st != "optimal":
                    status = f"optimal count; most weight {st}"
    picks, gains = _greedy(p, k=None, columns=best)
    info = {"method": "lscp", "target_share": t, "status": status, "objective": len(picks),
            "bound": lo, "n_solves": solves, "time_s": time.perf_counter() - start}  # fmt: skip
    return _frame(p, picks, gains, info)


def _weight_of(p: _Problem, columns: NDArray[np.int64]) -> float:
    """Weight of the rows the given columns cover."""
    hit = (p.a[:, columns].sum(axis=1) > 0) if columns.size else np.zeros(p.a.shape[0], bool)
    return float(p.w[np.asarray(hit).ravel()].sum())


# ------------------------------------------------------------------------------ one call


def propose_sites(
    network: WalkNetwork,
    coverage: CoverageResult,
    stations_snapped: pd.DataFrame,
    *,
    distance_m: float | None = None,
    k: int | None = None,
    target_share: float | None = None,
    method: Method = "greedy",
    candidates: gpd.GeoDataFrame | None = None,
    spacing_m: float = DEFAULT_SPACING_M,
    time_limit_s: float = 60.0,
    progress: Callable[[int], None] | None = None,
) -> gpd.GeoDataFrame:
    """New station sites that close the most coverage gap, in the proposed-sites contract.

    Parameters
    ----------
    network
        The walking network the coverage was computed on.
    coverage
        :func:`~servicecircle.coverage.compute_coverage` result: its demand points, weights
        and walk distance to the nearest existing station. Points within ``distance_m``
        stay covered.
    stations_snapped
        The existing stations' snapped positions (to find the connected parts of the
        network demand walks on, as the coverage did).
    distance_m
        Walk distance (m) a new site serves; default the coverage's first threshold
        (5 min = 300 m at 60 m/min).
    k
        Number of new sites (``greedy`` and ``mclp``).
    target_share
        Covered share to reach, 0..1, existing included (``lscp``; ``greedy`` stops there).
    method
        ``"greedy"``, ``"mclp"`` (exact best ``k``) or ``"lscp"`` (exact fewest for
        ``target_share``).
    candidates
        :func:`candidate_sites` output; default network nodes every ``spacing_m`` metres.
    spacing_m
        Node-candidate spacing (m) when ``candidates`` is not given.
    time_limit_s
        Time limit (s) of the exact solvers.
    progress
        Called with the number of candidates whose walk reach is done.

    Returns
    -------
    GeoDataFrame
        WGS84, one row per new site in pick order: ``rank``, ``site_id`` (the candidate's),
        ``name`` (``建议选址01``…), ``source``, ``candidate_name``, ``gain_weight`` (weight
        this site adds to those ranked before it), ``gain_share`` (same as a share of all
        demand), ``cum_weight``, ``cum_share`` (covered share, 0..1, after this pick,
        existing stations included), ``grid_id``, ``subdistrict``, ``community`` (the grid
        holding the site, None outside all grids) and point geometry. ``attrs["siting"]``
        holds the method, status, objective, distance, existing/final/max shares, candidate
        and problem sizes and timings.
    """
    if method not in METHODS:
        raise InputError(f"siting method {method!r} is not one of {', '.join(METHODS)}")
    if method == "mclp" and k is None:
        raise InputError("method 'mclp' needs k, the number of new sites")
    if method == "lscp" and target_share is None:
        raise InputError("method 'lscp' needs a target share (0..1), e.g. 0.9")
    if method == "greedy" and k is None and target_share is None:
        raise InputError("method 'greedy' needs k (number of new sites) or a target share")
    walk = coverage.walk
    if distance_m is None:
        distance_m = walk.distance_for(walk.thresholds_min[0])
    if not (np.isfinite(distance_m) and 0 < distance_m <= MAX_DISTANCE_M):
        raise InputError(
            f"distance_m must be positive metres up to {MAX_DISTANCE_M:,.0f}, got {distance_m}"
        )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    usable = station_edges(network, stations_snapped)
    public = station_edges(network, stations_snapped, public=True)
    if candidates is None:
        candidates = candidate_sites(network, spacing_m=spacing_m, edges=public)
    if len(candidates) == 0:
        raise InputError("no candidate sites to choose from")
    if len(candidates) > MAX_CANDIDATES:
        raise InputError(
            f"{len(candidates):,} candidate sites; the limit is {MAX_CANDIDATES:,}, since each "
            "runs its own walk: give fewer candidates"
        )
    pts = coverage.points
    w = pts["weight"].to_numpy(dtype=np.float64)
    covered = pts["dist_m"].to_numpy(dtype=np.float64) <= distance_m
    # homes beyond max_leg_m of every usable edge stay unreachable, whatever is built
    leg = coverage.points_snapped["leg_m"].to_numpy(dtype=np.float64) if (
        coverage.points_snapped is not None) else np.zeros(len(pts))  # fmt: skip
    open_idx = np.flatnonzero(~covered & (w > 0) & (leg <= coverage.walk.max_leg_m))
    _check_matrix_size(coverage, open_idx.size, len(candidates), distance_m, spacing_m)
    cand_snapped = snap_to_edges(network, candidates, edges=public)
    timings["candidates"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # demand sits where the coverage run snapped it, so distances agree
    if coverage.points_snapped is not None:
        pts_snapped = coverage.points_snapped.iloc[open_idx]
    else:
        pts_snapped = snap_homes(
            network, pts.geometry.iloc[open_idx], edges=usable, front_m=coverage.walk.frontage_m
        )
    sub = site_coverage_matrix(
        network, cand_snapped, pts_snapped, distance_m=distance_m, progress=progress
    )
    matrix = _embed_rows(sub, open_idx, len(pts))
    timings["matrix"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if method == "greedy":
        res = greedy_sites(matrix, w, k, covered=covered, target_share=target_share)
    elif method == "mclp":
        res = mclp_sites(matrix, w, k, covered=covered, time_limit_s=time_limit_s)
    else:
        res = lscp_sites(matrix, w, target_share, covered=covered, time_limit_s=time_limit_s)
    timings["solve"] = time.perf_counter() - t0

    chosen = candidates.iloc[res["site"].to_numpy()]
    total = res.attrs["total_weight"]
    out = gpd.GeoDataFrame(
        {
            "rank": res["rank"].to_numpy(),
            "site_id": chosen["site_id"].astype(str).to_numpy(),
            "name": [f"建议选址{i:02d}" for i in res["rank"]],
            "source": chosen["source"].to_numpy(),
            "candidate_name": chosen["name"].to_numpy(),
            "gain_weight": res["gain_weight"].to_numpy(),
            "gain_share": res["gain_weight"].to_numpy() / total if total > 0 else np.nan,
            "cum_weight": res["covered_weight"].to_numpy(),
            "cum_share": res["share"].to_numpy(),
        },
        geometry=chosen.geometry.to_crs(WGS84).to_numpy(),
        crs=WGS84,
    )
    out = _with_grid(out, coverage.grids)
    out.attrs["siting"] = {
        **{key: _plain(v) for key, v in res.attrs.items()},
        "distance_m": float(distance_m),
        "n_candidates": len(candidates),
        "candidates": {str(s): int(n) for s, n in candidates["source"].value_counts().items()},
        "spacing_m": float(spacing_m) if "node" in set(candidates["source"]) else None,
        "demand": dict(coverage.demand),
        "timings_s": timings,
    }
    return out


def _check_matrix_size(
    coverage: CoverageResult, n_open: int, n_candidates: int, distance_m: float, spacing_m: float
) -> int:
    """Estimated entries of the coverage matrix; InputError above :data:`MAX_MATRIX_ENTRIES`."""
    area = float(np.nansum(coverage.grids["area_m2"])) if "area_m2" in coverage.grids else 0.0
    per_site = n_open if area <= 0 else min(n_open, n_open / area * math.pi * distance_m**2)
    estimate = int(n_candidates * per_site)
    if estimate > MAX_MATRIX_ENTRIES:
        raise InputError(
            f"{n_candidates:,} candidate sites × about {per_site:,.0f} uncovered demand points "
            f"within {distance_m:,.0f} m of each would make a coverage matrix of about "
            f"{estimate:.2g} entries; the limit is {MAX_MATRIX_ENTRIES:,}. Use fewer candidates "
            f"(a larger spacing_m than {spacing_m:g}), a larger lattice_m, or a shorter distance_m"
        )
    return estimate


def _embed_rows(sub: sparse.csr_array, rows: NDArray[np.int64], n: int) -> sparse.csr_array:
    """An n-row CSR holding ``sub``'s rows at positions ``rows`` (others empty)."""
    counts = np.zeros(n, dtype=np.int64)
    counts[rows] = np.diff(sub.indptr)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sparse.csr_array((sub.data, sub.indices, indptr), shape=(n, sub.shape[1]))


def _with_grid(sites: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add the grid (and its community, sub-district) holding each site."""
    cols = [c for c in ("grid_id", "subdistrict", "community") if c in grids.columns]
    for c in cols:
        sites[c] = None
    if not len(sites) or not cols:
        return sites
    g = grids.to_crs(WGS84)
    tree = shapely.STRtree(g.geometry.to_numpy())
    hit_site, hit_grid = tree.query(sites.geometry.to_numpy(), predicate="intersects")
    first = np.unique(hit_site, return_index=True)[1]
    for c in cols:
        values = np.array(sites[c].to_numpy(), dtype=object)
        values[hit_site[first]] = g[c].to_numpy()[hit_grid[first]]
        sites[c] = values
    return sites


def _plain(value: Any) -> Any:
    """numpy scalars → Python (attrs end up in JSON metadata)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
