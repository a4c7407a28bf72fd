"""Shared test fixtures. Component fixtures live next to their tests (tests/<component>/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.prometheus_fixture"]  # the session's real Prometheus (tests/prometheus_fixture.py)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public datasets); tests using it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA
