"""Coverage of red grids (网格) by walk distance, and roll-ups 网格 → 社区 → 街道 → 区.

Coverage is never read off ring polygons. Each grid holds demand points — building
footprints (a point on the surface of each) when buildings are known, otherwise a regular
lattice (default 20 m) — and every point gets its walk distance to the nearest station
from one multi-source run, its off-network leg included. A grid's coverage for a
threshold is the weighted share of its points within that distance.

Weights (``weight=``):

``"area"``
    lattice points share the grid's area (m²) equally, so a grid's weight is its area;
``"footprint"``
    a building's footprint area (m²); ``"footprint_floors"`` multiplies by its floors
    (1 where unknown). Point buildings count as 1 (× floors);
``"population"``
    the grid's population column spread over its points in proportion to the weights
    above, so covered weight reads as covered residents.

``"auto"`` takes population when every grid has one, else footprint × floors with
buildings, else area. Roll-ups sum weights up the hierarchy; a percentage is never
averaged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import csgraph

from servicecircle.crs import WGS84
from servicecircle.errors import InputError, ServiceCircleWarning
from servicecircle.reach import NodeReach, nearest_station, point_distances
from servicecircle.settings import DEFAULT_LATTICE_M, WalkSettings
from servicecircle.snapping import snap_homes, snap_stations

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = [
    "HIERARCHY",
    "MAX_DEMAND_POINTS",
    "UNASSIGNED",
    "WEIGHTS",
    "CoverageResult",
    "check_lattice_size",
    "compute_coverage",
    "demand_points",
    "extra_columns",
    "grid_coverage",
    "is_reserved_column",
    "rollup",
    "station_edges",
    "suffix",
    "walk_to_points",
]

Weight = Literal["auto", "area", "footprint", "footprint_floors", "population"]
#: the demand weights (see the module docstring)
WEIGHTS: tuple[str, ...] = ("auto", "area", "footprint", "footprint_floors", "population")

#: hierarchy columns from the top down, with their Chinese level names
HIERARCHY = {"subdistrict": "街道", "community": "社区"}
#: the explicit group for grids whose parent is missing
UNASSIGNED = "unassigned"


def suffix(minutes: float) -> str:
    """Column suffix for a threshold: ``5 → "5min"``, ``7.5 → "7.5min"``."""
    return f"{float(minutes):g}min"


# --------------------------------------------------------------------------- demand points


#: Most demand points a lattice may have. Every point is held through snapping, walking
#: and the exports (a few hundred bytes each, several GB at this limit); the 20 m lattice
#: of a 1,000 km² district has 2.5 million. A larger count means a lattice spacing typed
#: too small, or grids far larger than a district (a wrong coordinate system).
MAX_DEMAND_POINTS = 5_000_000
#: Lattice cells tested against a polygon at once (bounds the temporary arrays).
_LATTICE_CHUNK = 1 << 20


def check_lattice_size(geoms: NDArray[Any], spacing_m: float) -> int:
    """Estimated lattice points of ``geoms`` (metres) at ``spacing_m``; InputError above
    :data:`MAX_DEMAND_POINTS`, before anything is allocated."""
    if not (np.isfinite(spacing_m) and spacing_m > 0):
        raise InputError(f"lattice_m must be a positive number of metres, got {spacing_m}")
    area = float(np.sum(shapely.area(geoms)))
    estimate = area / spacing_m**2 + len(geoms)
    if estimate > MAX_DEMAND_POINTS:
        smallest = np.sqrt(area / max(MAX_DEMAND_POINTS - len(geoms), 1))
        hint = (
            f"; the grids cover {area / 1e6:,.0f} km², far more than a district: check their "
            "coordinate system"
            if area > 1e10
            else f"; use lattice_m of at least {np.ceil(smallest):,.0f} m, or give buildings"
        )
        raise InputError(
            f"lattice_m={spacing_m:g} would make about {estimate:.2g} demand points in "
            f"{len(geoms):,} grid(s) of {area / 1e6:,.2f} km²; the limit is "
            f"{MAX_DEMAND_POINTS:,}{hint}"
        )
    return int(estimate)


def _lattice(geoms: NDArray[Any], spacing_m: float) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """Points of one district-wide lattice inside each polygon: (polygon position, point).

    The lattice is anchored at multiples of the spacing, so neighbouring grids share it.
    A polygon too small or thin to hold a lattice point gets one point on its surface.
    The size is checked first (:func:`check_lattice_size`), and each polygon's bounding
    box is tested in strips, so a long diagonal grid allocates no huge temporary array.
    """
    check_lattice_size(geoms, spacing_m)
    owner: list[NDArray[np.int64]] = []
    pts: list[NDArray[np.float64]] = []
    bounds = shapely.bounds(geoms)
    for i, (x0, y0, x1, y1) in enumerate(bounds):
        xs = np.arange(np.floor(x0 / spacing_m) + 0.5, np.ceil(x1 / spacing_m), 1.0) * spacing_m
        ys = np.arange(np.floor(y0 / spacing_m) + 0.5, np.ceil(y1 / spacing_m), 1.0) * spacing_m
        rows = max(1, _LATTICE_CHUNK // max(xs.size, 1))
        shapely.prepare(geoms[i])
        found = []
        for r in range(0, ys.size, rows):
            gx, gy = np.meshgrid(xs, ys[r : r + rows])
            gx, gy = gx.ravel(), gy.ravel()
            inside = shapely.contains_xy(geoms[i], gx, gy)
            if inside.any():
                found.append(np.column_stack([gx[inside], gy[inside]]))
        shapely.destroy_prepared(geoms[i])
        if found:
            xy = np.concatenate(found)
        else:
            xy = shapely.get_coordinates(shapely.point_on_surface(geoms[i]))
        pts.append(xy)
        owner.append(np.full(len(xy), i, dtype=np.int64))
    if not pts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    xy = np.concatenate(pts)
    return np.concatenate(owner), shapely.points(xy)


def _building_points(
    grid_geoms: NDArray[Any], buildings: gpd.GeoDataFrame, crs: Any
) -> tuple[NDArray[np.int64], NDArray[Any], NDArray[np.float64], NDArray[np.float64]]:
    """(grid position, point, footprint m², floors) for every building inside a grid.

    A building belongs to the grid that holds the point on its surface (always inside the
    footprint, unlike a centroid of an L-shaped block).
    """
    b = buildings.to_crs(crs)
    geoms = b.geometry.to_numpy()
    pts = shapely.point_on_surface(geoms)
    footprint = shapely.area(geoms)
    floors = (
        pd.to_numeric(b["floors"], errors="coerce").to_numpy(dtype=float)
        if "floors" in b.columns
        else np.full(len(b), np.nan)
    )
    tree = shapely.STRtree(grid_geoms)
    hit_pt, hit_grid = tree.query(pts, predicate="intersects")
    # a point on a shared boundary lands in one grid only: the first match
    first = np.unique(hit_pt, return_index=True)[1]
    hit_pt, hit_grid = hit_pt[first], hit_grid[first]
    return hit_grid.astype(np.int64), pts[hit_pt], footprint[hit_pt], floors[hit_pt]


def _resolve_weight(weight: str, grids: gpd.GeoDataFrame, *, has_buildings: bool) -> str:
    if weight not in WEIGHTS:
        raise InputError(f"weight {weight!r} is not one of {', '.join(WEIGHTS)}")
    pop = grids["population"] if "population" in grids.columns else None
    if weight == "population" and (pop is None or pop.isna().all()):
        raise InputError(
            "weight 'population' needs a population column in the grids (人口/population); "
            "none was found. Use weight 'area' or 'footprint_floors' instead"
        )
    if weight == "auto":
        if pop is not None and pop.notna().all() and len(grids):
            return "population"
        return "footprint_floors" if has_buildings else "area"
    if weight in ("footprint", "footprint_floors") and not has_buildings:
        raise InputError(f"weight {weight!r} needs buildings; give a buildings file or use 'area'")
    return weight


def demand_points(
    grids: gpd.GeoDataFrame,
    *,
    crs: Any,
    buildings: gpd.GeoDataFrame | None = None,
    lattice_m: float = DEFAULT_LATTICE_M,
    weight: Weight = "auto",
) -> gpd.GeoDataFrame:
    """Demand points of every grid, with weights, in the analysis CRS (metres).

    Parameters
    ----------
    grids
        Red grids (any CRS), as read by :func:`~servicecircle.inputs.read_grids`.
    crs
        The analysis CRS (the network's local UTM).
    buildings
        Building footprints or points (any CRS). When given, each building inside a grid
        is one demand point; a grid without buildings has no demand (weight 0), except in
        ``"population"`` weighting, where its residents sit on a lattice.
    lattice_m
        Lattice spacing (m) when there are no buildings.
    weight
        See the module docstring.

    Returns
    -------
    GeoDataFrame
        ``grid`` (row position in ``grids``), ``grid_id``, ``weight``, ``source``
        (``"building"`` or ``"lattice"``) and point geometry, in ``crs``. ``attrs["demand"]``
        records the kind, lattice spacing and weight used.
    """
    if not (np.isfinite(lattice_m) and lattice_m > 0):
        raise InputError(f"lattice_m must be a positive number of metres, got {lattice_m}")
    has_buildings = buildings is not None and len(buildings) > 0
    weight = _resolve_weight(weight, grids, has_buildings=has_buildings)
    g = grids.to_crs(crs)
    geoms = g.geometry.to_numpy()
    area = shapely.area(geoms)
    if has_buildings:
        owner, pts, footprint, floors = _building_points(geoms, buildings, crs)
        if weight == "footprint":
            base = np.where(footprint > 0, footprint, 1.0)
        else:  # footprint × floors; population is spread the same way
            base = np.where(footprint > 0, footprint, 1.0) * np.where(
                np.isfinite(floors), floors, 1
            )
        source = np.full(len(owner), "building", dtype=object)
        if weight == "population":
            # residents of grids without buildings still live somewhere: on a lattice
            empty = np.setdiff1d(np.arange(len(g)), owner)
            if empty.size:
                lo, lp = _lattice(geoms[empty], lattice_m)
                owner = np.concatenate([owner, empty[lo]])
                pts = np.concatenate([pts, lp])
                base = np.concatenate([base, np.ones(len(lo))])
                source = np.concatenate([source, np.full(len(lo), "lattice", dtype=object)])
        kind = "buildings"
    else:
        owner, pts = _lattice(geoms, lattice_m)
        n_per = np.bincount(owner, minlength=len(g))
        base = area[owner] / n_per[owner]  # each grid's points sum to its area exactly
        source = np.full(len(owner), "lattice", dtype=object)
        kind = "lattice"
    w = base
    if weight == "population":
        pop = g["population"].to_numpy(dtype=float)
        per_grid = np.bincount(owner, weights=base, minlength=len(g))
        w = base / per_grid[owner] * np.nan_to_num(pop[owner])
    out = gpd.GeoDataFrame(
        {
            "grid": owner,
            "grid_id": g["grid_id"].to_numpy()[owner],
            "weight": w.astype(float),
            "source": source,
        },
        geometry=pts,
        crs=crs,
    )
    out.attrs["demand"] = {"kind": kind, "lattice_m": float(lattice_m), "weight": weight}
    return out


# --------------------------------------------------------------------------- walk distances


def station_edges(
    network: WalkNetwork, stations_snapped: pd.DataFrame, *, public: bool = False
) -> NDArray[np.int64]:
    """Edges in the connected parts of the network that hold at least one station.

    Demand points snap only to these: a point whose nearest path is a fragment cut off
    from every station (a courtyard path the extract did not connect, a piece beyond its
    edge) walks out to the nearest street that does lead to a station, instead of counting
    as unreachable. ``public=True`` keeps only the public ones among them (for siting
    candidates, which stand where stations may).
    """
    _, label = csgraph.connected_components(network.graph, directed=False)
    edge = stations_snapped["edge"].to_numpy(dtype=np.int64)
    with_station = np.unique(label[network.edge_u[edge]])
    usable = np.isin(label[network.edge_u], with_station)
    if public:
        usable &= ~network.edge_private
    return np.flatnonzero(usable)


def walk_to_points(
    network: WalkNetwork,
    stations_snapped: pd.DataFrame,
    points: gpd.GeoDataFrame,
    *,
    reach: NodeReach | None = None,
    edges: NDArray[np.int64] | None = None,
    points_snapped: pd.DataFrame | None = None,
    front_m: float = 30.0,
) -> pd.DataFrame:
    """Walk distance (m) from each point to its nearest station, legs at both ends included.

    Points snap as homes (:func:`~servicecircle.snapping.snap_homes`: a point within
    ``front_m`` of a public way steps onto it rather than into a compound's path).

    ``edges`` limits the edges points snap to (see :func:`station_edges`); default all.
    ``points_snapped`` is the points' :func:`~servicecircle.snapping.snap_to_edges` result
    when already at hand (then ``edges`` is not used).
    Returns ``dist_m`` (``inf`` when no station is reachable), ``station`` (position in
    the stations, -1 when none) and ``leg_m`` (the point's own off-network leg).
    """
    if reach is None:
        reach = nearest_station(network, stations_snapped)
    if len(points) == 0:
        return pd.DataFrame({"dist_m": [], "station": [], "leg_m": []}, index=points.index)
    snapped = (
        points_snapped
        if points_snapped is not None
        else snap_homes(network, points, edges=edges, front_m=front_m)
    )
    out = point_distances(network, reach, snapped, stations_snapped)
    out["leg_m"] = snapped["leg_m"].to_numpy()
    return out


def unreachable_beyond(walks: pd.DataFrame, max_leg_m: float) -> pd.DataFrame:
    """``walks`` with points whose leg exceeds ``max_leg_m`` (m) made unreachable.

    A home that far from every usable edge would be "covered" only through a straight line
    across whatever lies between (a river, a rail yard, a wall): it gets ``dist_m = inf``
    and ``station = -1``, and counts as uncovered at every threshold.
    """
    far = walks["leg_m"].to_numpy(dtype=float) > max_leg_m
    if not far.any():
        return walks
    out = walks.copy()
    out.loc[far, "dist_m"] = np.inf
    out.loc[far, "station"] = -1
    return out


#: Straight legs (m) from a demand point to its street counted in the tables: a share of
#: demand this far from the network means homes the extract does not reach well.
LONG_LEGS_M: tuple[float, ...] = (100.0, 250.0)


# --------------------------------------------------------------------------- per grid


def _weighted_quantiles(
    group: NDArray[np.int64], value: NDArray[np.float64], w: NDArray[np.float64], n: int, q: float
) -> NDArray[np.float64]:
    """Weighted ``q`` quantile of ``value`` per group (the lower value at the split)."""
    out = np.full(n, np.nan)
    keep = w > 0
    group, value, w = group[keep], value[keep], w[keep]
    if group.size == 0:
        return out
    order = np.lexsort((value, group))
    group, value, w = group[order], value[order], w[order]
    cum = np.cumsum(w)
    total = np.bincount(group, weights=w, minlength=n)
    start = np.concatenate([[0.0], cum])[np.searchsorted(group, np.arange(n), side="left")]
    present = np.flatnonzero(total > 0)
    target = start[present] + q * total[present]
    # the first point whose cumulative weight reaches the target; the tolerance keeps
    # rounding in the cumulative sum from skipping past an exact split
    idx = np.searchsorted(cum, target - 1e-9 * np.maximum(total[present], 1.0), side="left")
    out[present] = value[np.minimum(idx, value.size - 1)]
    return out


def grid_coverage(
    grids: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    walks: pd.DataFrame,
    stations: gpd.GeoDataFrame,
    *,
    walk: WalkSettings,
    tier_minutes: Mapping[str, float] | None = None,
    tier_walks: Mapping[str, pd.DataFrame] | None = None,
) -> gpd.GeoDataFrame:
    """Coverage per grid for each threshold, from demand points and their walk distances.

    Parameters
    ----------
    grids
        The red grids (any CRS); the result keeps their order and is in WGS84.
    points
        :func:`demand_points` output.
    walks
        :func:`walk_to_points` output for ``points``, nearest of all stations.
    stations
        The stations (for the serving station's id and name).
    walk
        Speed and thresholds; threshold ``t`` min counts points within
        ``walk.distance_for(t)`` metres.
    tier_minutes, tier_walks
        Optional per-tier thresholds (minutes) and the walks to the nearest station of
        each tier; adds ``covered_tier_<tier>``/``coverage_tier_<tier>`` and the combined
        ``covered_tiered``/``coverage_tiered`` (a point counts when any tier reaches it
        within that tier's own threshold).

    Returns
    -------
    GeoDataFrame
        The columns of the data contract: ``n_points``, ``weight``, ``area_m2``,
        ``covered_<t>``, ``uncovered_<t>``, ``coverage_<t>`` per threshold,
        ``walk_median_m``, ``walk_p90_m`` (weighted), ``walk_min_m``, ``station_id`` and
        ``station_name`` (the station nearest to most of the grid's weight).
    """
    n = len(grids)
    owner = points["grid"].to_numpy(dtype=np.int64)
    w = points["weight"].to_numpy(dtype=float)
    dist = walks["dist_m"].to_numpy(dtype=float)
    st = walks["station"].to_numpy(dtype=np.int64)
    keep = ("grid_id", "subdistrict", "community", "grid_name", "population")
    out = pd.DataFrame({c: grids[c].to_numpy() if c in grids.columns else None for c in keep})
    out["n_points"] = np.bincount(owner, minlength=n)
    total = np.bincount(owner, weights=w, minlength=n)
    out["weight"] = total
    local = grids.to_crs(points.crs) if points.crs is not None else grids
    out["area_m2"] = shapely.area(local.geometry.to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in walk.thresholds_min:
            covered = np.bincount(owner, weights=w * (dist <= walk.distance_for(t)), minlength=n)
            out[f"covered_{suffix(t)}"] = covered
            out[f"uncovered_{suffix(t)}"] = total - covered
            out[f"coverage_{suffix(t)}"] = np.where(total > 0, covered / total, np.nan)
        if tier_minutes and tier_walks:
            any_tier = np.zeros(len(points), dtype=bool)
            for tier, minutes in tier_minutes.items():
                if tier not in tier_walks:
                    continue
                d_t = tier_walks[tier]["dist_m"].to_numpy(dtype=float)
                hit = d_t <= walk.distance_for(minutes)
                any_tier |= hit
                cov_t = np.bincount(owner, weights=w * hit, minlength=n)
                out[f"covered_tier_{tier}"] = cov_t
                out[f"coverage_tier_{tier}"] = np.where(total > 0, cov_t / total, np.nan)
            cov = np.bincount(owner, weights=w * any_tier, minlength=n)
            out["covered_tiered"] = cov
            out["coverage_tiered"] = np.where(total > 0, cov / total, np.nan)
    out["walk_median_m"] = _weighted_quantiles(owner, dist, w, n, 0.5)
    out["walk_p90_m"] = _weighted_quantiles(owner, dist, w, n, 0.9)
    walk_min = np.full(n, np.inf)
    np.minimum.at(walk_min, owner, dist)
    out["walk_min_m"] = np.where(out["n_points"] > 0, walk_min, np.nan)
    if "leg_m" in walks.columns:
        leg = walks["leg_m"].to_numpy(dtype=float)
        for d in LONG_LEGS_M:
            over = np.bincount(owner, weights=w * (leg > d), minlength=n)
            out[f"leg_over_{d:g}m_weight"] = over
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"leg_over_{d:g}m_share"] = np.where(total > 0, over / total, np.nan)
    # the serving station: most of the grid's weight has it as nearest
    reached = st >= 0
    by = pd.DataFrame({"grid": owner[reached], "station": st[reached], "w": w[reached]})
    serve = np.full(n, -1, dtype=np.int64)
    if len(by):
        sums = by.groupby(["grid", "station"], sort=True)["w"].sum().reset_index()
        best = sums.sort_values(["grid", "w"], ascending=[True, False], kind="stable")
        best = best.drop_duplicates("grid")
        serve[best["grid"].to_numpy()] = best["station"].to_numpy()
    ids = stations["station_id"].to_numpy(dtype=object)
    names = (
        stations["name"].to_numpy(dtype=object)
        if "name" in stations.columns
        else np.full(len(stations), None, dtype=object)
    )
    out["station_id"] = np.where(serve >= 0, ids[np.maximum(serve, 0)], None)
    out["station_name"] = np.where(serve >= 0, names[np.maximum(serve, 0)], None)
    # the user's own columns (网格长, 备注 …) travel on, after ours, under their names
    for c in extra_columns(grids):
        if c not in out.columns:
            out[c] = grids[c].to_numpy()
    return gpd.GeoDataFrame(out, geometry=grids.to_crs(WGS84).geometry.to_numpy(), crs=WGS84)


def extra_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a user brought that no step of ours reads (网格长, 地址, 备注 …): not the
    geometry, not a column the reader mapped to ours (``attrs["source"]["columns"]``), not
    a column of ours."""
    read = set((frame.attrs.get("source") or {}).get("columns") or [])
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else "geometry"
    return [
        str(c)
        for c in frame.columns
        if c != geometry and c not in read and not is_reserved_column(str(c))
    ]


#: Column names the outputs use themselves (compared case-blind, as GeoPackage does).
_RESERVED = {"grid_id", "subdistrict", "community", "grid_name", "population", "area_m2",
             "rank", "fid", "ogc_fid", "geom", "geometry", "n_points", "weight", "station_id",
             "station_name", "gap_area_m2", "centroid_lon", "centroid_lat", "coverage_pct",
             "uncovered_weight", "lon", "lat", "level", "n_grids"}  # fmt: skip
_RESERVED_PREFIXES = ("covered_", "uncovered_", "coverage_", "walk_", "leg_over_")


def is_reserved_column(name: str) -> bool:
    """Whether ``name`` (any case) is one of the columns our tables write themselves."""
    low = name.lower()
    return low in _RESERVED or low.startswith(_RESERVED_PREFIXES)


# --------------------------------------------------------------------------- roll-ups


def _levels(grids: pd.DataFrame) -> list[str]:
    """Hierarchy columns present with at least one value (any subset works)."""
    return [c for c in HIERARCHY if c in grids.columns and grids[c].notna().any()]


def rollup(
    coverage: pd.DataFrame,
    thresholds_min: Sequence[float],
    *,
    warn: bool = True,
) -> pd.DataFrame:
    """Sum grid weights up the hierarchy 网格 → 社区 → 街道 → 区.

    Levels present in the grids (``subdistrict``, ``community``; any subset) are rolled
    up; a grid whose parent at such a level is missing goes to the group ``"unassigned"``
    and is reported with a warning. Coverage of a group is its covered weight over its
    total weight, never an average of its children's percentages.

    Returns
    -------
    DataFrame
        One row per group: ``level`` (``district``, ``subdistrict``, ``community``,
        ``grid``), the hierarchy names, ``n_grids``, ``weight`` and per threshold
        ``covered_<t>``, ``uncovered_<t>``, ``coverage_<t>``; district first.
    """
    levels = _levels(coverage)
    frame = pd.DataFrame(coverage.drop(columns="geometry", errors="ignore"))
    missing: dict[str, list[str]] = {}
    for c in levels:
        no_parent = frame[c].isna()
        if no_parent.any():
            missing[c] = frame.loc[no_parent, "grid_id"].astype(str).tolist()
            frame[c] = frame[c].astype(object).where(~no_parent, UNASSIGNED)
    if warn and missing:
        parts = [
            f"{len(ids)} grid(s) without a {HIERARCHY[c]} ({c}): {', '.join(ids[:5])}"
            + (" …" if len(ids) > 5 else "")
            for c, ids in missing.items()
        ]
        warnings.warn(
            "; ".join(parts) + f"; they are rolled up under {UNASSIGNED!r}",
            ServiceCircleWarning,
            stacklevel=2,
        )
    sums = ["weight"]
    for t in thresholds_min:
        sums += [f"covered_{suffix(t)}", f"uncovered_{suffix(t)}"]
    tiered = [c for c in frame.columns if c.startswith("covered_tier")]
    sums += tiered
    legs = [c for c in frame.columns if c.startswith("leg_over_") and c.endswith("_weight")]
    sums += legs
    frame["n_grids"] = 1
    blocks = []
    total = frame[["n_grids", *sums]].sum().to_frame().T
    total.insert(0, "level", "district")
    blocks.append(total)
    for depth in range(len(levels)):
        keys = levels[: depth + 1]
        g = frame.groupby(keys, sort=True, dropna=False)[["n_grids", *sums]].sum().reset_index()
        g.insert(0, "level", keys[-1])
        blocks.append(g)
    grid_rows = frame[[*levels, "grid_id", "grid_name", "n_grids", *sums]].copy()
    grid_rows.insert(0, "level", "grid")
    blocks.append(grid_rows)
    out = pd.concat(blocks, ignore_index=True)
    for c in ("subdistrict", "community", "grid_id", "grid_name"):
        if c not in out.columns:
            out[c] = None
    w = out["weight"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in thresholds_min:
            cov = out[f"covered_{suffix(t)}"].to_numpy(dtype=float)
            out[f"coverage_{suffix(t)}"] = np.where(w > 0, cov / w, np.nan)
        for c in tiered:
            cov = out[c].to_numpy(dtype=float)
            out[c.replace("covered_", "coverage_", 1)] = np.where(w > 0, cov / w, np.nan)
        for c in legs:
            over = out[c].to_numpy(dtype=float)
            out[c.removesuffix("_weight") + "_share"] = np.where(w > 0, over / w, np.nan)
    first = ["level", "subdistrict", "community", "grid_id", "grid_name", "n_grids", "weight"]
    rest = []
    for t in thresholds_min:
        rest += [f"covered_{suffix(t)}", f"uncovered_{suffix(t)}", f"coverage_{suffix(t)}"]
    for c in tiered:
        rest += [c, c.replace("covered_", "coverage_", 1)]
    for c in legs:
        rest += [c, c.removesuffix("_weight") + "_share"]
    out["n_grids"] = out["n_grids"].astype(np.int64)
    return out[first + rest]


# --------------------------------------------------------------------------- whole run


@dataclass
class CoverageResult:
    """Everything one coverage run produces.

    ``grids`` is the per-grid table (WGS84), ``points`` the demand points in the analysis
    CRS with ``dist_m``/``station``, ``rollup`` the hierarchy table, ``reach`` the
    multi-source node distances (reused for rings and gaps), ``points_snapped`` the demand
    points' positions on the network (reused for siting).
    """

    grids: gpd.GeoDataFrame
    points: gpd.GeoDataFrame
    rollup: pd.DataFrame
    reach: NodeReach
    walk: WalkSettings
    demand: dict[str, Any] = field(default_factory=dict)
    points_snapped: pd.DataFrame | None = None

    def long_legs(self) -> dict[float, float]:
        """Share (0–1) of the district's demand weight whose straight leg to its street is
        longer than each of :data:`LONG_LEGS_M` (m); beyond ``walk.max_leg_m`` a point is
        unreachable."""
        top = self.rollup[self.rollup["level"] == "district"].iloc[0]
        return {
            d: float(top[f"leg_over_{d:g}m_share"])
            for d in LONG_LEGS_M
            if f"leg_over_{d:g}m_share" in top.index
        }

    def summary(self) -> pd.DataFrame:
        """District coverage per threshold: covered weight, total and share (%)."""
        top = self.rollup[self.rollup["level"] == "district"].iloc[0]
        rows = []
        for t in self.walk.thresholds_min:
            rows.append(
                {
                    "threshold_min": t,
                    "distance_m": self.walk.distance_for(t),
                    "covered": top[f"covered_{suffix(t)}"],
                    "weight": top["weight"],
                    "coverage_pct": 100 * top[f"coverage_{suffix(t)}"],
                }
            )
        return pd.DataFrame(rows)


#: share of demand weight farther than ``max_snap_m`` from every street that warns / stops
OFF_NETWORK_WARN, OFF_NETWORK_ERROR = 0.05, 0.5


def _check_off_network(points: gpd.GeoDataFrame, walks: pd.DataFrame, far_m: float) -> None:
    """Demand far from every street means the grids reach past the network extract (or sit
    in another datum); their straight legs would pass for poor service. Warn, or stop."""
    w = points["weight"].to_numpy(dtype=float)
    far = walks["leg_m"].to_numpy(dtype=float) > far_m
    total = w.sum()
    if total <= 0 or not far.any():
        return
    share = w[far].sum() / total
    if share <= OFF_NETWORK_WARN:
        return
    per_grid = pd.Series(w * far).groupby(points["grid_id"].to_numpy()).sum()
    worst = per_grid[per_grid > 0].sort_values(ascending=False).index.astype(str).tolist()
    where = f"{len(worst)} grid(s), most in {', '.join(worst[:5])}{' …' if len(worst) > 5 else ''}"
    message = (
        f"{share:.0%} of the demand lies more than {far_m:g} m from every street of the "
        f"network ({where}) and counts as unreachable (max_leg_m={far_m:g}): the grids reach "
        "beyond the network extract, or one layer is in "
        "another datum. Use a network that covers all grids, or check the coordinate system "
        "declared for the grids"
    )
    if share > OFF_NETWORK_ERROR:
        raise InputError(message)
    warnings.warn(message, ServiceCircleWarning, stacklevel=3)


def compute_coverage(
    network: WalkNetwork,
    stations: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    stations_snapped: pd.DataFrame | None = None,
    walk: WalkSettings | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    lattice_m: float = DEFAULT_LATTICE_M,
    weight: Weight = "auto",
    tier_minutes: Mapping[str, float] | None = None,
) -> CoverageResult:
    """Coverage of every grid and the roll-ups, from network walk distances.

    Parameters
    ----------
    network
        The walking network (local UTM, metres).
    stations, grids
        Stations and red grids (any CRS; WGS84 as read).
    stations_snapped
        The stations' snapped positions, when already computed.
    walk
        Speed (m/min) and thresholds (min); default 60 m/min and 5/10/15 min.
    buildings
        Optional building footprints as demand points (otherwise a lattice).
    lattice_m
        Lattice spacing (m).
    weight
        ``"auto"``, ``"area"``, ``"footprint"``, ``"footprint_floors"``, ``"population"``.
    tier_minutes
        Optional own threshold (min) per station tier, e.g.
        ``{"district": 15, "subdistrict": 10, "station": 5}``.
    """
    walk = walk or WalkSettings()
    if len(grids) == 0:
        raise InputError("no grids: give at least one grid polygon (or generate grids)")
    if len(stations) == 0:
        raise InputError("no stations: give at least one station")
    snapped = stations_snapped if stations_snapped is not None else snap_stations(network, stations)
    points = demand_points(
        grids, crs=network.crs, buildings=buildings, lattice_m=lattice_m, weight=weight
    )
    reach = nearest_station(network, snapped)
    # demand points snap once; every tier's walks and siting reuse the positions
    points_snapped = snap_homes(
        network, points, edges=station_edges(network, snapped), front_m=walk.frontage_m
    )
    walks = walk_to_points(network, snapped, points, reach=reach, points_snapped=points_snapped)
    _check_off_network(points, walks, walk.max_leg_m)
    walks = unreachable_beyond(walks, walk.max_leg_m)
    tier_walks: dict[str, pd.DataFrame] = {}
    if tier_minutes:
        if "tier" not in stations.columns:
            raise InputError("per-tier thresholds need a tier column in the stations (级别/tier)")
        tiers = stations["tier"].to_numpy()
        for tier in tier_minutes:
            sel = np.flatnonzero(tiers == tier)
            if sel.size == 0:
                warnings.warn(
                    f"no station has tier {tier!r}; its coverage is 0",
                    ServiceCircleWarning,
                    stacklevel=2,
                )
            sub = snapped.iloc[sel]
            tier_walks[tier] = unreachable_beyond(
                walk_to_points(network, sub, points, points_snapped=points_snapped),
                walk.max_leg_m,
            )
    table = grid_coverage(
        grids,
        points,
        walks,
        stations,
        walk=walk,
        tier_minutes=tier_minutes,
        tier_walks=tier_walks,
    )
    points = points.assign(dist_m=walks["dist_m"].to_numpy(), station=walks["station"].to_numpy())
    empty = table.loc[table["weight"] <= 0, "grid_id"].astype(str).tolist()
    if empty:
        warnings.warn(
            f"{len(empty)} grid(s) have no demand (no buildings or population inside): "
            f"{', '.join(empty[:5])}{' …' if len(empty) > 5 else ''}; their coverage is blank",
            ServiceCircleWarning,
            stacklevel=2,
        )
    table.attrs["demand"] = points.attrs.get("demand", {})
    return CoverageResult(
        grids=table,
        points=points,
        rollup=rollup(table, walk.thresholds_min),
        reach=reach,
        walk=walk,
        demand=dict(points.attrs.get("demand", {})),
        points_snapped=points_snapped,
    )
