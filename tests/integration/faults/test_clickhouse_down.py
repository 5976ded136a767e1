"""Issue 17.5 and 17.8: the worker starts and keeps alerting without ClickHouse, and catches up.

``shinrai worker`` runs as a subprocess (SHINRAI_* variables only, its own chdb directory: a
directory belongs to one process) against the real broker and a signed loopback webhook:

* ClickHouse server unreachable (a closed port) for the whole run: the worker starts, every
  alert of the workload is delivered exactly once, ``shinrai_sink_up{sink="clickhouse"}`` is 0,
  one log line says so (not one per retry), SIGTERM exits 0 with no traceback.
* The chdb directory unwritable at start (the engine cannot open it), then writable: alerts are
  delivered meanwhile and the sink catches up with every fact; then unwritable again mid-stream
  for ``OUTAGE_S`` (45 s when tried by hand; scaled down here: the runner's backoff is capped at
  10 s, so a longer outage tests nothing more), then writable: ClickHouse and the delivered
  alerts equal a replay of the events (the oracle), and each recovery time is printed.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
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
from tests.integration.pipeline.test_crash_recovery import free_port
from tests.integration.pipeline.test_oracle import MAX_ALERT_AGE_S, WorkerProcess, _worker_env

from .harness import (
    ALERTS,
    CLICKHOUSE,
    PROCESSOR,
    assert_clean_log,
    assert_equal_to_replay,
    metric,
    unwritable,
    verdict,
    wait_for_groups,
)

pytestmark = pytest.mark.integration

OUTAGE_S = 12.0
HOLD_S = 12.0  # history read on a live partition holds its clients for catch_up_gap_s (10 s)
# The second test sends its history in two parts, in event-time order (as `shinrai produce`
# does) with the outage between them; a pause longer than catch_up_gap_s would end the holds and
# make the second part older than its clients' processed time (dead-lettered, as documented).
LONG_GAP_S = 30.0
UP = ("shinrai_sink_up", {"sink": "clickhouse"})


def _setup(p: Pipeline, tmp: Path, chdb_url: str) -> tuple[dict[str, str], int]:
    alerts = p.settings.alerts.model_copy(update={"max_age_s": MAX_ALERT_AGE_S})
    p.settings = p.settings.model_copy(update={"alerts": alerts})
    ensure_topics(p.settings.kafka, ALL_TOPICS, suffix=p.suffix)
    port = free_port()
    env = _worker_env(p, tmp / "chdb-worker")
    env.update({"SHINRAI_CLICKHOUSE__URL": chdb_url, "SHINRAI_WORKER__METRICS_PORT": str(port)})
    return env, port


async def _sink_up_is(port: int, value: float, proc: WorkerProcess, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while await metric(port, *UP) != value:
        assert proc.proc is not None
        assert proc.proc.poll() is None, proc.tail()
        assert time.monotonic() < deadline, f"sink_up never {value}\n{proc.tail()}"
        await asyncio.sleep(0.3)


async def _send(p: Pipeline, records: list[tuple[bytes | None, bytes | None, str]]) -> None:
    await asyncio.to_thread(
        produce, p.settings.kafka.bootstrap, p.topic("interactions.v1"), records
    )


async def _stop(proc: WorkerProcess) -> str:
    began = time.monotonic()
    code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 60)
    text = proc.log_path.read_text(errors="replace")
    assert code == 0, text[-3000:]
    print(f"SIGTERM to exit: {time.monotonic() - began:.1f} s")
    return text


async def test_worker_alerts_while_the_clickhouse_server_is_unreachable(
    pipeline: Pipeline, processes: list[WorkerProcess], tmp_path: Path
) -> None:
    p = pipeline
    closed = free_port()  # nothing listens there
    env, port = await asyncio.to_thread(_setup, p, tmp_path, f"http://127.0.0.1:{closed}")
    wl = make_workload(uuid.uuid4().hex[:6], now() - HISTORY_ENDS, seed=17, clients=12, threads=8)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    processes.append(worker)
    began = time.monotonic()
    worker.start()
    await _sink_up_is(port, 0, worker)
    print(f"worker up without ClickHouse in {time.monotonic() - began:.1f} s")

    await _send(p, as_raw(wl.policies) + as_raw(wl.history))
    await wait_for_groups(p.settings, PROCESSOR | ALERTS, 90, "the processor and the alerts")
    await asyncio.sleep(HOLD_S)
    took = await wait_for_groups(p.settings, PROCESSOR | ALERTS, 60, "the last alerts")
    until = now()
    assert await metric(port, *UP) == 0
    print(f"alerts caught up {HOLD_S + took:.1f} s after the hold began")

    _, v = await asyncio.to_thread(
        verdict, "server unreachable", p.settings, until, [], p.receiver.requests
    )
    print(v.counts())
    assert v.alerts_expected > 20
    assert (v.alerts_lost, v.alerts_extra, v.alerts_duplicated) == ([], [], [])
    assert v.alerts_redelivered == 0  # no crash: every alert acknowledged once
    assert v.dead_unexpected == []
    assert len(v.lost) == v.expected_facts  # nothing reached ClickHouse: it never answered

    text = await _stop(worker)
    assert text.count("clickhouse_unavailable") == 1, text[-3000:]  # a state change, not a retry
    assert f"127.0.0.1:{closed}" in text  # the line names the target
    assert_clean_log(text)


async def test_chdb_unwritable_at_start_and_mid_stream_then_catches_up(
    pipeline: Pipeline, processes: list[WorkerProcess], tmp_path: Path
) -> None:
    p = pipeline
    chdb = tmp_path / "chdb-worker"
    chdb.mkdir()
    env, port = await asyncio.to_thread(_setup, p, tmp_path, f"chdb://{chdb}")
    env["SHINRAI_WORKER__CATCH_UP_GAP_S"] = str(LONG_GAP_S)
    wl = make_workload(uuid.uuid4().hex[:6], now() - HISTORY_ENDS, seed=17, clients=12, threads=8)
    half = len(wl.history) // 2
    first = [*wl.policies, *wl.history[:half]]
    second = wl.history[half:]
    worker = WorkerProcess(env, tmp_path / "worker.log")
    processes.append(worker)

    with unwritable(chdb):  # chdb cannot even open its directory
        worker.start()
        await _sink_up_is(port, 0, worker)
        await _send(p, as_raw(first))
        await wait_for_groups(p.settings, PROCESSOR | ALERTS, 90, "alerts with chdb locked")
        assert await metric(port, *UP) == 0
        delivered_while_down = len(p.receiver.acked())
    assert delivered_while_down > 10
    back = await wait_for_groups(p.settings, CLICKHOUSE, 60, "ClickHouse catching up")
    print(f"chdb writable after being locked at start: ClickHouse caught up in {back:.1f} s")
    await _sink_up_is(port, 1, worker, within=10)

    with unwritable(chdb):  # now mid-stream: every insert fails
        await _send(p, as_raw(second))
        sent = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        assert await metric(port, *UP) == 0
        await wait_for_groups(p.settings, PROCESSOR, 60, "the processor with chdb unwritable")
    back = await wait_for_groups(p.settings, CLICKHOUSE, 60, "ClickHouse catching up again")
    print(f"after a {OUTAGE_S:g} s outage mid-stream: ClickHouse caught up in {back:.1f} s")
    await asyncio.sleep(max(0.0, sent + LONG_GAP_S + 2 - time.monotonic()))  # the holds end
    await drained(p.settings, within=60)
    until = now()
    text = await _stop(worker)

    (rows,) = await asyncio.to_thread(query_chdb_in_subprocess, chdb, facts_rows_query("oracle"))
    oracle, v = await asyncio.to_thread(
        verdict, "chdb unwritable", p.settings, until, live_facts(rows), p.receiver.requests
    )
    assert_equal_to_replay("chdb unwritable at start and mid-stream", oracle, v, min_alerts=20)
    assert v.alerts_redelivered == 0
    assert text.count("clickhouse_unavailable") == 2, text[-3000:]
    assert text.count("clickhouse_available") == 2, text[-3000:]
    assert_clean_log(text)
