"""Walking speeds, distance presets and package defaults, all in one place.

Units are in the names: metres (``_m``), minutes (``_min``), metres per minute
(``speed_m_per_min``). Presets:

======== ============== ============================== =========================================
name     speed (m/min)  thresholds (min → m)           source
======== ============== ============================== =========================================
default  60             5 → 300, 10 → 600, 15 → 900    common planning pace, 3.6 km/h
gb50180  60             5 → 300, 10 → 500, 15 → 1000   GB 50180-2018 residential life circles
                                                       (distances are fixed by the standard)
elderly  56.7           5 → 283, 10 → 567, 15 → 850    ≈ 3.4 km/h, older walkers
======== ============== ============================== =========================================

``settings`` (an instance of :class:`PackageSettings`) is the only global state: the cache
folder and whether network downloads may use the cache. An explicit argument always beats it.
Unknown names are rejected and values are validated when set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_FRONTAGE_M",
    "DEFAULT_LATTICE_M",
    "DEFAULT_MAX_SNAP_M",
    "DEFAULT_SPEED_M_PER_MIN",
    "DEFAULT_THRESHOLDS_MIN",
    "PRESETS",
    "PackageSettings",
    "WalkSettings",
    "settings",
]

DEFAULT_SPEED_M_PER_MIN = 60.0
DEFAULT_THRESHOLDS_MIN: tuple[float, ...] = (5.0, 10.0, 15.0)
#: Depth of a street front (m): reached street pieces are buffered by this for ring polygons.
DEFAULT_FRONTAGE_M = 30.0
#: A station farther than this (m) from every walkable edge is reported.
DEFAULT_MAX_SNAP_M = 250.0
#: Spacing (m) of the demand-point lattice inside a grid that has no buildings.
DEFAULT_LATTICE_M = 20.0


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
    preset: str = "custom"

    def __post_init__(self) -> None:
        if not self.speed_m_per_min > 0:
            raise ValueError(f"speed_m_per_min must be > 0, got {self.speed_m_per_min}")
        thresholds = tuple(float(t) for t in self.thresholds_min)
        if not thresholds or any(not t > 0 for t in thresholds):
            raise ValueError(f"thresholds_min must be positive minutes, got {self.thresholds_min}")
        if list(thresholds) != sorted(set(thresholds)):
            raise ValueError(f"thresholds_min must be ascending and distinct, got {thresholds}")
        object.__setattr__(self, "thresholds_min", thresholds)
        if self.distances_m is None:
            distances = tuple(t * self.speed_m_per_min for t in thresholds)
        else:
            distances = tuple(float(d) for d in self.distances_m)
            if len(distances) != len(thresholds):
                raise ValueError(
                    f"distances_m has {len(distances)} values but thresholds_min has "
                    f"{len(thresholds)}; give one distance per threshold"
                )
            if list(distances) != sorted(set(distances)) or distances[0] <= 0:
                raise ValueError(f"distances_m must be positive and ascending, got {distances}")
        object.__setattr__(self, "distances_m", distances)
        if self.frontage_m < 0:
            raise ValueError(f"frontage_m must be >= 0, got {self.frontage_m}")
        if not self.max_snap_m > 0:
            raise ValueError(f"max_snap_m must be > 0, got {self.max_snap_m}")

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
    "elderly": {"speed_m_per_min": 3400.0 / 60.0, "thresholds_min": (5.0, 10.0, 15.0)},
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
