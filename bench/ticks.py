"""Timer ticks per event, per-client vs per-partition, on the pure step (no Kafka, simulated clock).

Run: ``.venv/bin/python -m bench.ticks [--rate 250] [--seconds 10]``. The ordinary live mix of
``bench.pipeline``'s latency phase (``bench.kafka_limits.canonical_events`` stamped as sent) goes
through ``streams.step.ProcessorStep`` in batches every 20 ms of simulated time, with the timer
every 0.2 s and the live lateness of 0.5 s, a worker that keeps up. Two timer designs:

* ``client``: one tick record per due client (the design before 2026-12-07), keyed by it;
* ``partition``: one tick record per partition with due clients, and every batch that reads a
  live partition advances its due clients (``DeadlineIndex.take_due``).

Printed per design: tick records per event (each one costs a Kafka produce and a pass through
Faust's per-message machinery, ~0.15-0.2 ms of CPU, in the live worker), client passes (state
loads) per event, facts, and the step's CPU per event. The facts must be the same for both.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from bench.kafka_limits import canonical_events
from engine.core import Engine
from engine.state import ClientState
from schemas.base import encode
from schemas.batches import partition_for
from streams.deadline_index import DeadlineIndex
from streams.step import InRecord, ProcessorStep, ProcessorTopics
from streams.watermark import PartitionWatermarks
from tests.builders import policy_event

PARTITIONS = 6
TOPICS = ProcessorTopics.default("-bench-ticks")
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def simulate(mode: str, rate: float, seconds: float) -> dict[str, float]:
    """One design (``client`` or ``partition``) over ``seconds`` of the mix at ``rate``/s."""
    n = int(rate * seconds)
    mix = canonical_events(n, clients=max(10, n // 24), prefix="mix", start=T0,
                           step_ms=1000 / rate)  # fmt: skip
    index = DeadlineIndex()
    step = ProcessorStep(
        Engine(allowed_lateness=timedelta(seconds=0.5)),
        TOPICS,
        watermarks=PartitionWatermarks(timedelta(seconds=10)),
        due_clients=index.take_due if mode == "partition" else None,
    )
    step.marks.assignment_known()
    table: dict[bytes, bytes] = {}
    passes = 0

    def load(anchor: InRecord) -> ClientState | None:
        nonlocal passes
        passes += 1
        raw = table.get(anchor.key or b"")
        return ClientState.from_bytes(raw) if raw else None

    offsets = [0] * PARTITIONS
    queue: list[InRecord] = []

    def interaction(key: bytes, value: bytes) -> InRecord:
        part = partition_for(key, PARTITIONS)
        offsets[part] += 1
        return InRecord(TOPICS.interactions, part, offsets[part] - 1, key, value, None)

    for client in sorted({e.client_id or "" for e in mix}):
        policy = policy_event(client, T0 - timedelta(hours=1))
        queue.append(interaction(client.encode(), encode(policy)))
    ticks = sent = 0
    clock = next_timer = T0
    cpu = time.process_time()
    while clock <= T0 + timedelta(seconds=seconds + 2):
        while sent < n and mix[sent].occurred_at <= clock:
            event = mix[sent]
            queue.append(interaction((event.client_id or "").encode(), encode(event)))
            sent += 1
        if clock >= next_timer:
            next_timer += timedelta(seconds=0.2)
            popped = index.pop_due(clock)
            if mode == "client":
                for due in popped:
                    key = due.client_id.encode()
                    queue.append(InRecord(TOPICS.ticks, due.partition or 0, 0, key, b"{}"))
                    ticks += 1
            else:
                for part in sorted({due.partition or 0 for due in popped}):
                    queue.append(InRecord(TOPICS.ticks, part, 0, None, b"{}"))
                    ticks += 1
        if queue:
            batch, queue = queue, []
            for update in step.run(batch, load, clock).updates:
                if update.state is not None:
                    table[update.key] = update.state.to_bytes()
                index.update(update.client_id, update.due, update.partition)
        clock += timedelta(milliseconds=20)
    cpu = time.process_time() - cpu
    return {
        "events": float(n),
        "ticks_per_event": ticks / n,
        "passes_per_event": passes / n,
        "facts": float(step.stats.facts_out),
        "step_cpu_ms_per_event": 1000 * cpu / n,
    }


def main(argv: list[str] | None = None) -> None:
    """Both designs, one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=250.0, help="events/s of the live mix")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    for mode in ("client", "partition"):
        got = simulate(mode, args.rate, args.seconds)
        print(f"{mode:9s} " + " ".join(f"{k}={v:g}" for k, v in got.items()))


if __name__ == "__main__":
    main()
