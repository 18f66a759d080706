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
        ({"speed_m_per_min": 0}, "speed_m_per_min must be > 0"),
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
