"""The planner's HTML coverage map (folium/Leaflet): grids, stations, rings, gaps, resources.

The page works offline. Leaflet, its plugins (fullscreen, search, marker clusters) and the
map runtime are inlined from ``servicecircle/_static`` (versions and licences in its
README); only the basemap tiles come from the network, and ``tiles="none"`` drops them.
Analysis layers are embedded as compact data: polygons are simplified in metres on a
projected CRS, then stored as encoded polylines at 1e-5° (≈ 1 m); points are rounded to
6 decimals (≈ 0.1 m).

All user text (station, grid, community and category names, file names) is HTML-escaped
in Python and reaches scripts only as JSON, never as markup or code: a station named
``<img src=x onerror=alert(1)>`` is shown as that text.
"""

from __future__ import annotations

import html
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import Fullscreen
from numpy.typing import ArrayLike, NDArray

from servicecircle.crs import WGS84, local_utm_crs
from servicecircle.errors import ExportError, InputError
from servicecircle.fileio import atomic_path
from servicecircle.webpage import (
    DataLayer,
    LegendControl,
    SearchControl,
    encode_polygons,
    encode_polyline,
    make_offline,
)

__all__ = [
    "COVERAGE_BREAKS",
    "COVERAGE_COLORS",
    "LAYER_NAMES",
    "TIER_STYLE",
    "bounds_of",
    "coverage_class",
    "coverage_map",
    "encode_polyline",
    "escape_text",
    "make_offline",
    "map_size_report",
    "new_map",
    "save_map",
]

#: lower bounds of the grid coverage classes (share of demand weight reached in time)
COVERAGE_BREAKS = (0.0, 0.25, 0.5, 0.75, 0.9)
#: ColorBrewer YlGnBu, 5 classes: sequential and colour-blind safe, low → high coverage
COVERAGE_COLORS = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
_NO_DEMAND_COLOR = "#d9d9d9"

#: station markers per tier: fill ``color``, outline ``stroke``, radius (px), label
TIER_STYLE = {
    "district": {"color": "#000000", "stroke": "#ffffff", "weight": 2.5, "radius": 10,
                 "label": "区级中心 district centre"},
    "subdistrict": {"color": "#cc79a7", "stroke": "#000000", "weight": 2.0, "radius": 7,
                    "label": "街道中心 sub-district centre"},
    "station": {"color": "#ffffff", "stroke": "#000000", "weight": 1.5, "radius": 5,
                "label": "驿站 station"},
}  # fmt: skip
# Okabe–Ito colours, one per threshold (5, 10, 15 min), then repeated
_RING_COLORS = ("#009e73", "#e69f00", "#56b4e9", "#0072b2")
# gaps shade the grid colours instead of hiding them: where a grid is mostly gap (the
# usual case at 5 min) an opaque fill would cover the whole coverage layer
_GAP_STYLE = {"color": "#000000", "weight": 0.6, "opacity": 0.5, "fillColor": "#000000",
              "fillOpacity": 0.35}  # fmt: skip
_CATEGORY_COLORS = (
    "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#cc79a7", "#8c510a", "#01665e",
)  # fmt: skip
_OTHER_COLOR = "#9e9e9e"
#: resources are clustered above this many points
RESOURCE_CLUSTER_MIN = 200

#: names in the layer control; ``{t}`` is a threshold in minutes
LAYER_NAMES = {
    "grids": "网格覆盖率 grid coverage ({t} min)",
    "rings": "{t}分钟步行圈 {t}-min walk",
    "gaps": "覆盖缺口 coverage gaps ({t} min)",
    "resources": "资源地图 resources",
    "stations": "驿站 stations",
    "sites": "建议选址 proposed sites",
}

# Leaflet panes (z-index): stations above gaps above rings above grids; tiles are at 200
_PANES = {"grids": 410, "rings": 420, "gaps": 430, "resources": 440, "stations": 450}
_SITES_PANE = 620  # DOM markers, above the default marker pane


def escape_text(value: Any) -> str:
    """Text safe to place inside HTML (``<``, ``>``, ``&`` and quotes escaped)."""
    return html.escape("" if value is None else str(value), quote=True)


def _metric(geoms: gpd.GeoSeries, what: str) -> gpd.GeoSeries:
    """``geoms`` on a projected CRS in metres: their own, else the local UTM zone."""
    if geoms.crs is None:
        raise InputError(
            f"{what} have no coordinate system; set it first, e.g. .set_crs('EPSG:4326')"
        )
    crs = geoms.crs
    if crs.is_projected and crs.axis_info and crs.axis_info[0].unit_name in ("metre", "meter"):
        return geoms
    wgs = geoms.to_crs(WGS84)
    west, south, east, north = wgs.total_bounds
    return wgs.to_crs(local_utm_crs([west, east], [south, north]))


def _web_polygons(
    geoms: gpd.GeoSeries, *, simplify_m: float, what: str, preserve_topology: bool = True
) -> list[list[list[str]]]:
    """Per row: polygons simplified by ``simplify_m`` metres, in WGS84, encoded.

    ``preserve_topology=False`` (plain Douglas–Peucker) is much faster on polygons with
    thousands of holes and may leave a self-touching ring, which a browser draws anyway.
    """
    if len(geoms) == 0:
        return []
    metric = _metric(geoms, what)
    simple = shapely.simplify(metric.to_numpy(), simplify_m, preserve_topology=preserve_topology)
    wgs = gpd.GeoSeries(simple, index=geoms.index, crs=metric.crs).to_crs(WGS84)
    return [encode_polygons(g) for g in wgs.to_numpy()]


def _web_points(geoms: gpd.GeoSeries, what: str) -> NDArray[np.float64]:
    """(n, 2) lon/lat of points (representative points of polygons), 6 decimals; NaN if empty."""
    if geoms.crs is None:
        raise InputError(
            f"{what} have no coordinate system; set it first, e.g. .set_crs('EPSG:4326')"
        )
    arr = geoms.to_numpy()
    pts = np.where(
        shapely.get_type_id(arr) == 0, arr, shapely.point_on_surface(arr)
    )  # point_on_surface keeps a polygon's point inside it
    wgs = gpd.GeoSeries(pts, crs=geoms.crs).to_crs(WGS84).to_numpy()
    xy = np.full((len(wgs), 2), np.nan)
    ok = ~shapely.is_empty(wgs) & ~shapely.is_missing(wgs)
    xy[ok, 0] = shapely.get_x(wgs[ok])
    xy[ok, 1] = shapely.get_y(wgs[ok])
    return np.round(xy, 6)


def bounds_of(*frames: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees over all non-empty frames."""
    boxes = np.array([f.to_crs(WGS84).total_bounds for f in frames if f is not None and len(f)])
    boxes = boxes[np.isfinite(boxes).all(axis=1)] if len(boxes) else boxes
    if not len(boxes):
        raise InputError("nothing to map: the grids and stations are all empty")
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())


# --------------------------------------------------------------------------- values


def coverage_class(share: ArrayLike) -> NDArray[np.int64]:
    """Class index per :data:`COVERAGE_BREAKS` (0: under 25 % … 4: 90 % and more), -1 for NaN.

    Examples
    --------
    >>> coverage_class([0.0, 0.25, 0.6, 0.899, 0.9, 1.0, float("nan")]).tolist()
    [0, 1, 2, 3, 4, 4, -1]
    """
    s = np.asarray(share, dtype=float)
    cls = np.digitize(s, COVERAGE_BREAKS[1:])
    return np.where(np.isfinite(s), cls, -1).astype(np.int64)


def _text_values(frame: pd.DataFrame, col: str) -> list[str | None]:
    if col not in frame.columns:
        return [None] * len(frame)
    return [None if _missing(v) else escape_text(v) for v in frame[col].tolist()]


def _num_values(frame: pd.DataFrame, col: str) -> NDArray[np.float64]:
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _pct(share: float) -> str | None:
    return f"{100 * share:.1f}%" if math.isfinite(share) else None


def _num(value: float, unit: str = "") -> str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "不可达 unreachable"
    return f"{value:,.0f}{unit}"


def _tlabel(t: float) -> str:
    return f"{t:g}"


def _coverage_thresholds(columns: Sequence[str]) -> list[float]:
    found = (re.fullmatch(r"coverage_(\d+(?:\.\d+)?)min", str(c)) for c in columns)
    return sorted(float(m.group(1)) for m in found if m)


def _get(meta: Mapping[str, Any], *keys: str) -> Any:
    value: Any = meta
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


# --------------------------------------------------------------------------- map


def check_tiles(tiles: str | None) -> str | None:
    """The basemap to ask folium for (``None`` for none), or :class:`InputError`.

    Named basemaps folium knows (``"OpenStreetMap"``, ``"CartoDB positron"`` …) and
    ``"none"`` are accepted; anything else (an unknown name, a tile URL, which folium can
    only use with an attribution) is refused with a message naming ``tiles``.
    """
    if tiles is None or tiles.strip().lower() in ("", "none"):
        return None
    hint = "use OpenStreetMap, 'CartoDB positron', or none for no basemap"
    if "{" in tiles or "://" in tiles:
        raise InputError(
            f"tiles={tiles!r}: tile URLs are not supported yet (they need an attribution); " + hint
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # folium's notes on providers' API keys
            folium.raster_layers.TileLayer(tiles)
    except (ValueError, KeyError):
        raise InputError(f"tiles={tiles!r} is not a basemap folium knows; {hint}") from None
    return tiles


def new_map(
    bounds_wgs84: Sequence[float],
    *,
    tiles: str | None = "OpenStreetMap",
    prefer_canvas: bool = True,
) -> folium.Map:
    """An empty map fitted to ``(west, south, east, north)`` degrees; tiles None/"none": none.

    ``prefer_canvas`` draws vectors on a canvas (fast for many lines); the coverage map
    uses SVG so that stacked layers keep their own tooltips.
    """
    west, south, east, north = bounds_wgs84
    m = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        tiles=check_tiles(tiles),
        control_scale=True,
        prefer_canvas=prefer_canvas,
    )
    m.fit_bounds([[south, west], [north, east]])
    return m


# --------------------------------------------------------------------------- layers


def _grid_layer(
    grids: gpd.GeoDataFrame,
    *,
    threshold_min: float | None,
    thresholds: Sequence[float],
    simplify_m: float,
    weight_unit: str,
) -> DataLayer:
    polys = _web_polygons(grids.geometry, simplify_m=simplify_m, what="grids")
    gid = _text_values(grids, "grid_id")
    sub = _text_values(grids, "subdistrict")
    com = _text_values(grids, "community")
    name = _text_values(grids, "grid_name")
    sid = _text_values(grids, "station_id")
    sname = _text_values(grids, "station_name")
    t_key = _tlabel(threshold_min) if threshold_min is not None else None
    share = _num_values(grids, f"coverage_{t_key}min")
    classes = coverage_class(share)
    cov = {t: _num_values(grids, f"coverage_{_tlabel(t)}min") for t in thresholds}
    unc = _num_values(grids, f"uncovered_{t_key}min")
    weight = _num_values(grids, "weight")
    walk_min = _num_values(grids, "walk_min_m")
    walk_med = _num_values(grids, "walk_median_m")
    features = []
    for i, parts in enumerate(polys):
        if not parts:
            continue
        ident = gid[i] if gid[i] is not None else escape_text(grids.index[i])
        names = [v for v in (name[i], com[i], sub[i]) if v]
        station = " ".join(v for v in (sname[i], f"({sid[i]})" if sid[i] else None) if v)
        props: dict[str, Any] = {
            "grid_id": ident,
            "title": name[i] or ident,
            "subdistrict": sub[i],
            "community": com[i],
            "grid_name": name[i],
            "cls": int(classes[i]),
            "uncovered": _num(unc[i], weight_unit),
            "weight": _num(weight[i], weight_unit),
            "station": station or None,
            "walk_min": _num(walk_min[i], " m"),
            "walk_median": _num(walk_med[i], " m"),
            "search": f"{' · '.join(names)} ({ident})" if names else ident,
        }
        for t in thresholds:
            props[f"cov_{_tlabel(t)}"] = _pct(cov[t][i])
        if threshold_min is not None and not math.isfinite(share[i]):
            props[f"cov_{t_key}"] = "无需求 no demand"
        features.append({"properties": props, "polygons": parts})
    styles = {str(k): {"fillColor": c} for k, c in enumerate(COVERAGE_COLORS)} | {
        "-1": {"fillColor": _NO_DEMAND_COLOR, "dashArray": "3 3"}
    }
    cov_rows = [[f"cov_{_tlabel(t)}", f"覆盖率 coverage {_tlabel(t)} min"] for t in thresholds]
    config = {
        "role": "grids",
        "pane": "sc-grids",
        "zIndex": _PANES["grids"],
        "classKey": "cls",
        "style": {"color": "#555555", "weight": 0.8, "fillOpacity": 0.65},
        "styles": styles,
        "sticky": True,
        "title": "title",
        "tooltip": [
            ["grid_name", "网格 grid"],
            ["community", "社区 community"],
            ["subdistrict", "街道 sub-district"],
            *([[f"cov_{t_key}", f"覆盖率 coverage {t_key} min"]] if t_key else []),
        ],
        "popup": [
            ["grid_id", "编号 grid id"],
            ["subdistrict", "街道 sub-district"],
            ["community", "社区 community"],
            ["grid_name", "网格 grid"],
            *cov_rows,
            ["uncovered", f"未覆盖需求 uncovered demand ({t_key} min)"],
            ["weight", "需求总量 total demand"],
            ["station", "最近驿站 nearest station"],
            ["walk_min", "最近步行距离 shortest walk"],
            ["walk_median", "步行距离中位数 median walk"],
        ],
    }
    label = LAYER_NAMES["grids"].format(t=t_key) if t_key else "网格 grids"
    return DataLayer(features, config, name=label)


def _station_layer(stations: gpd.GeoDataFrame) -> DataLayer:
    xy = _web_points(stations.geometry, "stations")
    sid = _text_values(stations, "station_id")
    name = _text_values(stations, "name")
    tiers = stations["tier"].tolist() if "tier" in stations.columns else ["station"] * len(stations)
    features = []
    for i, (x, y) in enumerate(xy):
        if not np.isfinite(x):
            continue
        tier = tiers[i] if tiers[i] in TIER_STYLE else "station"
        shown = TIER_STYLE[tier]["label"] if tier == tiers[i] else escape_text(tiers[i])
        props = {
            "station_id": sid[i],
            "name": name[i] or sid[i],
            "tier": shown,
            "cls": tier,
        }
        features.append({"properties": props, "point": [x, y]})
    styles = {
        tier: {
            "radius": s["radius"],
            "color": s["stroke"],
            "weight": s["weight"],
            "fillColor": s["color"],
            "fillOpacity": 1.0,
        }
        for tier, s in TIER_STYLE.items()
    }
    config = {
        "role": "stations",
        "pane": "sc-stations",
        "zIndex": _PANES["stations"],
        "classKey": "cls",
        "styles": styles,
        "title": "name",
        "tooltip": [["name", "驿站 station"], ["tier", "级别 tier"]],
        "popup": [["station_id", "编号 id"], ["tier", "级别 tier"]],
    }
    return DataLayer(features, config, name=LAYER_NAMES["stations"])


def _ring_layers(
    rings: gpd.GeoDataFrame, *, threshold_min: float | None, simplify_m: float, meta: Mapping
) -> list[tuple[DataLayer, str, str]]:
    """(layer, legend text, colour) per threshold: all stations' rings dissolved in one layer.

    Light fills of 5 ⊂ 10 ⊂ 15 min nest, so overlaps read as darker; union rings
    (``station_id == "all"``) are used as they are when present.
    """
    if "station_id" in rings.columns and (rings["station_id"] == "all").any():
        rings = rings[rings["station_id"] == "all"]  # union rings: nothing left to dissolve
    metric = _metric(rings.geometry, "rings")
    if "threshold_min" in rings.columns:
        keys = pd.to_numeric(rings["threshold_min"], errors="coerce").to_numpy(dtype=float)
    else:
        keys = np.full(len(rings), np.nan)
    distances = dict(
        zip(
            _get(meta, "walk", "thresholds_min") or [],
            _get(meta, "walk", "distances_m") or [],
            strict=False,
        )
    )
    thresholds = sorted({k for k in keys.tolist() if math.isfinite(k)})
    groups = [(t, keys == t) for t in thresholds] or [(None, np.ones(len(rings), dtype=bool))]
    layers = []
    for i, (t, sel) in enumerate(groups):
        # simplifying each ring first halves the union's time (2M vertices at Zhifu)
        pieces = shapely.simplify(metric.to_numpy()[sel], simplify_m, preserve_topology=False)
        bad = ~shapely.is_valid(pieces)
        pieces[bad] = shapely.make_valid(pieces[bad])
        merged = gpd.GeoSeries([shapely.union_all(pieces)], crs=metric.crs)
        parts = _web_polygons(merged, simplify_m=simplify_m, what="rings", preserve_topology=False)
        parts = parts[0]
        color = _RING_COLORS[i % len(_RING_COLORS)]
        dist = distances.get(t)
        label = f"{_tlabel(t)} 分钟步行 {_tlabel(t)}-min walk" if t is not None else "步行圈 walk"
        if dist:
            label += f" ({dist:,.0f} m)"
        config = {
            "role": f"ring_{_tlabel(t)}" if t is not None else "ring",
            "pane": f"sc-ring-{i}",
            "zIndex": _PANES["rings"] + len(groups) - i,  # smaller rings on top
            "interactive": False,
            "style": {
                "color": color,
                "weight": 1.5,
                "fillColor": color,
                "fillOpacity": 0.12,
                "dashArray": None if i == 0 else "6 4",
            },
        }
        features = [{"properties": {"label": label}, "polygons": parts}] if parts else []
        name = LAYER_NAMES["rings"].format(t=_tlabel(t)) if t is not None else "步行圈 walk rings"
        show = t is None or threshold_min is None or t == threshold_min
        layers.append((DataLayer(features, config, name=name, show=show), label, color))
    return layers


def _gap_layer(
    gaps: gpd.GeoDataFrame, *, threshold_min: float | None, simplify_m: float
) -> DataLayer:
    if threshold_min is not None and "threshold_min" in gaps.columns:
        gaps = gaps[pd.to_numeric(gaps["threshold_min"], errors="coerce") == threshold_min]
    polys = _web_polygons(gaps.geometry, simplify_m=simplify_m, what="gap polygons")
    gid = _text_values(gaps, "grid_id")
    name = _text_values(gaps, "grid_name")
    com = _text_values(gaps, "community")
    area = (
        _num_values(gaps, "area_m2")
        if "area_m2" in gaps.columns
        else _metric(gaps.geometry, "gap polygons").area.to_numpy()
    )
    features = [
        {
            "properties": {
                "grid": name[i] or gid[i],
                "community": com[i],
                "area": _num(area[i], " m²"),
            },
            "polygons": parts,
        }
        for i, parts in enumerate(polys)
        if parts
    ]
    t = _tlabel(threshold_min) if threshold_min is not None else ""
    config = {
        "role": "gaps",
        "pane": "sc-gaps",
        "zIndex": _PANES["gaps"],
        "style": _GAP_STYLE,
        "sticky": True,
        "tooltip": [
            ["grid", "覆盖缺口 gap in grid"],
            ["community", "社区 community"],
            ["area", "面积 area"],
        ],
    }
    return DataLayer(features, config, name=LAYER_NAMES["gaps"].format(t=t))


def _category_colors(categories: Sequence[Any]) -> dict[str, str]:
    counts = pd.Series([c for c in categories if not _missing(c)], dtype=object).value_counts()
    return {
        str(c): _CATEGORY_COLORS[i] for i, c in enumerate(counts.index[: len(_CATEGORY_COLORS)])
    }


def _resource_layer(resources: gpd.GeoDataFrame, colors: Mapping[str, str]) -> DataLayer:
    xy = _web_points(resources.geometry, "resources")
    name = _text_values(resources, "name")
    cats = resources["category"].tolist() if "category" in resources.columns else [None] * len(xy)
    keys = {c: str(i) for i, c in enumerate(colors)}
    features = []
    for i, (x, y) in enumerate(xy):
        if not np.isfinite(x):
            continue
        cat = None if _missing(cats[i]) else str(cats[i])
        props = {
            "name": name[i],
            "category": escape_text(cat) if cat is not None else None,
            "cls": keys.get(cat, "other"),
        }
        features.append({"properties": props, "point": [x, y]})
    styles = {keys[c]: {"fillColor": col} for c, col in colors.items()}
    config = {
        "role": "resources",
        "pane": "sc-resources",
        "zIndex": _PANES["resources"],
        "classKey": "cls",
        "style": {
            "radius": 4,
            "color": "#333333",
            "weight": 0.6,
            "fillColor": _OTHER_COLOR,
            "fillOpacity": 0.95,
        },
        "styles": styles,
        "cluster": len(features) > RESOURCE_CLUSTER_MIN,
        "tooltip": [["name", "名称 name"], ["category", "类别 category"]],
    }
    return DataLayer(features, config, name=LAYER_NAMES["resources"], show=False)


def _site_layer(sites: gpd.GeoDataFrame, weight_unit: str) -> DataLayer:
    xy = _web_points(sites.geometry, "proposed sites")
    sid = _text_values(sites, "site_id")
    name = _text_values(sites, "name")
    rank = _num_values(sites, "rank")
    gain = _num_values(sites, "gain_weight")
    features = []
    for i, (x, y) in enumerate(xy):
        if not np.isfinite(x):
            continue
        props = {
            "site_id": sid[i],
            "name": name[i] or sid[i],
            "rank": int(rank[i]) if math.isfinite(rank[i]) else None,
            "gain": _num(gain[i], weight_unit),
        }
        features.append({"properties": props, "point": [x, y]})
    config = {
        "role": "sites",
        "pane": "sc-sites",
        "zIndex": _SITES_PANE,
        "marker": "site",
        "title": "name",
        "tooltip": [["name", "建议选址 proposed site"], ["gain", "新增覆盖 added coverage"]],
        "popup": [
            ["site_id", "编号 id"],
            ["rank", "排序 rank"],
            ["gain", "新增覆盖 added coverage"],
        ],
    }
    return DataLayer(features, config, name=LAYER_NAMES["sites"])


# --------------------------------------------------------------------------- legend


def _swatch(color: str, *, border: str = "#555", style: str = "") -> str:
    return (
        f'<span class="sc-swatch" style="background:{color};border-color:{border};{style}"></span>'
    )


def _dot(fill: str, stroke: str, radius: float) -> str:
    size = 2 * radius
    return (
        f'<span class="sc-dot" style="width:{size:g}px;height:{size:g}px;background:{fill};'
        f'border:2px solid {stroke}"></span>'
    )


def _row(marker: str, text: str) -> str:
    return f'<div class="sc-row">{marker}<span>{text}</span></div>'


def _settings_html(meta: Mapping[str, Any], thresholds: Sequence[float]) -> str:
    e = escape_text
    lines = []
    speed = _get(meta, "walk", "speed_m_per_min")
    preset = _get(meta, "walk", "preset")
    if speed:
        kmh = float(speed) * 60 / 1000
        extra = f", {e(preset)}" if preset else ""
        lines.append(f"步速 speed: {e(f'{float(speed):g}')} m/min ({kmh:.1f} km/h{extra})")
    ts = _get(meta, "walk", "thresholds_min") or list(thresholds)
    ds = _get(meta, "walk", "distances_m") or []
    if ts:
        text = " / ".join(e(_tlabel(float(t))) for t in ts)
        if len(ds) == len(ts):
            text += " min = " + " / ".join(e(f"{float(d):,.0f}") for d in ds) + " m"
        else:
            text += " min"
        lines.append(f"阈值 thresholds: {text}")
    frontage = _get(meta, "walk", "frontage_m")
    if frontage is not None:
        lines.append(f"临街进深 frontage width: {e(f'{float(frontage):g}')} m")
    kind, weight = _get(meta, "demand", "kind"), _get(meta, "demand", "weight")
    if kind or weight:
        lines.append(f"需求 demand: {e(' · '.join(str(v) for v in (kind, weight) if v))}")
    source, osm_date = _get(meta, "network", "source"), _get(meta, "network", "osm_date")
    net = ", ".join(
        v for v in (e(source) if source else None, e(f"OSM {osm_date}") if osm_date else None) if v
    )
    lines.append(f"数据 data: {net + '; ' if net else ''}© OpenStreetMap contributors (ODbL)")
    created, version = _get(meta, "created"), _get(meta, "version")
    if created or version:
        tool = f"servicecircle {e(version)}" if version else "servicecircle"
        lines.append(
            f"生成 made: {e(str(created)[:19].replace('T', ' ')) if created else ''} {tool}"
        )
    return '<div class="sc-meta">' + "<br>".join(lines) + "</div>"


def _legend_html(
    *,
    meta: Mapping[str, Any],
    threshold_min: float | None,
    thresholds: Sequence[float],
    rings: Sequence[tuple[str, str]],
    has_gaps: bool,
    resource_colors: Mapping[str, str] | None,
    has_sites: bool,
) -> str:
    """The legend box (HTML): every text from data or metadata is escaped here."""
    e = escape_text
    out = [
        "<details open><summary>图例 legend · 5分钟服务圈 walking service circles</summary>",
    ]
    if threshold_min is not None:
        out.append(
            f"<h5>网格覆盖率 grid coverage: 需求在 {e(_tlabel(threshold_min))} 分钟内的比例 "
            f"share of demand within {e(_tlabel(threshold_min))} min</h5>"
        )
        edges = [*COVERAGE_BREAKS, 1.0]
        cells = []
        for k, color in enumerate(COVERAGE_COLORS):
            lo, hi = round(edges[k] * 100), round(edges[k + 1] * 100)
            ink = "#fff" if k >= 3 else "#222"
            cells.append(f'<span style="background:{color};color:{ink}">{lo}–{hi}%</span>')
        out.append(f'<div class="sc-bar">{"".join(cells)}</div>')
        out.append(_row(_swatch(_NO_DEMAND_COLOR, style="border-style:dashed"), "无需求 no demand"))
    if has_gaps:
        t = e(_tlabel(threshold_min)) if threshold_min is not None else ""
        gap = _swatch(
            COVERAGE_COLORS[0], border=_GAP_STYLE["color"],
            style=f"box-shadow:inset 0 0 0 20px rgba(0,0,0,{_GAP_STYLE['fillOpacity']})",
        )  # fmt: skip
        out.append(_row(gap, f"覆盖缺口 gaps (shaded): parts of grids beyond {t} min"))
    out.append("<h5>驿站 stations</h5><div class='sc-wrap'>")
    for s in TIER_STYLE.values():
        stroke = s["stroke"] if s["stroke"] != "#ffffff" else "#000"
        out.append(_row(_dot(s["color"], stroke, s["radius"]), e(s["label"])))
    if has_sites:
        out.append(_row('<span class="sc-site"><span>★1</span></span>', "建议选址 proposed site"))
    out.append("</div>")
    if rings:
        out.append("<h5>步行圈 walk rings, along streets 沿街道网络</h5>")
        for text, color in rings:
            out.append(_row(_swatch(color, border=color, style="opacity:0.6"), e(text)))
    if resource_colors is not None:
        out.append("<h5>资源地图 resources</h5><div class='sc-wrap'>")
        for cat, color in resource_colors.items():
            out.append(_row(_dot(color, "#333", 4), e(cat)))
        out.append(_row(_dot(_OTHER_COLOR, "#333", 4), "其余类别 remaining categories") + "</div>")
    out.append(_settings_html(meta, thresholds))
    out.append("</details>")
    return "".join(out)


# --------------------------------------------------------------------------- public


def _as_frame(frame: gpd.GeoDataFrame | None, what: str) -> gpd.GeoDataFrame | None:
    if frame is None:
        return None
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(f"{what} must be a GeoDataFrame, got {type(frame).__name__}")
    if frame.crs is None:
        raise InputError(
            f"{what} have no coordinate system; set it first, e.g. .set_crs('EPSG:4326')"
        )
    return frame


def coverage_map(
    grids: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame,
    *,
    rings: gpd.GeoDataFrame | None = None,
    gaps: gpd.GeoDataFrame | None = None,
    resources: gpd.GeoDataFrame | None = None,
    sites: gpd.GeoDataFrame | None = None,
    metadata: Mapping[str, Any] | None = None,
    threshold_min: float = 5,
    tiles: str | None = "OpenStreetMap",
    simplify_m: float = 2.0,
) -> folium.Map:
    """The planner's coverage map: grids, rings, gaps, resources, stations and sites as layers.

    Parameters
    ----------
    grids
        ``grid_coverage`` output (any CRS): grids are coloured by ``coverage_{t}min`` for
        ``t = threshold_min`` in the classes of :data:`COVERAGE_BREAKS`. Missing columns
        are tolerated (plain grids are drawn grey).
    stations
        ``station_id``, ``name``, ``tier`` (district/subdistrict/station), points.
    rings
        Station or union rings (any CRS, usually UTM): dissolved per ``threshold_min``
        into one light-filled layer per threshold.
    gaps
        Gap polygons; those of ``threshold_min`` are drawn when a ``threshold_min``
        column is present.
    resources
        Points or polygons with ``name`` and ``category``; clustered above
        :data:`RESOURCE_CLUSTER_MIN` points.
    sites
        Proposed sites: ``site_id``, ``name``, ``rank``, ``gain_weight``, points.
    metadata
        The export metadata dict (walk settings, network source and OSM date, ...) shown
        in the legend; defaults to ``grids.attrs["settings"]``. Missing keys are skipped.
    threshold_min
        Walk time (minutes) the grid colours and gaps refer to.
    tiles
        Basemap for folium (``"OpenStreetMap"``, ``"CartoDB positron"``, ...) or
        ``None``/``"none"``. Tiles need the network; everything else is in the page.
    simplify_m
        Polygon simplification tolerance (metres, on a projected CRS) before encoding.

    Returns
    -------
    A folium Map with its assets already inlined; write it with :func:`save_map`.
    """
    grids = _as_frame(grids, "grids")
    stations = _as_frame(stations, "stations")
    meta: Mapping[str, Any] = (
        metadata if metadata is not None else (grids.attrs.get("settings") or {})
    )
    thresholds = _coverage_thresholds(list(grids.columns))
    t_sel: float | None = float(threshold_min)
    if not thresholds:
        t_sel = None  # plain grids: nothing to colour by
    elif t_sel not in thresholds:
        shown = ", ".join(_tlabel(t) for t in thresholds)
        raise InputError(
            f"grids have no coverage_{_tlabel(float(threshold_min))}min column; "
            f"choose threshold_min from the computed thresholds: {shown}"
        )
    weight_unit = {
        "population": " 人 people",
        "area": " m²",
        "footprint": " m²",
        "footprint_floors": " m² floor area",
    }.get(str(_get(meta, "demand", "weight")), "")
    m = new_map(bounds_of(grids, stations), tiles=tiles, prefer_canvas=False)
    grid_layer = _grid_layer(
        grids,
        threshold_min=t_sel,
        thresholds=thresholds,
        simplify_m=simplify_m,
        weight_unit=weight_unit,
    )
    grid_layer.add_to(m)
    ring_layers = []
    if rings is not None and len(rings):
        ring_layers = _ring_layers(
            _as_frame(rings, "rings"), threshold_min=t_sel, simplify_m=simplify_m, meta=meta
        )
        for layer, _, _ in ring_layers:
            layer.add_to(m)
    if gaps is not None:
        _gap_layer(
            _as_frame(gaps, "gap polygons"), threshold_min=t_sel, simplify_m=simplify_m
        ).add_to(m)
    colors = None
    if resources is not None:
        resources = _as_frame(resources, "resources")
        cats = resources["category"].tolist() if "category" in resources.columns else []
        colors = _category_colors(cats)
        _resource_layer(resources, colors).add_to(m)
    _station_layer(stations).add_to(m)
    if sites is not None and len(sites):
        _site_layer(_as_frame(sites, "proposed sites"), weight_unit).add_to(m)
    legend = _legend_html(
        meta=meta,
        threshold_min=t_sel,
        thresholds=thresholds,
        rings=[(text, color) for _, text, color in ring_layers],
        has_gaps=gaps is not None,
        resource_colors=colors,
        has_sites=sites is not None and len(sites) > 0,
    )
    LegendControl(legend).add_to(m)
    SearchControl(grid_layer, placeholder="搜索网格/社区 search grid or community").add_to(m)
    Fullscreen(position="topleft", title="全屏 full screen", title_cancel="退出全屏 exit").add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    return make_offline(m)


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write the map as one self-contained HTML file, atomically; returns its path.

    Vendored assets are inlined first (:func:`make_offline`), so the page needs no
    network except for basemap tiles.
    """
    path = Path(path)
    make_offline(m)
    try:
        with atomic_path(path) as tmp:
            m.save(str(tmp))
    except OSError as exc:
        raise ExportError(
            f"{path}: cannot write the map ({exc.strerror or exc}); choose a writable folder"
        ) from exc
    return path


def map_size_report(path: str | Path, *, limit_mb: float = 5.0) -> dict[str, Any]:
    """Size of a saved map (bytes; MB = 10^6 bytes): total, libraries (head) and data (body).

    ``within_limit`` tells whether the file is under ``limit_mb``.
    """
    path = Path(path)
    data = path.read_bytes()
    head_end = data.find(b"</head>")
    head = head_end if head_end >= 0 else 0
    return {
        "path": str(path),
        "bytes": len(data),
        "megabytes": round(len(data) / 1e6, 3),
        "library_bytes": head,
        "data_bytes": len(data) - head,
        "limit_megabytes": limit_mb,
        "within_limit": len(data) < limit_mb * 1e6,
    }
