"""Locate the shared third-party data (../shared/data): fail in CI when missing, else skip."""

from __future__ import annotations

from tests.shared_data import SHARED_DATA as DATA
from tests.shared_data import shared_path as data_dir

__all__ = ["DATA", "data_dir"]
