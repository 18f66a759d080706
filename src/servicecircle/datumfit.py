"""Check an input's declared datum against the streets: which reading of its numbers fits.

Chinese coordinate lists come as WGS84 (GPS, OSM), GCJ-02 (AMap / Tencent) or BD-09
(Baidu), and are easily mis-declared. The same numbers read in another datum land
0.5–1.3 km away: more than a 5-minute walk, yet near *some* street, so a wrong
declaration runs silently with wrong coverage. This module reads the raw numbers of an
input (lon/lat as in the file) in each datum, converts them to WGS84
(:mod:`servicecircle.datums`), projects them to the network's CRS and measures how well
they fit the walking network. It decides nothing else and has no side effects: the
caller stops the run (or not) on :attr:`DatumFit.verdict`.

What is measured (all distances in metres, on the network's UTM CRS)
--------------------------------------------------------------------
* **Points** (stations, resources, building points): the distance from each point to
  its nearest walkable edge (:meth:`servicecircle.snapping.SegmentIndex.nearest`, the
  exact nearest segment, as station snapping uses).
* **Polygons and lines** (grids, boundary, building footprints): the distance to the
  nearest walkable edge of points spread evenly along their outlines, one per started
  :data:`SAMPLE_SPACING_M` (20 m) of outline. Outlines drawn along streets lie on them;
  the same outlines shifted by half a kilometre cross blocks at random.

More than :data:`MAX_POINTS` points (or outline samples) are subsampled with a fixed
seed, so a result never changes between runs; 5,000 points in 3 readings take about
0.1 s on the central-Shanghai network.

Which readings are compared
---------------------------
Only lon/lat declarations have other readings: ``EPSG:4326``, ``EPSG:4490`` (CGCS2000,
the same as WGS84 within a metre), ``gcj02`` and ``bd09``. Any other declaration
(projected metres such as ``EPSG:32651``, or another geographic datum) gives
``"undecided"`` with the reason. GCJ-02 and BD-09 are only used inside China (the
coarse box of :func:`servicecircle.datums.in_china`; outside it GCJ-02 *is* WGS84 and
neither web map shifts anything): there, a WGS84 declaration has no alternative
("undecided"), and a ``gcj02`` / ``bd09`` declaration is compared with WGS84 only.
Readings that coincide with the declared one (every point within 1 m) are not
alternatives.

Decision rule
-------------
Reading *A* **clearly beats** reading *B* when all of these hold:

1. *A* puts the points **on the streets**: each point's distance under *A* is ranked
   among the distances of :data:`N_SHIFTS` (100) copies of it moved 100–400 m in random
   directions (its neighbourhood), ``p = (1 + copies at least as close) / 101``, and
   Fisher's method combines the points (at most :data:`MAX_SHIFTED`, 200) into one
   p-value, which must be at most :data:`ALPHA` (1e-5). This calibrates "close" to the
   network's own density where the points land: in a footway network every point is
   near *some* street. (Copies moved as far as a datum error, 0.3–1.5 km, were tried
   first: in the small Beijing extract they fall into the sparse roads around the mapped
   campus, so 25 building centroids read in the wrong datum, landing on the campus's
   dense paths at a median 9 m against 37 m true, looked "on the streets", p = 2e-6.)
2. Over the points within :data:`FAR_M` (250 m, the default ``max_snap_m``) of a street
   under *A* or *B* (points far off under both carry no evidence, e.g. beyond the
   network's edge): at least :data:`MIN_POINTS` (5) of them, and at least
   :data:`MIN_CLOSER_SHARE` (80 %), lie closer to a street as *A* than as *B* (paired,
   per point; so 5 points need all 5).
3. Over the same points, the median distance as *B* is at least :data:`FACTOR` (3) times
   the median as *A* plus :data:`MARGIN_M` (5 m).

The verdict is ``"wrong"`` when some alternative clearly beats the declared reading and
it is also the alternative with the smallest median distance (``best``; if another
alternative is closer, the streets cannot tell which fix is right: ``"undecided"``);
``"ok"`` when the declared reading clearly beats every alternative; ``"undecided"``
otherwise (too few points, points off the network under every reading, no alternative
reading, or points that stand off the streets, such as buildings and POIs in a dense
network, where a shifted point is as close to some street as a true one).

Measured numbers behind the rule (median distance in m to the nearest walkable edge,
all points, under the true reading and under the two wrong readings; "closer" is the
share of points closer to a street under the true reading):

=============================  ======  ==================  ==================
points (true WGS84 → encoded)  true    wrong readings      closer as true
=============================  ======  ==================  ==================
Shanghai, 302 sample stations  0       28–35               100 %
Nanjing, 300 stations on edges 0       32–120              100 %
Nanjing, 1,277 bldg centroids  27      28 (GCJ↔WGS)–154    49 %–75 %
Nanjing, 364 POIs              25      30 (GCJ↔WGS)–56     54 %–73 %
Beijing, 257 bldg centroids    27      20 (!)–310          38 % (!)–91 %
Beijing, 225 POIs              16      19–341              54 %–96 %
Helsinki, 486 bldg / 1711 POI  16 / 5  235 / 271 (BD)      80 % / 92 %
=============================  ======  ==================  ==================

Points on the streets (station lists placed on them, grid outlines made from them)
decide at any size. Buildings and POIs stand 15–30 m off the street; in the dense
footway networks of Nanjing and Beijing a point moved 0.5 km is, at the median, as close
to some street as a true one (in Beijing a wrong reading is even slightly closer), so
those stay ``"undecided"``. The first version of this rule had only conditions 2 and 3
(with a 15 m margin); over 1,000 random subsets of 5 building centroids or POIs per
extract and datum it raised 0.9–2.8 % false alarms, e.g. a wrong reading at
[7, 0, 0, 2, 22] m against the truth at [27, 23, 19, 17, 43] m. Condition 1 rejects
those (p ≈ 0.002), while 5 points on the streets under the right reading give
p ≈ 1.4e-6. With the final rule, random subsets (fixed seeds) of 5 and 25 points and
all points, every true datum × every declaration: Nanjing and Beijing buildings and
POIs (100–300 subsets each) were all ``"undecided"`` (no false alarm, no wrong fix);
the Shanghai sample stations were right every time at 25 and 302 points and at 5
points ``"ok"`` 96 % / ``"wrong"`` 98 % of the time, ``"undecided"`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

from servicecircle import datums
from servicecircle.crs import WGS84, DeclaredCRS, parse_crs

if TYPE_CHECKING:
    from servicecircle.network import WalkNetwork

__all__ = [
    "FACTOR",
    "FAR_M",
    "MARGIN_M",
    "MAX_POINTS",
    "MIN_CLOSER_SHARE",
    "MIN_OFF_POINTS",
    "MIN_POINTS",
    "OFF_M",
    "READINGS",
    "SAMPLE_SPACING_M",
    "DatumFit",
    "ReadingFit",
    "check_inputs",
    "declared_reading",
    "fit_frame",
    "fit_points",
    "fit_polygons",
]

#: The readings of lon/lat numbers that are compared, as :data:`servicecircle.datums.DATUMS`.
READINGS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")
#: Points farther than this from every street under both compared readings are ignored (m).
FAR_M = 250.0
#: Fewest points (or outline samples) within :data:`FAR_M` needed to decide.
MIN_POINTS = 5
#: Share of those points that must lie closer to a street under the better reading.
MIN_CLOSER_SHARE = 0.8
#: The worse reading's median distance must be at least FACTOR × the better one's + MARGIN_M.
FACTOR = 3.0
MARGIN_M = 5.0
#: Distance (m) between samples along polygon outlines.
SAMPLE_SPACING_M = 20.0
#: Points (or outline samples) measured at most; more are subsampled with a fixed seed.
MAX_POINTS = 4000
#: Readings whose points all lie within this distance (m) of each other coincide.
SAME_M = 1.0
#: Distances are capped here (m) so that points far beyond the network's edge do not
#: dominate the reported medians.
CAP_M = 5000.0
#: Share of points "near a street" reported per reading (m).
NEAR_M = 25.0
#: Random shifts of each point that calibrate "on the streets" (see the rule).
N_SHIFTS = 100
#: Their lengths (m): the points' neighbourhood, in random directions.
SHIFT_M = (100.0, 400.0)
#: Points tested against their shifted copies at most (subsampled with a fixed seed).
MAX_SHIFTED = 200
#: Combined p-value below which a reading puts the points on the streets.
ALPHA = 1e-5

#: EPSG codes read as WGS84 lon/lat (CGCS2000 is within a metre of WGS84).
_WGS84_EPSG = {4326: "EPSG:4326", 4490: "EPSG:4490"}
_M_PER_DEG = 111_320.0

Verdict = Literal["ok", "wrong", "undecided"]


@dataclass(frozen=True)
class ReadingFit:
    """How the points fit the streets under one reading of their numbers.

    Attributes
    ----------
    reading
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.
    median_m
        Median distance (m) from a point to the nearest walkable edge (capped at
        :data:`CAP_M`).
    near_share
        Share of points within :data:`NEAR_M` (25 m) of a walkable edge.
    n
        Points (or outline samples) measured.
    """

    reading: str
    median_m: float
    near_share: float
    n: int


@dataclass(frozen=True)
class DatumFit:
    """The fit of an input to the streets under its declared and the other readings.

    Attributes
    ----------
    kind
        ``"points"`` or ``"outlines"`` (polygons and lines, measured along their outlines).
    declared
        The declaration as it is named in messages (``"EPSG:4326"``, ``"gcj02"``, …).
    declared_reading
        The reading the declaration stands for (``"wgs84"``, ``"gcj02"``, ``"bd09"``), or
        ``None`` when it is not lon/lat in one of those (no alternatives are tried).
    readings
        One :class:`ReadingFit` per reading measured, the declared one first.
    best
        The reading that fits clearly best: the alternative that clearly beats the
        declared reading (verdict ``"wrong"``), the declared one (``"ok"``), else ``None``.
    verdict
        ``"wrong"``: another reading fits the streets clearly better; ``"ok"``: the
        declared reading fits clearly better than every other; ``"undecided"``: the
        streets cannot tell (see ``reason``). Only ``"wrong"`` should stop a run.
    reason
        Why, in a few words (for logs and the ``"undecided"`` message).
    n_input
        Points (or outline samples) with finite coordinates before subsampling.
    n_used
        Points within :data:`FAR_M` of a street under the declared or the ``best`` reading
        (the compared ones; 0 without a comparison).
    closer_share
        Share of those closer to a street as ``best`` than as the declared reading (for
        ``"wrong"``), or than as the nearest competitor (for ``"ok"``); NaN otherwise.
    """

    kind: str
    declared: str
    declared_reading: str | None
    readings: tuple[ReadingFit, ...]
    best: str | None
    verdict: Verdict
    reason: str
    n_input: int
    n_used: int
    closer_share: float

    def fit(self, reading: str) -> ReadingFit | None:
        """The :class:`ReadingFit` of ``reading``, or ``None`` if it was not measured."""
        return next((r for r in self.readings if r.reading == reading), None)

    def message(self, file_name: str, param: str = "crs", *, trust: str = "trust_crs") -> str:
        """One line for the user: what fits, and which parameter to set.

        ``param`` and ``trust`` name the Python parameters (``crs=``, ``trust_crs=``); the
        CLI rewrites them into its options.
        """
        what = "coordinates fit the streets" if self.kind == "points" else "outlines follow"
        unit = "to a street" if self.kind == "points" else "from a street"
        decl = self.fit(self.declared_reading) if self.declared_reading else None
        if self.verdict == "wrong" and self.best is not None and decl is not None:
            best = self.fit(self.best)
            assert best is not None
            suffix = "" if self.kind == "points" else " the streets"
            closer = round(self.closer_share * self.n_used)
            noun = "points" if self.kind == "points" else "outline samples"
            return (
                f"{file_name}: the {what}{suffix} as {self.best} (median {best.median_m:,.0f} m "
                f"{unit}) far better than as the declared {self.declared} (median "
                f"{decl.median_m:,.0f} m; {closer} of {self.n_used} {noun} lie closer as "
                f"{self.best}); declare {param}={_suggest(self.best)!r}, or {trust}=True to "
                f"keep {self.declared}"
            )
        if self.verdict == "ok" and decl is not None:
            others = ", ".join(
                f"as {r.reading} {r.median_m:,.0f} m"
                for r in self.readings
                if r.reading != self.declared_reading
            )
            suffix = "" if self.kind == "points" else " the streets"
            return (
                f"{file_name}: the {what}{suffix} best as the declared {self.declared} (median "
                f"{decl.median_m:,.0f} m {unit}; {others})"
            )
        return (
            f"{file_name}: the streets cannot confirm the declared {self.declared} "
            f"({self.reason}); it is kept"
        )


def declared_reading(declared: str | int | pyproj.CRS | DeclaredCRS) -> tuple[str | None, str]:
    """The reading a declaration stands for, and its label for messages.

    ``"wgs84"`` for EPSG:4326 and EPSG:4490 (CGCS2000), ``"gcj02"`` / ``"bd09"`` for the
    web-map datums, ``None`` for anything else (projected CRSs, other datums).
    """
    decl = parse_crs(declared, what="declared")
    if decl.datum in ("gcj02", "bd09"):
        return decl.datum, decl.label
    epsg = decl.crs.to_epsg()
    if epsg in _WGS84_EPSG:
        return "wgs84", _WGS84_EPSG[epsg]
    return None, decl.label


def fit_points(
    network: WalkNetwork,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    declared: str | int | pyproj.CRS | DeclaredCRS,
) -> DatumFit:
    """Measure how points fit the streets under each reading of their numbers and decide.

    Parameters
    ----------
    network
        The walking network (projected, metres).
    lon, lat
        The raw coordinates as they stand in the file, in degrees (any NaN points are
        ignored). For a declaration that is not lon/lat nothing is measured.
    declared
        The declared CRS: ``"EPSG:4326"``, ``4490``, ``"gcj02"``, ``"bd09"``, … (anything
        :func:`servicecircle.crs.parse_crs` reads).

    Returns
    -------
    DatumFit
        Per-reading statistics and the verdict (module docstring).
    """
    x = np.asarray(lon, dtype=np.float64).ravel()
    y = np.asarray(lat, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"lon and lat differ in length: {x.size} and {y.size}")
    return _decide(network, x, y, declared, kind="points")


def fit_polygons(
    network: WalkNetwork,
    geoms_raw: Any,
    *,
    declared: str | int | pyproj.CRS | DeclaredCRS,
) -> DatumFit:
    """Measure how polygon (or line) outlines follow the streets under each reading.

    Parameters
    ----------
    network
        The walking network (projected, metres).
    geoms_raw
        Shapely geometries (an array, a list or a GeoSeries) with the raw lon/lat numbers
        of the file, in degrees. Polygons are measured along their rings, lines along
        themselves, points as they are; ``None`` and empty geometries are skipped.
    declared
        The declared CRS, as for :func:`fit_points`.

    Returns
    -------
    DatumFit
        As :func:`fit_points`, with ``kind="outlines"``; ``n_input`` and ``n_used`` count
        outline samples (one per started 20 m of outline).
    """
    x, y = outline_samples(geoms_raw)
    return _decide(network, x, y, declared, kind="outlines")


def outline_samples(
    geoms_raw: Any, spacing_m: float = SAMPLE_SPACING_M
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points (lon, lat degrees) spread along the outlines of lon/lat geometries.

    Each ring or line gets one sample per started ``spacing_m`` metres, at the centres of
    equal parts; lengths are measured on a local equirectangular scale (accurate to a
    fraction of a percent over a district).
    """
    values = getattr(geoms_raw, "values", geoms_raw)
    geoms = np.asarray(values, dtype=object).ravel()
    empty = np.empty(0, dtype=np.float64)
    if geoms.size == 0:
        return empty, empty.copy()
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms = geoms[keep]
    if geoms.size == 0:
        return empty, empty.copy()
    coords = shapely.get_coordinates(geoms)
    finite = np.isfinite(coords).all(axis=1)
    if not finite.any():
        return empty, empty.copy()
    lat0 = float(np.median(coords[finite, 1]))
    scale = np.array([_M_PER_DEG * np.cos(np.radians(lat0)), _M_PER_DEG])
    kind = shapely.get_type_id(geoms)
    areal = np.isin(kind, [3, 6])  # Polygon, MultiPolygon: their rings
    lines = np.where(areal, shapely.boundary(geoms), geoms)
    parts = shapely.get_parts(lines)
    parts = parts[~shapely.is_empty(parts)]
    is_point = shapely.get_type_id(parts) == 0
    pts = shapely.get_coordinates(parts[is_point])
    parts = parts[~is_point]
    if parts.size:
        metric = shapely.transform(parts, lambda c: c * scale)
        length = shapely.length(metric)
        ok = np.isfinite(length)
        metric, length = metric[ok], length[ok]
        k = np.maximum(np.ceil(length / spacing_m), 1).astype(np.int64)
        owner = np.repeat(np.arange(metric.size), k)
        idx = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
        along = (idx + 0.5) / k[owner] * length[owner]
        samples = shapely.line_interpolate_point(metric[owner], along)
        pts = np.concatenate([pts, shapely.get_coordinates(samples) / scale])
    return pts[:, 0].copy(), pts[:, 1].copy()


# --------------------------------------------------------------------------------------------
# the decision


def _undecided(
    kind: str, label: str, reading: str | None, fits: Sequence[ReadingFit], n: int, why: str
) -> DatumFit:
    return DatumFit(kind, label, reading, tuple(fits), None, "undecided", why, n, 0, np.nan)


def _decide(
    network: WalkNetwork,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    declared: str | int | pyproj.CRS | DeclaredCRS,
    *,
    kind: str,
) -> DatumFit:
    reading, label = declared_reading(declared)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n_input = int(x.size)
    if reading is None:
        why = f"{label} is not lon/lat in WGS84, GCJ-02 or BD-09, so it has no other reading"
        return _undecided(kind, label, None, (), n_input, why)
    if n_input == 0:
        return _undecided(kind, label, reading, (), 0, "no coordinates")
    if network.n_edges == 0:
        return _undecided(kind, label, reading, (), n_input, "the network has no edges")
    if n_input > MAX_POINTS:
        pick = np.sort(np.random.default_rng(0).choice(n_input, MAX_POINTS, replace=False))
        x, y = x[pick], y[pick]
    in_china = bool(np.median(datums.in_china(x, y)) >= 0.5)
    names = [reading] + [
        r for r in READINGS if r != reading and (in_china or r == "wgs84")
    ]  # outside China only WGS84 is a real alternative (to a gcj02 / bd09 declaration)
    to_utm = pyproj.Transformer.from_crs(WGS84, network.crs, always_xy=True)
    xy: dict[str, NDArray[np.float64]] = {}
    for r in names:
        lon_w, lat_w = datums.convert(x, y, source=r)
        xy[r] = np.column_stack(to_utm.transform(lon_w, lat_w))
    # a reading whose points all coincide with the declared ones is no alternative
    names = [
        r for r in names if r == reading or not (np.hypot(*(xy[r] - xy[reading]).T) < SAME_M).all()
    ]
    dist: dict[str, NDArray[np.float64]] = {}
    for r in names:
        finite = np.isfinite(xy[r]).all(axis=1)
        d = np.full(len(x), np.inf)
        if finite.any():
            d[finite] = network.segment_index.nearest(network, xy[r][finite])[1]
        dist[r] = np.minimum(d, CAP_M)
    fits = tuple(
        ReadingFit(
            r,
            float(np.median(dist[r])),
            float(np.mean(dist[r] <= NEAR_M)),
            int(dist[r].size),
        )
        for r in names
    )
    alternatives = names[1:]
    if not alternatives:
        why = (
            "outside China the web-map datums coincide with WGS84"
            if not in_china
            else "the other readings coincide with it"
        )
        return _undecided(kind, label, reading, fits, n_input, why)
    d_decl = dist[reading]
    shifts = _shifts()
    probe = np.random.default_rng(2).permutation(len(x))[:MAX_SHIFTED]
    on_streets = {
        r: _street_p(network, xy[r][probe], dist[r][probe], shifts) <= ALPHA for r in names
    }
    # alternatives that clearly beat the declared reading, best (smallest median) first
    winners = []
    for r in alternatives:
        beats, n_used, share = _beats(dist[r], d_decl, a_on_streets=on_streets[r])
        if beats:
            winners.append((float(np.median(dist[r])), r, n_used, share))
    if winners:
        _, best, n_used, share = min(winners)
        closest = min(alternatives, key=lambda r: float(np.median(dist[r])))
        if closest != best:  # another reading is as good: the streets cannot tell which
            why = (
                f"{label} fits worse than {best}, but {closest} fits as well; the streets "
                "cannot tell which"
            )
            return _undecided(kind, label, reading, fits, n_input, why)
        best_med = float(np.median(dist[best]))
        rivals = [float(np.median(dist[r])) for r in alternatives if r != best]
        if not on_streets[best] and any(m < FACTOR * best_med + MARGIN_M for m in rivals):
            # decided by distance alone: only when no other reading comes near it
            why = (
                f"{label} leaves the points off the streets, but more than one other "
                "reading puts them near one; the streets cannot tell which"
            )
            return _undecided(kind, label, reading, fits, n_input, why)
        why = f"{best} puts the points on the streets, {label} does not"
        return DatumFit(kind, label, reading, fits, best, "wrong", why, n_input, n_used, share)
    results = [_beats(d_decl, dist[r], a_on_streets=on_streets[reading]) for r in alternatives]
    if all(b for b, _, _ in results):
        n_used = min(n for _, n, _ in results)
        share = min(s for _, _, s in results)
        why = "the declared reading fits clearly better than every other"
        return DatumFit(kind, label, reading, fits, reading, "ok", why, n_input, n_used, share)
    near = [(n, alt) for (_, n, _), alt in zip(results, alternatives, strict=True)]
    n_min = min(n for n, _ in near)
    if n_min < MIN_POINTS:
        why = (
            f"only {n_min} point(s) lie within {FAR_M:g} m of a street under the compared "
            f"readings; at least {MIN_POINTS} are needed"
        )
    else:
        why = "no reading fits the streets clearly better than another"
    return _undecided(kind, label, reading, fits, n_input, why)


#: A median distance (m) to the nearest walkable way beyond which points are off the
#: streets: no list of service sites stands that far from every path of a walking network.
OFF_M = 100.0
#: Points needed before :data:`OFF_M` alone may decide (fewer, and a wrong reading can land
#: a handful of building centroids beside a dense campus's paths by chance).
MIN_OFF_POINTS = 10


def _beats(
    d_a: NDArray[np.float64], d_b: NDArray[np.float64], *, a_on_streets: bool
) -> tuple[bool, int, float]:
    """Whether reading A clearly beats reading B (module docstring), the points compared
    and the share of them closer to a street as A."""
    use = np.minimum(d_a, d_b) <= FAR_M
    n = int(use.sum())
    if n == 0:
        return False, 0, np.nan
    a, b = d_a[use], d_b[use]
    closer = int(np.count_nonzero(a < b))
    share = closer / n
    enough = closer >= max(MIN_POINTS, MIN_CLOSER_SHARE * n)
    med_a, med_b = float(np.median(a)), float(np.median(b))
    beats = enough and (
        (a_on_streets and med_b >= FACTOR * med_a + MARGIN_M)
        # or B leaves the points far from every walkable way, where A puts them beside one
        # (service sites in buildings, a few metres off the path: condition 1 cannot tell)
        or (n >= MIN_OFF_POINTS and med_a <= NEAR_M and med_b >= OFF_M)
    )
    return beats, n, share


def _shifts() -> NDArray[np.float64]:
    """:data:`N_SHIFTS` vectors (m) of random directions and lengths in :data:`SHIFT_M`."""
    rng = np.random.default_rng(1)
    angle = rng.uniform(0.0, 2 * np.pi, N_SHIFTS)
    length = rng.uniform(*SHIFT_M, N_SHIFTS)
    return np.column_stack([np.cos(angle), np.sin(angle)]) * length[:, None]


def _street_p(
    network: WalkNetwork,
    xy: NDArray[np.float64],
    d: NDArray[np.float64],
    shifts: NDArray[np.float64],
) -> float:
    """How unlikely it is that points placed at random lie this close to the streets.

    Per point, the share of its shifted copies that lie at least as close to a street
    (``(1 + count) / (1 + N_SHIFTS)``); Fisher's method combines the points.
    """
    ok = np.isfinite(xy).all(axis=1) & np.isfinite(d)
    xy, d = xy[ok], d[ok]
    if len(xy) == 0:
        return 1.0
    moved = (xy[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    dm = network.segment_index.nearest(network, moved)[1].reshape(len(shifts), len(xy))
    p = (1.0 + np.count_nonzero(dm <= d[None, :], axis=0)) / (1.0 + len(shifts))
    return float(chi2.sf(-2.0 * np.log(p).sum(), 2 * len(p)))


def _suggest(reading: str) -> str:
    """The value to declare for a reading."""
    return "EPSG:4326" if reading == "wgs84" else reading


# --------------------------------------------------------------------------------------------
# inputs as read by servicecircle.inputs


def fit_frame(network: WalkNetwork, frame: Any) -> DatumFit | None:
    """The fit of an input read by :mod:`servicecircle.inputs`, or ``None`` without one.

    The reader converted the file's numbers to WGS84 and recorded the declaration in
    ``frame.attrs["source"]["crs"]``; the raw numbers are recovered by converting back
    (the datum conversions round-trip within a centimetre). Point layers are measured as
    points, everything else along its outlines. Frames without a recorded declaration
    (generated grids) or with a declaration that has no other reading give ``None``.
    """
    source = getattr(frame, "attrs", {}).get("source") or {}
    declared = source.get("crs")
    if not declared or frame is None or len(frame) == 0:
        return None
    reading, _ = declared_reading(declared)
    if reading is None:
        return None
    geoms = frame.geometry.to_crs(WGS84).to_numpy()
    if reading != "wgs84":
        geoms = datums.transform_geometry(geoms, source="wgs84", target=reading)
    kinds = shapely.get_type_id(geoms)
    if (kinds == shapely.GeometryType.POINT).all():
        lon, lat = shapely.get_x(geoms), shapely.get_y(geoms)
        return fit_points(network, lon, lat, declared=declared)
    return fit_polygons(network, geoms, declared=declared)


def check_inputs(
    network: WalkNetwork,
    frames: Mapping[str, Any],
    *,
    trust_crs: bool = False,
) -> dict[str, DatumFit]:
    """Fit every input to the streets; stop when one is clearly in another datum.

    Parameters
    ----------
    network
        The walking network the inputs will be laid on.
    frames
        Input name (``"stations"``, ``"grids"`` …) to a frame read by
        :mod:`servicecircle.inputs`; ``None`` entries are skipped.
    trust_crs
        Keep every declaration, whatever the streets say (the fits are still returned).

    Returns
    -------
    dict
        Input name to its :class:`DatumFit` (inputs that could be measured).

    Raises
    ------
    CRSError
        One line for the first input whose verdict is ``"wrong"``, naming the file, both
        medians and ``crs=`` to declare (or ``trust_crs=True``).
    """
    from servicecircle.errors import CRSError

    fits: dict[str, DatumFit] = {}
    for name, frame in frames.items():
        if frame is None:
            continue
        fit = fit_frame(network, frame)
        if fit is None:
            continue
        fits[name] = fit
        if fit.verdict == "wrong" and not trust_crs:
            file_name = (frame.attrs.get("source") or {}).get("file", name)
            error = CRSError(fit.message(file_name))
            error.input_name = name  # type: ignore[attr-defined]  # which input, for the CLI
            raise error
    return fits
