"""Open a saved map in headless Debian Chromium (playwright) and report what a person would see.

Used by the browser tests; never runs ``playwright install``: it drives the system
Chromium (``/usr/bin/chromium``, installed by ``.ci/run``). Requests other than
``file:`` and ``data:`` URLs are aborted, so the page is checked as it works offline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SERVICECIRCLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: names in the layer control that hold the grids and the stations (webmap.LAYER_NAMES)
GRID_LAYER_PREFIX = "网格"
STATION_LAYER_PREFIX = "驿站"

# Counts leaf layers (features) per overlay of every folium layer control, plus the
# servicecircle runtime's registry of its layers by role.
_COUNT_JS = """
() => {
  const leaves = (layer) => {
    if (layer && typeof layer.getLayers === "function") {
      return layer.getLayers().reduce((n, child) => n + leaves(child), 0);
    }
    return layer ? 1 : 0;
  };
  const overlays = {};
  for (const key of Object.keys(window)) {
    if (/^layer_control_.*_layers$/.test(key) && window[key] && window[key].overlays) {
      for (const [name, layer] of Object.entries(window[key].overlays)) {
        overlays[name] = leaves(layer);
      }
    }
  }
  const roles = {};
  const reg = window.servicecircle ? window.servicecircle.registry : {};
  for (const [role, layer] of Object.entries(reg)) roles[role] = leaves(layer);
  const maps = Object.keys(window).filter(
    (k) => k.startsWith("map_") && window[k] instanceof L.Map);
  const labels = Array.from(
    document.querySelectorAll(".leaflet-control-layers-overlays label span span, "
      + ".leaflet-control-layers-overlays label > span")
  ).map((el) => el.textContent.trim()).filter((t) => t.length > 0);
  return {overlays, roles, n_maps: maps.length, labels: Array.from(new Set(labels))};
}
"""

# Opens every tooltip and popup of a registered layer, so that their (escaped) HTML is
# put into the DOM as a person hovering and clicking would; returns the texts shown.
_OPEN_ALL_JS = """
(role) => {
  const layer = window.servicecircle && window.servicecircle.registry[role];
  if (!layer) return [];
  const texts = [];
  const visit = (l) => {
    if (typeof l.getLayers === "function") { l.getLayers().forEach(visit); return; }
    for (const kind of ["Tooltip", "Popup"]) {
      const bound = l["get" + kind] && l["get" + kind]();
      if (!bound) continue;
      const content = bound._content;
      const html = typeof content === "function" ? content(l) : content;
      const div = document.createElement("div");
      div.innerHTML = html;  // exactly what Leaflet does when it opens
      document.body.appendChild(div);
      texts.push(div.textContent);
      div.remove();
    }
  };
  visit(layer);
  return texts;
}
"""


def chromium_or_skip() -> str:
    """Path of the system Chromium; skips (or fails when required in CI) when absent."""
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path:
        return str(path)
    reason = f"Debian chromium not installed ({CHROMIUM} missing; `.ci/run` installs it)"
    if os.environ.get("SERVICECIRCLE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SERVICECIRCLE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)
    raise AssertionError  # unreachable


def open_map(
    path: str | Path,
    *,
    screenshot: str | Path | None = None,
    open_roles: tuple[str, ...] = (),
    search_text: str | None = None,
    grid_prefix: str = GRID_LAYER_PREFIX,
    station_prefix: str = STATION_LAYER_PREFIX,
    timeout_ms: int = 60_000,
) -> dict[str, Any]:
    """Load ``path`` from a file URL in headless Chromium and report on it.

    Parameters
    ----------
    screenshot
        PNG to write of the loaded page.
    open_roles
        Runtime layer roles (``"stations"``, ``"grids"``, ...) whose every tooltip and
        popup is rendered into the DOM, as hovering and clicking would.
    search_text
        Typed into the search box; the tips shown are reported.

    Returns
    -------
    dict with ``console_errors`` (console errors and page errors), ``network_errors``
    (failed loads of outside URLs, e.g. tiles when offline), ``external_requests``,
    ``layer_names`` (as shown in the layer control), ``layer_counts`` (features per
    overlay name), ``roles`` (features per runtime role), ``n_grid_features``,
    ``n_station_markers``, ``dialogs`` (alert/confirm messages fired), ``opened_texts``,
    ``search_tips``, ``load_ms`` (navigation start to the load event) and ``wall_ms``.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    exe = chromium_or_skip()
    url = Path(path).resolve().as_uri()
    report: dict[str, Any] = {
        "console_errors": [],
        "network_errors": [],
        "external_requests": [],
        "dialogs": [],
        "opened_texts": [],
        "search_tips": [],
    }

    def on_console(msg: Any) -> None:
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        failed_load = "net::ERR" in msg.text or "Failed to load resource" in msg.text
        if failed_load and not where.startswith(("file:", "data:")):
            report["network_errors"].append(f"{msg.text} ({where})")
            return
        report["console_errors"].append(f"{msg.text} ({where})")

    def on_route(route: Any) -> None:
        req_url = route.request.url
        if req_url.startswith(("file:", "data:", "about:")):
            route.continue_()
        else:
            report["external_requests"].append(req_url)
            route.abort()

    def on_dialog(dialog: Any) -> None:
        report["dialogs"].append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("console", on_console)
            page.on("pageerror", lambda exc: report["console_errors"].append(f"pageerror: {exc}"))
            page.on("dialog", on_dialog)
            page.route("**/*", on_route)
            start = time.perf_counter()
            page.goto(url, wait_until="load", timeout=timeout_ms)
            page.wait_for_function(
                "() => Object.keys(window).some(k => k.startsWith('map_') && window[k]"
                " && window[k]._loaded)",
                timeout=timeout_ms,
            )
            report["wall_ms"] = round((time.perf_counter() - start) * 1000, 1)
            report["load_ms"] = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return n ? Math.round(n.loadEventEnd - n.startTime) : null; }"
            )
            counts = page.evaluate(_COUNT_JS)
            for role in open_roles:
                report["opened_texts"] += page.evaluate(_OPEN_ALL_JS, role)
            if search_text is not None:
                box = page.locator(".leaflet-control-search input.search-input")
                box.press_sequentially(search_text, delay=20)  # leaflet-search acts on keyup
                # leaflet-search waits delayType (400 ms) after the last key before it
                # filters, so wait for the tips themselves, not a fixed time
                tips = page.locator(".search-tip")
                with contextlib.suppress(PlaywrightTimeout):  # none: an empty list
                    tips.first.wait_for(state="attached", timeout=10_000)
                page.wait_for_timeout(100)
                report["search_tips"] = tips.all_text_contents()
            page.wait_for_timeout(300)  # let any injected onerror handler fire
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=False)
        finally:
            browser.close()

    overlays = counts["overlays"]
    report["layer_names"] = list(overlays)
    report["layer_labels"] = counts["labels"]
    report["layer_counts"] = overlays
    report["roles"] = counts["roles"]
    report["n_maps"] = counts["n_maps"]

    def count(role: str, prefix: str) -> int | None:
        if role in counts["roles"]:
            return counts["roles"][role]
        named = [n for name, n in overlays.items() if name.startswith(prefix)]
        return sum(named) if named else None

    report["n_grid_features"] = count("grids", grid_prefix)
    report["n_station_markers"] = count("stations", station_prefix)
    return report
