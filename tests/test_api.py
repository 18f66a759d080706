"""The analyst's surface: `import servicecircle as sc`, one call from files, one result."""

from __future__ import annotations

import subprocess
import sys
import warnings

import folium
import numpy as np
import pytest
from tests.hostile import make_district, whole_set

import servicecircle as sc
from servicecircle import inputs
from servicecircle.coverage import compute_coverage
from servicecircle.errors import ServiceCircleWarning


def test_import_is_light_and_the_functions_are_flat():
    code = (
        "import sys, servicecircle as sc; "
        "print(sorted(m for m in ('geopandas', 'folium', 'osmnx', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"  # heavy parts load only when a function is used
    for name in ("load_network", "download_network", "read_stations", "read_grids",
                 "read_resources", "read_buildings", "generate_grids", "analyse",
                 "analyse_files", "propose_sites", "WalkSettings", "Analysis"):  # fmt: skip
        assert callable(getattr(sc, name)), name
        assert name in dir(sc)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = sc.nothing


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    return make_district(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def analysis(district):
    return sc.analyse_files(
        district["osm"],
        district["stations"],
        stations_crs="EPSG:4326",
        grids=district["grids"],
        grids_crs="EPSG:4326",
        lattice_m=10,
    )


def test_analyse_files_equals_the_steps_by_hand(district, analysis):
    net = sc.load_network(district["osm"])
    st = inputs.read_stations(district["stations"], crs="EPSG:4326")
    gr = inputs.read_grids(district["grids"], crs="EPSG:4326")
    by_hand = compute_coverage(net, st, gr, lattice_m=10)
    np.testing.assert_allclose(
        analysis.summary()["coverage_pct"], by_hand.summary()["coverage_pct"], rtol=0, atol=1e-9
    )
    assert list(analysis.summary().columns) == [
        "threshold_min", "distance_m", "covered", "weight", "coverage_pct"
    ]  # fmt: skip


def test_layers_to_files_and_explore(analysis, tmp_path):
    assert {"grids", "rollup", "gap_list", "stations", "rings_union", "gaps"} <= set(
        analysis.layers
    )
    written = analysis.to_files(tmp_path / "out", formats=("csv", "gpkg"))
    manifest = whole_set(tmp_path / "out")
    assert {p.name for p in written} <= {f["name"] for f in manifest["files"]}
    assert "coverage_grids.csv" in {p.name for p in written}
    m = analysis.explore(tiles="none")
    assert isinstance(m, folium.Map)
    html = m.get_root().render()
    assert "walking service circles" in html  # the legend
    for gid in analysis.grids["grid_id"]:
        assert f'"{gid}"' in html  # every grid drawn


def test_with_sites_is_the_coverage_with_those_sites_built(analysis):
    sites = sc.propose_sites(
        analysis.network, analysis.coverage, analysis.stations_snapped, k=2, method="greedy"
    )
    after = analysis.with_sites(sites)
    assert len(after.stations) == len(analysis.stations) + len(sites)
    before_5 = analysis.summary()["coverage_pct"].iloc[0]
    after_5 = after.summary()["coverage_pct"].iloc[0]
    assert after_5 >= before_5
    # the siting reported the share the new scenario now measures
    assert after_5 == pytest.approx(100 * sites["cum_share"].iloc[-1], abs=1e-6)


def test_analyse_files_generates_grids_when_none_are_given(district):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        a = sc.analyse_files(
            district["osm"], district["stations"], stations_crs="EPSG:4326", n_grids=4,
            boundary=district["boundary"], boundary_crs="EPSG:4326",
        )  # fmt: skip
    assert len(a.grids) == 4
