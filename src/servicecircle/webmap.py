"""The planner's HTML map (folium): stations, rings, grids and resources as layers.

All user text (station names, grid names, categories) is HTML-escaped before it reaches
the page: names are data, not markup. Geometries are published in WGS84 with coordinates
rounded to 6 decimals (≈ 0.1 m).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely

from servicecircle.crs import WGS84
from servicecircle.fileio import atomic_path

__all__ = ["TIER_STYLE", "add_lines", "add_points", "new_map", "save_map"]

#: marker colour and radius (px) per station tier
TIER_STYLE = {
    "district": {"color": "#b30000", "radius": 9, "label": "区级中心 district centre"},
    "subdistrict": {"color": "#e34a33", "radius": 7, "label": "街道中心 sub-district centre"},
    "station": {"color": "#fc8d59", "radius": 5, "label": "驿站 station"},
}


def escape_text(value: Any) -> str:
    """Text safe to place inside HTML (``<``, ``>``, ``&`` and quotes escaped)."""
    return html.escape("" if value is None else str(value), quote=True)


def new_map(bounds_wgs84: Sequence[float], *, tiles: str | None = "OpenStreetMap") -> folium.Map:
    """An empty map fitted to ``(west, south, east, north)`` degrees; ``tiles=None`` for none."""
    west, south, east, north = bounds_wgs84
    m = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        tiles=tiles if tiles and tiles.lower() != "none" else None,
        control_scale=True,
        prefer_canvas=True,
    )
    m.fit_bounds([[south, west], [north, east]])
    return m


def _wgs84(frame: gpd.GeoDataFrame, *, precision: int = 6) -> gpd.GeoDataFrame:
    out = frame.to_crs(WGS84) if frame.crs is not None and not frame.crs.equals(WGS84) else frame
    geoms = shapely.set_precision(out.geometry.to_numpy(), 10.0**-precision)
    return out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=WGS84))


def add_points(
    group: folium.FeatureGroup | folium.Map,
    points: gpd.GeoDataFrame,
    *,
    label_col: str,
    color: str,
    radius: float = 5,
    popup_cols: Sequence[str] = (),
) -> None:
    """Circle markers with an escaped tooltip (``label_col``) and popup table."""
    pts = _wgs84(points)
    xy = shapely.get_coordinates(pts.geometry.to_numpy())
    for (x, y), (_, row) in zip(xy, pts.iterrows(), strict=True):
        rows = "".join(
            f"<tr><th>{escape_text(c)}</th><td>{escape_text(row[c])}</td></tr>" for c in popup_cols
        )
        folium.CircleMarker(
            location=[y, x],
            radius=radius,
            color=color,
            weight=1,
            fill=True,
            fill_color=color,
            fill_opacity=0.9,
            tooltip=folium.Tooltip(escape_text(row[label_col])),
            popup=folium.Popup(f"<table>{rows}</table>", max_width=320) if rows else None,
        ).add_to(group)


def add_lines(
    group: folium.FeatureGroup | folium.Map,
    lines: gpd.GeoDataFrame,
    *,
    color: str = "#777777",
    weight: float = 1.0,
    name: str = "lines",
) -> None:
    """Lines (e.g. the walking network) as one GeoJSON layer without properties."""
    geoms = _wgs84(lines).geometry.to_numpy()
    frame = gpd.GeoDataFrame(geometry=geoms, crs=WGS84)
    folium.GeoJson(
        frame.to_json(drop_id=True),
        name=name,
        style_function=lambda _: {"color": color, "weight": weight, "opacity": 0.6},
    ).add_to(group)


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write the map atomically (temp file + rename) and return its path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        m.save(str(tmp))
    return path


def bounds_of(*frames: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees over all frames."""
    boxes = np.array([f.to_crs(WGS84).total_bounds for f in frames if len(f)])
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
