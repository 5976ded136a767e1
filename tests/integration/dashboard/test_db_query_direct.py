"""`shinrai db query --sql` on an embedded ClickHouse directory: alone, and locked by another process.

Subprocesses on a private chdb directory (this pytest process keeps its own): with nobody
holding the directory the CLI opens it read-only itself; held by a process that records no
dashboard endpoint, the CLI says who holds it in one line instead of chdb's lock error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

HOLD = """
import sys, time, clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
client.query("SELECT 1")
print("holding", flush=True)
time.sleep(120)
"""


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shinrai", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_direct_and_locked(tmp_path: Path) -> None:
    chdb = tmp_path / "chdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINRAI_")}
    env.update({"PYTHONPATH": str(REPO_ROOT), "SHINRAI_CLICKHOUSE__URL": f"chdb://{chdb}"})
    migrated = _cli(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr

    tables = _cli(env, "db", "query", "--sql", "SHOW TABLES", "--format", "csv")
    assert tables.returncode == 0, tables.stderr
    names = tables.stdout.splitlines()
    assert names[0] == "name"
    assert {"clients", "sla_facts", "interactions"} <= set(names[1:])

    refused = _cli(env, "db", "query", "--sql", "TRUNCATE TABLE clients")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "Error: refused: read-only endpoint, TRUNCATE is not allowed "
        "(use DESC, DESCRIBE, EXISTS, EXPLAIN, SELECT, SHOW, WITH)"
    ]

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(chdb)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        locked = _cli(env, "db", "query", "--sql", "SELECT 1")
        assert locked.returncode == 1
        lines = locked.stderr.strip().splitlines()
        assert len(lines) == 1, locked.stderr
        assert f"is locked by process {holder.pid}" in lines[0]
        assert time.monotonic() - started < 60
    finally:
        holder.kill()  # our own child, by its handle
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
