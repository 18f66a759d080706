"""Generated red grids against hand-built street lattices, independent geometry checks
(shapely overlays, networkx components on hand or shapely-built adjacency), and Shanghai."""

from __future__ import annotations

import itertools
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.netfixtures import UTM, X0, Y0, lines_network

from servicecircle import grids
from servicecircle import network as netmod
from servicecircle.errors import InputError, ServiceCircleWarning

# --------------------------------------------------------------------------------------------
# helpers


def lattice_lines(nx_: int, ny: int, step: float = 100.0, *, extend: float = 0.0) -> list:
    """Streets on x = 0, step, …, nx_·step and y = 0, …, ny·step (local metres), each
    running ``extend`` metres past the outer streets."""
    w, h = nx_ * step, ny * step
    lines = [[(i * step, -extend), (i * step, h + extend)] for i in range(nx_ + 1)]
    lines += [[(-extend, j * step), (w + extend, j * step)] for j in range(ny + 1)]
    return lines


def lattice(nx_: int, ny: int, step: float = 100.0, *, extend: float = 0.0):
    """A street lattice network and its hand-known squares {(i, j): local box}."""
    squares = {
        (i, j): shapely.box(i * step, j * step, (i + 1) * step, (j + 1) * step)
        for i in range(nx_)
        for j in range(ny)
    }
    return lines_network(*lattice_lines(nx_, ny, step, extend=extend)), squares


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in local metres, placed in UTM like the test networks."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def shift(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.affinity.translate(geom, X0, Y0)


def utm(frame: gpd.GeoDataFrame) -> np.ndarray:
    return frame.to_crs(UTM).geometry.to_numpy()


def assert_partition(pieces: np.ndarray, boundary: shapely.Geometry) -> None:
    """The pieces cover the boundary exactly, without overlaps (areas in m²)."""
    union = shapely.union_all(pieces)
    area = boundary.area
    assert shapely.symmetric_difference(union, boundary).area < 1e-6 * area
    assert abs(shapely.area(pieces).sum() - union.area) < 1e-6 * area
    assert shapely.is_valid(pieces).all()


def rook_components(geoms: np.ndarray) -> int:
    """Connected components of polygons under Rook contiguity (a shared border of positive
    length), built with shapely and networkx."""
    g = nx.Graph()
    g.add_nodes_from(range(len(geoms)))
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        if i < j:
            shared = shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j]))
            if shared.length > 1e-6:
                g.add_edge(i, j)
    return nx.number_connected_components(g)


def squares_of(grid_geoms: np.ndarray, squares: dict) -> dict:
    """Which grid holds each hand-known square (by its centre)."""
    tree = shapely.STRtree(grid_geoms)
    out = {}
    for key, sq in squares.items():
        hit = tree.query(shift(sq.centroid), predicate="intersects")
        assert len(hit) == 1, f"square {key} lies in {len(hit)} grids"
        out[key] = int(hit[0])
    return out


def check_lattice_grids(out, squares, boundary, counts) -> None:
    n_g, n_c, n_s = counts
    assert len(out) == n_g
    assert out["grid_id"].is_unique
    assert out["grid_name"].is_unique
    assert out["community"].nunique() == n_c
    assert out["subdistrict"].nunique() == n_s
    assert out.crs.to_epsg() == 4326
    assert out["population"].isna().all()
    geoms = utm(out)
    assert_partition(geoms, boundary)
    # every grid is a union of whole squares, which form one Rook-connected group
    holder = squares_of(geoms, squares)
    for g in range(n_g):
        mine = [k for k, v in holder.items() if v == g]
        assert mine, f"grid {g} holds no square"
        assert geoms[g].area == pytest.approx(sum(shift(squares[k]).area for k in mine))
        h = nx.Graph()
        h.add_nodes_from(mine)
        h.add_edges_from(
            (p, q) for p, q in itertools.combinations(mine, 2)
            if abs(p[0] - q[0]) + abs(p[1] - q[1]) == 1
        )  # fmt: skip
        assert nx.is_connected(h), f"grid {out['grid_id'].iloc[g]} is not contiguous"
        assert geoms[g].geom_type == "Polygon"
    # nesting: a community lies in one sub-district; communities and sub-districts contiguous
    assert (out.groupby("community")["subdistrict"].nunique() == 1).all()
    for level in ("community", "subdistrict"):
        for _, part in out.groupby(level):
            assert rook_components(utm(part)) == 1, f"a {level} is not contiguous"


# --------------------------------------------------------------------------------------------
# street blocks


def test_lattice_blocks_are_the_squares():
    net, squares = lattice(4, 3)
    blocks = grids.street_blocks(net, box(0, 0, 400, 300))
    assert len(blocks) == 12
    assert blocks.crs == net.crs
    np.testing.assert_allclose(blocks["area_m2"], 10_000.0)
    np.testing.assert_allclose(shapely.area(blocks.geometry.to_numpy()), 10_000.0)
    got = sorted(shapely.normalize(blocks.geometry.to_numpy()).tolist(), key=lambda g: g.wkb)
    want = sorted([shapely.normalize(shift(s)) for s in squares.values()], key=lambda g: g.wkb)
    for a, b in zip(got, want, strict=True):
        assert shapely.equals(a, b)


def test_boundary_beyond_the_streets_becomes_blocks_too():
    # streets run 50 m past a 3x3 lattice and the boundary lies 40 m beyond the outer streets:
    # the street ends cut the 40 m frame into 4 corner squares (40 x 40 m) and 12 strips
    # (100 x 40 m); the parts of the streets outside the boundary make no blocks
    net, _ = lattice(3, 3, extend=50.0)
    boundary = box(-40, -40, 340, 340)
    blocks = grids.street_blocks(net, boundary)
    assert_partition(blocks.geometry.to_numpy(), boundary)
    np.testing.assert_allclose(
        np.sort(blocks["area_m2"]), [1_600.0] * 4 + [4_000.0] * 12 + [10_000.0] * 9
    )


def test_dangling_street_and_uncut_frame():
    # the boundary lies 50 m beyond a 2x2 lattice whose streets stop at the lattice: the frame
    # is one block with a hole; a dead-end street inside a square changes nothing
    net = lines_network(*lattice_lines(2, 2), [(50, 50), (50, 80)])
    boundary = box(-50, -50, 250, 250)
    blocks = grids.street_blocks(net, boundary)
    assert_partition(blocks.geometry.to_numpy(), boundary)
    np.testing.assert_allclose(np.sort(blocks["area_m2"]), [10_000.0] * 4 + [300**2 - 200**2])
    frame = blocks.geometry[blocks["area_m2"].idxmax()]
    assert frame.geom_type == "Polygon"
    assert len(frame.interiors) == 1


def test_slivers_and_thin_strips_merge_into_a_neighbour():
    # a 10 m corner triangle (50 m²) and a second carriageway 10 m above y = 200, whose
    # strips are 100 m x 10 m: 1,000 m², mean width 2 · 1000 / 220 = 9.1 m < 12 m
    lines = [*lattice_lines(4, 4), [(0, 10), (10, 0)], [(0, 210), (400, 210)]]
    net = lines_network(*lines)
    boundary = box(0, 0, 400, 400)
    blocks = grids.street_blocks(net, boundary)
    assert_partition(blocks.geometry.to_numpy(), boundary)
    assert len(blocks) == 16
    # the triangle rejoins its square; each strip joins the square above (9,000 m²) or below
    # (10,000 m²): both share 100 m with it
    areas = blocks["area_m2"].to_numpy()
    assert np.isin(np.round(areas), [9_000.0, 10_000.0, 11_000.0]).all()
    assert np.round(areas).tolist().count(11_000.0) == np.round(areas).tolist().count(9_000.0)
    geoms = blocks.geometry.to_numpy()
    assert (2 * shapely.area(geoms) / shapely.length(geoms) >= 12).all()
    # without the width rule the strips stay blocks; the triangle still merges
    kept = grids.street_blocks(net, boundary, min_width_m=0)
    assert len(kept) == 20
    np.testing.assert_allclose(np.sort(kept["area_m2"]), [1_000] * 4 + [9_000] * 4 + [10_000] * 12)
    # without any merging the triangle is a block of its own
    raw = grids.street_blocks(net, boundary, min_width_m=0, min_block_m2=0)
    assert len(raw) == 21
    np.testing.assert_allclose(np.sort(raw["area_m2"])[:2], [50.0, 1_000.0])


def test_large_blocks_are_cut_into_pieces():
    net, _ = lattice(2, 1)
    blocks = grids.street_blocks(net, box(0, 0, 200, 100), max_block_m2=2_500.0)
    # a 100 m square halves across its long axis twice: four 50 m squares each
    assert len(blocks) == 8
    np.testing.assert_allclose(blocks["area_m2"], 2_500.0)
    assert_partition(blocks.geometry.to_numpy(), box(0, 0, 200, 100))


def test_default_boundary_is_the_area_the_streets_enclose():
    lines = [
        *lattice_lines(5, 5),
        [(500, 250), (800, 250)],  # a dead end leaving the lattice
        [(0, 100), (-300, 100), (-300, 120), (0, 120)],  # a 20 m strip (divided road) outside
        [(1000, 1000), (1030, 1000), (1030, 1030), (1000, 1030), (1000, 1000)],  # a roundabout
    ]
    net = lines_network(*lines)
    area = grids.default_boundary(net)
    assert shapely.symmetric_difference(area, box(0, 0, 500, 500)).area < 1e-6 * 250_000
    blocks = grids.street_blocks(net)
    assert len(blocks) == 25
    np.testing.assert_allclose(blocks["area_m2"], 10_000.0)


def test_default_boundary_needs_a_loop():
    net = lines_network([(0, 0), (100, 0), (100, 100)])
    with pytest.raises(InputError, match=r"enclose no area.*pass the district boundary"):
        grids.generate_grids(net, n_grids=2)


# --------------------------------------------------------------------------------------------
# generated grids


@pytest.mark.parametrize("counts", [(9, 3, 2), (36, 36, 1), (4, 2, 2), (1, 1, 1)])
def test_lattice_grids_counts_cover_and_contiguity(counts):
    net, squares = lattice(6, 6)
    boundary = box(0, 0, 600, 600)
    n_g, n_c, n_s = counts
    out = grids.generate_grids(net, boundary, n_grids=n_g, n_communities=n_c, n_subdistricts=n_s)
    check_lattice_grids(out, squares, boundary, counts)


def test_lattice_grids_are_balanced_and_named():
    net, _ = lattice(6, 6)
    out = grids.generate_grids(
        net, box(0, 0, 600, 600), n_grids=9, n_communities=3, n_subdistricts=1
    )
    # 36 equal squares into 9 grids of whole squares (4 on average), none twice another
    area = shapely.area(utm(out))
    np.testing.assert_allclose(out["area_m2"], area)
    assert area.sum() == pytest.approx(360_000.0)
    np.testing.assert_allclose(area / 10_000, np.round(area / 10_000))
    assert area.max() <= 2 * area.min()
    assert out["grid_id"].tolist() == [f"G{k:04d}" for k in range(1, 10)]
    assert set(out["subdistrict"]) == {"街道01"}
    assert set(out["subdistrict_id"]) == {"S01"}
    assert set(out["community"]) == {"社区001", "社区002", "社区003"}
    for community, part in out.groupby("community"):
        assert part["grid_name"].tolist() == [
            f"{community}-网格{k:02d}" for k in range(1, len(part) + 1)
        ]
        assert set(part["community_id"]) == {"C" + community[-3:]}
    np.testing.assert_array_equal(out["n_blocks"], np.round(area / 10_000))
    assert out.attrs["source"]["kind"] == "generated"


def test_target_area_sets_the_count():
    net, squares = lattice(6, 6)
    boundary = box(0, 0, 600, 600)
    out = grids.generate_grids(
        net, boundary, target_area_m2=40_000, n_communities=3, n_subdistricts=2
    )
    check_lattice_grids(out, squares, boundary, (9, 3, 2))
    # default hierarchy sizes follow Zhifu's ratios (1024 : 150 : 12)
    out = grids.generate_grids(net, boundary, target_area_m2=10_000)
    assert len(out) == 36
    assert out["community"].nunique() == round(36 * 150 / 1024)
    assert out["subdistrict"].nunique() == 1


def test_more_grids_than_blocks_splits_blocks():
    net, _ = lattice(2, 2)
    boundary = box(0, 0, 200, 200)
    out = grids.generate_grids(net, boundary, n_grids=16, n_communities=4, n_subdistricts=2)
    geoms = utm(out)
    assert len(out) == 16
    assert_partition(geoms, boundary)
    # each 100 m square is cut into four 50 m squares
    np.testing.assert_allclose(shapely.area(geoms), 2_500.0)
    assert (shapely.get_type_id(geoms) == 3).all()
    assert rook_components(geoms) == 1


def test_islands_join_the_nearest_grid():
    # a 4x4 lattice and a one-square island 1 km east: 3 grids must still be exact
    island = [(1400, 0), (1500, 0), (1500, 100), (1400, 100), (1400, 0)]
    net = lines_network(*lattice_lines(4, 4), island)
    boundary = shapely.union_all([box(0, 0, 400, 400), box(1400, 0, 1500, 100)])
    out = grids.generate_grids(net, boundary, n_grids=3, n_communities=2, n_subdistricts=1)
    geoms = utm(out)
    assert len(out) == 3
    assert_partition(geoms, boundary)
    kinds = sorted(shapely.get_type_id(geoms).tolist())
    assert kinds == [3, 3, 6]  # the island joins one grid, which becomes a MultiPolygon
    multi = geoms[shapely.get_type_id(geoms) == 6][0]
    # it is joined to a grid on the east edge of the lattice (nearest to the island)
    assert multi.intersects(box(399, 0, 400, 400))


def test_wgs84_boundary_and_progress():
    net, squares = lattice(4, 4)
    local = gpd.GeoDataFrame(geometry=[box(0, 0, 400, 400)], crs=UTM)
    lonlat = local.to_crs("EPSG:4326")
    steps: list[str] = []
    out = grids.generate_grids(
        net,
        lonlat.geometry.iloc[0],  # bare lon/lat geometry
        n_grids=4,
        n_communities=2,
        n_subdistricts=1,
        progress=steps.append,
    )
    check_lattice_grids(out, squares, box(0, 0, 400, 400), (4, 2, 1))
    assert steps == ["boundary", "street blocks", "grids, communities and sub-districts", "names"]
    same = grids.generate_grids(net, lonlat, n_grids=4, n_communities=2, n_subdistricts=1)
    assert same["grid_id"].tolist() == out["grid_id"].tolist()


@settings(max_examples=20, deadline=None)
@given(
    cuts=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.sampled_from(["h", "v", "d"])),
        min_size=2,
        max_size=12,
    ),
    n_grids=st.integers(1, 12),
)
def test_random_street_cuts_partition_the_boundary(cuts, n_grids):
    # random chords of a 1 km square (horizontal, vertical, diagonal) plus its outline
    size = 1000.0
    lines = [[(0, 0), (size, 0), (size, size), (0, size), (0, 0)]]
    for a, b, kind in cuts:
        if kind == "h":
            lines.append([(0, a * size), (size, a * size)])
        elif kind == "v":
            lines.append([(a * size, 0), (a * size, size)])
        else:
            lines.append([(a * size, 0), (b * size, size)])
    net = lines_network(*lines)
    boundary = box(0, 0, size, size)
    blocks = grids.street_blocks(net, boundary)
    assert_partition(blocks.geometry.to_numpy(), boundary)
    assert (blocks.geometry.geom_type == "Polygon").all()
    n_c = max(1, n_grids // 3)
    out = grids.generate_grids(net, boundary, n_grids=n_grids, n_communities=n_c)
    geoms = utm(out)
    assert len(out) == n_grids
    assert out["community"].nunique() == n_c
    assert_partition(geoms, boundary)
    assert (shapely.get_type_id(geoms) == 3).all()  # Rook-connected blocks: one Polygon
    assert (out.groupby("community")["subdistrict"].nunique() == 1).all()


# --------------------------------------------------------------------------------------------
# invalid input


def test_more_grids_than_blocks_without_splitting_is_refused():
    net, _ = lattice(3, 3)
    with pytest.raises(InputError, match=r"only 9 blocks.*10 grids.*at most 9"):
        grids.generate_grids(net, box(0, 0, 300, 300), n_grids=10, split_blocks=False)


def test_grids_smaller_than_blocks_allow_is_refused():
    net, _ = lattice(3, 3)
    with pytest.raises(InputError, match=r"average 900 m².*fewer grids"):
        grids.generate_grids(net, box(0, 0, 300, 300), n_grids=100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_grids": 4, "n_communities": 5}, r"n_communities \(5\) is larger than n_grids \(4\)"),
        (
            {"n_grids": 4, "n_communities": 2, "n_subdistricts": 3},
            r"n_subdistricts \(3\) is larger than n_communities \(2\)",
        ),
        ({"n_grids": 0}, "n_grids must be a whole number of at least 1"),
        ({"n_grids": 2.5}, "n_grids must be a whole number"),
        ({"target_area_m2": -5}, "target_area_m2 must be positive"),
    ],
)
def test_bad_counts_are_refused(kwargs, message):
    net, _ = lattice(3, 3)
    with pytest.raises(InputError, match=message):
        grids.generate_grids(net, box(0, 0, 300, 300), **kwargs)


def test_boundary_off_the_network_is_refused():
    net, _ = lattice(3, 3)
    with pytest.raises(InputError, match=r"does not overlap the street network.*2\.7 km away"):
        grids.generate_grids(net, box(3000, 0, 3300, 300), n_grids=2)
    with pytest.raises(InputError, match="does not overlap"):
        grids.street_blocks(net, gpd.GeoSeries([box(3000, 0, 3300, 300)], crs=UTM))


def test_boundary_without_crs_or_area_is_refused():
    net, _ = lattice(3, 3)
    with pytest.raises(InputError, match="no coordinate system"):
        grids.street_blocks(net, gpd.GeoDataFrame(geometry=[box(0, 0, 300, 300)]))
    with pytest.raises(InputError, match="no polygon with an area"):
        grids.street_blocks(net, shapely.LineString([(X0, Y0), (X0 + 300, Y0 + 300)]))


# --------------------------------------------------------------------------------------------
# real data


@pytest.mark.shared_data
def test_shanghai_grids(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(netmod.settings, "cache_folder", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServiceCircleWarning)
        net = netmod.load_network(shared_data / "shanghai" / "shanghai_center_drive.osm.bz2")
    out = grids.generate_grids(net)
    assert len(out) == 1024
    assert out["community"].nunique() == 150
    assert out["subdistrict"].nunique() == 12
    assert out["grid_id"].is_unique
    geoms = out.to_crs(net.crs).geometry.to_numpy()
    hull = grids.default_boundary(net)
    assert_partition(geoms, hull)
    # grids are single polygons (Rook-contiguous blocks) within each part of the boundary
    # (Puxi and Pudong here, across the river); a grid rarely spans two parts
    parts = shapely.get_parts(hull)
    spans = np.array([(shapely.area(shapely.intersection(g, parts)) > 1.0).sum() for g in geoms])
    np.testing.assert_array_equal(shapely.get_num_geometries(geoms), spans)
    assert (spans == 1).mean() > 0.99
    area = shapely.area(geoms)
    assert area.max() < 4 * np.median(area)
    assert area.min() > np.median(area) / 10
    # nesting, and communities / sub-districts connected through shared grid borders within
    # each boundary part they reach (the one across the river joins through its nearest grid)
    assert (out.groupby("community")["subdistrict"].nunique() == 1).all()
    for level in ("community", "subdistrict"):
        for _, idx in out.groupby(level).indices.items():
            reached = shapely.area(shapely.intersection(shapely.union_all(geoms[idx]), parts)) > 1.0
            assert rook_components(geoms[idx]) == reached.sum()


def test_one_block_one_grid():
    net = lines_network([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)])
    out = grids.generate_grids(net, n_grids=1)
    assert out[["grid_id", "subdistrict", "community", "grid_name"]].iloc[0].tolist() == [
        "G0001",
        "街道01",
        "社区001",
        "社区001-网格01",
    ]
    assert_partition(utm(out), box(0, 0, 100, 100))


def test_absurd_grid_counts_are_refused_before_any_work():
    net, _ = lattice(3, 3)
    with pytest.raises(InputError, match=r"target_area_m2=1 would cut the 0\.09 km² boundary into "
                                         r"90,000 grids; the limit is 50,000"):  # fmt: skip
        grids.generate_grids(net, target_area_m2=1, min_block_m2=0)
    with pytest.raises(InputError, match=r"n_grids=1,000,000 is more than the limit of 50,000"):
        grids.generate_grids(net, n_grids=1_000_000, n_communities=1, n_subdistricts=1)
    with pytest.raises(InputError, match="target_area_m2 must be positive m², got nan"):
        grids.generate_grids(net, target_area_m2=float("nan"))
