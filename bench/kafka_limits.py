"""The physical limit of this machine for our payloads: how fast Kafka moves canonical events.

Run: ``.venv/bin/python -m bench.kafka_limits [--quick] [--events N]`` (or through ``bench.run``).
On private topics (random suffix, deleted afterwards) of the live broker it measures, with the
same N canonical ``InteractionEvent`` JSON payloads keyed by client id:

* ``kafka-python`` producer rate with the edge's own configuration
  (``producers.kafka_producer.KafkaRecordProducer``: acks=all, idempotent, lz4, linger 20 ms),
  send everything then ``flush`` (every record acknowledged);
* ``aiokafka`` producer rate (acks=all, idempotent, lz4, linger 20 ms, 256 KiB batches);
* the raw consumer limit: one ``aiokafka`` consumer reading the N records and decoding every
  value with ``orjson`` — what no pipeline stage that reads and decodes JSON can beat;
* the Faust floor: one Faust agent (the worker's own app settings, ``take_events`` batches as
  the SLA processor reads them) that only counts the N records — what no Faust agent of one
  worker process can beat, whatever it does per event.

Every rate is events per wall second; the CPU seconds of this process are reported beside it
(kafka-python's I/O thread included), the broker's own CPU is not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.base import encode
from schemas.events import CallOutcome, Channel, Direction, InteractionEvent, Kind
from schemas.topics import TopicSpec
from shinrai.kafka_options import aiokafka_options, kafka_python_options
from shinrai.settings import KafkaSettings, Settings

PARTITIONS = 6


def canonical_events(
    n: int, *, clients: int, start: datetime, prefix: str = "c", step_ms: float = 1.0
) -> list[InteractionEvent]:
    """``n`` events of a support desk, in time order from ``start`` (``step_ms`` apart).

    Per client, a cycle of six: inbound email in a new thread (opens an obligation), an inbound
    answered call (speed-of-answer fact), the outbound reply in the thread (fulfils it), an
    internal note, an inbound missed call (opens a callback) and the answered callback (fulfils).
    """
    out: list[InteractionEvent] = []
    step = timedelta(milliseconds=step_ms)
    run = uuid.uuid4().hex[:6]
    for i in range(n):
        client = f"{prefix}-{i % clients:06d}"
        turn = i // clients
        at = start + i * step
        common: dict[str, Any] = {
            "event_id": f"{prefix}{run}-{i}",
            "occurred_at": at,
            "recorded_at": at,
            "client_id": client,
            "source": "bench",
        }
        thread = f"{client}-t{turn // 6}"
        match turn % 6:
            case 0:
                ev = InteractionEvent(channel=Channel.EMAIL, kind=Kind.MESSAGE,
                                      direction=Direction.INBOUND, thread_key=thread,
                                      counterpart="buyer@client.example", **common)  # fmt: skip
            case 1:
                ev = InteractionEvent(channel=Channel.PHONE, kind=Kind.CALL,
                                      direction=Direction.INBOUND,
                                      call_outcome=CallOutcome.ANSWERED, wait_seconds=9.0,
                                      duration_seconds=120.0, counterpart="+81312345678",
                                      **common)  # fmt: skip
            case 2:
                ev = InteractionEvent(channel=Channel.EMAIL, kind=Kind.MESSAGE,
                                      direction=Direction.OUTBOUND, thread_key=thread,
                                      staff="agent@us.example", **common)  # fmt: skip
            case 3:
                ev = InteractionEvent(channel=Channel.EMAIL, kind=Kind.MESSAGE,
                                      direction=Direction.INTERNAL, thread_key=thread,
                                      **common)  # fmt: skip
            case 4:
                ev = InteractionEvent(channel=Channel.PHONE, kind=Kind.CALL,
                                      direction=Direction.INBOUND, call_outcome=CallOutcome.MISSED,
                                      wait_seconds=30.0, thread_key=f"{client}-phone",
                                      counterpart="+81312345678", **common)  # fmt: skip
            case _:
                ev = InteractionEvent(channel=Channel.PHONE, kind=Kind.CALL,
                                      direction=Direction.OUTBOUND,
                                      call_outcome=CallOutcome.ANSWERED, duration_seconds=180.0,
                                      thread_key=f"{client}-phone", counterpart="+81312345678",
                                      **common)  # fmt: skip
        out.append(ev)
    return out


def payloads(events: list[InteractionEvent]) -> list[tuple[bytes, bytes]]:
    """(key, canonical JSON) per event, as every producer of the edge sends them."""
    return [((ev.client_id or "").encode(), encode(ev)) for ev in events]


def private_topics(kafka: KafkaSettings, names: list[str], suffix: str) -> list[str]:
    """Create ``names`` + ``suffix`` with :data:`PARTITIONS` partitions; return the full names."""
    from shinrai.topic_admin import ensure_topics

    specs = [TopicSpec(name=n, description="bench", key="client_id", partitions=PARTITIONS)
             for n in names]  # fmt: skip
    ensure_topics(kafka, specs, suffix=suffix)
    return [n + suffix for n in names]


def delete_topics(kafka: KafkaSettings, match: str) -> None:
    """Best effort: delete every topic whose name contains ``match``."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**kafka_python_options(kafka))
    try:
        doomed = [n for n in admin.list_topics() if match in n]
        if doomed:
            admin.delete_topics(doomed)
    except Exception:  # a leftover private topic harms nobody
        pass
    finally:
        admin.close()


def _kafka_python_rate(kafka: KafkaSettings, topic: str, data: list[tuple[bytes, bytes]]) -> Any:
    from producers.kafka_producer import KafkaRecordProducer

    with KafkaRecordProducer(kafka, client_id="bench-kafka-python") as producer:
        producer.send(topic, key=data[0][0], value=data[0][1])  # metadata + connection
        producer.flush()
        started, cpu = time.perf_counter(), time.process_time()
        for key, value in data:
            producer.send(topic, key=key, value=value)
        producer.flush()
        return time.perf_counter() - started, time.process_time() - cpu


async def _aiokafka_rate(
    kafka: KafkaSettings, topic: str, data: list[tuple[bytes, bytes]]
) -> tuple[float, float]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **aiokafka_options(kafka),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
        compression_type="lz4",
    )
    await producer.start()
    try:
        await (await producer.send(topic, key=data[0][0], value=data[0][1]))
        started, cpu = time.perf_counter(), time.process_time()
        futures = [await producer.send(topic, key=k, value=v) for k, v in data]
        await producer.flush()
        await asyncio.gather(*futures)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await producer.stop()


async def _consume_rate(kafka: KafkaSettings, topic: str, n: int) -> tuple[float, float, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_options(kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen = 0
        decoded_bytes = 0
        started, cpu = time.perf_counter(), time.process_time()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batch.values():
                for record in records:
                    value = record.value or b"{}"
                    orjson.loads(value)
                    decoded_bytes += len(value)
                    seen += 1
        return time.perf_counter() - started, time.process_time() - cpu, decoded_bytes
    finally:
        await consumer.stop()


async def _faust_floor_rate(kafka: KafkaSettings, topic: str, n: int) -> tuple[float, float]:
    """Wall and CPU seconds for a no-op Faust agent to see ``n`` records of ``topic``.

    Timed from the first record the agent sees (group join and start-up excluded) to the n-th.
    """
    import tempfile

    from shinrai.settings import WorkerSettings
    from streams.app import build_app

    worker = WorkerSettings()
    app = build_app(
        Settings(kafka=kafka),
        app_id=f"bench-faust-floor-{uuid.uuid4().hex[:8]}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="bench-faust-floor-"),
        producer_linger=worker.producer_linger_s,
    )
    source = app.topic(topic, key_type=bytes, value_type=bytes)
    done = asyncio.Event()
    marks: dict[str, float] = {}
    seen = 0

    @app.agent(source)  # type: ignore[untyped-decorator]
    async def count(stream: Any) -> None:
        nonlocal seen
        async for batch in stream.take_events(worker.batch_max_events, within=worker.batch_wait_s):
            if not marks:
                marks["wall"], marks["cpu"] = time.perf_counter(), time.process_time()
            seen += len(batch)
            if seen >= n:
                marks["wall_end"], marks["cpu_end"] = time.perf_counter(), time.process_time()
                done.set()

    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=600)
    finally:
        await app.stop()
    return marks["wall_end"] - marks["wall"], marks["cpu_end"] - marks["cpu"]


def measure(kafka: KafkaSettings, n: int) -> dict[str, float]:
    """Produce ``n`` events with each client, then consume and decode them; rates per second."""
    suffix = f"-bench-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(hours=1)
    data = payloads(canonical_events(n, clients=max(10, n // 50), start=start))
    kp_topic, ak_topic = private_topics(kafka, ["bench.kafka-python", "bench.aiokafka"], suffix)
    try:
        kp_wall, kp_cpu = _kafka_python_rate(kafka, kp_topic, data)
        ak_wall, ak_cpu = asyncio.run(_aiokafka_rate(kafka, ak_topic, data))
        # n + 1: the warm-up record is in the topic too.
        c_wall, c_cpu, nbytes = asyncio.run(_consume_rate(kafka, kp_topic, n + 1))
        f_wall, f_cpu = asyncio.run(_faust_floor_rate(kafka, kp_topic, n + 1))
    finally:
        delete_topics(kafka, suffix)
    return {
        "events": n,
        "payload_bytes_avg": nbytes / (n + 1),
        "kafka_python_produce_events_per_s": n / kp_wall,
        "kafka_python_produce_cpu_s": kp_cpu,
        "aiokafka_produce_events_per_s": n / ak_wall,
        "aiokafka_produce_cpu_s": ak_cpu,
        "raw_consume_decode_events_per_s": (n + 1) / c_wall,
        "raw_consume_decode_cpu_s": c_cpu,
        "faust_floor_events_per_s": (n + 1) / f_wall,
        "faust_floor_events_per_cpu_s": (n + 1) / f_cpu,
    }


def main(argv: list[str] | None = None) -> None:
    """Measure and print the rates as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20k events instead of 300k")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.events or (20_000 if args.quick else 300_000)
    print(json.dumps(measure(Settings().kafka, n), indent=2))


if __name__ == "__main__":
    main()
