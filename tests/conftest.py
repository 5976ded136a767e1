"""Shared test configuration: repository paths and the shared third-party data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; fails in CI when missing, skips (naming the folder) elsewhere."""
    if not SHARED_DATA.is_dir():
        message = f"third-party data folder {SHARED_DATA} is missing"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA
