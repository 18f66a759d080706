"""Declared coordinate systems of inputs, and the local metric CRS for analysis.

An input declares either an EPSG code (any pyproj can read) or one of the Chinese web-map
datums ``gcj02`` (AMap / Tencent, "Mars") or ``bd09`` (Baidu). Everything is converted to
WGS84 on load; distances are measured on the local UTM zone (metres).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import numpy as np
import pyproj
from numpy.typing import ArrayLike

from servicecircle.errors import CRSError

__all__ = ["WGS84", "DeclaredCRS", "local_utm_crs", "parse_crs"]

WGS84 = pyproj.CRS.from_epsg(4326)

_ALIASES = {
    "gcj02": "gcj02", "gcj-02": "gcj02", "gcj": "gcj02", "mars": "gcj02", "amap": "gcj02",
    "gaode": "gcj02", "tencent": "gcj02", "qq": "gcj02", "火星坐标": "gcj02", "高德": "gcj02",
    "bd09": "bd09", "bd-09": "bd09", "bd09ll": "bd09", "baidu": "bd09", "百度": "bd09",
    "wgs84": "wgs84", "wgs-84": "wgs84", "wgs 84": "wgs84", "gps": "wgs84",
}  # fmt: skip

_HOW = (
    "use an EPSG code such as EPSG:4326 (WGS84, GPS/OSM), 'gcj02' (AMap/Tencent) or 'bd09' (Baidu)"
)


@dataclass(frozen=True)
class DeclaredCRS:
    """What an input says its coordinates are.

    ``datum`` is ``"gcj02"`` or ``"bd09"`` for the Chinese web-map datums (lon/lat degrees on
    a shifted WGS84), else ``None`` and ``crs`` is the pyproj CRS.
    """

    crs: pyproj.CRS
    datum: str | None = None

    @property
    def label(self) -> str:
        """Short name for messages, legends and export metadata."""
        if self.datum:
            return self.datum
        epsg = self.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else self.crs.name

    @property
    def is_geographic(self) -> bool:
        """True when coordinates are lon/lat degrees."""
        return self.datum is not None or self.crs.is_geographic


def parse_crs(value: str | int | pyproj.CRS | DeclaredCRS, *, what: str = "input") -> DeclaredCRS:
    """Read a declared coordinate system.

    Parameters
    ----------
    value
        ``"gcj02"``, ``"bd09"``, ``"wgs84"``, an EPSG code (``4326``, ``"EPSG:32651"``) or
        anything :class:`pyproj.CRS` accepts.
    what
        Name of the input, for the error message (e.g. ``"stations.csv"``).

    Raises
    ------
    CRSError
        When the value is empty or not a coordinate system.
    """
    if isinstance(value, DeclaredCRS):
        return value
    if isinstance(value, pyproj.CRS):
        return DeclaredCRS(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CRSError(f"{what}: no coordinate system declared; {_HOW}")
    if isinstance(value, str):
        key = value.strip().lower()
        alias = _ALIASES.get(key)
        if alias == "wgs84":
            return DeclaredCRS(WGS84)
        if alias:
            return DeclaredCRS(WGS84, alias)
        code = re.fullmatch(r"(?:epsg\s*:\s*)?(\d+)", key)
        if code:
            value = int(code.group(1))
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return DeclaredCRS(pyproj.CRS.from_epsg(value))
        except pyproj.exceptions.CRSError:
            raise CRSError(f"{what}: unknown EPSG code {value}; {_HOW}") from None
    try:
        return DeclaredCRS(pyproj.CRS.from_user_input(value))
    except pyproj.exceptions.CRSError:
        raise CRSError(
            f"{what}: unknown coordinate system {value!r}{_did_you_mean(value)}; {_HOW}"
        ) from None


def _did_you_mean(value: object) -> str:
    """' (did you mean 'gcj02'?)' for a near-miss of a datum name, else ''."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value.strip().lower(), list(_ALIASES), n=1, cutoff=0.7)
    return f" (did you mean {_ALIASES[close[0]]!r}?)" if close else ""


def local_utm_crs(lon: ArrayLike, lat: ArrayLike) -> pyproj.CRS:
    """The WGS84 UTM zone (metres) that holds the centre of the given lon/lat points.

    Examples
    --------
    >>> local_utm_crs([121.4], [37.5]).to_epsg()  # Zhifu, Yantai
    32651
    >>> local_utm_crs([24.94], [60.17]).to_epsg()  # Helsinki
    32635
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise CRSError("cannot choose a UTM zone: no finite coordinates")
    # the bbox centre, so that a few outliers do not move the zone
    cx = (np.min(lon[ok]) + np.max(lon[ok])) / 2
    cy = (np.min(lat[ok]) + np.max(lat[ok])) / 2
    zone = min(math.floor((cx + 180.0) / 6.0) + 1, 60)
    return pyproj.CRS.from_epsg((32600 if cy >= 0 else 32700) + zone)
