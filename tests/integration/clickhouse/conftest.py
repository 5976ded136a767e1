"""Embedded ClickHouse (chdb) fixtures: ONE data directory per pytest process, random databases.

chdb hosts one engine per process and locks its directory, so every test in this process shares
the session's directory and isolates itself by database name. Fixtures return factories.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shinrai.settings import ClickHouseSettings
from sinks.clickhouse.sink import ClickHouseSink


@pytest.fixture
def ch_settings(chdb_dir: Path) -> Callable[..., ClickHouseSettings]:
    """``ch_settings(database=None, **overrides)`` → settings on a fresh random database."""

    def make(database: str | None = None, **overrides: Any) -> ClickHouseSettings:
        name = database or f"t_{uuid.uuid4().hex[:12]}"
        return ClickHouseSettings(url=f"chdb://{chdb_dir}", database=name, **overrides)

    return make


@pytest.fixture
def sink_factory(
    ch_settings: Callable[..., ClickHouseSettings],
) -> Iterator[Callable[..., ClickHouseSink]]:
    """``sink_factory(settings=None, setup=True, **kwargs)`` → a sink, closed after the test."""
    made: list[ClickHouseSink] = []

    def make(
        settings: ClickHouseSettings | None = None, setup: bool = True, **kwargs: Any
    ) -> ClickHouseSink:
        sink = ClickHouseSink(settings or ch_settings(), **kwargs)
        made.append(sink)
        if setup:
            sink.setup()
        return sink

    yield make
    for sink in made:
        sink.close()
