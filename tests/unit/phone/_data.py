"""Locate the shared third-party data (../shared/data): fail in CI when missing, else skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def data_dir(relative: str) -> Path:
    """``../shared/data/<relative>``; CI must have it, a laptop may not."""
    folder = DATA / relative
    if not folder.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared data folder missing in CI: {folder}")
        pytest.skip(f"shared data folder not available: {folder}")
    return folder
