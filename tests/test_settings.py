"""Walk presets and package settings."""

from __future__ import annotations

import pytest

from servicecircle.settings import PackageSettings, WalkSettings


def test_default_distances_are_minutes_times_speed():
    walk = WalkSettings()
    assert walk.thresholds_min == (5.0, 10.0, 15.0)
    assert walk.distances_m == (300.0, 600.0, 900.0)


def test_gb50180_fixes_distances_by_the_standard():
    walk = WalkSettings.from_preset("GB50180")
    assert walk.distances_m == (300.0, 500.0, 1000.0)
    assert walk.distance_for(10) == 500.0


def test_elderly_preset_is_3_4_km_per_hour():
    walk = WalkSettings.from_preset("elderly")
    assert walk.distances_m[0] == pytest.approx(3400 / 60 * 5)


def test_custom_speed_rederives_distances():
    walk = WalkSettings(speed_m_per_min=80, thresholds_min=(5, 15))
    assert walk.distances_m == (400.0, 1200.0)
    assert walk.as_dict()["speed_m_per_min"] == 80


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speed_m_per_min": 0}, "speed_m_per_min must be between 20 and 150"),
        ({"thresholds_min": (10, 5)}, "ascending"),
        ({"thresholds_min": (5, 10), "distances_m": (300,)}, "one distance per threshold"),
        ({"frontage_m": -1}, "frontage_m"),
    ],
)
def test_bad_walk_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WalkSettings(**kwargs)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="default, gb50180, elderly"):
        WalkSettings.from_preset("fast")


def test_package_settings_reject_unknown_names_and_bad_values(tmp_path):
    s = PackageSettings()
    s.cache_folder = str(tmp_path)
    assert s.cache_folder == tmp_path
    with pytest.raises(AttributeError, match="unknown setting 'cache_dir'"):
        s.cache_dir = tmp_path
    with pytest.raises(TypeError, match="use_cache"):
        s.use_cache = "yes"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speed_m_per_min": float("inf")}, r"speed_m_per_min must be a finite number, got inf"),
        ({"speed_m_per_min": float("nan")}, r"speed_m_per_min must be a finite number, got nan"),
        ({"speed_m_per_min": -60}, r"speed_m_per_min must be between 20 and 150"),
        ({"speed_m_per_min": 4.5}, r"4\.5 km/h is 75 m/min"),
        ({"speed_m_per_min": 151}, r"between 20 and 150 .*got 151"),
        ({"speed_m_per_min": "fast"}, r"speed_m_per_min must be a number, got 'fast'"),
        ({"thresholds_min": (5, 1e12)}, r"thresholds_min must be positive minutes up to 120"),
        ({"thresholds_min": (float("nan"),)}, r"thresholds_min must be a finite number"),
        ({"thresholds_min": (0, 5)}, r"thresholds_min must be positive minutes"),
        ({"thresholds_min": ()}, r"thresholds_min must be positive minutes up to 120, got none"),
        ({"thresholds_min": (5,), "distances_m": (float("inf"),)}, r"distances_m must be a finite"),
        (
            {"thresholds_min": (5,), "distances_m": (20_001,)},
            r"distances_m must be at most 20,000 m",
        ),
        ({"thresholds_min": (5, 10), "distances_m": (300, 1e12)}, r"lower distances_m"),
        ({"frontage_m": float("inf")}, r"frontage_m must be a finite number"),
        ({"frontage_m": 1e9}, r"frontage_m must be between 0 and 200 metres"),
        ({"max_snap_m": -1}, r"max_snap_m must be > 0 and at most 2,000 metres, got -1"),
        ({"max_snap_m": 0}, r"max_snap_m must be > 0"),
        ({"max_snap_m": float("inf")}, r"max_snap_m must be a finite number"),
        ({"max_snap_m": 2001}, r"at most 2,000 metres"),
    ],
)
def test_absurd_walk_settings_are_refused_naming_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WalkSettings(**kwargs)


def test_the_bounds_themselves_are_accepted():
    w = WalkSettings(speed_m_per_min=150, thresholds_min=(5, 120), frontage_m=200, max_snap_m=2000)
    assert w.distances_m == (750.0, 18_000.0)
    assert WalkSettings(speed_m_per_min=20, frontage_m=0).distances_m == (100.0, 200.0, 300.0)
    # numbers given as text or ints come out as floats
    assert WalkSettings(speed_m_per_min="75", thresholds_min=5).as_dict()["speed_m_per_min"] == 75.0
