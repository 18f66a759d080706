"""The command line: help, one-line errors with exit 2, quiet when piped."""

from __future__ import annotations

import subprocess
import sys

import pytest

from servicecircle.cli import main


def run(*args: str, env_cache: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servicecircle.cli", *args],
        capture_output=True,
        text=True,
        env={"SERVICECIRCLE_CACHE": env_cache, "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=300,
    )


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "check", "network"):
        assert command in out


def test_help_of_a_command_states_units(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "metres per minute" in out


def test_user_error_is_one_line_and_exit_2(tmp_path):
    csv = tmp_path / "stations.csv"
    csv.write_text("id,lon,lat\n1,121.4,37.5\n", encoding="utf-8")
    proc = run("check", "--stations", str(csv), "--stations-crs", "gcj-2", env_cache=str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: stations.csv: unknown coordinate system 'gcj-2'")
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_verbose_adds_the_traceback(tmp_path):
    csv = tmp_path / "stations.csv"
    csv.write_text("id,lon,lat\n1,121.4,37.5\n", encoding="utf-8")
    proc = run(
        "--verbose",
        "check",
        "--stations",
        str(csv),
        "--stations-crs",
        "gcj-2",
        env_cache=str(tmp_path),
    )
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_check_reports_converted_stations_and_no_progress_when_piped(tmp_path):
    csv = tmp_path / "驿站.csv"
    csv.write_bytes("编号,名称,经度,纬度\nZF-1,毓璜顶驿站,121.39,37.53\n".encode("gbk"))
    proc = run("check", "--stations", str(csv), "--stations-crs", "gcj02", env_cache=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "1 stations (gcj02, gbk)" in proc.stdout
    assert proc.stderr == ""


def test_usage_error_exits_2(tmp_path):
    proc = run("check", env_cache=str(tmp_path))
    assert proc.returncode == 2
    assert "Missing option" in proc.stderr
