"""Write results as CSV (for Excel), GeoJSON (RFC 7946) and GeoPackage, with their settings.

Formats
-------
CSV
    UTF-8 with a byte-order mark (``utf-8-sig``) so Excel and WPS show Chinese names intact;
    ``encoding="gbk"`` for old Excel versions (a value GBK cannot hold stops the export with
    the column, row and character named). ``\\r\\n`` line ends, comma separated, geometry
    dropped (point layers get ``lon``/``lat`` columns in WGS84 degrees), empty cell = unknown
    or unreachable (``NaN`` and ``inf``). Text cells that Excel would run as a formula get a
    leading ``'`` (see :func:`write_csv`).
GeoJSON
    RFC 7946: WGS84 longitude/latitude (layers in another CRS are reprojected), at most 7
    decimals (≈ 1 cm), no ``crs`` member, UTF-8. The settings are also embedded as a
    foreign member ``"servicecircle"`` of the FeatureCollection (GDAL ≥ 3.9).
GeoPackage
    One file, one layer per entry (grids, stations, rings, gaps, gap points; tables such as
    the roll-up as attribute tables), all in WGS84, plus an attribute table ``settings``
    (key, value). Every layer carries the settings as GPKG layer metadata: key
    ``servicecircle`` holds the whole metadata as JSON.

Every output ``X`` also gets a sidecar ``X.meta.json`` with the metadata dict (tool, version,
walking speed, thresholds and distances, frontage, analysis CRS, network source and OSM date,
inputs, demand model), plus the file's format, encoding, rows and a description with units
of every column.

Values are rounded for reading, the same in every format: metres and m² to 0.1, shares
(``coverage_*``) to 4 decimals, percentages and weights to 0.01, longitudes/latitudes to 7
decimals. ``inf`` (unreachable) is written as empty/null.

Existing outputs and inputs
---------------------------
An output that already exists (the file or its sidecar) is refused with an
:class:`~servicecircle.errors.ExportError` unless ``overwrite=True`` (``--overwrite``); then it
is replaced in one rename. Outputs never replace an input file, not even with ``overwrite``:
paths in ``protect`` and the ``attrs["source"]["path"]`` of every layer (and
``metadata["inputs"][...]["path"]``) are checked by resolved path and by inode. Every file is
written to a temporary file in the target folder and renamed when complete, so a failed
export leaves no partial file and the previous output untouched.
"""

from __future__ import annotations

import codecs
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pandas.api.types as ptypes
import pyogrio
import pyogrio.errors

from servicecircle.errors import ExportError
from servicecircle.fileio import OutputSet, atomic_path, refuse_inputs

__all__ = [
    "DEFAULT_CSV_LAYERS",
    "FORMATS",
    "check_encoding",
    "describe_columns",
    "export_all",
    "input_paths",
    "prepare_metadata",
    "sidecar_path",
    "write_csv",
    "write_geojson",
    "write_gpkg",
    "write_layers",
]

FORMATS = ("csv", "geojson", "gpkg")
#: Layers that get a CSV in :func:`export_all` (tables without geometry always do).
DEFAULT_CSV_LAYERS = ("grids", "rollup", "gap_list", "stations_dropped")
WGS84 = "EPSG:4326"
#: Name of the GeoPackage attribute table with the flattened settings.
SETTINGS_TABLE = "settings"
_COORD_DECIMALS = 7  # 1e-7 degree ≈ 1 cm
_GDAL_FOREIGN_MEMBERS = pyogrio.__gdal_version__ >= (3, 9, 0)


# --------------------------------------------------------------------------------------------
# public writers


def write_csv(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    metadata: Mapping[str, Any] | None = None,
    encoding: str = "utf-8-sig",
    overwrite: bool = False,
    protect: Iterable[str | Path] = (),
    formula_guard: bool = True,
) -> Path:
    """Write a table as an Excel-friendly CSV plus its ``.meta.json`` sidecar.

    Excel and WPS evaluate a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
    return as a formula (CWE-1236), so such text cells (names from the inputs) are written
    with a leading ``'``; numbers and empty cells are never changed.

    Parameters
    ----------
    frame
        A DataFrame or GeoDataFrame; geometry is dropped, points become ``lon``/``lat``
        (WGS84 degrees) unless those columns exist. Column order is kept.
    path
        Output file; its folder is created when missing.
    metadata
        Settings to record in the sidecar (see :func:`prepare_metadata`); default
        ``frame.attrs["settings"]``.
    encoding
        ``"utf-8-sig"`` (UTF-8 with BOM, default, opens in Excel 2016+/WPS), ``"gbk"`` for
        old Excel, or any Python codec. A value the codec cannot hold raises
        :class:`ExportError` naming column, row (as Excel numbers it) and character.
    overwrite
        Replace an existing output; otherwise an existing output is an error.
    protect
        Input files that must never be written over (checked even with ``overwrite``).
    formula_guard
        Prefix formula-like text cells and column names (input attributes pass through)
        with ``'`` (default); ``False`` writes them as given. The sidecar records
        ``export.formula_guard``: ``applied``, ``cells_changed`` and ``headers_changed``.

    Returns
    -------
    Path
        The CSV written.
    """
    path = Path(path)
    encoding = check_encoding(encoding)
    table = _csv_table(frame)
    _check_encodable(table, encoding, path)  # first: errors show the values as given
    changed = headers = 0
    if formula_guard:
        table, changed = _guard_formulas(table)
        table, headers = _guard_headers(table)
    meta = prepare_metadata(metadata if metadata is not None else _settings_of(frame))
    side = _sidecar(
        meta,
        path,
        fmt="csv",
        layers=[_layer_info(path.stem, table, meta)],
        encoding=encoding,
        formula_guard={
            "applied": formula_guard,
            "cells_changed": changed,
            "headers_changed": headers,
        },
    )
    _check_targets(
        [path, sidecar_path(path)], _protected(protect, [frame], meta), overwrite=overwrite
    )
    # the sidecar's rename comes second: a failure never leaves a sidecar without its data
    with _Writing(sidecar_path(path)) as tmp_side, _Writing(path) as tmp:
        table.to_csv(tmp, index=False, encoding=encoding, lineterminator="\r\n")
        _write_json(tmp_side, side)
    return path


def write_geojson(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    protect: Iterable[str | Path] = (),
    sidecar: bool = True,
) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84 lon/lat, ≤ 7 decimals, UTF-8) plus sidecar.

    A layer in another CRS (e.g. UTM rings) is reprojected to EPSG:4326. The settings are
    embedded as the FeatureCollection's foreign member ``"servicecircle"`` and written to
    ``<path>.meta.json`` (``sidecar=False``: only embedded, so a standalone file is replaced
    in one rename, never beside a sidecar of another run). ``overwrite`` and ``protect`` as
    in :func:`write_csv`.
    """
    path = Path(path)
    layer = _spatial(gdf, path.stem)
    meta = prepare_metadata(metadata if metadata is not None else _settings_of(gdf))
    side = _sidecar(
        meta, path, fmt="geojson", layers=[_layer_info(path.stem, layer, meta)], encoding="utf-8"
    )
    targets = [path, sidecar_path(path)] if sidecar else [path]
    _check_targets(targets, _protected(protect, [gdf], meta), overwrite=overwrite)
    options: dict[str, Any] = {
        "RFC7946": "YES",
        "COORDINATE_PRECISION": _COORD_DECIMALS,
        "WRITE_NAME": "NO",
    }
    if _GDAL_FOREIGN_MEMBERS:
        options["FOREIGN_MEMBERS_COLLECTION"] = json.dumps(
            {"servicecircle": meta}, ensure_ascii=False, allow_nan=False
        )
    with _Writing(path) as tmp:
        # promote_to_multi=False: GeoJSON may mix Polygon and MultiPolygon, keep them as read
        pyogrio.write_dataframe(
            layer, tmp, driver="GeoJSON", promote_to_multi=False, layer_options=options
        )
    if sidecar:  # after the data: a failure never leaves a sidecar without its data
        with _Writing(sidecar_path(path)) as tmp_side:
            _write_json(tmp_side, side)
    return path


def write_gpkg(
    path: str | Path,
    layers: Mapping[str, pd.DataFrame | Iterable[gpd.GeoDataFrame] | None],
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    protect: Iterable[str | Path] = (),
    sidecar: bool = True,
) -> Path:
    """Write one GeoPackage with a layer per entry of ``layers`` plus its sidecar.

    GeoDataFrames become spatial layers in WGS84 (mixed Polygon/MultiPolygon are promoted to
    MultiPolygon); plain DataFrames become attribute tables; ``None`` entries are skipped. An
    extra attribute table ``settings`` (key, value) lists the flattened metadata, and every
    layer holds it as GPKG layer metadata (key ``servicecircle``: the metadata as JSON) and a
    description. The whole file is built under a temporary name and renamed when complete.

    Parameters
    ----------
    path
        Output ``.gpkg`` file.
    layers
        Layer name (letters, digits, ``_``, ``-``) to frame, in the order to write. A value
        may also be an iterator of GeoDataFrames with the same columns and types (such as
        :func:`~servicecircle.isochrones.iter_station_rings`): that layer is streamed, one
        chunk held at a time, and a polygon layer is written as MultiPolygon. An empty
        stream is refused (its columns are unknown).
    metadata
        Settings (see :func:`prepare_metadata`); default: the first ``attrs["settings"]``
        found on the (whole) layers.
    overwrite, protect
        As in :func:`write_csv`.
    sidecar
        Also write ``<path>.meta.json``; ``False``: the settings live only inside the file.
    """
    path = Path(path)
    frames = {name: frame for name, frame in layers.items() if frame is not None}
    if not frames:
        raise ValueError("write_gpkg needs at least one layer")
    for name in frames:
        _check_layer_name(name)
    if SETTINGS_TABLE in frames:
        raise ValueError(f"layer name {SETTINGS_TABLE!r} is reserved for the settings table")
    whole = {name: f for name, f in frames.items() if not _is_stream(f)}
    if metadata is None:
        metadata = next((_settings_of(f) for f in whole.values() if _settings_of(f)), {})
    meta = prepare_metadata(metadata)
    tables = {
        name: _spatial(f, name) if _is_spatial(f) else _tidy(pd.DataFrame(f))
        for name, f in whole.items()
    }
    _check_targets(
        [path, sidecar_path(path)] if sidecar else [path],
        _protected(protect, whole.values(), meta),
        overwrite=overwrite,
    )
    meta_json = json.dumps(meta, ensure_ascii=False, allow_nan=False)
    settings = pd.DataFrame(list(_flatten(meta).items()), columns=["key", "value"])
    with _Writing(path) as tmp:
        # GDAL wants a .gpkg extension; build beside the temp file, then move onto it
        work = tmp.with_name(tmp.name.removesuffix(".tmp") + ".gpkg")
        try:
            infos = []
            for name, frame in frames.items():
                if name in tables:
                    infos.append(_write_layer(work, name, [tables[name]], meta, meta_json))
                else:  # streamed chunk by chunk: only one chunk is held at a time
                    chunks = _stream_chunks(name, frame)
                    infos.append(_write_layer(work, name, chunks, meta, meta_json, streamed=True))
            pyogrio.write_dataframe(
                settings,
                work,
                driver="GPKG",
                layer=SETTINGS_TABLE,
                layer_metadata={"servicecircle": meta_json},
                layer_options={"DESCRIPTION": "servicecircle export settings (key, value)"},
            )
            os.replace(work, tmp)
        finally:
            for leftover in (work, *(Path(f"{work}{s}") for s in _SQLITE_SIDE_FILES)):
                leftover.unlink(missing_ok=True)
            for frame in frames.values():  # a stream left part-way runs its own clean-up
                if _is_stream(frame) and hasattr(frame, "close"):
                    frame.close()
    if sidecar:  # after the data: a failure never leaves a sidecar without its data
        with _Writing(sidecar_path(path)) as tmp_side:
            _write_json(tmp_side, _sidecar(meta, path, fmt="gpkg", layers=infos, encoding="utf-8"))
    return path


def _write_layer(
    work: Path,
    name: str,
    chunks: Iterable[pd.DataFrame],
    meta: Mapping[str, Any],
    meta_json: str,
    *,
    streamed: bool = False,
) -> dict[str, Any]:
    """Write one GPKG layer from its chunk(s), appending after the first; its sidecar info."""
    info: dict[str, Any] | None = None
    rows, types, promote = 0, set(), None
    for i, table in enumerate(chunks):
        spatial = isinstance(table, gpd.GeoDataFrame)
        kwargs: dict[str, Any] = {"append": True}
        if info is None:
            info = _layer_info(name, table, meta)
            kwargs = {
                "layer_metadata": {"servicecircle": meta_json},
                "layer_options": {"DESCRIPTION": info["description"]},
            }
            columns, dtypes = list(table.columns), table.dtypes
            # a streamed polygon layer may meet a MultiPolygon only in a later chunk
            shapes = set(info.get("geometry_types", ()))
            polygonal = bool(shapes) and shapes <= {"Polygon", "MultiPolygon"}
            promote = True if streamed and spatial and polygonal else None
        else:
            # GDAL appends fields by position and casts to the first chunk's field types
            table = _like_first(name, i, table, columns, dtypes)
        if spatial:
            kwargs["promote_to_multi"] = promote
            types |= set(table.geometry.geom_type.dropna())
        pyogrio.write_dataframe(table, work, driver="GPKG", layer=name, **kwargs)
        rows += len(table)
    if info is None:
        raise ValueError(f"layer {name!r} came with no chunk to write")
    info["rows"] = rows
    if "geometry_types" in info:
        info["geometry_types"] = sorted(types)
    return info


def _is_stream(frame: Any) -> bool:
    """A layer given as chunks: an iterable that is no frame, series or mapping."""
    return isinstance(frame, Iterable) and not isinstance(
        frame, pd.DataFrame | pd.Series | Mapping | str | bytes
    )


def _stream_chunks(name: str, stream: Iterable[Any]) -> Iterator[gpd.GeoDataFrame]:
    for i, chunk in enumerate(stream):
        if not _is_spatial(chunk):
            raise ValueError(
                f"layer {name!r}: chunk {i} is a {type(chunk).__name__}, not a GeoDataFrame "
                "with a geometry column; a streamed layer takes GeoDataFrames only"
            )
        yield _spatial(chunk, name)


def _like_first(
    name: str, i: int, table: pd.DataFrame, columns: list[str], dtypes: pd.Series
) -> pd.DataFrame:
    """Chunk ``i`` of a streamed layer in the first chunk's column order, or an error."""
    if set(table.columns) != set(columns):
        missing = sorted(set(columns) - set(table.columns))
        extra = sorted(set(table.columns) - set(columns))
        raise ValueError(
            f"layer {name!r}: chunk {i} has other columns than the first chunk "
            f"(missing {missing}, extra {extra}); every chunk needs the same columns"
        )
    table = table[columns]
    for col in columns:
        a, b = dtypes[col], table.dtypes[col]
        # ints widen into a float field and text is text (object or str dtype); anything
        # else would be cast or truncated by GDAL
        text = all(ptypes.is_string_dtype(x) or ptypes.is_object_dtype(x) for x in (a, b))
        if a != b and not text and not (a.kind in "iuf" and b.kind in "iu"):
            raise ValueError(
                f"layer {name!r}: column {col!r} is {b} in chunk {i} but {a} in the first "
                "chunk; every chunk needs the same column types"
            )
    return table


_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm", ".aux.xml")


def export_all(
    out_dir: str | Path,
    layers: Mapping[str, pd.DataFrame | None],
    *,
    metadata: Mapping[str, Any] | None = None,
    formats: Sequence[str] = FORMATS,
    stem: str = "coverage",
    encoding: str = "utf-8-sig",
    overwrite: bool = False,
    protect: Iterable[str | Path] = (),
    csv_layers: Sequence[str] = DEFAULT_CSV_LAYERS,
    formula_guard: bool = True,
    run: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write every layer in the chosen formats as one output set ``out_dir``; return the files.

    Files (each with a ``.meta.json`` sidecar), plus the set's ``manifest.json``:

    * ``csv``: ``{stem}_{name}.csv`` for each layer named in ``csv_layers`` and for every
      table without geometry (e.g. ``rollup``, ``gap_list``);
    * ``geojson``: ``{stem}_{name}.geojson`` for each spatial layer;
    * ``gpkg``: ``{stem}.gpkg`` with all layers.

    The folder appears whole or not at all (:class:`~servicecircle.fileio.OutputSet`): the
    files are written into a staging folder beside it that takes its place when complete,
    so a failure or a kill part-way leaves the previous set untouched.

    Parameters
    ----------
    out_dir
        The output set's folder (e.g. ``maps/coverage``). It must be absent, empty, or an
        earlier output set (then ``overwrite`` is needed); other folders are refused.
    layers
        Name (letters, digits, ``_``, ``-``) to frame; ``None`` entries are skipped.
    metadata
        Settings; default: the first ``attrs["settings"]`` found on the layers.
    formats
        Any of ``"csv"``, ``"geojson"``, ``"gpkg"``.
    stem
        Prefix of the file names.
    encoding
        CSV encoding (``"utf-8-sig"`` or ``"gbk"``, see :func:`write_csv`).
    overwrite
        Replace an earlier output set in ``out_dir``.
    protect
        Input files: never written, and ``out_dir`` must not hold one. The inputs named by
        the layers' ``attrs["source"]`` and the metadata are added.
    csv_layers
        Spatial layers that also get a CSV (attributes only).
    formula_guard
        Quote formula-like text cells in the CSVs (see :func:`write_csv`); GeoJSON and
        GeoPackage always keep the values as given.
    run
        Facts for the set's manifest (e.g. ``{"command": "coverage"}``).
    """
    frames = {name: f for name, f in layers.items() if f is not None}
    if metadata is None:
        metadata = next((_settings_of(f) for f in frames.values() if _settings_of(f)), {})
    meta = prepare_metadata(metadata)
    guard = _protected(protect, frames.values(), meta)
    with OutputSet(out_dir, overwrite=overwrite, inputs=guard, run=run) as out:
        assert out.staging is not None
        written = write_layers(
            out.staging,
            frames,
            metadata=meta,
            formats=formats,
            stem=stem,
            encoding=encoding,
            csv_layers=csv_layers,
            formula_guard=formula_guard,
        )
    return [Path(out_dir) / p.name for p in written]


def write_layers(
    folder: str | Path,
    layers: Mapping[str, pd.DataFrame | None],
    *,
    metadata: Mapping[str, Any] | None = None,
    formats: Sequence[str] = FORMATS,
    stem: str = "coverage",
    encoding: str = "utf-8-sig",
    csv_layers: Sequence[str] = DEFAULT_CSV_LAYERS,
    formula_guard: bool = True,
) -> list[Path]:
    """Write every layer in the chosen formats into ``folder`` (a fresh one, such as an
    :class:`~servicecircle.fileio.OutputSet`'s staging folder); return the data files.

    The files are those of :func:`export_all`; an existing file of the same name is an error.
    """
    folder = Path(folder)
    wanted = [f.strip().lower() for f in formats]
    unknown = sorted(set(wanted) - set(FORMATS))
    if unknown or not wanted:
        raise ExportError(
            f"unknown export format(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(FORMATS)}"
        )
    _check_layer_name(stem)
    frames = {name: f for name, f in layers.items() if f is not None}
    for name in frames:
        _check_layer_name(name)
    if metadata is None:
        metadata = next((_settings_of(f) for f in frames.values() if _settings_of(f)), {})
    meta = prepare_metadata(metadata)
    encoding = check_encoding(encoding)

    jobs: list[tuple[Path, Any]] = []
    if "csv" in wanted:
        for name, f in frames.items():
            if name in csv_layers or not _is_spatial(f):
                jobs.append((folder / f"{stem}_{name}.csv", f))
    if "geojson" in wanted:
        for name, f in frames.items():
            if _is_spatial(f):
                jobs.append((folder / f"{stem}_{name}.geojson", f))
    if "gpkg" in wanted:
        jobs.append((folder / f"{stem}.gpkg", frames))
    _check_targets([p for path, _ in jobs for p in (path, sidecar_path(path))], [], overwrite=False)

    written: list[Path] = []
    for path, what in jobs:
        if path.suffix == ".csv":
            write_csv(what, path, metadata=meta, encoding=encoding, formula_guard=formula_guard)
        elif path.suffix == ".geojson":
            write_geojson(what, path, metadata=meta)
        else:
            write_gpkg(path, what, metadata=meta)
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# metadata


def sidecar_path(path: str | Path) -> Path:
    """The metadata sidecar of an output: ``grids.csv`` → ``grids.csv.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def prepare_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe copy of ``metadata`` with ``tool``, ``version`` and ``created`` filled in.

    NaN/inf become ``None``; numpy values, paths, dates and CRS objects become plain JSON
    values. Missing keys stay missing (consumers must cope), extra keys are kept.
    """
    from servicecircle import __version__  # late: servicecircle/__init__ may import us later

    given = _jsonable(dict(metadata or {}))
    out = {
        "tool": "servicecircle",
        "version": __version__,
        "created": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
    }
    out.update(given)
    return out


def input_paths(frames: Iterable[Any], metadata: Mapping[str, Any] | None = None) -> list[Path]:
    """Input files named by ``attrs["source"]["path"]`` of frames and ``metadata["inputs"]``.

    Also ``metadata["network"]["path"]`` when present. Used to refuse writing over inputs.
    """
    found: list[Any] = []
    for frame in frames:
        attrs = getattr(frame, "attrs", None) or {}
        source = attrs.get("source")
        if isinstance(source, Mapping):
            found.append(source.get("path"))
    meta = metadata or {}
    inputs = meta.get("inputs")
    if isinstance(inputs, Mapping):
        found.extend(v.get("path") for v in inputs.values() if isinstance(v, Mapping))
    network = meta.get("network")
    if isinstance(network, Mapping):
        found.append(network.get("path"))
    return [Path(p) for p in found if isinstance(p, str | os.PathLike) and str(p)]


_FIXED_DESCRIPTIONS = {
    "rank": "pick order (1 = largest gain); in gap lists, 1 = most uncovered demand",
    "source": "candidate kind: node (street junction), grid (grid centre on its street), premises",
    "candidate_name": "streets at the junction, grid name or premises name",
    "gain_share": "share 0–1 of all demand weight newly covered by the site",
    "cum_weight": "demand weight covered after this pick, existing stations included",
    "cum_share": "share 0–1 of the demand weight covered after this pick, existing stations "
    "included",
    "grid_id": "red grid (网格) id from the grids input",
    "subdistrict": "subdistrict (街道); 'unassigned' in roll-ups when missing",
    "community": "community (社区); 'unassigned' in roll-ups when missing",
    "grid_name": "grid name (网格名称)",
    "population": "residents from the grids input; empty when unknown",
    "n_points": "number of demand points in the grid",
    "weight": "total demand weight (unit: see demand.weight — m² of buildings, "
    "m² × floors, or persons)",
    "area_m2": "area, m²",
    "walk_median_m": "weighted median walking distance to the nearest station, metres; "
    "empty when no station is reachable",
    "walk_p90_m": "weighted 90th-percentile walking distance to the nearest station, metres; "
    "empty when no station is reachable",
    "walk_min_m": "walking distance from the grid's closest demand point to its nearest "
    "station, metres; empty when unreachable",
    "walk_m": "walking distance to the nearest station, metres; empty when unreachable",
    "station_id": "station id (per grid: the station nearest to most of its weight, empty "
    "when none is reachable; 'all' for union rings)",
    "station_name": "station name; empty when no station is reachable",
    "name": "name as given in the input",
    "tier": "station tier: district | subdistrict | station",
    "threshold_min": "walk-time threshold, minutes",
    "distance_m": "walking distance of the threshold, metres",
    "length_m": "length of reached street pieces, metres",
    "level": "roll-up level: district | subdistrict | community | grid",
    "n_grids": "number of grids",
    "coverage_pct": "share of the demand weight within the threshold, percent (0–100)",
    "uncovered_weight": "demand weight beyond the threshold",
    "gap_area_m2": "grid area beyond the threshold, m²",
    "centroid_lon": "grid centroid longitude, WGS84 degrees",
    "centroid_lat": "grid centroid latitude, WGS84 degrees",
    "lon": "longitude, WGS84 degrees",
    "lat": "latitude, WGS84 degrees",
    "resource_id": "resource id",
    "category": "category",
    "site_id": "proposed site id",
    "gain_weight": "demand weight newly covered by the site",
    "leg_over_100m_weight": "demand weight more than 100 m in a straight line from its street",
    "leg_over_100m_share": "share 0–1 of the demand weight more than 100 m from its street",
    "leg_over_250m_weight": "demand weight more than 250 m from its street (unreachable at "
    "the default max_leg_m)",
    "leg_over_250m_share": "share 0–1 of the demand weight more than 250 m from its street",
    "problem": "why the station was left out",
}


def describe_columns(
    columns: Iterable[str], metadata: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """A description with units for each column (``""`` for columns not known).

    Threshold columns (``covered_5min``, ``uncovered_5min``, ``coverage_5min``) name the
    walking distance of the threshold from ``metadata["walk"]`` when given.
    """
    walk = (metadata or {}).get("walk") or {}
    dist = dict(zip(walk.get("thresholds_min") or (), walk.get("distances_m") or (), strict=False))
    out: dict[str, str] = {}
    for col in columns:
        if col in _FIXED_DESCRIPTIONS:
            out[col] = _FIXED_DESCRIPTIONS[col]
            continue
        tiers = (metadata or {}).get("tier_minutes") or {}
        share = col.startswith("coverage_")
        lead = "share 0–1 of the demand weight" if share else "demand weight"
        if col in ("covered_tiered", "coverage_tiered"):
            out[col] = f"{lead} within its own tier's threshold of a station of any tier"
            continue
        if col.startswith(("covered_tier_", "coverage_tier_")):
            tier = col.split("_tier_", 1)[1]
            limit = f" ({tiers[tier]:g} min)" if tier in tiers else ""
            out[col] = f"{lead} within the {tier} tier's threshold{limit} of its stations"
            continue
        kind, minutes = _threshold_column(col)
        if kind is None:
            out[col] = ""
            continue
        reach = f"{minutes:g} min walk"
        d = next((d for t, d in dist.items() if t is not None and abs(t - minutes) < 1e-9), None)
        if d is not None:
            reach += f" ({d:g} m)"
        out[col] = {
            "covered": f"demand weight within {reach}",
            "uncovered": f"demand weight beyond {reach}",
            "coverage": f"share 0–1 of the demand weight within {reach}; empty when the "
            "weight is 0",
        }[kind]
    return out


def _threshold_column(col: str) -> tuple[str | None, float]:
    for kind in ("uncovered", "covered", "coverage"):
        prefix = kind + "_"
        if col.startswith(prefix) and col.endswith("min"):
            try:
                return kind, float(col[len(prefix) : -3])
            except ValueError:
                return None, math.nan
    return None, math.nan


def _sidecar(
    meta: dict[str, Any],
    path: Path,
    *,
    fmt: str,
    layers: list[dict[str, Any]],
    encoding: str,
    formula_guard: dict[str, Any] | None = None,
) -> dict[str, Any]:
    export: dict[str, Any] = {
        "file": path.name,
        "format": fmt,
        "encoding": encoding,
        "exported": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "empty_values": "empty cell / null = unknown, or unreachable (infinite walk)",
    }
    if formula_guard is not None:  # CSV only
        export["formula_guard"] = formula_guard
    export["layers"] = layers
    return {**meta, "export": export}


def _layer_info(name: str, table: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
    geom = table.geometry.name if isinstance(table, gpd.GeoDataFrame) else None
    columns = [c for c in table.columns if c != geom]
    info: dict[str, Any] = {
        "name": name,
        "rows": len(table),
        "description": _LAYER_DESCRIPTIONS.get(name, f"servicecircle {name}"),
    }
    if geom is not None:
        types = sorted(set(table.geometry.geom_type.dropna()))
        info["geometry_types"] = types
        info["crs"] = WGS84
    info["columns"] = describe_columns(columns, meta)
    return info


_LAYER_DESCRIPTIONS = {
    "grids": "walking coverage per red grid (网格)",
    "stations": "service stations (驿站)",
    "rings": "walking reach polygons per station and threshold",
    "gaps": "parts of grids beyond the walking threshold",
    "gap_points": "demand points beyond the walking threshold",
    "rollup": "coverage rolled up to district, subdistrict, community and grid",
    "gap_list": "grids ranked by uncovered demand weight",
    "resources": "resource-map (资源地图) entries",
    "sites": "proposed station sites",
}


def _settings_of(frame: Any) -> dict[str, Any]:
    attrs = getattr(frame, "attrs", None) or {}
    settings = attrs.get("settings")
    return dict(settings) if isinstance(settings, Mapping) else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "to_string") and hasattr(value, "to_epsg"):  # pyproj CRS
        epsg = value.to_epsg()
        return f"EPSG:{epsg}" if epsg else value.to_string()
    return str(value)


def _flatten(meta: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, str):
            out[name] = value
        else:
            out[name] = json.dumps(value, ensure_ascii=False)
    return out


def _write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# tables


def _is_spatial(frame: Any) -> bool:
    if not isinstance(frame, gpd.GeoDataFrame):
        return False
    try:
        frame.geometry  # noqa: B018 - raises when there is no active geometry column
    except AttributeError:
        return False
    return True


def _spatial(frame: Any, name: str) -> gpd.GeoDataFrame:
    """The layer tidied and in WGS84, ready for GeoJSON or GPKG."""
    if not _is_spatial(frame):
        raise ValueError(f"layer {name!r} has no geometry column; it cannot be written as a map")
    if frame.crs is None:
        raise ValueError(f"layer {name!r} has no CRS; set one (e.g. EPSG:4326) before exporting")
    out = frame if frame.crs.to_epsg() == 4326 else frame.to_crs(WGS84)
    return _tidy(out)


def _decimals(col: str) -> int | None:
    """How many decimals a float column keeps, by its name (None: as computed)."""
    if col in ("lon", "lat") or col.endswith(("_lon", "_lat")):
        return _COORD_DECIMALS
    if col == "coverage_pct":
        return 2
    kind, _ = _threshold_column(col)
    if kind == "coverage" or col.startswith("coverage_tier") or col in ("gain_share", "cum_share"):
        return 4
    if kind is not None or col.startswith("covered_tier"):
        return 2
    if col in ("weight", "uncovered_weight", "gain_weight", "cum_weight"):
        return 2
    if col.startswith("leg_over_"):
        return 4 if col.endswith("_share") else 2
    if col.endswith(("_m", "_m2")):
        return 1
    return None


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with a clean index, ``inf`` as missing and floats rounded by column kind."""
    out = frame.reset_index(drop=True).copy()
    out.attrs = {}
    geom = out.geometry.name if isinstance(out, gpd.GeoDataFrame) else None
    for col in out.columns:
        if col == geom or not pd.api.types.is_float_dtype(out[col].dtype):
            continue
        values = out[col].replace([np.inf, -np.inf], np.nan)
        places = _decimals(str(col))
        out[col] = values.round(places) if places is not None else values
    return out


def _csv_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Attributes only; points get lon/lat in WGS84 degrees."""
    if not _is_spatial(frame):
        return _tidy(pd.DataFrame(frame))
    geom = frame.geometry
    table = pd.DataFrame(frame.drop(columns=geom.name))
    kinds = set(geom.geom_type.dropna())
    if kinds == {"Point"} and not {"lon", "lat"} & set(table.columns) and geom.crs is not None:
        pts = geom.to_crs(WGS84) if geom.crs.to_epsg() != 4326 else geom
        table["lon"] = pts.x.to_numpy()
        table["lat"] = pts.y.to_numpy()
    return _tidy(table)


#: First characters that make Excel/WPS read a cell as a formula (OWASP CSV injection).
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def _guard_formulas(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The table with ``'`` before every text cell Excel would evaluate, and how many."""
    out = table
    changed = 0
    for col in table.columns:
        values = table[col]
        dtype = values.dtype
        if not (
            pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
        ):
            continue  # numbers, booleans, dates: never text
        risky = np.array(
            [isinstance(v, str) and v.startswith(_FORMULA_LEADS) for v in values], dtype=bool
        )
        if not risky.any():
            continue
        if out is table:
            out = table.copy()
        guarded = values.astype(object)
        guarded[risky] = ["'" + v for v in values[risky]]
        out[col] = guarded
        changed += int(risky.sum())
    return out, changed


def _guard_headers(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The table with ``'`` before every column name Excel would evaluate, and how many."""
    risky = [isinstance(c, str) and c.startswith(_FORMULA_LEADS) for c in table.columns]
    if not any(risky):
        return table, 0
    names = ["'" + c if r else c for c, r in zip(table.columns, risky, strict=True)]
    return table.set_axis(names, axis=1), sum(risky)


def check_encoding(encoding: str) -> str:
    """The codec's canonical name; :class:`ExportError` for an unknown or unsuitable one."""
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ExportError(
            f"unknown CSV encoding {encoding!r}; use utf-8-sig (default, Excel 2016+ and WPS) "
            "or gbk (old Excel)"
        ) from None


def _check_encodable(table: pd.DataFrame, encoding: str, path: Path) -> None:
    """Refuse, naming column, row and character, a value the CSV encoding cannot hold."""
    if encoding.replace("_", "-").startswith("utf"):
        return
    hint = (
        "use the default encoding utf-8-sig (Excel 2016+ and WPS open it) or gb18030, "
        "which holds every character"
    )
    for col in table.columns:
        bad = _unencodable(str(col), encoding)
        if bad:
            raise ExportError(
                f"{path.name}: column name {col!r} has {bad!r}, which {encoding} cannot "
                f"write; {hint}"
            )
    ident_col = table.columns[0] if len(table.columns) else None
    for col in table.columns:
        if table[col].dtype != object and not pd.api.types.is_string_dtype(table[col].dtype):
            continue
        values = table[col].tolist()
        if not _unencodable("".join(v for v in values if isinstance(v, str)), encoding):
            continue  # the whole column fits: skip the row-by-row search
        for i, value in enumerate(values):
            if not isinstance(value, str):
                continue
            bad = _unencodable(value, encoding)
            if bad:
                ident = f" ({ident_col}={table[ident_col].iloc[i]})" if ident_col != col else ""
                raise ExportError(
                    f"{path.name}: column {col!r}, row {i + 2}{ident}: {value!r} has {bad!r}, "
                    f"which {encoding} cannot write; {hint}"
                )


def _unencodable(text: str, encoding: str) -> str | None:
    try:
        text.encode(encoding)
    except UnicodeEncodeError as err:
        return err.object[err.start : err.end]
    return None


def _check_layer_name(name: str) -> None:
    ok = name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    if not ok:
        raise ValueError(
            f"layer/file name {name!r} must use only ASCII letters, digits, '_' and '-'"
        )


# --------------------------------------------------------------------------------------------
# targets


def _protected(
    protect: Iterable[str | Path], frames: Iterable[Any], meta: Mapping[str, Any]
) -> list[Path]:
    return [Path(p) for p in protect] + input_paths(frames, meta)


def _check_targets(targets: Sequence[Path], protect: Sequence[Path], *, overwrite: bool) -> None:
    """Refuse inputs in the way always, and existing outputs unless ``overwrite``."""
    refuse_inputs(targets, protect)
    for target in targets:
        if target.is_dir():
            raise ExportError(f"{target} is a folder; choose a file name for the output")
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise ExportError(
                f"{target} already exists; pass --overwrite to replace it "
                "or choose another --out-dir"
            )


class _Writing:
    """``atomic_path`` whose OS errors become an :class:`ExportError` naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ctx = atomic_path(path)

    def __enter__(self) -> Path:
        try:
            return self._ctx.__enter__()
        except OSError as err:
            raise self._error(err) from err

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            self._ctx.__exit__(exc_type, exc, tb)
        except ExportError:
            raise
        except (OSError, pyogrio.errors.DataSourceError) as err:
            raise self._error(err) from err
        # a full disk while writing the body: contextlib hands the error back unchanged
        if isinstance(exc, OSError | pyogrio.errors.DataSourceError) and not isinstance(
            exc, ExportError
        ):
            raise self._error(exc) from exc
        return False

    def _error(self, err: BaseException) -> ExportError:
        reason = getattr(err, "strerror", None) or str(err)
        return ExportError(
            f"cannot write {self.path}: {reason}; check that the folder "
            f"{self.path.parent} exists, is writable and has free space"
        )
