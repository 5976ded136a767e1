"""Two ``shinrai worker`` processes on one data directory: the second refuses, naming the first.

Both are real processes on the real broker (RocksDB and chdb allow one process per directory);
the second must stop in seconds with one ``Error:`` line naming the running worker's pid and
metrics port, before it creates a topic or touches the database, and the first keeps running
and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path

import pytest

from tests.integration.demo.demo_process import Proc, demo_env

pytestmark = pytest.mark.integration


def test_a_second_worker_on_the_same_data_directory_refuses(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    env = demo_env(
        kafka_bootstrap,
        tmp_path,
        SHINRAI_WORKER__APP_ID=f"lock-{run}",
        SHINRAI_WORKER__TOPIC_SUFFIX=f".lock-{run}",
        SHINRAI_WORKER__RUN_ALERT_SINK="false",
    )
    first = Proc(["worker"], env)
    try:
        line = first.wait_for(r"metrics_listening", 120)
        port_match = re.search(r"port=(\d+)", line)
        assert port_match is not None, line
        port = int(port_match.group(1))
        # Another suffix, same directories: the data directory and its chdb are the first's.
        second = Proc(["worker"], {**env, "SHINRAI_WORKER__TOPIC_SUFFIX": f".other-{run}"})
        code = second.wait(60)
        errors = [line for line in second.lines if line.startswith("Error:")]
        assert code != 0, second.output
        assert len(errors) == 1, second.output
        assert f"pid {first.pid}" in errors[0], errors[0]
        assert f"port {port}" in errors[0], errors[0]
        assert "Traceback" not in second.output
        assert "topics_ready" not in second.output  # refused before touching anything
        assert first.proc.poll() is None  # the first one runs on
        code, took = first.stop(signal.SIGTERM, timeout_s=40)
    finally:
        first.kill()
    assert code == 0, first.output[-3000:]
    print(f"first worker stopped {took:.1f} s after SIGTERM")
