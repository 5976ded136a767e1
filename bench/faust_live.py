"""Latency of a bare Faust agent on a live stream, with a chosen amount of work per event.

Run: ``.venv/bin/python -m bench.faust_live [--rate 650] [--seconds 8] [--cost-ms 0.85]
[--sends] [--table]``. Separates what Faust itself adds to event latency on this machine from what
the SLA processor adds: one process produces ``rate`` events/s (each stamped with its send time)
to a private 6-partition topic while a Faust agent of the same process reads them in
``take_events`` batches (the worker's ``batch_max_events`` / ``batch_wait_s``) and per batch:

* spins ``cost-ms`` of CPU per event (standing in for the engine and the state bytes);
* ``--sends``: produces one record per event through the Faust producer and awaits the batch's
  acknowledgements (as the processor does with facts);
* ``--table``: writes every event to a RocksDB table (changelog included), each under its own
  event made current (as the processor stores states).

Prints JSON: events seen, p50/p99 of (batch received - sent), mean batch size, CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
import weakref
from typing import Any

from bench.kafka_limits import delete_topics, private_topics
from bench.pipeline import percentile, wait_for
from shinrai.kafka_options import aiokafka_options
from shinrai.settings import Settings, WorkerSettings


async def _run(rate: float, seconds: float, cost_s: float, sends: bool, table_writes: bool) -> Any:
    from aiokafka import AIOKafkaProducer
    from faust.streams import _current_event

    from streams.app import build_app

    settings = Settings()
    worker = WorkerSettings()
    suffix = f"-bench-live-{uuid.uuid4().hex[:8]}"
    source_name, out_name = private_topics(settings.kafka, ["bench.live", "bench.live-out"], suffix)
    app = build_app(
        settings,
        app_id=f"bench-live{suffix}",
        datadir=tempfile.mkdtemp(prefix="bench-faust-live-"),
        producer_linger=worker.producer_linger_s,
        topic_partitions=6,
    )
    source = app.topic(source_name, key_type=bytes, value_type=bytes)
    table = app.Table("live", default=None, partitions=6, key_type=bytes, value_type=bytes)
    latencies: list[float] = []
    sizes: list[int] = []

    @app.agent(source)  # type: ignore[untyped-decorator]
    async def consume(stream: Any) -> None:
        async for batch in stream.take_events(worker.batch_max_events, within=worker.batch_wait_s):
            now = time.time()
            sizes.append(len(batch))
            latencies.extend(now - float(e.value[:20]) for e in batch)
            if sends:
                futures = [
                    await app.producer.send(out_name, e.key, e.value, None, None, None)
                    for e in batch
                ]
                for future in futures:
                    await future
            if table_writes:
                for e in batch:
                    token = _current_event.set(weakref.ref(e))
                    table[e.key] = e.value
                    _current_event.reset(token)
            end = time.perf_counter() + len(batch) * cost_s
            while time.perf_counter() < end:
                pass

    await app.start()
    producer = AIOKafkaProducer(**aiokafka_options(settings.kafka), linger_ms=0)
    await producer.start()
    try:
        await asyncio.sleep(8)  # group join and assignment
        total = int(rate * seconds)
        cpu = time.process_time()
        started, sent = time.monotonic(), 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                value = f"{time.time():<20}".encode() + b"x" * 400
                await producer.send(source_name, key=f"c{sent % 300}".encode(), value=value)
                sent += 1
            await asyncio.sleep(0.002)
        await producer.flush()
        with contextlib.suppress(TimeoutError):  # report what arrived
            await wait_for(lambda: len(latencies) >= total, 30, "every event")
        return {
            "rate": rate,
            "events": total,
            "seen": len(latencies),
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "mean_batch": statistics.mean(sizes),
            "cpu_s": time.process_time() - cpu,
        }
    finally:
        await producer.stop()
        await app.stop()
        delete_topics(settings.kafka, suffix)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run once, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=650.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--cost-ms", type=float, default=0.0, help="CPU per event, spun")
    parser.add_argument("--sends", action="store_true", help="one acknowledged record per event")
    parser.add_argument("--table", action="store_true", help="one table write per event")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.rate, args.seconds, args.cost_ms / 1000, args.sends, args.table))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
