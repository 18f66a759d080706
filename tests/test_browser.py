"""The coverage map in a real browser (headless Debian Chromium, no network).

Skips when ``/usr/bin/chromium`` is missing, unless ``SERVICECIRCLE_REQUIRE_BROWSER=1``
(set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import pytest
from tests import mapfixtures as mf
from tests.browser_util import chromium_or_skip, open_map

from servicecircle import webmap


@pytest.fixture(scope="module")
def zhifu_html(tmp_path_factory):
    chromium_or_skip()
    path = tmp_path_factory.mktemp("browser") / "zhifu.html"
    return webmap.save_map(mf.zhifu_map(), path)


def test_zhifu_sized_map_in_chromium(zhifu_html, tmp_path):
    d = mf.zhifu_inputs()
    shot = tmp_path / "zhifu.png"
    report = open_map(
        zhifu_html,
        screenshot=shot,
        open_roles=("stations", "grids", "resources"),
        search_text="img",
    )
    size = webmap.map_size_report(zhifu_html)
    print(
        f"\nChromium: load {report['load_ms']} ms (wall {report['wall_ms']} ms), "
        f"{size['megabytes']} MB, screenshot {shot}"
    )
    assert report["console_errors"] == []
    assert report["external_requests"] == []
    assert report["dialogs"] == []
    assert report["n_maps"] == 1
    assert report["layer_names"] == mf.EXPECTED_LAYERS
    assert report["layer_labels"] == mf.EXPECTED_LAYERS  # as drawn in the control
    assert report["n_grid_features"] == len(d["grids"]) == 1024
    assert report["n_station_markers"] == len(d["stations"]) == 302
    assert report["roles"]["resources"] == len(d["resources"])
    assert report["roles"]["sites"] == len(d["sites"])
    assert report["roles"]["gaps"] == len(d["gaps"])
    # hostile names are shown as the text they are
    shown = "\n".join(report["opened_texts"])
    for text in (mf.HOSTILE, mf.HOSTILE_JS, mf.HOSTILE_JINJA):
        assert text in shown
    assert any(mf.HOSTILE in tip for tip in report["search_tips"])
    assert shot.stat().st_size > 10_000


def test_basemap_fails_quietly_offline(tmp_path):
    d = mf.district(n_side=6, n_stations=10, street_m=150.0)
    m = webmap.coverage_map(
        d["grids"], d["stations"], rings=d["rings"], metadata=mf.META, tiles="OpenStreetMap"
    )
    path = webmap.save_map(m, tmp_path / "osm.html")
    report = open_map(path)
    # tiles are asked for and refused (no network); nothing else is, and nothing breaks
    assert report["external_requests"]
    assert all("tile.openstreetmap.org" in url for url in report["external_requests"])
    assert report["console_errors"] == []
    assert report["dialogs"] == []
    assert report["n_grid_features"] == 36
    assert report["n_station_markers"] == 10
