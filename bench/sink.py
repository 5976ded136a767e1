"""Throughput of the ClickHouse sink on the embedded engine (chdb).

Run: ``.venv/bin/python -m bench.sink [--quick] [--compare]``. Prints a table and writes
``bench/results/sink-<timestamp>.json``. Goal: >= 500k rows/s through the sink.

Measured per record type, with records already decoded (pydantic construction is the
consumer's cost, not the sink's):

* ``add+flush``: ``add_*()`` for every record, then ``flush()`` every ``batch_rows`` — the whole
  sink path (obligation folding, Arrow build, dedup-token insert, materialized views).
* ``--compare``: the raw insert paths on one Arrow table of facts, insert_arrow vs
  ``INSERT ... SELECT * FROM Python(table)`` (chdb only), which decided the sink's insert path.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from schemas.events import CallOutcome, Channel, Direction, InteractionEvent, Kind
from schemas.facts import Fact, FactKind, ObligationKind, Outcome
from shinrai.settings import REPO_ROOT, ClickHouseSettings
from sinks.clickhouse.rows import Position, facts_table
from sinks.clickhouse.sink import ClickHouseSink

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def make_facts(n: int, rng: random.Random) -> list[tuple[Fact, Position]]:
    """A realistic mix: each obligation opened then fulfilled, plus speed-of-answer facts."""
    out: list[tuple[Fact, Position]] = []
    offsets = [0] * 6
    i = 0
    while len(out) < n:
        cid = f"client-{rng.randrange(2000)}"
        part = hash(cid) % 6
        at = T0 + timedelta(seconds=rng.randrange(180 * 86400))
        base: dict[str, Any] = {"client_id": cid, "policy_id": "default", "policy_version": 1}
        if i % 3 == 2:
            batch = [
                Fact(fact_id=f"f{i}", kind=FactKind.SPEED_OF_ANSWER, at=at, channel=Channel.PHONE,
                     call_outcome=CallOutcome.ANSWERED, wait_seconds=rng.uniform(1, 60),
                     answered_within_target=True, **base)
            ]  # fmt: skip
        else:
            oid = f"o{i}"
            took = rng.uniform(60, 8 * 3600)
            batch = [
                Fact(fact_id=f"f{i}a", kind=FactKind.OBLIGATION_OPENED, at=at, obligation_id=oid,
                     obligation_kind=ObligationKind.FIRST_RESPONSE, channel=Channel.EMAIL,
                     deadline=at + timedelta(hours=4), opened_at=at, thread_key=oid, **base),
                Fact(fact_id=f"f{i}b", kind=FactKind.FULFILLED, at=at + timedelta(seconds=took),
                     obligation_id=oid, channel=Channel.EMAIL, business_seconds=took,
                     calendar_seconds=took, thread_key=oid,
                     outcome=Outcome.MET if took < 4 * 3600 else Outcome.MET_LATE, **base),
            ]  # fmt: skip
        for fact in batch:
            out.append((fact, Position("sla-facts.v1", part, offsets[part])))
            offsets[part] += 1
        i += 1
    return out[:n]


def make_events(n: int, rng: random.Random) -> list[tuple[InteractionEvent, Position]]:
    """Email and phone interactions across 2000 clients and 180 days."""
    out = []
    for i in range(n):
        at = T0 + timedelta(seconds=rng.randrange(180 * 86400))
        phone = i % 4 == 0
        event = InteractionEvent(
            event_id=f"e{i}", channel=Channel.PHONE if phone else Channel.EMAIL,
            kind=Kind.CALL if phone else Kind.MESSAGE,
            direction=Direction.INBOUND if i % 2 else Direction.OUTBOUND,
            occurred_at=at, recorded_at=at, client_id=f"client-{rng.randrange(2000)}",
            thread_key=f"t{i % 50_000}", counterpart="+81312345678", staff="s1",
            call_outcome=CallOutcome.ANSWERED if phone else None, source="bench",
        )  # fmt: skip
        out.append((event, Position("interactions.v1", i % 6, i // 6)))
    return out


def _through_sink(
    settings: ClickHouseSettings, records: list[tuple[Any, Position]]
) -> tuple[float, float]:
    """(rows per wall second, rows per CPU second) of add+flush; CPU time counts every thread
    of the process, chdb's included, so it is the figure that survives a busy machine."""
    sink = ClickHouseSink(settings)
    sink.setup()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for record, pos in records:
            sink.add(record, pos)
            if sink.buffered >= settings.batch_rows:
                sink.flush()
        sink.flush()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return len(records) / wall, len(records) / cpu
    finally:
        sink.close()


def _compare(settings: ClickHouseSettings, facts: list[tuple[Fact, Position]]) -> dict[str, float]:
    """insert_arrow vs INSERT ... SELECT FROM Python(arrow), same table shape, fresh tables."""
    from sinks.clickhouse.client import connect

    table = facts_table([f for f, _ in facts], [p for _, p in facts], {})
    client = connect(settings)
    names = ("insert_arrow", "python_table_function")
    results: dict[str, list[float]] = {f"{n} {u}": [] for n in names for u in ("wall", "cpu")}

    def timed(name: str, run: Any) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        results[f"{name} wall"].append(table.num_rows / (time.perf_counter() - wall))
        results[f"{name} cpu"].append(table.num_rows / (time.process_time() - cpu))

    try:
        for name in names:
            client.command(f"CREATE TABLE cmp_{name} AS sla_facts")
        for rep in range(5):
            timed(
                "insert_arrow",
                partial(
                    client.insert_arrow,
                    "cmp_insert_arrow",
                    table,
                    settings={"async_insert": 0, "insert_deduplication_token": f"a{rep}"},
                ),
            )
            arrow_table = table  # Python() finds the table by this variable name
            timed(
                "python_table_function",
                partial(
                    client.command,
                    "INSERT INTO cmp_python_table_function SELECT * FROM Python(arrow_table)",
                    settings={"async_insert": 0, "insert_deduplication_token": f"r{rep}"},
                ),
            )
            del arrow_table
    finally:
        client.close()
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> None:
    """Run the benchmark and print/write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k records per type")
    parser.add_argument("--compare", action="store_true", help="also compare raw insert paths")
    parser.add_argument("--rows", type=int, default=None, help="records per type")
    args = parser.parse_args()
    n = args.rows or (20_000 if args.quick else 500_000)
    rng = random.Random(1)
    print(f"generating {n:,} facts and {n:,} interactions ...", flush=True)
    facts = make_facts(n, rng)
    events = make_events(n, rng)
    # The pre-generated input (millions of long-lived objects) would make every cyclic-GC pass
    # of the measured code scan it; a live consumer holds one batch, not the whole input.
    gc.collect()
    gc.freeze()
    root = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    settings = ClickHouseSettings(url=f"chdb://{root}", database="bench_sink")
    results: dict[str, float] = {}
    for label, db, records in (("facts", "b_f", facts), ("interactions", "b_i", events)):
        wall, cpu = _through_sink(settings.model_copy(update={"database": db}), records)
        results[f"{label} add+flush rows/s (wall)"] = wall
        results[f"{label} add+flush rows/s (CPU)"] = cpu
    if args.compare:
        for name, value in _compare(settings.model_copy(update={"database": "b_f"}), facts).items():
            results[f"raw {name} rows/s (median of 5)"] = value
    print(f"\n{'measurement':<50} {'value':>14}")
    for name, value in results.items():
        print(f"{name:<50} {value:>14,.0f}")
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"sink-{stamp}.json"
    path.write_text(json.dumps({"rows": n, "batch_rows": settings.batch_rows, **results}, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
