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
