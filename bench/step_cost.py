"""CPU of the processor's pure step per event, single records vs batch records (no Kafka).

Run: ``.venv/bin/python -m bench.step_cost [--events 20000] [--batch-records 500] [--repeat 3]``
(or as a file, ``python bench/step_cost.py``, to time another checkout put first on
``PYTHONPATH``: the script uses only what every version of the step has).

A realistic log (``bench.engine.generate_realistic``: threads, calls, policy changes) with a few
invalid records and events without a client mixed in, keyed and partitioned as producers do,
goes through ``streams.step.ProcessorStep`` twice, as a worker reading a backlog would get it:

* ``single``: one Kafka record per event, ``--batch-records`` records per step run (a Faust
  ``take_events`` batch);
* ``batch``: ``event_batch`` records of ``--batch-records`` events (``schemas.batches``), one
  per partition per step run.

The state table keeps the decoded state a run left (as the worker's ``StateCache`` hands it
back), so the figure is the step's own cost (decode at the edge, grouping, watermarks, the
engine, facts and their encoding) without the state codec, which is timed elsewhere
(``bench.engine --state-io``). Printed per mode: events per CPU second (``time.process_time``,
best of ``--repeat``), the CPU per event of the edge alone (``ProcessorStep._read``: decoding,
batch records split, grouping, watermarks) and a SHA-256 of everything the step produced (topic, key, value,
headers, partition of every record, in order) and of the states' bytes: an optimisation of the
step must leave both digests unchanged (run with ``PYTHONHASHSEED=0``: state bytes list
frozenset members).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import logging
import random
import time
from datetime import timedelta
from typing import Any

from bench.engine import START, generate_realistic
from engine.core import Engine
from engine.state import ClientState
from schemas.base import encode
from schemas.batches import EVENT_BATCH, join, partition_for
from streams.step import InRecord, OutRecord, ProcessorStep, ProcessorTopics
from streams.watermark import PartitionWatermarks

PARTITIONS = 6
TOPICS = ProcessorTopics.default("-bench-step")
DAYS = 20
NOW = START + timedelta(days=DAYS + 5)  # the whole log reads as a backlog of history
LATENESS = timedelta(hours=1)


def the_log(total: int) -> dict[int, list[tuple[bytes, bytes]]]:
    """(key, value) per partition, in log order: the realistic log, a few late arrivals, and
    one invalid record in about 500 (a wrong field, a type that is not an event)."""
    rng = random.Random(3)
    events = generate_realistic(total, clients=max(10, total // 100), days=DAYS)
    rows: list[tuple[Any, int, bytes, bytes]] = []
    for n, ev in enumerate(events):
        late = LATENESS * rng.uniform(0, 0.8) if rng.random() < 0.1 else timedelta(0)
        key = (ev.client_id or "_unknown").encode()
        value = encode(ev)
        if rng.random() < 0.002:
            value = value.replace(b'"direction":"', b'"direction":"x')
        rows.append((ev.occurred_at + late, n, key, value))
    rows.sort(key=lambda row: (row[0], row[1]))
    parts: dict[int, list[tuple[bytes, bytes]]] = {}
    for _, _, key, value in rows:
        parts.setdefault(partition_for(key, PARTITIONS), []).append((key, value))
    return parts


def runs(
    parts: dict[int, list[tuple[bytes, bytes]]], size: int, batched: bool
) -> list[list[InRecord]]:
    """The step runs of the log: ``size`` events of each partition per run, as single records
    (``size`` records) or as one batch record."""
    out: list[list[InRecord]] = []
    for p, rows in sorted(parts.items()):
        end = len(rows) if not batched else -(-len(rows) // size)
        for n, start in enumerate(range(0, len(rows), size)):
            chunk = rows[start : start + size]
            if n == len(out):
                out.append([])
            if batched:
                value = join(EVENT_BATCH, [v for _, v in chunk])
                out[n].append(InRecord(TOPICS.interactions, p, n, chunk[0][0], value, end))
            else:
                for i, (key, value) in enumerate(chunk):
                    out[n].append(InRecord(TOPICS.interactions, p, start + i, key, value, end))
    # one partition per run, as a worker's Faust batch is mostly one partition's records
    return [[r for r in run if r.partition == p] for run in out for p in range(PARTITIONS)
            if any(r.partition == p for r in run)]  # fmt: skip


def _digest_record(h: Any, record: OutRecord) -> None:
    h.update(repr((record.topic, record.key, record.partition, record.headers)).encode())
    h.update(record.value)


def replay(batches: list[list[InRecord]]) -> tuple[float, float, str, int]:
    """(CPU seconds of the step runs, of which in ``_read`` (the edge: decode, group,
    watermarks), digest of the output and states, facts out)."""
    step = ProcessorStep(
        Engine(allowed_lateness=LATENESS),
        TOPICS,
        watermarks=PartitionWatermarks(timedelta(seconds=10)),
        partitions=PARTITIONS,
    )
    table: dict[bytes, ClientState] = {}
    h = hashlib.sha256()

    def load(anchor: InRecord) -> ClientState | None:
        return table.get(anchor.key or b"")

    edge = 0.0
    read = step._read

    def timed_read(*args: Any) -> Any:
        nonlocal edge
        t0 = time.process_time()
        try:
            return read(*args)
        finally:
            edge += time.process_time() - t0

    step._read = timed_read  # type: ignore[method-assign,assignment]
    cpu = 0.0
    gc.collect()
    for n, batch in enumerate(batches):
        now = NOW + timedelta(milliseconds=20 * n)
        t0 = time.process_time()
        result = step.run(batch, load, now)
        cpu += time.process_time() - t0
        for record in result.produce:
            _digest_record(h, record)
        for update in result.updates:
            if update.state is not None:
                table[update.key] = update.state
    for key in sorted(table):
        h.update(key)
        h.update(table[key].to_bytes())
    return cpu, edge, h.hexdigest()[:16], step.stats.facts_out


def read_only(batches: list[list[InRecord]]) -> float:
    """CPU seconds of the edge alone: ``ProcessorStep._read`` of every run on a fresh step (no
    client is applied: the engine is left out, so small changes at the edge show)."""
    step = ProcessorStep(
        Engine(allowed_lateness=LATENESS),
        TOPICS,
        watermarks=PartitionWatermarks(timedelta(seconds=10)),
        partitions=PARTITIONS,
    )
    gc.collect()
    t0 = time.process_time()
    for n, batch in enumerate(batches):
        step._read(batch, NOW + timedelta(milliseconds=20 * n), [])
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> None:
    """Both modes, best of ``--repeat``, one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-records", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    logging.getLogger("streams.step").setLevel(logging.ERROR)  # the dead letters' warnings
    parts = the_log(args.events)
    events = sum(map(len, parts.values()))
    for mode in ("single", "batch"):
        batches = runs(parts, args.batch_records, mode == "batch")
        best, edge, digest, facts = min(replay(batches) for _ in range(args.repeat))
        print(
            f"{mode:6s} events={events} facts={facts} step_cpu_s={best:.3f} "
            f"events_per_cpu_s={events / best:,.0f} read_us_per_event={1e6 * edge / events:.1f} "
            f"digest={digest}"
        )
        alone = min(read_only(batches) for _ in range(3 * args.repeat))
        print(f"{mode:6s} edge alone (_read, best of {3 * args.repeat}): "
              f"{1e6 * alone / events:.2f} us per event")  # fmt: skip


if __name__ == "__main__":
    main()
