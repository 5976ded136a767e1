"""The README's main job (`shinrai demo`) runs end to end against the real broker.

It runs in a subprocess (chdb allows one data directory per process) for a bounded time and
must: exit 0, write facts to its embedded ClickHouse, page its signed loopback alert hook, and
serve the dashboard while it runs.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SUMMARY = re.compile(
    r"demo: (\d+) historic \+ (\d+)/(\d+) scheduled events; (\d+) facts in ClickHouse; "
    r"(\d+) alerts received"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_runs_the_whole_pipeline(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "SHINRAI_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "SHINRAI_CLICKHOUSE__URL": f"chdb://{tmp_path / 'chdb'}",
        "SHINRAI_WORKER__DATA_DIR": str(tmp_path / "worker"),
        "SHINRAI_WORKER__METRICS_PORT": "0",
    }
    cmd = [sys.executable, "-m", "shinrai", "demo", "--duration", "40", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    page = ""
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(1)
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert "<html" in page.lower(), "the dashboard did not answer while the demo ran"
    assert "Asia/Tokyo" in page  # the demo directory's calendar zone: the team's time
    match = SUMMARY.search(output)
    assert match is not None, output[-3000:]
    history, _sent, _scheduled, facts, alerts = (int(g) for g in match.groups())
    assert history > 100
    assert facts > history // 2  # the worker turned the log into facts in ClickHouse
    assert alerts > 0  # live warnings/breaches reached the signed loopback hook
