"""``shinrai produce`` of a large JSONL file: single-event records against batch records.

Run: ``.venv/bin/python -m bench.produce_batches [--events N] [--batches 1,500]`` against the
live broker (``SHINRAI_KAFKA__BOOTSTRAP``). It writes N events of the realistic log
(``bench.engine.generate_realistic``) as canonical JSON lines, then runs the real command
(``python -m shinrai produce FILE --format jsonl``, a child process: parsing, ordering,
producing, every record acknowledged) once per ``SHINRAI_KAFKA__BATCH_EVENTS`` value, each on
private topics of six partitions (random suffix, deleted afterwards).

Reported per batch size: events per wall second of the whole command (process start included),
the command's CPU seconds (user + system, its threads included; the broker's own CPU is not),
the records the topic received, and the machine's load average before and after (the machine is
shared: a busy neighbour shows there).

Measured 2026-12-07 (2 cores shared with other work, 1-minute load 7.2-8.2 throughout; local
single broker, six partitions; 100,000 realistic events, each size run twice):

* batch events 1: 100,000 records, 2,453-2,767 events/s, 10.9-13.2 CPU s (7,589-9,169 events
  per CPU second);
* batch events 500: 203 records, 5,333-5,810 events/s, 5.7-6.1 CPU s (16,500-17,656 events per
  CPU second): about 2.2 times the rate for half the CPU.

The rest of the command's time is parsing and validating the JSON lines (the same for both).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.engine import generate_realistic
from bench.kafka_limits import delete_topics, private_topics
from schemas.base import encode
from shinrai.kafka_options import kafka_python_options
from shinrai.settings import KafkaSettings, Settings

ROOT = Path(__file__).resolve().parents[1]


def write_events(path: Path, n: int) -> int:
    """N realistic events as canonical JSON lines; returns how many were written."""
    events = generate_realistic(n, clients=max(10, n // 200), days=30)
    with path.open("wb") as out:
        for event in events:
            out.write(encode(event) + b"\n")
    return len(events)


def records_in(kafka: KafkaSettings, topic: str) -> int:
    """How many records ``topic`` holds (sum of its partitions' end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python_options(kafka), group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def produce_once(kafka: KafkaSettings, path: Path, batch: int) -> dict[str, Any]:
    """One ``shinrai produce`` run with ``SHINRAI_KAFKA__BATCH_EVENTS=batch``; its figures."""
    suffix = f"-bench-{uuid.uuid4().hex[:8]}"
    topic, dlq = private_topics(kafka, ["bench.produce", "bench.produce-dlq"], suffix)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHINRAI_KAFKA__BATCH_EVENTS": str(batch)}
    command = [sys.executable, "-m", "shinrai", "produce", str(path), "--format", "jsonl"]
    command += ["--topic", topic, "--dlq-topic", dlq, "--json", "--no-progress"]
    try:
        load_before = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"shinrai produce failed (batch {batch}): {done.stderr.strip()}")
        summary = json.loads(done.stdout)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        produced = int(summary["produced"])
        return {
            "batch_events": batch,
            "produced": produced,
            "records": records_in(kafka, topic),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "events_per_s": round(produced / wall),
            "events_per_cpu_s": round(produced / cpu),
            "load_1m_before": load_before,
            "load_1m_after": os.getloadavg()[0],
        }
    finally:
        delete_topics(kafka, suffix)


def measure(kafka: KafkaSettings, n: int, batches: list[int]) -> dict[str, Any]:
    """Write the file once, then one run per batch size."""
    with tempfile.TemporaryDirectory(prefix="bench-produce-") as tmp:
        path = Path(tmp) / "events.jsonl"
        written = write_events(path, n)
        runs = [produce_once(kafka, path, batch) for batch in batches]
    return {"events": written, "cpus": os.cpu_count(), "runs": runs}


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batches", default="1,500", help="batch sizes to compare (comma list)")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    print(json.dumps(measure(Settings().kafka, args.events, batches), indent=2))


if __name__ == "__main__":
    main()
