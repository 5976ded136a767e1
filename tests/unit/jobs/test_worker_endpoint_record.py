"""The worker's dashboard endpoint record never stops a worker whose chdb directory is not
writable yet (the ClickHouse sink waits for it; alerting goes on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shinrai.dashboard_endpoint import endpoint_file
from shinrai.jobs.worker_dashboard import record_endpoint
from shinrai.settings import ClickHouseSettings, Settings

pytestmark = pytest.mark.unit


def _settings(chdb_dir: Path) -> Settings:
    return Settings(clickhouse=ClickHouseSettings(url=f"chdb://{chdb_dir}"))


def test_a_writable_directory_gets_the_record(tmp_path: Path) -> None:
    chdb_dir = tmp_path / "chdb"
    chdb_dir.mkdir()
    assert record_endpoint(_settings(chdb_dir), "http://127.0.0.1:1", login=False) == chdb_dir
    # Read as another process would (read_endpoint ignores this process's own record).
    record = json.loads(endpoint_file(chdb_dir).read_text(encoding="utf-8"))
    assert record["url"] == "http://127.0.0.1:1"


def test_an_unwritable_directory_is_skipped_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    # Any OSError (here: a path under a regular file) means no record, and no crash.
    assert record_endpoint(_settings(blocker / "chdb"), "http://127.0.0.1:1", login=False) is None
