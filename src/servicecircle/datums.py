"""Convert coordinates between the WGS84, GCJ-02 and BD-09 datums used by Chinese web maps.

Background
----------
* **WGS84** is the datum of GPS receivers, OpenStreetMap and most non-Chinese maps.
* **GCJ-02** ("Mars coordinates") is the obfuscated datum mandated for maps published
  in mainland China (AMap/Gaode, Tencent, Google Maps China, Apple Maps in China).
  It is WGS84 plus a deterministic, non-linear offset of a few hundred metres defined
  by the widely published "transform" polynomials on the Krasovsky-1940 ellipsoid.
* **BD-09** is Baidu Maps' datum: GCJ-02 plus a further polar perturbation of roughly
  one kilometre.

The forward transforms (WGS84 -> GCJ-02 -> BD-09) are closed formulas.  Their inverses
have no closed form; this module inverts them iteratively (fixed-point iteration
``x <- x - (forward(x) - target)``) until the forward image of the estimate lies within
``tol_m`` metres of the input, so round trips are exact to well under 1 cm.

Conventions
-----------
* All coordinates are geographic longitude / latitude in decimal **degrees**, given in
  ``(lon, lat)`` order (x, y), as in shapely and GeoJSON.
* Inputs may be scalars, sequences or arrays; they are broadcast against each other and
  the results are always new ``float64`` arrays of the broadcast shape (0-d arrays for
  scalar input; use ``float(x)`` or ``x.item()`` to get a Python float).
* NaN in gives NaN out (both coordinates of the point), without warnings or exceptions.
* Like the reference implementations (coordtransform, eviltransform, PRCoords), the
  GCJ-02 offset is applied only inside a coarse bounding box around China
  (see :func:`in_china`); outside it GCJ-02 equals WGS84.  The BD-09 step is applied
  everywhere, as in coordtransform and PRCoords (eviltransform skips it outside the box).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DATUMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "convert",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "transform_geometry",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

DATUMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")
"""Names of the supported datums, as accepted by :func:`convert`."""

FloatArray = NDArray[np.float64]
_Pair = tuple[FloatArray, FloatArray]
_PointFunc = Callable[[ArrayLike, ArrayLike], _Pair]

# Krasovsky-1940 ellipsoid used by the GCJ-02 formula.
_KRASOVSKY_A = 6378245.0  # semi-major axis, metres
_KRASOVSKY_EE = 0.00669342162296594323  # first eccentricity squared

# BD-09 constants.
_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON = 0.0065  # degrees
_BD_DLAT = 0.006  # degrees

# Coarse bounding box of China used by the reference implementations (degrees).
_CHINA_LON_MIN, _CHINA_LON_MAX = 72.004, 137.8347
_CHINA_LAT_MIN, _CHINA_LAT_MAX = 0.8293, 55.8271

# Approximate length of one degree of latitude, metres (convergence test only).
_M_PER_DEG = 111_320.0


def _as_float_arrays(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """Broadcast ``lon`` and ``lat`` to new float64 arrays of a common shape."""
    lon_b, lat_b = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    )
    return np.array(lon_b, dtype=np.float64), np.array(lat_b, dtype=np.float64)


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Test whether points fall inside the coarse "China" box of the GCJ-02 references.

    The box is lon 72.004 to 137.8347 degrees E and lat 0.8293 to 55.8271 degrees N
    (bounds inclusive), the rectangle used by coordtransform, eviltransform and
    PRCoords.  It is only a rough sanity check: it includes parts of neighbouring
    countries and excludes nothing inside China.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees (any datum; the box is far coarser than the
        datum offsets).  Broadcast against each other.

    Returns
    -------
    numpy.ndarray of bool
        True inside the box; False outside it and for NaN coordinates.
    """
    x, y = _as_float_arrays(lon, lat)
    with np.errstate(invalid="ignore"):
        return (
            (x >= _CHINA_LON_MIN)
            & (x <= _CHINA_LON_MAX)
            & (y >= _CHINA_LAT_MIN)
            & (y <= _CHINA_LAT_MAX)
        )


def _gcj_offset_m(x: FloatArray, y: FloatArray) -> _Pair:
    """Return the raw GCJ-02 offsets ``(d_lon, d_lat)`` of the published polynomials.

    ``x = lon - 105`` and ``y = lat - 35`` in degrees; the results are arc lengths in
    metres (the classic ``transformLon`` / ``transformLat`` functions).
    """
    pi = np.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    d_lat += common
    d_lat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    d_lon += common
    d_lon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    return d_lon, d_lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """Convert WGS84 coordinates to GCJ-02 (closed formula).

    Uses the standard published algorithm on the Krasovsky-1940 ellipsoid
    (a = 6378245.0 m, e^2 = 0.00669342162296594323).  Points outside :func:`in_china`
    are returned unchanged.

    Parameters
    ----------
    lon, lat : array_like
        WGS84 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        GCJ-02 longitude and latitude in degrees, of the broadcast shape (0-d for
        scalar input).  If either input coordinate of a point is NaN, both outputs
        are NaN.
    """
    x, y = _as_float_arrays(lon, lat)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d_lon_m, d_lat_m = _gcj_offset_m(x - 105.0, y - 35.0)
        rad_lat = np.radians(y)
        magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
        sqrt_magic = np.sqrt(magic)
        # Metres per radian of latitude (meridian radius) and of longitude.
        m_per_rad_lat = _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (magic * sqrt_magic)
        m_per_rad_lon = _KRASOVSKY_A / sqrt_magic * np.cos(rad_lat)
        d_lat = (d_lat_m * 180.0) / (m_per_rad_lat * np.pi)
        d_lon = (d_lon_m * 180.0) / (m_per_rad_lon * np.pi)
    inside = in_china(x, y)
    # A point with either coordinate NaN is undefined: make both outputs NaN.
    undefined = np.isnan(x) | np.isnan(y)
    out_lon = np.where(inside, x + d_lon, np.where(undefined, np.nan, x))
    out_lat = np.where(inside, y + d_lat, np.where(undefined, np.nan, y))
    return out_lon, out_lat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """Convert GCJ-02 coordinates to BD-09 (closed formula).

    With ``x_pi = pi * 3000 / 180``::

        z = hypot(lon, lat) + 0.00002 * sin(lat * x_pi)
        theta = atan2(lat, lon) + 0.000003 * cos(lon * x_pi)
        bd_lon = z * cos(theta) + 0.0065
        bd_lat = z * sin(theta) + 0.006

    Applied everywhere (no :func:`in_china` test), like coordtransform and PRCoords.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        BD-09 longitude and latitude in degrees, of the broadcast shape.
    """
    x, y = _as_float_arrays(lon, lat)
    with np.errstate(invalid="ignore", over="ignore"):
        z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
        theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
        bd_lon = z * np.cos(theta) + _BD_DLON
        bd_lat = z * np.sin(theta) + _BD_DLAT
    return np.asarray(bd_lon, dtype=np.float64), np.asarray(bd_lat, dtype=np.float64)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """Convert WGS84 coordinates to BD-09 (via GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        WGS84 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        BD-09 longitude and latitude in degrees, of the broadcast shape.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(
    forward: _PointFunc, lon: ArrayLike, lat: ArrayLike, tol_m: float, max_iter: int
) -> _Pair:
    """Invert a near-identity point transform by fixed-point iteration.

    Starts from ``x0 = t - (forward(t) - t)`` and repeats ``x <- x - (forward(x) - t)``
    for each point until its forward image was within ``tol_m`` metres of the target
    ``t`` (distance approximated as 111,320 m per degree, longitude scaled by cos(lat));
    the correction computed in that last check is still applied, so the final residual
    is normally orders of magnitude below ``tol_m``.  At most ``max_iter`` forward
    evaluations are made after the initial guess; points that have not converged by
    then keep their last estimate.
    """
    if not tol_m > 0:
        raise ValueError(f"tol_m must be a positive number of metres, got {tol_m!r}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter!r}")
    t_lon, t_lat = _as_float_arrays(lon, lat)
    shape = t_lon.shape
    t_lon, t_lat = t_lon.ravel(), t_lat.ravel()
    with np.errstate(invalid="ignore", over="ignore"):
        f_lon, f_lat = forward(t_lon, t_lat)
        # ``where`` keeps fixed points (e.g. outside China, incl. +-inf) exact.
        x = np.where(f_lon == t_lon, t_lon, 2.0 * t_lon - f_lon)
        y = np.where(f_lat == t_lat, t_lat, 2.0 * t_lat - f_lat)
        active = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        for _ in range(max_iter):
            if active.size == 0:
                break
            f_lon, f_lat = forward(x[active], y[active])
            d_lon = f_lon - t_lon[active]
            d_lat = f_lat - t_lat[active]
            err_m = _M_PER_DEG * np.hypot(d_lon * np.cos(np.radians(t_lat[active])), d_lat)
            # Always apply the correction: for converged points it is a free extra
            # contraction step that takes the residual far below ``tol_m``.
            x[active] -= d_lon
            y[active] -= d_lat
            active = active[~(err_m < tol_m)]
    return x.reshape(shape), y.reshape(shape)


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol_m: float = 0.01, max_iter: int = 30
) -> _Pair:
    """Convert GCJ-02 coordinates to WGS84 by iteratively inverting :func:`wgs84_to_gcj02`.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; broadcast against each other.
    tol_m : float, default 0.01
        Convergence tolerance in metres: iteration stops once ``wgs84_to_gcj02`` of the
        estimate is within ``tol_m`` of the input.  Must be positive.
    max_iter : int, default 30
        Maximum number of refinement iterations (normally 2-3 suffice).

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        WGS84 longitude and latitude in degrees, of the broadcast shape.  NaN inputs
        give NaN outputs.

    Notes
    -----
    Unlike the one-step approximation ``2 * gcj - wgs84_to_gcj02(gcj)`` of many
    libraries (errors up to a few metres), the result round-trips through
    :func:`wgs84_to_gcj02` to within ``tol_m``.  Within a few hundred metres of the
    edge of the :func:`in_china` box the forward map is not one-to-one; there the
    iteration returns one valid preimage.
    """
    return _invert(wgs84_to_gcj02, lon, lat, tol_m, max_iter)


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike, *, tol_m: float = 0.01, max_iter: int = 30
) -> _Pair:
    """Convert BD-09 coordinates to GCJ-02 by iteratively inverting :func:`gcj02_to_bd09`.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; broadcast against each other.
    tol_m : float, default 0.01
        Convergence tolerance in metres on the forward image of the estimate.
    max_iter : int, default 30
        Maximum number of refinement iterations.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        GCJ-02 longitude and latitude in degrees, of the broadcast shape.

    Notes
    -----
    The common closed-form ``bd09togcj02`` (subtracting the perturbations) is only an
    approximation, off by up to about a metre; this function round-trips through
    :func:`gcj02_to_bd09` to within ``tol_m``.
    """
    return _invert(gcj02_to_bd09, lon, lat, tol_m, max_iter)


def bd09_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol_m: float = 0.01, max_iter: int = 30
) -> _Pair:
    """Convert BD-09 coordinates to WGS84 by iteratively inverting :func:`wgs84_to_bd09`.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; broadcast against each other.
    tol_m : float, default 0.01
        Convergence tolerance in metres on the forward image of the estimate.
    max_iter : int, default 30
        Maximum number of refinement iterations.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        WGS84 longitude and latitude in degrees, of the broadcast shape.
    """
    return _invert(wgs84_to_bd09, lon, lat, tol_m, max_iter)


def _check_datum(name: str, role: str) -> str:
    """Return the normalised datum name or raise ``ValueError`` listing the allowed ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in DATUMS:
        allowed = ", ".join(repr(d) for d in DATUMS)
        raise ValueError(f"unknown {role} datum {name!r}; expected one of {allowed}")
    return key


def convert(lon: ArrayLike, lat: ArrayLike, *, source: str, target: str = "wgs84") -> _Pair:
    """Convert coordinates between any two of :data:`DATUMS`.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees in the ``source`` datum; broadcast against
        each other.
    source, target : str
        One of ``"wgs84"``, ``"gcj02"``, ``"bd09"`` (case-insensitive).  ``target``
        defaults to ``"wgs84"``.  Inverse conversions use the default tolerance of the
        iterative functions (0.01 m).

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        Longitude and latitude in degrees in the ``target`` datum, of the broadcast
        shape (a copy of the input if ``source == target``).

    Raises
    ------
    ValueError
        If ``source`` or ``target`` is not one of :data:`DATUMS`.
    """
    src = _check_datum(source, "source")
    dst = _check_datum(target, "target")
    funcs: dict[tuple[str, str], _PointFunc] = {
        ("wgs84", "gcj02"): wgs84_to_gcj02,
        ("wgs84", "bd09"): wgs84_to_bd09,
        ("gcj02", "wgs84"): gcj02_to_wgs84,
        ("gcj02", "bd09"): gcj02_to_bd09,
        ("bd09", "wgs84"): bd09_to_wgs84,
        ("bd09", "gcj02"): bd09_to_gcj02,
    }
    if src == dst:
        return _as_float_arrays(lon, lat)
    return funcs[(src, dst)](lon, lat)


def transform_geometry(geoms: Any, *, source: str, target: str = "wgs84") -> Any:
    """Convert every coordinate of shapely geometries between datums.

    Uses :func:`shapely.transform`, so all coordinates of all geometries are converted
    in one vectorised call of :func:`convert`; geometry types, ring structure and
    vertex counts are preserved.  Output is 2D (any z coordinate is dropped).

    Parameters
    ----------
    geoms : shapely.Geometry, array_like of geometries or geopandas.GeoSeries
        Geometries with (lon, lat) coordinates in degrees in the ``source`` datum.
        ``None`` entries are passed through.
    source, target : str
        Datum names, see :func:`convert`.

    Returns
    -------
    shapely.Geometry, numpy.ndarray of geometries or geopandas.GeoSeries
        The same kind as the input (sequences other than a GeoSeries come back as a
        numpy object array), with coordinates in the ``target`` datum.  A GeoSeries
        keeps its index, name and ``crs``.

    Raises
    ------
    ValueError
        If ``source`` or ``target`` is not one of :data:`DATUMS`.
    """
    src = _check_datum(source, "source")
    dst = _check_datum(target, "target")

    def _convert_coords(coords: FloatArray) -> FloatArray:
        lon, lat = convert(coords[:, 0], coords[:, 1], source=src, target=dst)
        return np.column_stack([lon, lat])

    gpd = sys.modules.get("geopandas")  # no hard dependency on geopandas
    if gpd is not None and isinstance(geoms, gpd.GeoSeries):
        values = np.asarray(geoms.values, dtype=object)
        out = shapely.transform(values, _convert_coords)
        return type(geoms)(out, index=geoms.index, crs=geoms.crs, name=geoms.name)
    return shapely.transform(geoms, _convert_coords)
