"""The analysts' notebook runs top to bottom on real data (Shanghai when present, else Helsinki)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


#: per notebook: what its tables (HTML) and its printed text must show
EXPECTED = {
    "01_coverage_walkthrough.ipynb": ("coverage_pct", "stations;"),
    "02_siting_scenarios.ipynb": ("after_pct", "data:"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_top_to_bottom(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICECIRCLE_CACHE", str(tmp_path / "cache"))
    original = (NOTEBOOKS / name).read_bytes()
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # the tables and the inline map are really there
    table, printed = EXPECTED[name]
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert table in html
    assert "leaflet" in html.lower()
    text = "".join(str(o.get("text", "")) for o in outputs)
    assert printed in text
    assert (NOTEBOOKS / name).read_bytes() == original  # run in memory, file untouched
