"""``shinrai worker`` as a subprocess, killed with SIGKILL mid-stream and restarted.

What must hold afterwards (at least once in, exactly once in effect):
- no lost fact: ClickHouse ``sla_facts FINAL`` holds exactly the facts of the replayed log;
- no duplicate: FINAL counts equal the expected counts (ReplacingMergeTree + dedup tokens);
- no missed alert: every expected alert reached the receiver with a 2xx;
- a delivery repeated (the receiver answers 503 to every first attempt, and the kill can cut
  deliveries in flight) carries the same Idempotency-Key every time;
- SIGTERM shuts the restarted worker down cleanly (exit status 0) after the sinks caught up.

The worker gets its own chdb directory: a directory belongs to one process, and this pytest
process may hold another one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest

from engine.state import Event
from schemas.alerts import Alert
from schemas.base import encode
from schemas.events import CallOutcome, Direction
from schemas.facts import Fact
from tests.builders import inbound_email, phone_call, policy_event
from tests.integration.alerts.harness import SECRET, Action, Received, Respond
from tests.shared_data import REPO_ROOT

from .scenario import (
    Pipeline,
    expected_alerts,
    expected_facts,
    group_caught_up,
    now,
    query_chdb_in_subprocess,
    read_topic,
    wait_until,
)

pytestmark = pytest.mark.integration

CLIENTS = 12
SHINRAI = REPO_ROOT / ".venv" / "bin" / "shinrai"


def first_attempt_fails(_req: Received, seen: int) -> Action:
    """503 to the first request of every key, 200 to the rest: every delivery repeats."""
    return Respond(503) if seen == 0 else Respond(200)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class WorkerProcess:
    """``shinrai worker`` with SHINRAI_* variables only, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(SHINRAI), "worker"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def worker_env(p: Pipeline, chdb: Path, metrics_port: int) -> dict[str, str]:
    s = p.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINRAI_")}
    env.update(
        {
            "SHINRAI_KAFKA__BOOTSTRAP": s.kafka.bootstrap,
            "SHINRAI_KAFKA__TOPIC_PARTITIONS": str(s.kafka.topic_partitions),
            "SHINRAI_CLICKHOUSE__URL": f"chdb://{chdb}",
            "SHINRAI_CLICKHOUSE__DATABASE": "crash",
            "SHINRAI_CLICKHOUSE__BATCH_AGE_S": "0.2",
            "SHINRAI_ALERTS__WEBHOOK_URL": s.alerts.webhook_url or "",
            "SHINRAI_ALERTS__SIGNING_SECRET": SECRET,
            "SHINRAI_ALERTS__MAX_AGE_S": "600",
            "SHINRAI_WORKER__APP_ID": s.worker.app_id,
            "SHINRAI_WORKER__DATA_DIR": str(s.worker.data_dir),
            "SHINRAI_WORKER__STORE": "rocksdb://",
            "SHINRAI_WORKER__TOPIC_SUFFIX": s.worker.topic_suffix,
            "SHINRAI_WORKER__TICK_INTERVAL_S": "0.1",
            "SHINRAI_WORKER__METRICS_PORT": str(metrics_port),
            "SHINRAI_WORKER__SESSION_TIMEOUT_S": "6",
            "SHINRAI_WORKER__STATE_MERGE_ITEMS": str(s.worker.state_merge_items),
            "SHINRAI_WORKER__SINK_COMMIT_INTERVAL_S": "0.2",
            "SHINRAI_WORKER__SHUTDOWN_TIMEOUT_S": "10",
            "SHINRAI_LOG_LEVEL": "INFO",
        }
    )
    return env


@pytest.fixture
def processes() -> Iterator[list[WorkerProcess]]:
    made: list[WorkerProcess] = []
    yield made
    for proc in made:
        proc.kill()  # only our own children, by their handle


def missed_call(client: str, at: datetime) -> Event:
    """A missed inbound call: a speed-of-answer fact and a callback obligation."""
    return phone_call(client, at, Direction.INBOUND, CallOutcome.MISSED, wait=30)


def explain_missing(p: Pipeline, expected: list[Fact], alerts: list[Alert]) -> str:
    """Which alerts never arrived, and whether their facts/alerts ever reached Kafka."""
    acked = p.receiver.acked()
    missing = [a for a in alerts if p.delivery_key(a) not in acked]
    client = missing[0].client_id
    bootstrap = p.settings.kafka.bootstrap
    facts = [json.loads(v or b"{}")["kind"] for k, v in read_topic(bootstrap, p.topic("sla-facts.v1"))
             if k == client.encode()]  # fmt: skip
    sent = {
        json.loads(v or b"{}")["alert_id"]
        for _, v in read_topic(bootstrap, p.topic("sla-alerts.v1"))
    }
    return (
        f"{len(missing)} alerts never acknowledged, e.g. client {client}: "
        f"{[(a.level.value, a.alert_id in sent) for a in missing if a.client_id == client]} "
        f"(level, on the alerts topic); expected facts "
        f"{[f.kind.value for f in expected if f.client_id == client]}, facts topic {facts}"
    )


async def metrics_up(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=1)).is_success
    except httpx.HTTPError:
        return False


async def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(
    pipeline: Pipeline, processes: list[WorkerProcess], tmp_path: Path
) -> None:
    p = pipeline
    p.receiver.plan = first_attempt_fails
    port = free_port()
    env = worker_env(p, tmp_path / "chdb-worker", port)
    log_path = tmp_path / "worker.log"

    async def started(proc: WorkerProcess) -> None:
        deadline = time.monotonic() + 60
        while not await metrics_up(port):
            assert proc.proc is not None
            assert proc.proc.poll() is None, proc.log_tail()
            assert time.monotonic() < deadline, proc.log_tail()
            await asyncio.sleep(0.2)

    first = WorkerProcess(env, log_path)
    processes.append(first)
    first.start()
    await started(first)

    # The log: per client a policy, a late inbound mail and a late missed call, both already
    # past their 1-minute deadline, so every warning and breach fires as soon as processed.
    run = uuid.uuid4().hex[:6]
    t = now()
    per_client = [
        (
            policy_event(f"c{i}-{run}", t - timedelta(seconds=300)),
            inbound_email(f"c{i}-{run}", t - timedelta(seconds=250)),
            missed_call(f"c{i}-{run}", t - timedelta(seconds=240)),
        )
        for i in range(CLIENTS)
    ]
    events = [e for group in per_client for e in group]
    topic = p.topic("interactions.v1")

    def produce_slowly() -> None:
        for group in per_client:  # one client every 400 ms: the kill lands mid-stream
            p.produce_raw(topic, [(e.key, encode(e)) for e in group])
            time.sleep(0.4)

    producer = threading.Thread(target=produce_slowly, name="slow-producer")
    producer.start()
    try:
        await wait_until(lambda: sum(p.receiver.acked().values()) >= 8, 60, "first deliveries")
        first.proc.kill()  # type: ignore[union-attr]  # SIGKILL: no flush, no commit
        assert first.wait(30) == -signal.SIGKILL
        acked_before_restart = sum(p.receiver.acked().values())

        second = WorkerProcess(env, log_path)
        processes.append(second)
        restarted = time.monotonic()
        second.start()
        await started(second)
    finally:
        await asyncio.to_thread(producer.join, 60)

    expected = expected_facts(events, p.settings, until=now())
    alerts = expected_alerts(expected)
    keys = {p.delivery_key(a) for a in alerts}
    try:
        await wait_until(
            lambda: keys <= set(p.receiver.acked()), 60, "every expected alert acknowledged", 0.2
        )
    except AssertionError as exc:
        raise AssertionError(explain_missing(p, expected, alerts)) from exc
    bootstrap = p.settings.kafka.bootstrap
    sink_group = f"{p.settings.worker.app_id}-sink-clickhouse"
    sink_topics = [p.topic("sla-facts.v1"), p.topic("interactions.accepted.v1")]
    deadline = time.monotonic() + 60
    while not await asyncio.to_thread(group_caught_up, bootstrap, sink_group, sink_topics):
        assert time.monotonic() < deadline, "the ClickHouse runner did not catch up"
        await asyncio.sleep(0.5)

    print(f"\nkill -9 mid-stream: every alert acknowledged and ClickHouse caught up "
          f"{time.monotonic() - restarted:.1f} s after the restart")  # fmt: skip
    second.signal(signal.SIGTERM)
    stopped = time.monotonic()
    code = await asyncio.to_thread(second.wait, 60)
    assert code == 0, second.log_tail()
    assert time.monotonic() - stopped < 30

    rows, interactions, raw_facts = query_chdb_in_subprocess(
        tmp_path / "chdb-worker",
        "SELECT fact_id, kind FROM crash.sla_facts FINAL ORDER BY fact_id",
        "SELECT count() FROM crash.interactions FINAL",
        "SELECT count() FROM crash.sla_facts",
    )
    got = Counter((fid, kind) for fid, kind in rows)
    want = Counter((f.fact_id, f.kind.value) for f in expected)
    assert got == want  # nothing lost, nothing doubled
    assert int(interactions[0][0]) == 2 * CLIENTS
    assert int(raw_facts[0][0]) >= len(expected)

    # Alerts: each delivered, and every request for one alert carried the same key.
    keys_by_alert: dict[str, set[str]] = defaultdict(set)
    for req in p.receiver.requests:
        assert req.signature_error is None
        keys_by_alert[json.loads(req.body)["alert_id"]].add(req.key)
    assert set(keys_by_alert) == {a.alert_id for a in alerts}
    for alert in alerts:
        assert keys_by_alert[alert.alert_id] == {p.delivery_key(alert)}
    assert all(n >= 2 for n in p.receiver.received().values())  # the 503 made each repeat
    assert acked_before_restart < len(keys)  # the kill really came mid-stream
