"""The endpoint record a worker leaves in its chdb directory, and who holds the directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shinrai.dashboard_endpoint import (
    Endpoint,
    endpoint_file,
    holder_pid,
    read_endpoint,
    remove_endpoint,
    write_endpoint,
)

pytestmark = pytest.mark.unit


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_a_live_other_process_is_found_a_dead_one_or_ourselves_is_not(tmp_path: Path) -> None:
    parent = os.getppid()  # alive, and not this process
    live = Endpoint(pid=parent, url="http://127.0.0.1:8088", database="shinrai", login=False)
    write_endpoint(tmp_path / "chdb", live)
    assert json.loads(endpoint_file(tmp_path / "chdb").read_text())["pid"] == parent
    assert read_endpoint(tmp_path / "chdb") == live
    write_endpoint(tmp_path / "chdb", Endpoint(_dead_pid(), "http://x", "shinrai", True))
    assert read_endpoint(tmp_path / "chdb") is None
    write_endpoint(tmp_path / "chdb", Endpoint(os.getpid(), "http://x", "shinrai", True))
    assert read_endpoint(tmp_path / "chdb") is None
    endpoint_file(tmp_path / "chdb").write_text("{not json")
    assert read_endpoint(tmp_path / "chdb") is None
    assert read_endpoint(tmp_path / "missing") is None


def test_remove_leaves_a_successors_record(tmp_path: Path) -> None:
    write_endpoint(tmp_path, Endpoint(4242, "http://a", "d", False))
    remove_endpoint(tmp_path, 1111)
    assert endpoint_file(tmp_path).exists()
    remove_endpoint(tmp_path, 4242)
    assert not endpoint_file(tmp_path).exists()
    remove_endpoint(tmp_path, 4242)  # idempotent


def test_holder_from_chdb_status_file(tmp_path: Path) -> None:
    status = tmp_path / "status"
    assert holder_pid(tmp_path) is None
    status.write_text(f"PID: {os.getppid()}\nStarted at: 2026-12-07 12:31:38\nRevision: 1\n")
    assert holder_pid(tmp_path) == os.getppid()
    status.write_text(f"PID: {_dead_pid()}\n")
    assert holder_pid(tmp_path) is None
    status.write_text(f"PID: {os.getpid()}\n")
    assert holder_pid(tmp_path) is None
    status.write_text("garbage")
    assert holder_pid(tmp_path) is None
