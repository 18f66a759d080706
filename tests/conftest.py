"""Generic fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

#: ``shared/data`` next to the repository (``/work/shared/data`` for ``/work/main``).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when that folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data is absent: {SHARED_DATA} does not exist (real-data check)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _hermetic_cache(tmp_path_factory):
    """Processed networks are cached in a temporary folder, never in the user's cache."""
    import os

    from servicecircle.settings import settings

    folder = tmp_path_factory.mktemp("servicecircle-cache")
    old_folder, old_env = settings.cache_folder, os.environ.get("SERVICECIRCLE_CACHE")
    settings.cache_folder = folder
    os.environ["SERVICECIRCLE_CACHE"] = str(folder)  # for the commands tests run as processes
    yield folder
    settings.cache_folder = old_folder
    if old_env is None:
        os.environ.pop("SERVICECIRCLE_CACHE", None)
    else:
        os.environ["SERVICECIRCLE_CACHE"] = old_env
