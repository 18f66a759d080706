"""Kill a real run anywhere: the output folder holds the old set or the new one, never a mix.

Each run is a separate Python process running the ``coverage`` command on a small district.
It is killed with SIGKILL at points chosen two ways: by the clock (fractions of a normal run's
duration, so loading, analysis and writing all get hit) and exactly, at the moments that
matter (a fault injected by this test's driver, not by the product: after the first file of
the set is written, inside the GeoPackage, just before and just after the folders are
swapped). After every kill the set is checked against its own manifest (every file present,
none extra, sizes and SHA-256 equal); the next run must then succeed and leave no hidden
staging folder, lock or temporary file behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.hostile import hidden, make_district, whole_set

from servicecircle import fileio

#: Runs the CLI in a child process, killing itself at the point named by argv[1].
DRIVER = r"""
import os, signal, sys
from servicecircle import exports, fileio
point, args = sys.argv[1], sys.argv[2:]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def after(module, name, calls=1):
    original, seen = getattr(module, name), []
    def wrapper(*a, **k):
        out = original(*a, **k)
        seen.append(1)
        if len(seen) >= calls:
            die()
        return out
    setattr(module, name, wrapper)

if point == "first-file":
    after(exports, "write_csv")
elif point == "inside-gpkg":
    after(exports, "_write_layer", calls=2)
elif point == "before-swap":
    fileio._exchange = lambda a, b: die()
elif point == "after-swap":
    after(fileio, "_exchange")
elif point == "between-renames":  # where no atomic exchange exists: two renames
    fileio._exchange = lambda a, b: False
    after(fileio.os, "rename")
elif point == "map-mid-write":
    import folium
    def save(self, path, **k):
        with open(path, "w") as f:
            f.write("<html>half")
        die()
    folium.Map.save = save
from servicecircle.cli import main
main(args)
"""


@pytest.fixture
def district(tmp_path, monkeypatch):
    d = make_district(tmp_path / "in")
    cache = tmp_path / "cache"
    monkeypatch.setenv("SERVICECIRCLE_CACHE", str(cache))
    return d, tmp_path / "out"


def _command(d, out, *extra):
    return ["coverage", "--osm", str(d["osm"]), "--stations", str(d["stations"]),
            "--stations-crs", "EPSG:4326", "--grids", str(d["grids"]), "--grids-crs",
            "EPSG:4326", "--out-dir", str(out), "--format", "csv,gpkg", *extra]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore"}


def _run(point: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, point, *args],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
        timeout=300,
    )


def _run_killed_after(seconds: float, args: list[str]) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "none", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    time.sleep(seconds)
    proc.kill()
    return proc.wait()


def _old_or_new(folder: Path, old_run: str) -> str:
    """'old' or 'new' for a whole set; fails on anything else."""
    manifest = whole_set(folder)
    return "old" if manifest["run_id"] == old_run else "new"


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("first-file", "old"),
        ("inside-gpkg", "old"),
        ("before-swap", "old"),
        ("after-swap", "new"),
    ],
)
def test_kill_at_a_point_leaves_the_old_set_or_the_new(district, point, expected):
    d, out = district
    first = _run("none", _command(d, out))
    assert first.returncode == 0, first.stderr
    old = whole_set(out / "coverage")["run_id"]
    killed = _run(point, _command(d, out, "--overwrite", "--speed", "50"))
    assert killed.returncode == -9, killed.stderr  # it really died there
    assert _old_or_new(out / "coverage", old) == expected
    if expected == "new":  # and it is the set the killed run was asked for
        assert "50" in whole_set(out / "coverage")["arguments"]
    # the next run finishes and leaves nothing of the dead run behind
    again = _run("none", _command(d, out, "--overwrite"))
    assert again.returncode == 0, again.stderr
    assert _old_or_new(out / "coverage", old) == "new"
    assert list(hidden(out)) == []


def test_kill_by_the_clock_anywhere_in_a_run(district):
    d, out = district
    start = time.perf_counter()
    first = _run("none", _command(d, out))
    duration = time.perf_counter() - start
    assert first.returncode == 0, first.stderr
    run_id = whole_set(out / "coverage")["run_id"]
    seen = set()
    for fraction in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0):
        _run_killed_after(duration * fraction, _command(d, out, "--overwrite"))
        state = _old_or_new(out / "coverage", run_id)
        seen.add(state)
        run_id = whole_set(out / "coverage")["run_id"]
    print(f"clock kills over a {duration:.2f} s run left: {sorted(seen)}")
    again = _run("none", _command(d, out, "--overwrite"))
    assert again.returncode == 0, again.stderr
    whole_set(out / "coverage")
    assert list(hidden(out)) == []


def test_cut_between_two_renames_is_put_back(district):
    """Where the atomic exchange is unavailable, a kill between the renames is repaired."""
    d, out = district
    assert _run("none", _command(d, out)).returncode == 0
    old = whole_set(out / "coverage")["run_id"]
    killed = _run("between-renames", _command(d, out, "--overwrite"))
    assert killed.returncode == -9
    assert not (out / "coverage").exists()  # the moment the exchange exists to avoid
    fileio.sweep_leftovers(out)  # what the next run does first
    assert _old_or_new(out / "coverage", old) == "old"
    assert list(hidden(out)) == []


def test_a_killed_map_leaves_the_old_map_and_no_temporary_file(district):
    d, out = district
    html = out / "map.html"
    args = ["map", "--osm", str(d["osm"]), "--stations", str(d["stations"]),
            "--stations-crs", "EPSG:4326", "--grids", str(d["grids"]), "--grids-crs",
            "EPSG:4326", "--tiles", "none", "--out", str(html)]  # fmt: skip
    assert _run("none", args).returncode == 0
    before = html.read_bytes()
    assert _run("map-mid-write", [*args, "--overwrite"]).returncode == -9
    assert html.read_bytes() == before
    assert len(list(hidden(out))) == 2  # the dead run's temporary file and its lock
    assert _run("none", [*args, "--overwrite"]).returncode == 0
    assert list(hidden(out)) == []
    assert html.read_bytes().startswith(b"<!DOCTYPE html>")


def test_concurrent_runs_never_interleave(district):
    d, out = district
    assert _run("none", _command(d, out)).returncode == 0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, "none", *_command(d, out, "--overwrite", *extra)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for extra in (["--speed", "50"], ["--speed", "70"], [])
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    whole_set(out / "coverage")
    assert list(hidden(out)) == []


def test_concurrent_first_runs_one_wins_the_other_says_so(district):
    d, out = district
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, "none", *_command(d, out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(2)
    ]
    results = [(p.communicate(timeout=300)[1], p.returncode) for p in procs]
    results = [(code, err) for err, code in results]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0
    if codes[1] == 2:  # the second to finish found the first's set: told, not mixed
        assert any("--overwrite" in err for code, err in results if code == 2)
    whole_set(out / "coverage")
    assert list(hidden(out)) == []
