"""The alert deliverer's HTTP client does not search the import path on every request.

httpcore asks ``sniffio`` which async library runs on every request (several times); when
``sniffio`` is not installed, each ask is a failed import that searches ``sys.path`` (~34 µs,
measured 12% of the alert runner's CPU under load). The project depends on it for that reason.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import sys

import pytest
from httpcore._synchronization import current_async_library

pytestmark = pytest.mark.unit


class _CountingFinder(importlib.abc.MetaPathFinder):
    """Counts every module lookup the import system makes past ``sys.modules``."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        self.lookups.append(fullname)
        return None  # let the real finders answer


def test_asking_the_async_library_imports_nothing() -> None:
    async def ask() -> str:
        return current_async_library()

    assert asyncio.run(ask()) == "asyncio"  # the first ask may import sniffio once
    finder = _CountingFinder()
    sys.meta_path.insert(0, finder)
    try:
        for _ in range(3):
            assert asyncio.run(ask()) == "asyncio"
    finally:
        sys.meta_path.remove(finder)
    assert finder.lookups == [], f"import lookups on every request: {finder.lookups}"
