"""Worker memory and restart recovery with many open obligations.

Run: ``.venv/bin/python -m bench.recovery [--quick] [--open N]`` (or through ``bench.run``).

The state is built with the pure engine in this process (``Engine.apply`` of a 24x7 policy with
a 30-day calendar-time deadline, then ten inbound emails in distinct threads per client, each
opening an obligation that stays open for the whole run; one client built by the engine is the
template of the others, see ``build_states``) and produced as
``ClientState`` bytes to the Faust changelog topic of the ``sla-state`` table
(``<app_id>-sla-state-changelog``, keyed and partitioned like the interactions topic). That is
exactly what a worker restarted on an empty disk finds; pushing N events through the live
processor instead would take far longer than the measurement (see ``bench.pipeline``).

Then, with private topics and its own RocksDB/chdb directories:

* **cold**: a worker child starts on an empty data directory, recovers the table from the
  changelog and rebuilds the deadline index: time from ``Worker.start()`` (child's clock) to
  ``index_rebuilds >= 1``; the child's RSS (VmRSS) holding the state is read after that;
* **warm**: the worker is stopped (SIGTERM) and a new one started on the same directory (local
  RocksDB, the usual restart): the same timing;
* **crash** (``--crash`` only): the warm worker is killed (SIGKILL, it cannot leave its
  consumer group) and a new one started on the same directory: the same timing. The new member
  waits for the group to drop the dead one (``worker.session_timeout_s``, 10 s here) unless
  the consumers use static membership (Faust ``consumer_group_instance_id``, env
  ``CONSUMER_GROUP_INSTANCE_ID``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.core import Engine
from engine.ids import obligation_id
from engine.state import ClientState
from schemas.policies import CalendarDuration, SlaPolicy
from shinrai.settings import Settings
from tests.builders import policy_event

THIRTY_DAYS = SlaPolicy(
    policy_id="thirty-days",
    first_response=CalendarDuration(minutes=30 * 24 * 60),
    follow_up=CalendarDuration(minutes=30 * 24 * 60),
    silence_business_days=None,
)


def _client(n: int) -> str:
    return f"open-{n:07d}"  # fixed width: every client's state bytes have the same layout


def engine_state(engine: Engine, client: str, now: datetime, per_client: int) -> bytes:
    """``client``'s ClientState bytes built by the engine: the policy, then ``per_client``
    inbound emails in distinct threads (each opens an obligation), advanced to ``now``."""
    from bench.pipeline import bench_inbound_email

    policy = policy_event(client, now - timedelta(hours=1), THIRTY_DAYS, event_id=f"pol-{client}")
    state, _ = engine.apply(None, policy)
    opened = now - timedelta(minutes=1)
    for t in range(per_client):
        state, _ = engine.apply(state, bench_inbound_email(client, opened, f"t{t}"))
    state, _ = engine.advance(state, now)
    return state.to_bytes()


def build_states(
    clients: int, per_client: int, lateness_s: float, *, check: int = 3
) -> list[tuple[bytes, bytes]]:
    """(client key, ClientState bytes) with ``per_client`` open obligations each.

    The engine builds one client's state (a template); every other client's bytes are the
    template with the client id and the obligation ids (``engine.ids.obligation_id``) replaced,
    which is what the engine produces for that client (same instants, same layout), ~100x
    faster. ``check`` clients spread over the range are also built by the engine and must be
    byte-identical to their template copies.
    """
    engine = Engine(allowed_lateness=timedelta(seconds=lateness_s))
    now = datetime.now(UTC)
    name0 = _client(0)
    template = engine_state(engine, name0, now, per_client)
    threads = [
        (ob.thread, ob.obligation_id) for ob in ClientState.from_bytes(template).open.values()
    ]
    assert len(threads) == per_client
    out: list[tuple[bytes, bytes]] = []
    for c in range(clients):
        client = _client(c)
        raw = template.replace(name0.encode(), client.encode())
        for thread, oid in threads:
            new_id = obligation_id(client, thread, f"in-{client}-{thread}")
            raw = raw.replace(oid.encode(), new_id.encode())
        out.append((client.encode(), raw))
    for c in {0, clients - 1, *range(0, clients, max(1, clients // max(1, check)))}:
        if out[c][1] != engine_state(engine, _client(c), now, per_client):
            raise AssertionError(f"template copy of {_client(c)} differs from the engine's state")
    return out


async def _run(open_obligations: int, per_client: int, crash: bool) -> dict[str, float]:
    from bench.pipeline import WorkerProcess, create_topics, delete_topics, new_spec, produce_all
    from schemas.topics import TopicSpec
    from shinrai.topic_admin import ensure_topics
    from streams.processor import STATE_TABLE

    kafka = Settings().kafka
    clients = max(1, open_obligations // per_client)
    root = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    spec = new_spec(kafka, root, "recovery")
    settings = spec.settings()
    started = time.perf_counter()
    states = build_states(clients, per_client, settings.worker.allowed_lateness_s)
    build_s = time.perf_counter() - started
    await asyncio.to_thread(create_topics, spec)
    changelog = TopicSpec(
        name=f"{spec.app_id}-{STATE_TABLE}-changelog", description="bench", key="client_id",
        cleanup_policy="compact", retention_ms=None, partitions=spec.partitions,
    )  # fmt: skip
    await asyncio.to_thread(ensure_topics, settings.kafka, [changelog])
    result: dict[str, float] = {
        "open_obligations_built": float(clients * per_client),
        "clients": float(clients),
        "state_bytes_total_mb": sum(len(v) for _, v in states) / 2**20,
        "engine_build_s": build_s,
    }
    started = time.perf_counter()
    await produce_all(kafka, changelog.name, states)
    result["produce_s"] = time.perf_counter() - started
    del states
    try:
        phases = ("cold", "warm", "crash") if crash else ("cold", "warm")
        for phase in phases:
            result[f"loadavg_1m_before_{phase}"] = os.getloadavg()[0]  # 2 shared cores here
            worker = WorkerProcess(spec, root / f"worker-{phase}.log")
            await worker.start()
            try:
                begin = await worker.first(lambda s: s.get("phase") == "starting", 60, "start")
                rebuilt = await worker.first(
                    lambda s: s.get("index_rebuilds", 0) >= 1,
                    120 + clients / 500,
                    f"the {phase} recovery",
                )
                await asyncio.sleep(0.5)  # the monitor's next lines: memory after the rebuild
                last = worker.last
                result[f"recovery_{phase}_s"] = rebuilt["t"] - begin["t"]
                result[f"recovery_{phase}_cpu_s"] = rebuilt["cpu"] - begin["cpu"]
                result[f"worker_rss_{phase}_mb"] = last.get("rss_kb", 0) / 1024
                result[f"worker_rss_peak_{phase}_mb"] = last.get("hwm_kb", 0) / 1024
                result[f"open_obligations_{phase}"] = float(last.get("open", 0))
            finally:
                if phase == "warm" and crash:
                    os.kill(worker.pid, signal.SIGKILL)  # the crash phase restarts after this
                await worker.stop()
    finally:
        await asyncio.to_thread(delete_topics, spec)
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)
    return result


def measure(
    quick: bool = False, open_obligations: int | None = None, *, crash: bool = False
) -> dict[str, float]:
    """Build, produce, recover twice (three times with ``crash``); figures by name (see the
    module docstring)."""
    n = open_obligations or (10_000 if quick else 1_000_000)
    return asyncio.run(_run(n, per_client=10, crash=crash))


def main(argv: list[str] | None = None) -> None:
    """Measure and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10k open obligations, not 1M")
    parser.add_argument("--open", type=int, default=None, help="open obligations")
    parser.add_argument(
        "--crash", action="store_true", help="also: kill -9 the warm worker, restart, time it"
    )
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.quick, args.open, crash=args.crash), indent=2))


if __name__ == "__main__":
    main()
