"""Self-contained Leaflet pages: vendored assets inlined, compact data, script-safe JSON.

:func:`make_offline` replaces the CDN links of folium and its plugins by the files
vendored in ``servicecircle/_static`` (see its README for versions and licences), so a
saved page needs no network. Layers carry their data as compact JSON (polygons as
encoded polylines) that the runtime ``_static/servicecircle/map.js`` turns into Leaflet
layers. :func:`script_json` is the only way data enters a page's scripts.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import folium
import numpy as np
import shapely
from branca.element import Element, MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template
from folium.utilities import get_obj_in_upper_tree
from numpy.typing import NDArray

__all__ = [
    "DataLayer",
    "LegendControl",
    "SearchControl",
    "encode_polygons",
    "encode_polyline",
    "make_offline",
    "script_json",
]

_STATIC = Path(__file__).with_name("_static")
# folium resource name -> (kind, file under _static), in page order
_ASSETS: dict[str, tuple[str, str]] = {
    "leaflet_css": ("css", "leaflet/leaflet.css"),
    "leaflet": ("js", "leaflet/leaflet.js"),
    "markerclustercss": ("css", "leaflet.markercluster/MarkerCluster.css"),
    "markerclusterdefaultcss": ("css", "leaflet.markercluster/MarkerCluster.Default.css"),
    "markerclusterjs": ("js", "leaflet.markercluster/leaflet.markercluster.js"),
    "Leaflet.Search.css": ("css", "leaflet-search/lib/leaflet-search.min.css"),
    "Leaflet.Search.js": ("js", "leaflet-search/lib/leaflet-search.min.js"),
    "Control.FullScreen.css": ("css", "leaflet.fullscreen/Control.FullScreen.css"),
    "Control.Fullscreen.js": ("js", "leaflet.fullscreen/Control.FullScreen.js"),
    "servicecircle_css": ("css", "servicecircle/map.css"),
    "servicecircle_js": ("js", "servicecircle/map.js"),
}
# folium.Map's other defaults: jQuery serves folium.Popup, the rest folium.Icon
_JQUERY = {"jquery"}
_ICONS = {
    "bootstrap", "awesome_markers", "bootstrap_css", "glyphicons_css",
    "awesome_markers_font_css", "awesome_markers_css", "awesome_rotate_css",
}  # fmt: skip
_RUNTIME_JS = [("servicecircle_js", "servicecircle/map.js")]
_RUNTIME_CSS = [("servicecircle_css", "servicecircle/map.css")]

_JINJA_OPEN = re.compile(r"\{(?=[{%#])")


def script_json(value: Any) -> str:
    """JSON that is also safe inside ``<script>``: no ``</script>``, ``<!--`` or line breaks."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, esc)
    # branca parses every element's script output as a Jinja template again: "{{", "{%"
    # and "{#" (only ever inside JSON strings) would be evaluated, so "{" goes as \u007b
    text = _JINJA_OPEN.sub(r"\\u007b", text)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# ---------------------------------------------------------------- polylines


def encode_polyline(latlon_e5: NDArray[np.int64]) -> str:
    """Google encoded polyline of integer ``(lat, lon)`` pairs in units of 1e-5 degree.

    Examples
    --------
    The reference example of the format's documentation:

    >>> pts = np.array([[38.5, -120.2], [40.7, -120.95], [43.252, -126.453]])
    >>> encode_polyline(np.round(pts * 1e5).astype(np.int64))
    '_p~iF~ps|U_ulLnnqC_mqNvxq`@'
    """
    q = np.asarray(latlon_e5, dtype=np.int64).reshape(-1, 2)
    d = np.diff(q, axis=0, prepend=np.zeros((1, 2), np.int64)).ravel()
    v = np.where(d < 0, ~(d << 1), d << 1)  # zigzag: sign in the lowest bit
    shifts = 5 * np.arange(7)
    groups = (v[:, None] >> shifts) & 0x1F
    n = 1 + ((v[:, None] >> shifts[1:]) > 0).sum(axis=1)  # 5-bit chunks needed
    cols = np.arange(7)[None, :]
    codes = (groups | ((cols < n[:, None] - 1) * 0x20)) + 63
    return codes[cols < n[:, None]].astype(np.uint8).tobytes().decode("ascii")


def _encode_ring(lonlat: NDArray[np.float64]) -> str | None:
    q = np.round(lonlat[:, ::-1] * 1e5).astype(np.int64)
    keep = np.ones(len(q), dtype=bool)
    keep[1:] = (np.diff(q, axis=0) != 0).any(axis=1)  # rounding merges close vertices
    q = q[keep]
    if len(q) > 1 and (q[0] == q[-1]).all():
        q = q[:-1]  # Leaflet closes rings itself
    return encode_polyline(q) if len(q) >= 3 else None


def encode_polygons(geom: shapely.Geometry | None) -> list[list[str]]:
    """[[exterior, hole, ...], ...] encoded; parts that collapse below 1e-5° are dropped."""
    out: list[list[str]] = []
    if geom is None or geom.is_empty:
        return out
    for part in shapely.get_parts(geom):
        if part.geom_type == "MultiPolygon" or part.geom_type == "GeometryCollection":
            out.extend(encode_polygons(part))
            continue
        if part.geom_type != "Polygon":
            continue
        outer = _encode_ring(shapely.get_coordinates(part.exterior))
        if outer is None:
            continue
        holes = (_encode_ring(shapely.get_coordinates(r)) for r in part.interiors)
        out.append([outer, *(h for h in holes if h is not None)])
    return out


# ---------------------------------------------------------------- page elements


class _Raw(Element):
    """Literal HTML, never passed through Jinja (vendored scripts hold ``{{``)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Raw"
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


class DataLayer(JSCSSMixin, Layer):
    """A layer built in the page by ``servicecircle.layer`` from compact embedded data."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = servicecircle.layer(
            {{ this.map_name }}, {{ this.data_json }}, {{ this.config_json }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        features: list[dict[str, Any]],
        config: dict[str, Any],
        *,
        name: str,
        show: bool = True,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "DataLayer"
        self.n_features = len(features)
        self.data_json = script_json(features)
        self.config_json = script_json(config)
        self.map_name = ""
        self.default_js = list(_RUNTIME_JS)
        self.default_css = list(_RUNTIME_CSS)
        if config.get("cluster"):
            self.default_js.append(("markerclusterjs", "leaflet.markercluster"))
            self.default_css += [
                ("markerclustercss", "leaflet.markercluster"),
                ("markerclusterdefaultcss", "leaflet.markercluster"),
            ]

    def render(self, **kwargs: Any) -> None:
        self.map_name = get_obj_in_upper_tree(self, folium.Map).get_name()
        super().render(**kwargs)


class LegendControl(JSCSSMixin, MacroElement):
    """The legend box, a Leaflet control so that it stays visible in full screen."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        servicecircle.legend({{ this._parent.get_name() }}, {{ this.html_json }}, "bottomleft");
        {% endmacro %}
        """
    )

    def __init__(self, legend_html: str) -> None:
        super().__init__()
        self._name = "Legend"
        self.html_json = script_json(legend_html)
        self.default_js = list(_RUNTIME_JS)
        self.default_css = list(_RUNTIME_CSS)


class SearchControl(JSCSSMixin, MacroElement):
    """leaflet-search over a data layer's ``search`` property, matching anywhere in it."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        servicecircle.search({{ this._parent.get_name() }}, {{ this.layer.get_name() }},
            {{ this.options_json }});
        {% endmacro %}
        """
    )

    def __init__(self, layer: DataLayer, *, placeholder: str) -> None:
        super().__init__()
        self._name = "Search"
        self.layer = layer
        self.options_json = script_json(
            {
                "property": "search",
                "placeholder": placeholder,
                "notFound": "未找到 not found",
                "cancel": "清除 clear",
            }
        )
        self.default_js = [*_RUNTIME_JS, ("Leaflet.Search.js", "leaflet-search")]
        self.default_css = [*_RUNTIME_CSS, ("Leaflet.Search.css", "leaflet-search")]


# ---------------------------------------------------------------- offline assets


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(getattr(element, "_children", {}).values()):
        yield from _walk(child)


_CSS_URL = re.compile(r"""url\((['"]?)([^'")]+)\1\)""")
_MIME = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml"}


def _inline_css_urls(css: str, folder: Path) -> str:
    """``url(images/x.png)`` → data URI when the file is vendored; other URLs stay."""

    def repl(match: re.Match[str]) -> str:
        ref = match.group(2)
        target = Path(os.path.normpath(folder / ref))
        if ref.startswith(("data:", "#", "http:", "https:")) or not target.is_file():
            return match.group(0)
        data = base64.b64encode(target.read_bytes()).decode("ascii")
        return f'url("data:{_MIME.get(target.suffix, "application/octet-stream")};base64,{data}")'

    return _CSS_URL.sub(repl, css)


@cache
def _asset_tag(name: str) -> str:
    kind, rel = _ASSETS[name]
    path = _STATIC / rel
    text = path.read_text(encoding="utf-8")
    # a literal "</script" or "</style" would end the element early
    text = re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE)
    if kind == "css":
        return f"<style>/* {rel} */\n{_inline_css_urls(text, path.parent)}\n</style>\n"
    return f"<script>/* {rel} */\n{text}\n</script>\n"


def make_offline(m: folium.Map) -> folium.Map:
    """Inline the vendored Leaflet, plugins and runtime into the page; returns ``m``.

    Every folium element's CDN link that ``servicecircle/_static`` vendors is replaced by
    an inline ``<script>``/``<style>`` in the page head; jQuery, Bootstrap and Awesome
    Markers are dropped unless a ``folium.Popup`` or ``folium.Icon`` needs them (those
    then load from their CDN, online only). Idempotent; ``webmap.save_map`` calls it.
    """
    root = m.get_root()
    elements = list(_walk(root))
    keep = set()
    if any(isinstance(e, folium.Popup) for e in elements):
        keep |= _JQUERY
    if any(isinstance(e, folium.Icon) for e in elements):
        keep |= _ICONS
    used = {k.removeprefix("sc-asset-") for k in root.header._children if k.startswith("sc-")}
    for element in elements:
        if not isinstance(element, JSCSSMixin):
            continue
        for attr in ("default_js", "default_css"):
            links = []
            for name, url in getattr(element, attr):
                if name in _ASSETS:
                    used.add(name)
                elif name in keep or name not in _JQUERY | _ICONS:
                    links.append((name, url))
            setattr(element, attr, links)  # instance attribute: folium's class lists stay
    for name in _ASSETS:
        if name in used:
            root.header.add_child(_Raw(_asset_tag(name)), name=f"sc-asset-{name}")
    return m
