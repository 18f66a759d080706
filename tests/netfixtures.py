"""Hand-built street networks for tests (projected metres, EPSG:32651)."""

from __future__ import annotations

import geopandas as gpd
import shapely

from servicecircle.network import WalkNetwork, network_from_edges

UTM = "EPSG:32651"
X0, Y0 = 500_000.0, 4_150_000.0  # a spot in UTM 51N (Zhifu's zone)


def lines_network(*coords_lists: list[tuple[float, float]]) -> WalkNetwork:
    """A network from polylines given in local metres (shifted into UTM 51N)."""
    geoms = [shapely.LineString([(X0 + x, Y0 + y) for x, y in c]) for c in coords_lists]
    return network_from_edges(gpd.GeoDataFrame(geometry=geoms, crs=UTM), crs=UTM)


def points(*xy: tuple[float, float]) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y) for x, y in xy], crs=UTM)


def local(geom: shapely.Geometry) -> shapely.Geometry:
    """Move a geometry back to local metres for hand checks."""
    return shapely.affinity.translate(geom, -X0, -Y0)
