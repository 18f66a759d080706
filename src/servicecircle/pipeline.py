"""One analysis run: snap stations, reach, coverage, rings and gaps, with its metadata.

This is the sequence the CLI, the demo and the notebook share. It reads no files and
writes none: it takes a loaded network and input frames and returns every result, so the
edges (``cli``, ``demo``) decide what to read and write.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from servicecircle import __version__
from servicecircle.coverage import CoverageResult, Weight, compute_coverage
from servicecircle.datumfit import check_inputs
from servicecircle.errors import InputError
from servicecircle.gaps import MIN_GAP_M2, gap_list, gap_points, gap_polygons
from servicecircle.isochrones import reach_union_rings, station_rings
from servicecircle.network import without_avoidable_steps
from servicecircle.progress import Steps
from servicecircle.reach import station_reach
from servicecircle.settings import DEFAULT_LATTICE_M, WalkSettings
from servicecircle.snapping import drop_far_stations, snap_stations

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = ["Analysis", "analyse", "run_metadata"]


@dataclass
class Analysis:
    """Everything one run produced; frames for the web are in WGS84, rings in the UTM."""

    network: WalkNetwork
    stations: gpd.GeoDataFrame
    stations_snapped: pd.DataFrame
    coverage: CoverageResult
    union_rings: gpd.GeoDataFrame
    station_rings: gpd.GeoDataFrame | None
    gap_polygons: gpd.GeoDataFrame
    gap_points: gpd.GeoDataFrame
    gap_list: pd.DataFrame
    gap_threshold_min: float
    metadata: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)
    #: stations left out for lying farther than ``walk.max_snap_m`` from the network, with
    #: ``leg_m`` and ``problem`` columns (empty when none); ``stations`` holds the others
    dropped_stations: gpd.GeoDataFrame | None = None
    #: the grids and options the analysis ran with (for :meth:`with_sites`)
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """Per-grid coverage (WGS84)."""
        return self.coverage.grids

    @property
    def rollup(self) -> pd.DataFrame:
        """Roll-up table 网格 → 社区 → 街道 → 区."""
        return self.coverage.rollup

    def worst_grids(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` grids with the most uncovered weight at the gap threshold."""
        return self.gap_list.head(n)

    def summary(self) -> pd.DataFrame:
        """District coverage per threshold: ``threshold_min``, ``distance_m`` (m),
        ``covered`` and ``weight`` (demand weight) and ``coverage_pct`` (0–100)."""
        return self.coverage.summary()

    @property
    def layers(self) -> dict[str, pd.DataFrame]:
        """Every product by name, as :meth:`to_files` writes them: ``grids``, ``rollup``,
        ``gap_list``, ``stations``, ``stations_dropped`` (when any), ``rings`` (per
        station, when made), ``rings_union``, ``gaps`` and ``gap_points``."""
        out: dict[str, Any] = {
            "grids": self.grids,
            "rollup": self.rollup,
            "gap_list": self.gap_list,
            "stations": self.stations,
            "stations_dropped": self.dropped_stations,
            "rings": self.station_rings,
            "rings_union": self.union_rings,
            "gaps": self.gap_polygons,
            "gap_points": self.gap_points,
        }
        return {
            k: v for k, v in out.items() if v is not None and (len(v) or k != "stations_dropped")
        }

    def to_files(
        self,
        out_dir: str | Path,
        *,
        formats: Sequence[str] = ("csv", "geojson", "gpkg"),
        stem: str = "coverage",
        encoding: str = "utf-8-sig",
        overwrite: bool = False,
    ) -> list[Path]:
        """Write :attr:`layers` as one output set, the folder ``out_dir`` (see
        :func:`~servicecircle.exports.export_all`: it appears whole or not at all, with a
        manifest; an earlier set is replaced only with ``overwrite``)."""
        from servicecircle.exports import export_all

        return export_all(
            out_dir,
            self.layers,
            metadata=self.metadata,
            formats=formats,
            stem=stem,
            encoding=encoding,
            overwrite=overwrite,
            csv_layers=("grids", "rollup", "gap_list", "stations_dropped"),
        )

    def explore(
        self,
        *,
        threshold_min: float | None = None,
        tiles: str | None = "OpenStreetMap",
        resources: gpd.GeoDataFrame | None = None,
        sites: gpd.GeoDataFrame | None = None,
    ) -> Any:
        """The planner's map of this analysis as a :class:`folium.Map` (shown inline in a
        notebook): grids by coverage at ``threshold_min`` (default the gap threshold),
        rings, gaps, stations, and optionally resources and proposed sites."""
        from servicecircle import webmap

        return webmap.coverage_map(
            self.grids,
            self.stations,
            rings=self.union_rings,
            gaps=self.gap_polygons,
            resources=resources,
            sites=sites,
            metadata=self.metadata,
            threshold_min=threshold_min if threshold_min is not None else self.gap_threshold_min,
            tiles=tiles,
        )

    def with_sites(self, sites: gpd.GeoDataFrame) -> Analysis:
        """The scenario with ``sites`` built: a new analysis whose stations are these plus
        the sites (tier ``station``; id ``site_id`` or ``station_id``, and ``name``), on the
        same network, grids and settings. Compare ``before.summary()`` with
        ``after.summary()``."""
        if "grids" not in self.options:
            raise InputError("this Analysis does not know its inputs; run analyse() again")
        ids = sites["site_id"] if "site_id" in sites.columns else sites["station_id"]
        names = sites["name"] if "name" in sites.columns else ids
        new = gpd.GeoDataFrame(
            {"station_id": ids.astype(str).to_numpy(), "name": names.to_numpy(),
             "tier": "station"},
            geometry=sites.geometry.to_crs(self.stations.crs).to_numpy(),
            crs=self.stations.crs,
        )  # fmt: skip
        both = gpd.GeoDataFrame(
            pd.concat([self.stations, new], ignore_index=True),
            geometry="geometry",
            crs=self.stations.crs,
        )
        both.attrs = dict(self.stations.attrs)
        return analyse(self.network, both, **self.options)


def run_metadata(
    network: WalkNetwork,
    walk: WalkSettings,
    *,
    inputs: Mapping[str, gpd.GeoDataFrame | None] | None = None,
    demand: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The settings and data sources a result was made with (written into every export).

    Keys: ``tool``, ``version``, ``created`` (ISO 8601, UTC), ``walk`` (speed m/min,
    thresholds min, distances m, frontage m), ``analysis_crs``, ``network`` (file, OSM
    date, SHA-256), ``inputs`` (file and declared CRS of each input) and ``demand``.
    """
    src = network.source
    meta: dict[str, Any] = {
        "tool": "servicecircle",
        "version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "walk": walk.as_dict(),
        "analysis_crs": network.crs.to_string(),
        "network": {
            "source": src.get("file") or src.get("path") or src.get("kind"),
            "osm_date": src.get("osm_date"),
            "sha256": src.get("sha256"),
        },
        "inputs": {},
        "demand": dict(demand or {}),
    }
    for key, frame in (inputs or {}).items():
        if frame is None:
            continue
        info = frame.attrs.get("source", {})
        meta["inputs"][key] = {
            "file": info.get("file", info.get("kind", "generated")),
            "crs": info.get("crs", "EPSG:4326"),
            "rows": len(frame),
        }
    meta.update(extra or {})
    return meta


def analyse(
    network: WalkNetwork,
    stations: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    walk: WalkSettings | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    lattice_m: float = DEFAULT_LATTICE_M,
    weight: Weight = "auto",
    tier_minutes: Mapping[str, float] | None = None,
    gap_threshold_min: float | None = None,
    min_gap_m2: float = MIN_GAP_M2,
    per_station_rings: bool = True,
    inputs: Mapping[str, gpd.GeoDataFrame | None] | None = None,
    steps: Steps | None = None,
    trust_crs: bool = False,
) -> Analysis:
    """Coverage, rings and gaps of ``stations`` over ``grids`` on ``network``.

    Parameters
    ----------
    network
        Walking network (local UTM, metres).
    stations, grids
        As read by :mod:`servicecircle.inputs` (or generated grids), any CRS. Stations
        farther than ``walk.max_snap_m`` from the network are left out of every result
        with a warning (:func:`~servicecircle.snapping.drop_far_stations`): the
        ``Analysis``'s ``stations`` are the kept ones, ``dropped_stations`` the others,
        and the metadata lists them (``stations_dropped``).
    walk
        Speed, thresholds (min), frontage (m) and ``max_snap_m``.
    buildings, lattice_m, weight, tier_minutes
        Demand and tier options of :func:`~servicecircle.coverage.compute_coverage`.
    gap_threshold_min
        The threshold (min) the gap list ranks by; default the smallest (5 min).
    min_gap_m2
        Gap pieces smaller than this (m²) are dropped as slivers.
    per_station_rings
        Also make each station's own nested rings (for the map); the union rings are
        always made.
    inputs
        Input frames whose ``attrs["source"]`` goes into the metadata.
    steps
        Progress reporter (quiet when not a terminal).
    trust_crs
        Keep every input's declared coordinate system even where another reading of its
        numbers (WGS84, GCJ-02, BD-09) fits the streets clearly better; without it such an
        input stops the analysis with a :class:`~servicecircle.errors.CRSError` naming the
        reading to declare (:func:`~servicecircle.datumfit.check_inputs`).
    """
    walk = walk or WalkSettings()
    steps = steps or Steps(4, enabled=False)
    gap_t = float(gap_threshold_min if gap_threshold_min is not None else walk.thresholds_min[0])
    if not (math.isfinite(gap_t) and gap_t > 0):
        raise InputError(f"gap_threshold_min must be positive minutes, got {gap_threshold_min}")
    if len(stations) == 0:
        raise InputError("no stations: give at least one station")
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if walk.avoid_steps:  # e.g. the elderly preset: steps only where no other way exists
        network = without_avoidable_steps(network)
    # a wrong datum puts every input half a kilometre off: test them against the streets
    checked = {"stations": stations, "grids": grids, "buildings": buildings, **(inputs or {})}
    fits = check_inputs(network, checked, trust_crs=trust_crs)
    with steps.step(f"Snapping {len(stations)} stations to the network") as note:
        snapped = snap_stations(network, stations)
        # far stations are left out of everything below, so every product sees one set
        stations, snapped, dropped = drop_far_stations(
            network, stations, snapped, max_snap_m=walk.max_snap_m
        )
        note(
            f"median distance to the network {snapped['leg_m'].median():.0f} m"
            + (f"; {len(dropped)} too far, left out" if len(dropped) else "")
        )
    with steps.step(f"Coverage of {len(grids)} grids") as note:
        cov = compute_coverage(
            network,
            stations,
            grids,
            stations_snapped=snapped,
            walk=walk,
            buildings=buildings,
            lattice_m=lattice_m,
            weight=weight,
            tier_minutes=tier_minutes,
        )
        summary = cov.summary()
        note(
            f"{len(cov.points):,} demand points; "
            + ", ".join(
                f"{t:g} min {p:.1f}%"
                for t, p in zip(summary["threshold_min"], summary["coverage_pct"], strict=True)
            )
        )
    timings["coverage"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    distances = [walk.distance_for(t) for t in walk.thresholds_min]
    with steps.step(f"Walking rings {', '.join(f'{t:g}' for t in walk.thresholds_min)} min"):
        union = reach_union_rings(
            network,
            cov.reach,
            snapped,
            distances_m=distances,
            thresholds_min=walk.thresholds_min,
            frontage_m=walk.frontage_m,
        )
        rings = None
        if per_station_rings:
            sreach = station_reach(network, snapped, limit_m=max(distances))
            rings = station_rings(
                network,
                stations,
                snapped,
                sreach,
                distances_m=distances,
                thresholds_min=walk.thresholds_min,
                frontage_m=walk.frontage_m,
            )
    timings["rings"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with steps.step(f"Gaps at {gap_t:g} min") as note:
        polys = gap_polygons(cov.grids, union, crs=network.crs, min_area_m2=min_gap_m2)
        pts = gap_points(
            cov.points, stations, distance_m=walk.distance_for(gap_t), threshold_min=gap_t
        )
        table = gap_list(cov.grids, threshold_min=gap_t, polygons=polys, points=pts)
        note(f"{len(table)} grids with uncovered demand")
    timings["gaps"] = time.perf_counter() - t0

    meta = run_metadata(
        network,
        walk,
        inputs={"stations": stations, "grids": grids, **(inputs or {})},
        demand=cov.demand,
        extra={"gap_threshold_min": gap_t, "min_gap_m2": min_gap_m2},
    )
    meta["stations_dropped"] = [
        {"station_id": str(r.get("station_id", "")), "name": r.get("name"),
         "leg_m": round(float(r["leg_m"]), 1)}
        for _, r in dropped.iterrows()
    ]  # fmt: skip
    if tier_minutes:
        meta["tier_minutes"] = dict(tier_minutes)
    for name, fit in fits.items():
        if name in meta["inputs"]:
            meta["inputs"][name]["datum_fit"] = {
                "verdict": fit.verdict,
                "trusted": trust_crs and fit.verdict == "wrong",
                "median_m": {r.reading: round(r.median_m, 1) for r in fit.readings},
            }
    options = {
        "grids": grids,
        "walk": walk,
        "buildings": buildings,
        "lattice_m": lattice_m,
        "weight": weight,
        "tier_minutes": tier_minutes,
        "gap_threshold_min": gap_threshold_min,
        "min_gap_m2": min_gap_m2,
        "per_station_rings": per_station_rings,
        "inputs": inputs,
        "trust_crs": trust_crs,
    }
    return Analysis(
        options=options,
        network=network,
        stations=stations,
        stations_snapped=snapped,
        coverage=cov,
        union_rings=union,
        station_rings=rings,
        gap_polygons=polys,
        gap_points=pts,
        gap_list=table,
        gap_threshold_min=gap_t,
        metadata=meta,
        timings_s=timings,
        dropped_stations=dropped,
    )
