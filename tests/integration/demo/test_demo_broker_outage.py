"""A demo whose broker goes away: ``--duration`` and SIGTERM are still honoured within seconds.

An orphaned ``shinrai demo --duration 40`` once outlived its duration and SIGTERM by two hours
after its broker was stopped under it: blocking client calls held the process (threads joined
at exit) and the signal only set a flag nobody looked at. Here a private broker (its own ports
and data, the shared jar cache) is stopped under a running demo, twice: once the duration must
end the run, once SIGTERM must.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shinrai.local_kafka import LocalKafka
from shinrai.settings import LocalKafkaSettings
from tests.integration.demo.demo_process import Proc, demo_env, free_port

pytestmark = pytest.mark.integration

READY_S = 150.0
EXIT_WITHIN_S = 20.0  # the demo's stop plus its 15 s last-resort deadline, with slack


@pytest.fixture
def private_broker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test only (stopping it must not disturb other tests)."""
    _ = kafka_bootstrap  # the shared broker is up: jars are cached, Java works
    broker = LocalKafka(
        LocalKafkaSettings(
            port=free_port(), controller_port=free_port(), heap="384m", start_timeout_s=90
        ),
        run_dir=tmp_path / "broker",
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _demo(broker: LocalKafka, root: Path, *extra: str) -> Proc:
    # Not the local broker of the demo's settings: it neither starts nor stops this one.
    return Proc(
        ["demo", "--port", str(free_port()), "--keep-kafka", *extra],
        demo_env(broker.address, root),
    )


def test_duration_and_sigterm_are_honoured_with_the_broker_gone(
    private_broker: LocalKafka, tmp_path: Path
) -> None:
    # 1. --duration (counted from the moment the dashboard is up): the run ends by itself
    # although its broker vanished mid-run.
    duration = 30.0
    demo = _demo(private_broker, tmp_path / "one", "--duration", str(duration))
    try:
        demo.wait_for(r"^dashboard: ", READY_S)
        began = time.monotonic()
        demo.wait_for(r"^worker: caught up", READY_S)
        private_broker.stop()
        left = duration - (time.monotonic() - began)
        demo.wait(max(left, 0) + EXIT_WITHIN_S)
    finally:
        demo.kill()
    overrun = time.monotonic() - began - duration
    assert overrun < EXIT_WITHIN_S, f"ran {overrun:.1f} s past --duration:\n{demo.output[-3000:]}"

    # 2. SIGTERM during the outage: out within seconds, whatever was in flight.
    private_broker.start()
    demo = _demo(private_broker, tmp_path / "two")
    try:
        demo.wait_for(r"^worker: caught up", READY_S)
        private_broker.stop()
        time.sleep(5)  # the clients notice and start retrying
        _code, took = demo.stop(signal.SIGTERM, timeout_s=EXIT_WITHIN_S + 10)
    finally:
        demo.kill()
    print(f"--duration overrun {overrun:.1f} s; exit {took:.1f} s after SIGTERM (broker down)")
    print("\n".join(line for line in demo.lines if re.search(r"^demo: |stop_step", line)))
    assert took < EXIT_WITHIN_S, f"{took:.1f} s after SIGTERM:\n{demo.output[-3000:]}"
    assert "demo: stopping" in demo.output
