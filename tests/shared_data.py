"""The third-party data beside the repository (../shared/data), and the one rule for a missing one.

A test that needs something the machine may lack (a shared data folder, a browser) calls
:func:`require`: under CI=true a missing thing FAILS the test (CI must have it); elsewhere the
test is skipped with a message naming what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def in_ci() -> bool:
    """True when running under CI (CI=true)."""
    return os.environ.get("CI", "").lower() == "true"


def require(present: bool, message: str) -> None:
    """Fail (CI) or skip (elsewhere) with ``message`` unless ``present``."""
    if present:
        return
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def shared_path(relative: str) -> Path:
    """``../shared/data/<relative>`` (a folder or file), which must exist."""
    path = SHARED_DATA / relative
    require(path.exists(), f"third-party data {path} is missing")
    return path
