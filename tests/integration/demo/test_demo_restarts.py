"""`shinrai demo` restarted again and again, run twice at once, and stopped with the broker gone.

Every run is a real process against the real broker: start -> events processed and alerts
printed -> Ctrl-C (SIGINT) -> exit within seconds -> start again on the same namespace, whose
topics, groups and database the next run resets under the previous run's group (the warm start
that froze). A second demo beside a running one must refuse in one line and touch nothing.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.integration.demo.demo_process import NOISE, SUMMARY, Proc, demo_env, free_port

pytestmark = pytest.mark.integration

CYCLES = 3
STOP_WITHIN_S = 12.0  # the demo's own last-resort deadline is 15 s: a stop must beat it
READY_S = 150.0


def _demo(bootstrap: str, root: Path, port: int, *extra: str) -> Proc:
    return Proc(["demo", "--port", str(port), "--keep-kafka", *extra], demo_env(bootstrap, root))


def test_demo_start_stop_start_cycles(kafka_bootstrap: str, tmp_path: Path) -> None:
    stops: list[float] = []
    for cycle in range(CYCLES):
        demo = _demo(kafka_bootstrap, tmp_path, free_port())
        try:
            demo.wait_for(r"^worker: caught up: \d+/\d+ historic events", READY_S)
            demo.wait_for(r"^ALERT ", READY_S)
            code, took = demo.stop(signal.SIGINT, timeout_s=STOP_WITHIN_S + 10)
        finally:
            demo.kill()
        stops.append(took)
        assert code == 0, demo.output[-4000:]
        assert took < STOP_WITHIN_S, f"cycle {cycle}: stopped {took:.1f} s after SIGINT"
        match = SUMMARY.search(demo.output)
        assert match is not None, demo.output[-4000:]
        history, _sent, _scheduled, facts, alerts = (int(g) for g in match.groups())
        assert history > 100
        assert facts > history // 2, f"cycle {cycle}: {facts} facts for {history} events"
        assert alerts > 0
        # Quiet: no traceback, no crash loop, no coordinator noise, no shutdown wait loop.
        for noise in NOISE:
            assert noise not in demo.output, f"cycle {cycle}: {noise!r} in\n{demo.output}"
    print(f"demo stop after SIGINT, per cycle: {[round(s, 1) for s in stops]} s")


@pytest.mark.parametrize(
    "starting_line",
    [r"^demo: resetting the demo namespace", r"^worker: migrating ClickHouse, starting"],
    ids=["during-reset", "during-worker-start"],
)
def test_sigint_while_starting_stops_at_once(
    kafka_bootstrap: str, tmp_path: Path, starting_line: str
) -> None:
    demo = _demo(kafka_bootstrap, tmp_path, free_port())
    try:
        demo.wait_for(starting_line, READY_S)
        code, took = demo.stop(signal.SIGINT, timeout_s=STOP_WITHIN_S + 10)
    finally:
        demo.kill()
    assert code == 0, demo.output
    assert took < STOP_WITHIN_S, f"stopped {took:.1f} s after SIGINT while starting"
    for noise in NOISE:
        assert noise not in demo.output, demo.output
    assert "still stopping" not in demo.output, demo.output  # stopped, not cut short
    # The next run starts cleanly after an interrupted one.
    demo = _demo(kafka_bootstrap, tmp_path, free_port(), "--duration", "20")
    try:
        demo.wait_for(r"^worker: caught up", READY_S)
        assert demo.wait(60) == 0, demo.output[-4000:]
    finally:
        demo.kill()
    assert SUMMARY.search(demo.output) is not None, demo.output[-4000:]


def test_second_demo_refuses_and_leaves_the_first_alone(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from kafka import KafkaAdminClient

    first_port, second_port = free_port(), free_port()
    first = _demo(kafka_bootstrap, tmp_path / "first", first_port)
    try:
        first.wait_for(r"^worker: caught up", READY_S)
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            before = {t for t in admin.list_topics() if t.endswith(".demo")}
            # Same namespace (topics *.demo on this broker), other directories: the topic lock.
            second = _demo(kafka_bootstrap, tmp_path / "second", second_port)
            began = time.monotonic()
            code = second.wait(60)
            took = time.monotonic() - began
            after = {t for t in admin.list_topics() if t.endswith(".demo")}
        finally:
            admin.close()
        assert code != 0
        assert took < 20, f"the second demo took {took:.1f} s to refuse"
        lines = [line for line in second.lines if line.strip()]
        assert len(lines) == 1, second.output
        assert f"pid {first.pid}" in lines[0], lines[0]
        assert f"port {first_port}" in lines[0], lines[0]
        assert "Traceback" not in second.output
        assert before
        assert after == before
        # The first run goes on: Ctrl-C still stops it cleanly, with its facts and alerts.
        first.wait_for(r"^ALERT ", READY_S)
        code, _took = first.stop(signal.SIGINT, timeout_s=STOP_WITHIN_S + 10)
    finally:
        first.kill()
    assert code == 0, first.output[-4000:]
    assert "not found" not in first.output.lower(), first.output[-4000:]
    match = SUMMARY.search(first.output)
    assert match is not None, first.output[-4000:]
    assert int(match.group(4)) > 0, first.output[-4000:]


def test_second_demo_on_the_same_data_directory_refuses(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Another broker address spelling would be another topic namespace: the data directory
    # (and its embedded ClickHouse) still belong to the first run.
    first_port = free_port()
    first = _demo(kafka_bootstrap, tmp_path, first_port)
    try:
        first.wait_for(r"^dashboard: ", READY_S)
        other = kafka_bootstrap.replace("127.0.0.1", "localhost")
        second = Proc(
            ["demo", "--port", str(free_port()), "--keep-kafka"], demo_env(other, tmp_path)
        )
        code = second.wait(60)
        lines = [line for line in second.lines if line.strip()]
        assert code != 0
        assert len(lines) == 1, second.output
        assert f"pid {first.pid}" in lines[0], second.output
        assert "data directory" in lines[0] or "ClickHouse" in lines[0], lines[0]
        code, _took = first.stop(signal.SIGINT, timeout_s=STOP_WITHIN_S + 10)
    finally:
        first.kill()
    assert code == 0, first.output[-4000:]
