"""Read and validate stations, red grids, resources and buildings from user files.

Supported files: CSV/TSV/TXT (UTF-8, UTF-8 with BOM, UTF-16 or GBK as Excel writes them;
the encoding is detected by strict decoding and reported, never guessed silently),
GeoJSON, GeoPackage and Shapefile. Every reader takes the coordinate system the file is
in (``crs=``: an EPSG code, ``"gcj02"`` or ``"bd09"``) and returns a GeoDataFrame in WGS84
(EPSG:4326) with standard columns. Problems are collected and raised once as an
:class:`~servicecircle.errors.InputError` naming the file, the rows or features and the fix.
Input files are only ever opened for reading.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from servicecircle import datums
from servicecircle.crs import WGS84, DeclaredCRS, local_utm_crs, parse_crs
from servicecircle.errors import CRSError, InputError, ServiceCircleWarning

__all__ = [
    "OVERLAP_SHARE",
    "TIERS",
    "check_alignment",
    "check_overlaps",
    "check_tier_map",
    "read_boundary",
    "read_buildings",
    "read_grids",
    "read_resources",
    "read_stations",
    "read_text_lines",
]

TABLE_SUFFIXES = {".csv", ".tsv", ".txt"}
VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip"}

#: Station tiers of the "1+12+N" system, from the top.
TIERS = ("district", "subdistrict", "station")
_TIER_WORDS = {
    "district": {"district", "district centre", "district center", "district_centre",
                 "district_center", "1", "区", "区级", "区级中心", "区中心", "区党群服务中心"},
    "subdistrict": {"subdistrict", "sub-district", "sub-district centre", "subdistrict centre",
                    "subdistrict center", "subdistrict_centre", "street", "jiedao", "12", "街道",
                    "街道级", "街道中心", "街道党群服务中心"},
    "station": {"station", "community", "n", "驿站", "站点", "社区", "社区级", "网格", "服务站",
                "党群服务驿站", "党群服务站", "社区驿站", "社区服务站", "社区党群服务站",
                "网格驿站"},
}  # fmt: skip

_X_NAMES = {"lon", "lng", "long", "longitude", "x", "经度", "东经", "point_x", "xcoord"}
_Y_NAMES = {"lat", "latitude", "y", "纬度", "北纬", "point_y", "ycoord"}
_ID_NAMES = ["station_id", "grid_id", "id", "code", "编号", "编码", "代码", "序号", "fid"]
_NAME_NAMES = ["name", "station_name", "名称", "站点名称", "驿站名称", "站名", "title"]
_TIER_NAMES = ["tier", "level", "级别", "层级", "类型级别"]
_SUBDISTRICT_NAMES = ["subdistrict", "sub_district", "street", "jiedao", "街道", "街道名称"]
_COMMUNITY_NAMES = ["community", "shequ", "社区", "社区名称"]
_GRIDNAME_NAMES = ["grid_name", "grid", "网格", "网格名称", "网格名"]
_POP_NAMES = ["population", "pop", "人口", "人口数", "常住人口", "户籍人口", "居民数"]
_CATEGORY_NAMES = ["category", "type", "class", "类别", "类型", "分类", "amenity"]
_FLOORS_NAMES = ["floors", "levels", "building:levels", "层数", "楼层数", "floor"]


# --------------------------------------------------------------------------------------------
# public readers


def read_stations(
    path: str | Path,
    *,
    crs: str | int | pyproj.CRS | DeclaredCRS,
    x_col: str | None = None,
    y_col: str | None = None,
    id_col: str | None = None,
    name_col: str | None = None,
    tier_col: str | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    tier_map: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Read service stations (驿站) as points in WGS84.

    Parameters
    ----------
    path
        CSV/TSV (coordinate columns) or GeoJSON/GeoPackage/Shapefile (point features).
    crs
        The coordinate system the file's coordinates are in: EPSG code, ``"gcj02"`` or
        ``"bd09"``. Required: AMap/Baidu coordinates are 0.5–1.3 km off WGS84.
    x_col, y_col
        Coordinate columns of a table; found by name (lon/lng/x/经度, lat/y/纬度) when omitted.
    id_col, name_col, tier_col
        Optional id, name and tier columns; found by common names when omitted.
    encoding
        Text encoding of a table; detected (UTF-8, UTF-8-BOM, UTF-16, GBK) when omitted.
    layer
        Layer of a GeoPackage with several layers.
    tier_map
        Your tier labels → ``district``, ``subdistrict`` or ``station``, e.g.
        ``{"社区驿站": "station", "街道党工委": "subdistrict"}`` (labels case-blind), on top
        of the labels known already. Unknown labels are listed all at once with their counts.

    Returns
    -------
    GeoDataFrame
        EPSG:4326 points with ``station_id`` (str, unique), ``name`` (str), ``tier``
        (one of :data:`TIERS`) and the file's other columns. ``attrs["source"]`` records the
        file, its declared CRS and encoding.
    """
    src = _Source.open(path, crs=crs, encoding=encoding, layer=layer)
    frame = src.points(x_col=x_col, y_col=y_col, polygons="centroid")
    problems: list[str] = []
    ids = _ids(src, frame, id_col, prefix="S", problems=problems)
    names = _text_column(src, frame, name_col, _NAME_NAMES, "name", fallback=ids)
    tiers = _tiers(src, frame, tier_col, problems, tier_map)
    if problems:
        raise InputError(
            f"{src.name}: {len(problems)} problem(s) in the stations", problems=problems
        )
    out = frame.drop(columns=[c for c in ("station_id", "name", "tier") if c in frame.columns])
    out.insert(0, "station_id", ids)
    out.insert(1, "name", names)
    out.insert(2, "tier", tiers)
    return _finish(out, src, "stations")


def read_grids(
    path: str | Path,
    *,
    crs: str | int | pyproj.CRS | DeclaredCRS,
    id_col: str | None = None,
    subdistrict_col: str | None = None,
    community_col: str | None = None,
    grid_name_col: str | None = None,
    population_col: str | None = None,
    layer: str | None = None,
    allow_overlaps: bool = False,
) -> gpd.GeoDataFrame:
    """Read red grids (红色网格) as polygons in WGS84.

    Invalid polygons are repaired with a warning naming each feature; empty or
    non-polygon geometries are an error naming the features.

    Grids must not overlap: demand in an overlap would be counted in both grids. Pairs
    overlapping by more than :data:`OVERLAP_SHARE` of the smaller grid's area (digitising
    slivers along shared edges stay below it) stop the read with an :class:`InputError`
    listing them (see :func:`check_overlaps`). ``allow_overlaps=True`` accepts them, for
    nested or layered polygons where double counting is meant. A district outline is read
    with :func:`read_boundary` instead.

    Returns
    -------
    GeoDataFrame
        EPSG:4326 (Multi)Polygons with ``grid_id`` (str, unique), ``subdistrict`` (街道),
        ``community`` (社区), ``grid_name`` (网格; ``None`` where the file has no such column)
        and ``population`` (float, NaN when absent), plus the file's other columns.
    """
    src = _Source.open(path, crs=crs, layer=layer)
    if src.table is not None:
        raise InputError(
            f"{src.name}: red grids must be polygons, but this is a table; export the grid "
            "boundaries as GeoJSON, GeoPackage or Shapefile"
        )
    frame = src.polygons(what="red grids")
    problems: list[str] = []
    ids = _ids(src, frame, id_col, prefix="G", problems=problems)
    levels = {
        "subdistrict": _text_column(src, frame, subdistrict_col, _SUBDISTRICT_NAMES, "街道"),
        "community": _text_column(src, frame, community_col, _COMMUNITY_NAMES, "社区"),
        "grid_name": _text_column(src, frame, grid_name_col, _GRIDNAME_NAMES, "网格"),
    }
    population = _number_column(
        src, frame, population_col, _POP_NAMES, "population", problems, minimum=0.0
    )
    if problems:
        raise InputError(f"{src.name}: {len(problems)} problem(s) in the grids", problems=problems)
    if not allow_overlaps:
        check_overlaps(frame.geometry, ids, name=src.name, where=src.where)
    std = ("grid_id", "subdistrict", "community", "grid_name", "population")
    out = frame.drop(columns=[c for c in std if c in frame.columns])
    out.insert(0, "grid_id", ids)
    for i, (key, values) in enumerate(levels.items(), start=1):
        out.insert(i, key, values)
    out.insert(4, "population", population)
    return _finish(out, src, "grids")


#: Grids overlapping by more than this share of the smaller grid's area are refused.
OVERLAP_SHARE = 0.01


def check_overlaps(
    geoms: gpd.GeoSeries,
    ids: Sequence[Any] | None = None,
    *,
    name: str = "grids",
    where: Any = None,
    max_share: float = OVERLAP_SHARE,
) -> None:
    """Refuse polygons that overlap by more than ``max_share`` of the smaller one's area.

    ``geoms`` in any CRS (measured on the local UTM zone); ``ids`` name the polygons in the
    message (default their position); ``where(i)`` describes polygon ``i`` ('feature 7').
    Candidate pairs come from an STRtree, so a district of thousands of grids is checked
    in a fraction of a second; grids that only share edges never count. Raises
    :class:`InputError` listing every overlapping pair (the first 20 shown).
    """
    if len(geoms) < 2:
        return
    lon, lat = shapely.get_coordinates(geoms.to_crs(WGS84).to_numpy()).T
    local = geoms.to_crs(local_utm_crs(lon, lat)).to_numpy()
    tree = shapely.STRtree(local)
    a, b = tree.query(local, predicate="intersects")
    pair = a < b
    a, b = a[pair], b[pair]
    if a.size == 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GEOS on near-degenerate pieces
        shared = shapely.area(shapely.intersection(local[a], local[b]))
    area = shapely.area(local)
    smaller = np.minimum(area[a], area[b])
    bad = np.flatnonzero(shared > max_share * np.maximum(smaller, 1e-9))
    if bad.size == 0:
        return
    label = (lambda i: str(ids[i])) if ids is not None else (lambda i: f"#{i + 1}")
    place = where or (lambda i: f"feature {i + 1}")
    order = bad[np.argsort(-shared[bad], kind="stable")]
    problems = [
        f"{label(int(a[k]))} ({place(int(a[k]))}) and {label(int(b[k]))} "
        f"({place(int(b[k]))}): {shared[k]:,.0f} m² in common, "
        f"{shared[k] / smaller[k]:.0%} of the smaller"
        for k in order
    ]
    raise InputError(
        f"{name}: {bad.size} pair(s) of grids overlap by more than {max_share:.0%} of the "
        "smaller grid, so the demand in the overlaps would be counted twice; fix the polygons "
        "in a GIS so each place lies in one grid, or pass allow_overlaps=True for nested "
        "layers",
        problems=problems,
    )


def read_boundary(
    path: str | Path,
    *,
    crs: str | int | pyproj.CRS | DeclaredCRS,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a district outline (one or several polygons, e.g. its sub-districts) in WGS84.

    Unlike :func:`read_grids` there are no ids, attributes or overlap checks: the polygons
    are only unioned into the area grids are generated in. Invalid polygons are repaired
    with a warning; tables, points and lines are refused.

    Returns
    -------
    GeoDataFrame
        EPSG:4326 (Multi)Polygons, the file's columns kept; ``attrs["source"]`` as the
        other readers.
    """
    src = _Source.open(path, crs=crs, layer=layer)
    if src.table is not None:
        raise InputError(
            f"{src.name}: a boundary must be polygons, but this is a table; export the "
            "district outline as GeoJSON, GeoPackage or Shapefile"
        )
    frame = src.polygons(what="a boundary")
    return _finish(frame, src, "boundary")


def read_resources(
    path: str | Path,
    *,
    crs: str | int | pyproj.CRS | DeclaredCRS,
    category_col: str | None = None,
    name_col: str | None = None,
    x_col: str | None = None,
    y_col: str | None = None,
    encoding: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read resource-map (资源地图) entries as points in WGS84.

    Polygons (e.g. a park) are placed at a point inside them.

    Returns
    -------
    GeoDataFrame
        EPSG:4326 points with ``resource_id``, ``name`` and ``category`` (``"other"`` when
        the file has no category column).
    """
    src = _Source.open(path, crs=crs, encoding=encoding, layer=layer)
    frame = src.points(x_col=x_col, y_col=y_col, polygons="inside")
    problems: list[str] = []
    ids = _ids(src, frame, None, prefix="R", problems=problems)
    if problems:
        raise InputError(f"{src.name}: {len(problems)} problem(s)", problems=problems)
    names = _text_column(src, frame, name_col, _NAME_NAMES, "name", fallback=ids)
    category = _text_column(src, frame, category_col, _CATEGORY_NAMES, "category")
    if category is None:
        category = pd.Series("other", index=frame.index)
    std = ("resource_id", "name", "category")
    out = frame.drop(columns=[c for c in std if c in frame.columns])
    out.insert(0, "resource_id", ids)
    out.insert(1, "name", names)
    out.insert(2, "category", category.fillna("other").replace("", "other"))
    return _finish(out, src, "resources")


def read_buildings(
    path: str | Path,
    *,
    crs: str | int | pyproj.CRS | DeclaredCRS,
    floors_col: str | None = None,
    category_col: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read buildings (楼栋) as footprints or points in WGS84.

    Returns
    -------
    GeoDataFrame
        EPSG:4326 geometries with ``building_id``, ``floors`` (float, NaN when unknown) and
        ``category`` (``None`` when absent).
    """
    src = _Source.open(path, crs=crs, layer=layer)
    if src.table is not None:
        frame = src.points(x_col=None, y_col=None, polygons="keep")
    else:
        frame = src.geometries(allowed=("Point", "Polygon", "MultiPolygon"), what="buildings")
    problems: list[str] = []
    ids = _ids(src, frame, None, prefix="B", problems=problems)
    floors = _number_column(src, frame, floors_col, _FLOORS_NAMES, "floors", problems, 0.0)
    if problems:
        raise InputError(f"{src.name}: {len(problems)} problem(s)", problems=problems)
    category = _text_column(src, frame, category_col, _CATEGORY_NAMES, "category")
    out = frame.drop(columns=[c for c in ("building_id", "floors") if c in frame.columns])
    out.insert(0, "building_id", ids)
    out.insert(1, "floors", floors)
    if "category" not in out.columns:
        out.insert(2, "category", category)
    return _finish(out, src, "buildings")


def check_alignment(
    stations: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    far_m: float = 1000.0,
) -> None:
    """Refuse stations and grids that cannot belong together; warn when many stations are off.

    A whole layer in the wrong datum (GCJ-02 or BD-09 read as WGS84) moves it 0.5–1.3 km
    at Zhifu. When no station lies within ``far_m`` metres of any grid this raises a
    :class:`CRSError`; when fewer than half do, it warns.
    """
    if stations.empty or grids.empty:
        return
    utm = local_utm_crs(*_lonlat(grids))
    st = stations.geometry.to_crs(utm).to_numpy()
    tree = shapely.STRtree(grids.geometry.to_crs(utm).to_numpy())
    _, dist = tree.query_nearest(st, return_distance=True, all_matches=False)
    st_src = stations.attrs.get("source", {})
    gr_src = grids.attrs.get("source", {})
    names = (
        f"{st_src.get('file', 'stations')} (declared {st_src.get('crs', '?')})",
        f"{gr_src.get('file', 'grids')} (declared {gr_src.get('crs', '?')})",
    )
    if dist.min() > far_m:
        raise CRSError(
            f"every station in {names[0]} is at least {dist.min():,.0f} m from the grids in "
            f"{names[1]}; they cannot be the same district. One of them is probably in another "
            "datum (AMap/Tencent = gcj02, Baidu = bd09) or another EPSG code: "
            "check the crs= of each"
        )
    # grids may cover only part of the district: judge from the grids' side, whether
    # most grids have a station nearby (a shifted layer leaves most of them without one)
    g_tree = shapely.STRtree(st)
    _, g_dist = g_tree.query_nearest(
        grids.geometry.to_crs(utm).to_numpy(), return_distance=True, all_matches=False
    )
    near = (g_dist <= far_m).mean()
    if near < 0.5:
        warnings.warn(
            f"only {near:.0%} of the grids in {names[1]} have a station of {names[0]} within "
            f"{far_m:,.0f} m; check that both declare the right coordinate system",
            ServiceCircleWarning,
            stacklevel=2,
        )


# --------------------------------------------------------------------------------------------
# file access


class _Source:
    """One opened input: either a text table or a vector layer, plus its declared CRS."""

    def __init__(self, path: Path, declared: DeclaredCRS) -> None:
        self.path = path
        self.name = path.name
        self.declared = declared
        self.table: pd.DataFrame | None = None
        self.vector: gpd.GeoDataFrame | None = None
        self.encoding: str | None = None
        self.row_numbers: list[int] = []  # Excel row of each table row (header = row 1)
        self.used: list[str] = []  # the columns read, in the order they were found

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        crs: Any,
        encoding: str | None = None,
        layer: str | None = None,
    ) -> _Source:
        path = Path(path)
        declared = parse_crs(crs, what=path.name)
        if not path.exists():
            raise InputError(f"{path}: file not found; check the path")
        if path.is_dir():
            raise InputError(f"{path}: is a folder; give the file inside it")
        suffix = _suffix(path)
        if suffix not in TABLE_SUFFIXES | VECTOR_SUFFIXES:
            raise InputError(
                f"{path.name}: unsupported file type {suffix!r}; {_convert_hint(suffix)}"
            )
        if path.stat().st_size == 0:
            raise InputError(
                f"{path.name}: the file is empty (0 bytes); it was probably not saved completely: "
                "export or copy it again"
            )
        src = cls(path, declared)
        if suffix in TABLE_SUFFIXES:
            src.table, src.encoding, src.row_numbers = _read_table(path, encoding)
        else:
            src.vector = _read_vector(path, layer)
        return src

    @property
    def rows(self) -> int:
        frame = self.table if self.table is not None else self.vector
        assert frame is not None
        return len(frame)

    @property
    def unit(self) -> str:
        """'row(s)' for a table, 'feature(s)' for a vector layer."""
        return "row(s)" if self.table is not None else "feature(s)"

    def where(self, i: int, ident: Any = None) -> str:
        """'row 7' (as Excel numbers it: header is row 1) or 'feature 7' (1-based)."""
        label = f"row {self.row_numbers[i]}" if self.table is not None else f"feature {i + 1}"
        return f"{label} (id={ident})" if ident is not None and str(ident) != "" else label

    # -- geometry ----------------------------------------------------------------------------
    def points(self, *, x_col: str | None, y_col: str | None, polygons: str) -> gpd.GeoDataFrame:
        """Points in WGS84 from a table's coordinate columns or a vector layer."""
        if self.table is not None:
            return self._table_points(x_col, y_col)
        allowed = ("Point", "MultiPoint", "Polygon", "MultiPolygon")
        frame = self.geometries(allowed=allowed, what="points")
        geoms = frame.geometry.to_numpy()
        types = shapely.get_type_id(geoms)
        multi = types == 4
        n_parts = shapely.get_num_geometries(geoms)
        bad = np.flatnonzero(multi & (n_parts > 1))
        if bad.size:
            raise InputError(
                f"{self.name}: {bad.size} feature(s) are multi-points with several points; "
                "give one point per station or resource",
                problems=[f"{self.where(int(i))}: {n_parts[i]} points" for i in bad],
            )
        geoms = np.where(multi, shapely.get_geometry(geoms, 0), geoms)
        areal = np.isin(types, (3, 6))
        if areal.any():
            if polygons == "keep":
                pass
            else:
                inside = shapely.point_on_surface(geoms[areal])
                geoms = geoms.copy()
                geoms[areal] = inside
        return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=WGS84))

    def geometries(self, *, allowed: Sequence[str], what: str) -> gpd.GeoDataFrame:
        """The vector layer in WGS84 after checking for empty and unexpected geometries."""
        assert self.vector is not None
        frame = self.vector
        geoms = frame.geometry.to_numpy()
        missing = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if missing.size:
            raise InputError(
                f"{self.name}: {missing.size} feature(s) have no geometry; remove them or draw "
                f"their {what}",
                problems=[f"{self.where(int(i))}: empty geometry" for i in missing],
            )
        coords, owner = shapely.get_coordinates(geoms, return_index=True)
        nonfinite = np.unique(owner[~np.isfinite(coords).all(axis=1)])
        if nonfinite.size:
            raise InputError(
                f"{self.name}: {nonfinite.size} feature(s) have coordinates that are not numbers "
                f"(NaN or infinite); correct or remove them",
                problems=[f"{self.where(int(i))}: NaN or infinite coordinate" for i in nonfinite],
            )
        types = np.asarray(shapely.get_type_id(geoms))
        names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                          "MultiLineString", "MultiPolygon", "GeometryCollection"])  # fmt: skip
        kinds = names[types]
        wrong = np.flatnonzero(~np.isin(kinds, allowed))
        if wrong.size:
            plain = " or ".join(_PLAIN[a] for a in allowed if not a.startswith("Multi"))
            raise InputError(
                f"{self.name}: {wrong.size} of {len(frame)} feature(s) have the wrong geometry "
                f"type; {what} must be {plain} ({' or '.join(allowed)}): export them as "
                f"{plain} or remove the other features",
                problems=[f"{self.where(int(i))}: {kinds[i]}" for i in wrong],
            )
        return self._to_wgs84(frame)

    def polygons(self, *, what: str) -> gpd.GeoDataFrame:
        """Polygons in WGS84; invalid ones repaired with a warning naming each feature."""
        frame = self.geometries(allowed=("Polygon", "MultiPolygon"), what=what)
        geoms = frame.geometry.to_numpy()
        invalid = np.flatnonzero(~shapely.is_valid(geoms))
        if invalid.size:
            reasons = shapely.is_valid_reason(geoms[invalid])
            repaired = _polygonal(shapely.make_valid(geoms[invalid]))
            lost = [int(i) for i, g in zip(invalid, repaired, strict=True) if g is None]
            if lost:
                raise InputError(
                    f"{self.name}: {len(lost)} invalid polygon(s) could not be repaired; "
                    "redraw them",
                    problems=[f"{self.where(i)}: {reasons[list(invalid).index(i)]}" for i in lost],
                )
            geoms = geoms.copy()
            geoms[invalid] = repaired
            listed = "; ".join(
                f"{self.where(int(i))}: {r}" for i, r in zip(invalid[:10], reasons, strict=False)
            )
            warnings.warn(
                f"{self.name}: repaired {invalid.size} invalid polygon(s) ({listed}"
                f"{' ...' if invalid.size > 10 else ''}); check them in a GIS",
                ServiceCircleWarning,
                stacklevel=3,
            )
            frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=WGS84))
        return frame

    def _to_wgs84(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        decl = self.declared
        file_crs = frame.crs
        frame = frame.copy()
        if decl.datum:
            if file_crs is not None and not pyproj.CRS(file_crs).is_geographic:
                raise CRSError(
                    f"{self.name}: the file is stored in {_crs_label(file_crs)} (projected) but "
                    f"was declared {decl.datum}, which is lon/lat; declare "
                    f"{_crs_label(file_crs)} instead"
                )
            frame = frame.set_crs(WGS84, allow_override=True)
            self._check_lonlat(*_lonlat(frame, owner=True))
            geoms = datums.transform_geometry(frame.geometry.to_numpy(), source=decl.datum)
            return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=WGS84))
        if file_crs is None:
            frame = frame.set_crs(decl.crs)
        elif not _same_crs(file_crs, decl.crs):
            raise CRSError(
                f"{self.name}: the file says it is in {_crs_label(file_crs)} but "
                f"{_crs_label(decl.crs)} was declared; declare {_crs_label(file_crs)} if the "
                "file is right, or fix the file's CRS"
            )
        if decl.crs.is_geographic:
            self._check_lonlat(*_lonlat(frame, owner=True))
        out = frame.to_crs(WGS84)
        if not np.isfinite(shapely.get_coordinates(out.geometry.to_numpy())).all():
            raise CRSError(
                f"{self.name}: coordinates do not convert from {decl.label} to WGS84; "
                "check the declared coordinate system"
            )
        return out

    def _table_points(self, x_col: str | None, y_col: str | None) -> gpd.GeoDataFrame:
        table = self.table
        assert table is not None
        x_name = _find_column(self, table.columns, x_col, _X_NAMES, "longitude/x", _is_x)
        y_name = _find_column(self, table.columns, y_col, _Y_NAMES, "latitude/y", _is_y)
        self.used += [str(x_name), str(y_name)]
        if x_name == y_name:
            raise InputError(
                f"{self.name}: the x and y columns are both {x_name!r}; pass the longitude "
                "column with x_col= and the latitude column with y_col="
            )
        x = self._numbers(table[x_name], x_name)
        y = self._numbers(table[y_name], y_name)
        if self.declared.is_geographic:
            self._check_lonlat(x, y)
            if self.declared.datum:
                x, y = datums.convert(x, y, source=self.declared.datum)
        else:
            tr = pyproj.Transformer.from_crs(self.declared.crs, WGS84, always_xy=True)
            x, y = tr.transform(x, y)
            bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
            if bad.size:
                raise CRSError(
                    f"{self.name}: {bad.size} row(s) do not convert from {self.declared.label} "
                    "to WGS84; check the declared coordinate system",
                    problems=[self.where(int(i)) for i in bad],
                )
        rest = table.drop(columns=[x_name, y_name])
        return gpd.GeoDataFrame(rest, geometry=gpd.points_from_xy(x, y), crs=WGS84)

    def _numbers(self, column: pd.Series, name: str) -> np.ndarray:
        text = column.astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            problems = [
                f"{self.where(int(i))}: " + ("empty" if text.iloc[i] == "" else repr(text.iloc[i]))
                for i in bad
            ]
            raise InputError(
                f"{self.name}: column {name!r} has {bad.size} missing or non-numeric value(s); "
                "coordinates must be decimal numbers (e.g. 121.3902)",
                problems=problems,
            )
        return values

    def _check_lonlat(self, x: np.ndarray, y: np.ndarray, owner: Any = None) -> None:
        """Range, swap and datum-area checks on lon/lat degrees.

        ``owner`` gives the row or feature of each coordinate (a polygon has many); by default
        coordinate ``i`` belongs to row ``i``.
        """
        owner = np.arange(x.size) if owner is None else np.asarray(owner)
        swapped = (np.abs(x) <= 90) & (np.abs(y) > 90)
        if self.declared.datum:
            swapped |= (x > 0.8) & (x < 55.9) & (y > 72) & (y < 137.9)
        if swapped.any() and swapped.mean() > 0.5:
            first = np.flatnonzero(swapped)[0]
            fix = (
                "pass the columns explicitly with x_col= (longitude) and y_col= (latitude)"
                if self.table is not None
                else "export the layer again with longitude as x and latitude as y"
            )
            raise InputError(
                f"{self.name}: longitude and latitude look swapped in "
                f"{np.unique(owner[swapped]).size} of {np.unique(owner).size} {self.unit} "
                f"(first: x={x[first]:g}, y={y[first]:g}); {fix}",
                problems=self._coordinate_problems(x, y, swapped, owner),
            )
        out = (np.abs(x) > 180) | (np.abs(y) > 90)
        if out.any():
            hint = (
                "They look like metres: declare the projected EPSG code (e.g. EPSG:32651)"
                if np.nanmax(np.abs(np.r_[x, y])) > 1000
                else "Correct these values, or declare the coordinate system they are in"
            )
            raise InputError(
                f"{self.name}: {np.unique(owner[out]).size} {self.unit} have "
                "coordinates outside longitude −180..180 / latitude −90..90, the range of "
                f"{self.declared.label} (degrees). {hint}",
                problems=self._coordinate_problems(x, y, out, owner),
            )
        if self.declared.datum:
            outside = ~datums.in_china(x, y)
            if outside.any():
                raise CRSError(
                    f"{self.name}: {np.unique(owner[outside]).size} {self.unit} lie "
                    f"outside China, where {self.declared.datum} is not defined; these "
                    "coordinates are probably WGS84: declare crs='EPSG:4326'",
                    problems=self._coordinate_problems(x, y, outside, owner),
                )

    def _coordinate_problems(
        self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, owner: np.ndarray
    ) -> list[str]:
        """One line per row or feature with the first of its flagged coordinates."""
        idx = np.flatnonzero(mask)
        owners, first = np.unique(owner[idx], return_index=True)
        return [
            f"{self.where(int(o))}: ({x[i]:g}, {y[i]:g})"
            for o, i in zip(owners, idx[first], strict=True)
        ]


def _suffix(path: Path) -> str:
    return path.suffix.lower()


_SPREADSHEETS = {".xls", ".xlsx", ".xlsm", ".xlsb", ".ods", ".et", ".numbers"}
_OTHER_VECTORS = {".kml", ".kmz", ".gpx", ".dxf", ".dwg", ".mif", ".tab", ".gdb", ".osm"}
_PLAIN = {"Point": "points", "Polygon": "polygons", "LineString": "lines"}


def _convert_hint(suffix: str) -> str:
    """What to do with a file type the readers do not take."""
    known = ", ".join(sorted(TABLE_SUFFIXES | VECTOR_SUFFIXES))
    if suffix in _SPREADSHEETS:
        return f"save it from Excel or WPS as 'CSV UTF-8' (.csv). Supported: {known}"
    if suffix in _OTHER_VECTORS:
        return f"convert it to GeoJSON or GeoPackage (e.g. QGIS 'Export'). Supported: {known}"
    return f"use one of {known}"


def _sniff_kind(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive or Excel workbook (.xlsx)"
    if head.startswith(b"SQLite format 3"):
        return "a GeoPackage/SQLite database"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old Excel workbook (.xls)"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith((b"{", b"[")):
        return "JSON"
    if stripped.startswith(b"<"):
        return "XML/HTML"
    if b"\x00" in head[:512]:
        return "binary data"
    return "text (CSV-like)"


def _read_table(path: Path, encoding: str | None) -> tuple[pd.DataFrame, str, list[int]]:
    """The table as text cells, its encoding, and the Excel row number of each data row."""
    raw = path.read_bytes()
    kind = _sniff_kind(raw[:2048])
    if not kind.startswith("text") and not (kind == "binary data" and raw[:2] in _UTF16_BOMS):
        fix = "save it from Excel as 'CSV UTF-8'" if "Excel" in kind else "check the file"
        raise InputError(f"{path.name}: has a {path.suffix} name but holds {kind}; {fix}")
    text, used = _decode(path.name, raw, encoding)
    records = _records(path, text)
    top = next((k for k, rec in enumerate(records) if any(f.strip() for f in rec)), None)
    if top is None:
        raise InputError(f"{path.name}: holds no text, only blank lines; pick the right file")
    header = _header(path, records[top], row=top + 1)
    rows, numbers = _data_rows(path, records, top, len(header))
    return pd.DataFrame(rows, columns=header, dtype=str), used, numbers


def _records(path: Path, text: str) -> list[list[str]]:
    """All records of the text, blank ones included (one per Excel row)."""
    lines = text.splitlines()
    try:
        sep = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",\t;|").delimiter
    except csv.Error:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        return list(reader)
    except csv.Error as exc:
        raise InputError(
            f"{path.name}: not a well-formed table at row {reader.line_num}: {exc}; "
            "save it again as CSV"
        ) from None


def _data_rows(
    path: Path, records: list[list[str]], top: int, width: int
) -> tuple[list[list[str]], list[int]]:
    """The non-blank records below the header, padded to ``width``, and their Excel rows."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    too_long: list[str] = []
    for k in range(top + 1, len(records)):
        rec = records[k]
        if not any(f.strip() for f in rec):
            continue  # blank rows are skipped but keep their number
        if any(f.strip() for f in rec[width:]):
            too_long.append(f"row {k + 1}: {len(rec)} cells")
            continue
        rows.append(rec[:width] + [""] * (width - len(rec)))
        numbers.append(k + 1)
    if too_long:
        raise InputError(
            f"{path.name}: {len(too_long)} row(s) have more cells than the {width} columns of "
            "the header; a value probably holds the separator: quote it or remove it",
            problems=too_long,
        )
    if not rows:
        raise InputError(
            f"{path.name}: has a header row but no data rows; add the data below the header "
            "or pick the right file"
        )
    return rows, numbers


def _header(path: Path, record: list[str], *, row: int) -> list[str]:
    """Column names: trailing empty ones dropped, inner empty ones numbered, no duplicates."""
    names = [f.strip() for f in record]
    while names and not names[-1]:
        names.pop()
    names = [n or f"column_{j + 1}" for j, n in enumerate(names)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            f"{path.name}: column name(s) {', '.join(dupes)} appear more than once in the "
            f"header (row {row}); rename them so each column has its own name"
        )
    return names


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_text_lines(path: str | Path) -> list[tuple[int, str]]:
    """The non-empty lines of a small text file (UTF-8 or GBK, detected) with their line
    numbers (1-based), for lookup lists such as a tier map."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    text, _ = _decode(path.name, raw, None)
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _decode(name: str, raw: bytes, encoding: str | None) -> tuple[str, str]:
    """Strict decoding: the explicit encoding, else UTF-8 (BOM or not), UTF-16, then GBK.

    Without ``encoding``:

    * a UTF-8 byte-order mark followed by valid UTF-8 is UTF-8;
    * a UTF-8 byte-order mark followed by GBK text (a GBK file some tool stamped with a
      BOM) is read as GBK, BOM dropped, with a :class:`ServiceCircleWarning` saying so: the
      names come out right, and the user learns the file is odd;
    * a file whose rows are partly UTF-8 and partly GBK (two exports pasted together) is an
      error naming a row of each kind: no single decoding gets every name right;
    * otherwise UTF-16 with its BOM, UTF-8, then GBK (GB 18030).
    """
    if encoding:
        try:
            return raw.decode(encoding), encoding
        except LookupError:
            raise InputError(f"{name}: unknown encoding {encoding!r}; try utf-8 or gbk") from None
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            hint = ""
            if encoding.lower().replace("-", "").replace("_", "") in {"utf8", "utf8sig"}:
                try:
                    raw.decode("gb18030")
                    hint = (
                        "; it looks like GBK, as Excel writes CSV on Chinese Windows: "
                        "pass encoding='gbk' or leave the encoding unset to detect it"
                    )
                except UnicodeDecodeError:
                    pass
            raise InputError(
                f"{name}: not valid {encoding} (byte 0x{raw[exc.start]:02x} on line {line}){hint}"
            ) from None
    if raw.startswith(_UTF16_BOMS):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name}: starts as UTF-16 text but is cut or damaged at byte {exc.start:,}; "
                "save it again from Excel as 'CSV UTF-8'"
            ) from None
    bom = raw.startswith(b"\xef\xbb\xbf")
    body = raw[3:] if bom else raw
    try:
        return body.decode("utf-8"), "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    _refuse_mixed(name, body, first_bad)
    try:
        text = body.decode("gb18030")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{name}: text is neither UTF-8 nor GBK (byte 0x{body[exc.start]:02x} in row "
            f"{line} fits neither); save it from Excel as 'CSV UTF-8' or pass the encoding "
            "(encoding=...)"
        ) from None
    if bom:
        line = body[:first_bad].count(b"\n") + 1
        warnings.warn(
            f"{name}: starts with a UTF-8 byte-order mark, but its text is GBK (from row "
            f"{line} on); read as GBK. Check the names, and save the file again as "
            "'CSV UTF-8' to avoid surprises",
            ServiceCircleWarning,
            stacklevel=5,
        )
    return text, "gbk"


_CJK = re.compile(r"[\u4e00-\u9fff]")


def _refuse_mixed(name: str, body: bytes, first_bad: int) -> None:
    """Stop when some rows are UTF-8 and others are not (no one encoding reads them all).

    A row counts as UTF-8 when it decodes as UTF-8 into at least two Chinese characters:
    GBK rows almost never do (their bytes pass as UTF-8 now and then, but as Latin or
    Cyrillic letters, not as Chinese), so a pure GBK file is not mistaken for a mixed one.
    """
    utf8_row = None
    for k, line in enumerate(body.split(b"\n")):
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(_CJK.findall(text)) >= 2:
            utf8_row = k + 1
            break
    if utf8_row is None:
        return
    bad_row = body[:first_bad].count(b"\n") + 1
    raise InputError(
        f"{name}: mixes two text encodings: row {utf8_row} is UTF-8 but row {bad_row} is "
        "not (probably GBK), so no one encoding reads every name right; open it in Excel or "
        "WPS, fix the garbled rows and save it as 'CSV UTF-8'"
    )


def _check_layer(path: Path, layer: str | None) -> None:
    """A GeoPackage with several layers needs ``layer``, and it must be one of them."""
    import pyogrio

    names = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
    if layer is None and len(names) > 1:
        raise InputError(
            f"{path.name}: has {len(names)} layers ({', '.join(names)}); choose one with layer=NAME"
        )
    if layer is not None and layer not in names:
        raise InputError(
            f"{path.name}: has no layer {layer!r}; its layers are {', '.join(names)}: "
            "choose one of them with layer=NAME"
        )


#: Files a Shapefile cannot do without (``.prj`` may be missing: the CRS is declared).
SHAPEFILE_SIDECARS = (".shx", ".dbf")


def _check_sidecars(path: Path) -> None:
    """A Shapefile is several files; without ``.dbf`` every attribute is silently lost."""
    present = {p.name.lower() for p in path.parent.glob(f"{_glob_escape(path.stem)}.*")}
    missing = [ext for ext in SHAPEFILE_SIDECARS if f"{path.stem.lower()}{ext}" not in present]
    if missing:
        what = {".dbf": "attribute table: ids, names, population", ".shx": "shape index"}
        raise InputError(
            f"{path.name}: the Shapefile's companion file(s) "
            + ", ".join(f"{path.stem}{ext} ({what[ext]})" for ext in missing)
            + " are missing next to it; a Shapefile is several files with one name: copy "
            "them all (.shp, .shx, .dbf, .prj), or export the layer as GeoPackage or GeoJSON"
        )


def _glob_escape(text: str) -> str:
    """``text`` with glob wildcards escaped (a file named ``grids[1].shp``)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _gdal_reason(exc: Exception) -> str:
    """GDAL's first sentence, without its driver-prefix advice."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = text.split("; It might help")[0].split(". It might help")[0].rstrip(".;")
    return re.sub(r"^'[^']*' not recognized as being in a supported file format",
                  "not recognized as a supported format", text)  # fmt: skip


def _read_vector(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    import pyogrio

    suffix = _suffix(path)
    expected = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
                ".shp": "Shapefile", ".zip": "zipped Shapefile"}[suffix]  # fmt: skip
    head = path.read_bytes()[:2048] if suffix != ".shp" else b""
    kind = _sniff_kind(head) if head else ""
    mismatch = (
        (suffix in {".geojson", ".json"} and kind != "JSON")
        or (suffix == ".gpkg" and not kind.startswith("a GeoPackage"))
        or (suffix == ".zip" and not kind.startswith("a ZIP"))
    )
    if mismatch:
        raise InputError(
            f"{path.name}: has a {suffix} name but holds {kind}, not {expected}; "
            "rename it to what it is or export it again"
        )
    if suffix == ".shp":
        _check_sidecars(path)
    try:
        if suffix == ".gpkg":
            _check_layer(path, layer)
        with warnings.catch_warnings():
            # GDAL's notes on odd features (an empty coordinate list, a missing .prj) would
            # reach the user as library warnings; what matters is checked below by feature
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            frame = gpd.read_file(path, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(
            f"{path.name}: could not be read as {expected}: {_gdal_reason(exc)}; the file may be "
            "damaged or cut off: export it again"
        ) from None
    if frame.empty:
        raise InputError(f"{path.name}: holds no features; pick the right file or layer")
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# columns


def _norm(name: str) -> str:
    return name.strip().lower()


def _is_x(name: str) -> bool:
    n = _norm(name)
    return (
        n in _X_NAMES
        or "经度" in n
        or bool(re.match(r"^(lon|lng|longitude)[_\W]", n))
        or bool(re.search(r"[_\W](lon|lng|longitude)$", n))
    )


def _is_y(name: str) -> bool:
    n = _norm(name)
    return (
        n in _Y_NAMES
        or "纬度" in n
        or bool(re.match(r"^(lat|latitude)[_\W]", n))
        or bool(re.search(r"[_\W](lat|latitude)$", n))
    )


def _find_column(
    src: _Source,
    columns: Iterable[str],
    explicit: str | None,
    exact: set[str],
    role: str,
    matcher: Any,
) -> str:
    columns = list(columns)
    if explicit is not None:
        if explicit not in columns:
            raise InputError(
                f"{src.name}: no column {explicit!r} for {role}; the columns are "
                f"{', '.join(columns)}: pass one of them (names are case-sensitive)"
            )
        return explicit
    found = [c for c in columns if matcher(c)]
    if len(found) > 1:
        # an exact common name wins over pattern matches such as 'lon_bd09'
        exact_found = [c for c in found if _norm(c) in exact]
        if len(exact_found) == 1:
            return exact_found[0]
        flag = "x_col=" if role.startswith("longitude") else "y_col="
        raise InputError(
            f"{src.name}: several columns could be the {role} coordinate ({', '.join(found)}); "
            f"choose one with {flag}"
        )
    if not found:
        flag = "x_col=" if role.startswith("longitude") else "y_col="
        raise InputError(
            f"{src.name}: no {role} column; the columns are {', '.join(columns)}. Name it "
            f"lon/lng/x/经度 or lat/y/纬度, or pass {flag}"
        )
    return found[0]


def _pick(frame: pd.DataFrame, explicit: str | None, names: Sequence[str], src: _Source) -> Any:
    if explicit is not None:
        if explicit not in frame.columns:
            cols = ", ".join(c for c in frame.columns if c != "geometry")
            raise InputError(
                f"{src.name}: no column {explicit!r}; the columns are {cols}: pass one of them"
            )
        src.used.append(str(explicit))
        return explicit
    lowered = {_norm(c): c for c in frame.columns if c != "geometry"}
    for n in names:
        if n in lowered:
            src.used.append(str(lowered[n]))
            return lowered[n]
    return None


def _ids(
    src: _Source, frame: pd.DataFrame, explicit: str | None, *, prefix: str, problems: list[str]
) -> pd.Series:
    col = _pick(frame, explicit, _ID_NAMES, src)
    if col is None:
        width = len(str(len(frame)))
        return pd.Series(
            [f"{prefix}{i + 1:0{width}d}" for i in range(len(frame))], index=frame.index
        )
    ids = frame[col].map(_clean_text)
    empty = np.flatnonzero(ids.isna().to_numpy())
    problems.extend(
        f"{src.where(int(i))}: empty id in column {col!r}; fill it in (ids must be unique)"
        for i in empty
    )
    dup = ids[ids.duplicated(keep=False) & ids.notna()]
    for value, group in dup.groupby(dup, sort=False):
        rows = ", ".join(src.where(int(frame.index.get_loc(i))) for i in group.index)
        problems.append(f"duplicate id {value!r} in column {col!r} at {rows}; ids must be unique")
    return ids


def _clean_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _text_column(
    src: _Source,
    frame: pd.DataFrame,
    explicit: str | None,
    names: Sequence[str],
    role: str,
    fallback: pd.Series | None = None,
) -> pd.Series | None:
    col = _pick(frame, explicit, names, src)
    if col is None:
        return fallback.copy() if fallback is not None else None
    values = frame[col].map(_clean_text)
    if fallback is not None:
        values = values.fillna(fallback)
    return values


def _number_column(
    src: _Source,
    frame: pd.DataFrame,
    explicit: str | None,
    names: Sequence[str],
    role: str,
    problems: list[str],
    minimum: float,
) -> pd.Series:
    col = _pick(frame, explicit, names, src)
    if col is None:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    text = frame[col].map(_clean_text)
    values = pd.to_numeric(text, errors="coerce")
    for i in np.flatnonzero((values.isna() & text.notna()).to_numpy()):
        problems.append(
            f"{src.where(int(i))}: {role} {text.iloc[i]!r} in column {col!r} is not a number; "
            "write a plain number (e.g. 1200, no units or thousands separators) or leave it empty"
        )
    for i in np.flatnonzero(np.isinf(values.to_numpy(dtype=float))):
        problems.append(
            f"{src.where(int(i))}: {role} {text.iloc[i]!r} in column {col!r} is not a finite "
            "number; write a plain number or leave it empty"
        )
    for i in np.flatnonzero((values < minimum).to_numpy() & np.isfinite(values.to_numpy())):
        problems.append(
            f"{src.where(int(i))}: {role} {values.iloc[i]:g} in column {col!r} is below "
            f"{minimum:g}; correct it or leave it empty"
        )
    return values.astype(float)


def check_tier_map(tier_map: Mapping[str, str] | None) -> dict[str, str]:
    """A user's labels → tiers (case-blind labels), or :class:`InputError` naming a bad tier."""
    out: dict[str, str] = {}
    bad = []
    for label, tier in (tier_map or {}).items():
        t = str(tier).strip().lower()
        if t not in TIERS:
            bad.append(f"{label!r} → {tier!r}")
        out[str(label).strip().lower()] = t
    if bad:
        raise InputError(
            f"tier_map: {', '.join(bad)}: a tier is one of {', '.join(TIERS)} (district 区级中心, "
            "subdistrict 街道中心, station 驿站)"
        )
    return out


def _tiers(
    src: _Source,
    frame: pd.DataFrame,
    explicit: str | None,
    problems: list[str],
    tier_map: Mapping[str, str] | None = None,
) -> Any:
    col = _pick(frame, explicit, _TIER_NAMES, src)
    if col is None:
        return pd.Series("station", index=frame.index)
    lookup = {word.lower(): tier for tier, words in _TIER_WORDS.items() for word in words}
    lookup.update(check_tier_map(tier_map))
    text = frame[col].map(_clean_text)
    tiers = text.map(lambda t: lookup.get(t.lower()) if isinstance(t, str) else "station")
    unknown = np.flatnonzero(tiers.isna().to_numpy())
    if unknown.size:
        # every unknown label at once, with its count and first rows, and the way to map them
        labels = pd.Series(text.iloc[unknown].to_numpy(), index=unknown)
        parts = []
        for label, rows in labels.groupby(labels, sort=False):
            where = ", ".join(src.where(int(i)) for i in rows.index[:3])
            more = " …" if len(rows) > 3 else ""
            parts.append(f"{label!r} ({len(rows)}×: {where}{more})")
        example = ", ".join(f"'{label}': 'station'" for label in labels.unique()[:2])
        problems.append(
            f"unknown tier label(s) in column {col!r}: {'; '.join(parts)}. Known: district "
            "(区级中心), subdistrict (街道中心), station (驿站); map your labels with "
            f"tier_map={{{example}}}"
        )
    return tiers


# --------------------------------------------------------------------------------------------
# helpers


def _polygonal(geoms: np.ndarray) -> list[Any]:
    """Keep the polygonal part of each repaired geometry (None when nothing is left)."""
    out: list[Any] = []
    for g in geoms:
        if g.geom_type in ("Polygon", "MultiPolygon"):
            out.append(g if not g.is_empty else None)
            continue
        parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
        merged = shapely.union_all(parts) if parts else None
        out.append(merged if merged is not None and not merged.is_empty else None)
    return out


def _lonlat(frame: gpd.GeoDataFrame, *, owner: bool = False) -> tuple[np.ndarray, ...]:
    """x and y of every coordinate, plus the feature each belongs to when ``owner``."""
    coords, index = shapely.get_coordinates(frame.geometry.to_numpy(), return_index=True)
    return (coords[:, 0], coords[:, 1], index) if owner else (coords[:, 0], coords[:, 1])


def _same_crs(a: Any, b: pyproj.CRS) -> bool:
    a = pyproj.CRS(a)
    if a.equals(b, ignore_axis_order=True):
        return True
    # GeoJSON's CRS84 and EPSG:4326 are the same datum with another axis order
    return bool(a.is_geographic and b.is_geographic and a.to_epsg() in (4326, None)
                and b.to_epsg() == 4326 and "WGS 84" in a.name)  # fmt: skip


def _crs_label(crs: Any) -> str:
    crs = pyproj.CRS(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _finish(frame: gpd.GeoDataFrame, src: _Source, kind: str) -> gpd.GeoDataFrame:
    out = gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84).reset_index(drop=True)
    out.attrs["source"] = {
        "kind": kind,
        "file": src.name,
        "path": str(src.path),
        "crs": src.declared.label,
        "encoding": src.encoding,
        "rows": src.rows,
        "columns": list(dict.fromkeys(src.used)),
    }
    return out
