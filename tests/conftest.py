"""Shared test configuration: repository paths and the shared third-party data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import SHARED_DATA, require


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; fails in CI when missing, skips (naming the folder) elsewhere."""
    require(SHARED_DATA.is_dir(), f"third-party data folder {SHARED_DATA} is missing")
    return SHARED_DATA
