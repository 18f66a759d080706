"""Regenerate the sample inputs in this folder (run from the repository root).

    python data/make_samples.py

``shanghai_stations_302_gcj02.csv``: 302 stations (1 district centre, 12 sub-district
centres, 289 stations; the seeds' district has 302 驿站) at reproducible random spots on
the central-Shanghai walking network of ``../shared/data``, written as a Chinese station
list usually is: GCJ-02 coordinates (as AMap/Tencent give them) in a UTF-8-with-BOM CSV
with Chinese headers. Declare it ``--stations-crs gcj02``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from servicecircle import datums
from servicecircle.network import load_network
from servicecircle.sample_data import random_stations

HERE = Path(__file__).resolve().parent
SHANGHAI = HERE.parent.parent / "shared" / "data" / "shanghai" / "shanghai_center_drive.osm.bz2"
TIER_LABEL = {"district": "区级中心", "subdistrict": "街道中心", "station": "驿站"}


def main() -> None:
    net = load_network(SHANGHAI)
    st = random_stations(net, 302, seed=302)
    lon, lat = datums.wgs84_to_gcj02(st.geometry.x.to_numpy(), st.geometry.y.to_numpy())
    out = HERE / "shanghai_stations_302_gcj02.csv"
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["编号", "名称", "级别", "经度", "纬度"])
        for row, x, y in zip(st.itertuples(), lon, lat, strict=True):
            w.writerow([row.station_id, row.name, TIER_LABEL[row.tier], f"{x:.6f}", f"{y:.6f}"])
    print(f"wrote {out} ({len(st)} stations)")


if __name__ == "__main__":
    main()
