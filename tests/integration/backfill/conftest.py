"""Embedded ClickHouse for backfill tests: a data directory and random database names.

chdb hosts one engine per process, bound to the first data directory opened; it can switch to
another directory only once every client is closed. So every client these fixtures hand out is
closed at the end of the test, and tests in other folders can use their own directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shinrai.settings import ClickHouseSettings
from sinks.clickhouse.client import connect

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


@pytest.fixture(scope="session")
def backfill_chdb_dir(chdb_dir: Path) -> Path:
    """The process's one chdb data directory (see tests/integration/conftest.py)."""
    return chdb_dir


@pytest.fixture
def ch_target(backfill_chdb_dir: Path) -> ClickHouseSettings:
    """Settings on a fresh random database of the folder's data directory."""
    return ClickHouseSettings(
        url=f"chdb://{backfill_chdb_dir}", database=f"b_{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture
def ch_client() -> Iterator[Callable[[ClickHouseSettings], Client]]:
    """``ch_client(settings)`` → a connected client on its database, closed after the test."""
    made: list[Client] = []

    def make(settings: ClickHouseSettings) -> Client:
        client = connect(settings, create=False)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
