"""Issue 17.8: brokers killed under load, on clusters started from the local broker's jars.

A seeded history (``tests/integration/pipeline/oracle.py``) is on the interactions topic before
``shinrai worker`` (a subprocess, its own chdb directory) starts; while the worker reads that
backlog (under load: a quarter of its facts written):

* ``one_broker_killed_and_restarted``: the only broker is killed with SIGKILL and restarted
  ``DOWN_S`` later (the worker's consumers and producers wait for it);
* ``a_broker_and_the_worker_killed``: on a three-node KRaft cluster (replication 3,
  ``min.insync.replicas`` 2, ``acks=all``), one broker is killed for good and, a moment later,
  the worker too; a new worker takes over on the two brokers left.

Afterwards ClickHouse and the acknowledged alerts must equal the oracle's replay of what the
worker read: nothing lost, nothing extra, no alert under two keys. The recovery time (from the
restart to every group caught up) is printed.

Why a backlog and not a stream produced through the fault: history trickled into a live
partition holds each client until none came for ``catch_up_gap_s``; a fault that stalls a
client's history for longer than that ends the hold, and what arrives after is older than the
client's processed time (dead-lettered, as documented). A backlog is read in event time
whatever stalls it. Worker kill -9 during live traffic: ``pipeline/test_crash_recovery.py``.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.topics import ALL_TOPICS
from shinrai.topic_admin import ensure_topics
from tests.integration.pipeline.oracle import (
    HISTORY_ENDS,
    as_raw,
    drained,
    facts_rows_query,
    live_facts,
    make_workload,
    produce,
)
from tests.integration.pipeline.scenario import Pipeline, now, query_chdb_in_subprocess
from tests.integration.pipeline.test_oracle import (
    MAX_ALERT_AGE_S,
    FactCounter,
    WorkerProcess,
    _worker_env,
)

from .cluster import KraftCluster
from .harness import assert_clean_log, assert_equal_to_replay, verdict

pytestmark = [
    pytest.mark.integration,
    # kafka-python leaves a socket unclosed when a connection to a killed broker is refused
    # (its leak, seen from the test's own admin and consumer clients, not the worker's).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

DOWN_S = 5.0
FENCED_S = 5.0
HOLD_S = 12.0  # the live tail of a backlog holds its clients for catch_up_gap_s (10 s)


@pytest.fixture(autouse=True)
def _collect_leaked_sockets() -> Iterator[None]:
    """Collect kafka-python's leaked sockets inside this test (and the filters above), not at
    the end of the session where they would be reported as errors."""
    yield
    gc.collect()


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KraftCluster]:
    made = KraftCluster(tmp_path / "kafka", nodes=request.param)
    try:
        print(f"\n{request.param}-node KRaft cluster up in {made.start():.1f} s")
        yield made
    finally:
        made.stop()


async def _wait(predicate_s: str, check: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):  # type: ignore[arg-type]
        assert time.monotonic() < deadline, f"timed out waiting for {predicate_s}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("cluster", "fault"),
    [(1, "one_broker_killed_and_restarted"), (3, "a_broker_and_the_worker_killed")],
    indirect=["cluster"],
)
async def test_brokers_killed_under_load_equal_a_replay(
    cluster: KraftCluster,
    fault: str,
    pipeline: Pipeline,
    processes: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    p = pipeline
    kafka = p.settings.kafka.model_copy(
        update={"bootstrap": cluster.bootstrap, "replication_factor": cluster.replication}
    )
    alerts = p.settings.alerts.model_copy(update={"max_age_s": MAX_ALERT_AGE_S})
    p.settings = p.settings.model_copy(update={"kafka": kafka, "alerts": alerts})
    await asyncio.to_thread(ensure_topics, kafka, ALL_TOPICS, suffix=p.suffix)
    chdb = tmp_path / "chdb-worker"
    env = _worker_env(p, chdb)
    env["SHINRAI_KAFKA__REPLICATION_FACTOR"] = str(cluster.replication)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    processes.append(worker)

    wl = make_workload(uuid.uuid4().hex[:6], now() - HISTORY_ENDS, seed=9, clients=30, threads=12)
    topic, facts_topic = p.topic("interactions.v1"), p.topic("sla-facts.v1")
    await asyncio.to_thread(
        produce, cluster.bootstrap, topic, as_raw(wl.policies) + as_raw(wl.history)
    )
    worker.start()

    # Under load: a quarter of the facts written, the rest of the backlog still to read. Facts,
    # not records: a backlog's facts go out in fact_batch records.
    counter = FactCounter(cluster.bootstrap, facts_topic)
    try:

        def some_facts() -> bool:
            return counter.count() >= len(wl.history) // 4

        await _wait("the first facts", some_facts, 90)
        at_fault = await asyncio.to_thread(counter.count_to_end)
    finally:
        counter.close()
    if fault == "one_broker_killed_and_restarted":
        cluster.kill(1)
        await asyncio.sleep(DOWN_S)
        await asyncio.to_thread(cluster.restart, 1)
        restarted = time.monotonic()
    else:
        cluster.kill(2)
        await asyncio.sleep(1.0)
        assert worker.stop(signal.SIGKILL, 30) == -signal.SIGKILL
        # The new worker starts once the dead broker is fenced (broker.session.timeout.ms 3 s):
        # before that the metadata may still name it the controller, and the worker's topic
        # check at start fails (one line, exit 1) and is left to the orchestrator's restart.
        await asyncio.sleep(FENCED_S)  # before asking kafka-python anything (see wait_brokers)
        await asyncio.to_thread(cluster.wait_brokers, 2, 30)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        processes.append(worker)
        worker.start()
        restarted = time.monotonic()
        # The test's own clients ask only the live brokers from here on.
        kafka = kafka.model_copy(update={"bootstrap": cluster.live_bootstrap})
        p.settings = p.settings.model_copy(update={"kafka": kafka})
    try:
        await drained(p.settings, within=90)
        recovery = time.monotonic() - restarted
        await asyncio.sleep(HOLD_S)
        await drained(p.settings, within=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.tail()}") from exc
    print(f"{fault}: every group caught up {recovery:.1f} s after the restart "
          f"(facts on the topic at the fault: {at_fault})")  # fmt: skip
    until = now()
    assert worker.stop(signal.SIGTERM, 60) == 0, worker.tail()

    (rows,) = await asyncio.to_thread(query_chdb_in_subprocess, chdb, facts_rows_query("oracle"))
    oracle, v = await asyncio.to_thread(
        verdict, fault, p.settings, until, live_facts(rows), p.receiver.requests
    )
    assert_equal_to_replay(fault, oracle, v, min_alerts=20)
    assert at_fault < v.expected_facts, "the fault came after everything was read"
    if fault == "one_broker_killed_and_restarted":
        assert_clean_log(worker.log_path.read_text(errors="replace"))
