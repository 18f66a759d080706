"""Walking speeds, distance presets and package defaults, all in one place.

Units are in the names: metres (``_m``), minutes (``_min``), metres per minute
(``speed_m_per_min``). Presets:

======== ============== ============================== =========================================
name     speed (m/min)  thresholds (min → m)           source
======== ============== ============================== =========================================
default  60             5 → 300, 10 → 600, 15 → 900    common planning pace, 3.6 km/h
gb50180  60             5 → 300, 10 → 500, 15 → 1000   GB 50180-2018 residential life circles
                                                       (distances are fixed by the standard)
elderly  56.7           5 → 283, 10 → 567, 15 → 850    ≈ 3.4 km/h, older walkers; avoids steps
======== ============== ============================== =========================================

Bounds (module constants; a value outside them is refused with a ``ValueError`` naming
the parameter, since it is a typing slip or a unit mix-up rather than a walk, and an absurd
distance would make every station reach the whole network):

=================== ================================ =========================================
parameter           accepted                         why
=================== ================================ =========================================
speed_m_per_min     20 … 150 (:data:`MIN_SPEED_M_PER_MIN`, :data:`MAX_SPEED_M_PER_MIN`)
                                                     1.2–9 km/h; ``4.5`` is km/h typed as
                                                     m/min (4.5 km/h = 75 m/min)
thresholds_min      > 0 … 120 (:data:`MAX_THRESHOLD_MIN`) a life circle is at most 15 min
distances_m         > 0 … 20,000 (:data:`MAX_DISTANCE_M`) 20 km, a four-hour walk
frontage_m          0 … 200 (:data:`MAX_FRONTAGE_M`)   a street front, not a block
max_snap_m          > 0 … 2,000 (:data:`MAX_SNAP_LIMIT_M`) a longer straight leg is not a walk
=================== ================================ =========================================

Every value must be a finite number (``nan`` and ``inf`` are refused).

``settings`` (an instance of :class:`PackageSettings`) is the only global state: the cache
folder and whether network downloads may use the cache. An explicit argument always beats it.
Unknown names are rejected and values are validated when set.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_FRONTAGE_M",
    "DEFAULT_LATTICE_M",
    "DEFAULT_MAX_LEG_M",
    "DEFAULT_MAX_SNAP_M",
    "DEFAULT_SPEED_M_PER_MIN",
    "DEFAULT_THRESHOLDS_MIN",
    "MAX_DISTANCE_M",
    "MAX_FRONTAGE_M",
    "MAX_SNAP_LIMIT_M",
    "MAX_SPEED_M_PER_MIN",
    "MAX_THRESHOLD_MIN",
    "MIN_SPEED_M_PER_MIN",
    "PRESETS",
    "PackageSettings",
    "WalkSettings",
    "settings",
]

DEFAULT_SPEED_M_PER_MIN = 60.0
DEFAULT_THRESHOLDS_MIN: tuple[float, ...] = (5.0, 10.0, 15.0)
#: Depth of a street front (m): reached street pieces are buffered by this for ring polygons.
DEFAULT_FRONTAGE_M = 30.0
#: A station farther than this (m) from every walkable edge is left out, with a warning.
DEFAULT_MAX_SNAP_M = 250.0
#: A home farther than this (m) from every usable edge is unreachable: never covered
#: through a straight line across whatever lies between.
DEFAULT_MAX_LEG_M = 250.0
#: Spacing (m) of the demand-point lattice inside a grid that has no buildings.
DEFAULT_LATTICE_M = 20.0

#: Accepted walking speeds (m/min): 1.2 km/h (a very slow walk) to 9 km/h (a jog).
MIN_SPEED_M_PER_MIN, MAX_SPEED_M_PER_MIN = 20.0, 150.0
#: Longest accepted time threshold (min); life circles are 5, 10 and 15 minutes.
MAX_THRESHOLD_MIN = 120.0
#: Longest accepted walk distance (m) for a threshold.
MAX_DISTANCE_M = 20_000.0
#: Widest accepted street-front depth (m) for ring polygons.
MAX_FRONTAGE_M = 200.0
#: Largest accepted ``max_snap_m`` (m): a longer straight leg to the street is not a walk.
MAX_SNAP_LIMIT_M = 2_000.0


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float, or a ValueError naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _numbers(name: str, values: Any) -> tuple[float, ...]:
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        values = (values,)  # a single threshold is a one-element tuple
    return tuple(_number(name, v) for v in values)


@dataclass(frozen=True)
class WalkSettings:
    """How far a walk goes: speed, time thresholds and the distances they stand for.

    Parameters
    ----------
    speed_m_per_min
        Walking speed in metres per minute.
    thresholds_min
        Walk times in minutes, ascending (e.g. 5, 10, 15).
    distances_m
        Walk distance in metres for each threshold. ``None`` derives them as
        ``threshold × speed``; a preset such as ``gb50180`` fixes them by standard.
    frontage_m
        Buffer (m) around reached street pieces when drawing ring polygons.
    max_snap_m
        Largest accepted distance (m) from a station to the nearest walkable edge.
    max_leg_m
        Largest straight leg (m) from a demand point (a home) to the nearest usable edge;
        farther points are unreachable, never covered through a straight line.
    avoid_steps
        Leave out steps (``highway=steps``) wherever another way joins their two ends (the
        ``elderly`` preset); steps that are the only way stay.
    preset
        Name of the preset these settings came from, for legends and exports.

    Examples
    --------
    >>> WalkSettings().distances_m
    (300.0, 600.0, 900.0)
    >>> WalkSettings.from_preset("gb50180").distances_m
    (300.0, 500.0, 1000.0)
    """

    speed_m_per_min: float = DEFAULT_SPEED_M_PER_MIN
    thresholds_min: tuple[float, ...] = DEFAULT_THRESHOLDS_MIN
    distances_m: tuple[float, ...] | None = None
    frontage_m: float = DEFAULT_FRONTAGE_M
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    max_leg_m: float = DEFAULT_MAX_LEG_M
    avoid_steps: bool = False
    preset: str = "custom"

    def __post_init__(self) -> None:
        speed = _number("speed_m_per_min", self.speed_m_per_min)
        if not MIN_SPEED_M_PER_MIN <= speed <= MAX_SPEED_M_PER_MIN:
            raise ValueError(
                f"speed_m_per_min must be between {MIN_SPEED_M_PER_MIN:g} and "
                f"{MAX_SPEED_M_PER_MIN:g} metres per minute (1.2-9 km/h), got {speed:g}; "
                "the unit is m/min: 4.5 km/h is 75 m/min, 3.6 km/h is 60 m/min"
            )
        object.__setattr__(self, "speed_m_per_min", speed)
        thresholds = _numbers("thresholds_min", self.thresholds_min)
        if not thresholds or any(not 0 < t <= MAX_THRESHOLD_MIN for t in thresholds):
            raise ValueError(
                f"thresholds_min must be positive minutes up to {MAX_THRESHOLD_MIN:g}, got "
                f"{', '.join(f'{t:g}' for t in thresholds) or 'none'}"
            )
        if list(thresholds) != sorted(set(thresholds)):
            raise ValueError(f"thresholds_min must be ascending and distinct, got {thresholds}")
        object.__setattr__(self, "thresholds_min", thresholds)
        if self.distances_m is None:
            distances = tuple(t * speed for t in thresholds)
        else:
            distances = _numbers("distances_m", self.distances_m)
            if len(distances) != len(thresholds):
                raise ValueError(
                    f"distances_m has {len(distances)} values but thresholds_min has "
                    f"{len(thresholds)}; give one distance per threshold"
                )
            if list(distances) != sorted(set(distances)) or distances[0] <= 0:
                raise ValueError(f"distances_m must be positive and ascending, got {distances}")
        if distances[-1] > MAX_DISTANCE_M:
            raise ValueError(
                f"distances_m must be at most {MAX_DISTANCE_M:,.0f} m, got {distances[-1]:,.0f} m"
                + (
                    f" ({thresholds[-1]:g} min at {speed:g} m/min)"
                    if self.distances_m is None
                    else ""
                )
                + (
                    "; lower thresholds_min or speed_m_per_min"
                    if self.distances_m is None
                    else "; lower distances_m"
                )
            )
        object.__setattr__(self, "distances_m", distances)
        frontage = _number("frontage_m", self.frontage_m)
        if not 0 <= frontage <= MAX_FRONTAGE_M:
            raise ValueError(
                f"frontage_m must be between 0 and {MAX_FRONTAGE_M:g} metres, got {frontage:g}"
            )
        object.__setattr__(self, "frontage_m", frontage)
        snap = _number("max_snap_m", self.max_snap_m)
        if not 0 < snap <= MAX_SNAP_LIMIT_M:
            raise ValueError(
                f"max_snap_m must be > 0 and at most {MAX_SNAP_LIMIT_M:,.0f} metres, got {snap:g}"
            )
        object.__setattr__(self, "max_snap_m", snap)
        leg = _number("max_leg_m", self.max_leg_m)
        if not 0 < leg <= MAX_SNAP_LIMIT_M:
            raise ValueError(
                f"max_leg_m must be > 0 and at most {MAX_SNAP_LIMIT_M:,.0f} metres, got {leg:g}"
            )
        object.__setattr__(self, "max_leg_m", leg)
        object.__setattr__(self, "avoid_steps", bool(self.avoid_steps))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> WalkSettings:
        """Settings of a named preset (see the module docstring), with optional overrides."""
        key = name.strip().lower()
        if key not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[key], "preset": key, **overrides})

    def distance_for(self, threshold_min: float) -> float:
        """Walk distance (m) that stands for ``threshold_min`` minutes."""
        for t, d in zip(self.thresholds_min, self.distances_m or (), strict=True):
            if abs(t - threshold_min) < 1e-9:
                return d
        return threshold_min * self.speed_m_per_min

    def as_dict(self) -> dict[str, Any]:
        """Plain values for legends and export metadata."""
        return {
            "preset": self.preset,
            "speed_m_per_min": self.speed_m_per_min,
            "thresholds_min": list(self.thresholds_min),
            "distances_m": list(self.distances_m or ()),
            "frontage_m": self.frontage_m,
            "max_snap_m": self.max_snap_m,
        }


PRESETS: dict[str, dict[str, Any]] = {
    "default": {"speed_m_per_min": 60.0, "thresholds_min": (5.0, 10.0, 15.0)},
    "gb50180": {
        "speed_m_per_min": 60.0,
        "thresholds_min": (5.0, 10.0, 15.0),
        "distances_m": (300.0, 500.0, 1000.0),
    },
    "elderly": {
        "speed_m_per_min": 3400.0 / 60.0,
        "thresholds_min": (5.0, 10.0, 15.0),
        "avoid_steps": True,
    },
}


def _default_cache_folder() -> Path:
    env = os.environ.get("SERVICECIRCLE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "servicecircle"


@dataclass
class PackageSettings:
    """Package-wide settings; set attributes to change them, unknown names are refused.

    Attributes
    ----------
    cache_folder
        Where processed networks and Overpass responses are cached
        (default ``$SERVICECIRCLE_CACHE`` or ``~/.cache/servicecircle``).
    use_cache
        Read and write the cache at all.
    overpass_timeout_s
        Timeout in seconds for one Overpass request.
    """

    cache_folder: Path = field(default_factory=_default_cache_folder)
    use_cache: bool = True
    overpass_timeout_s: int = 180

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.__dataclass_fields__:
            known = ", ".join(self.__dataclass_fields__)
            raise AttributeError(f"unknown setting {name!r}; known settings: {known}")
        if name == "cache_folder":
            value = Path(value)
        elif name == "use_cache" and not isinstance(value, bool):
            raise TypeError(f"use_cache must be True or False, got {value!r}")
        elif name == "overpass_timeout_s" and not (isinstance(value, int) and value > 0):
            raise ValueError(f"overpass_timeout_s must be a positive integer, got {value!r}")
        object.__setattr__(self, name, value)


settings = PackageSettings()
