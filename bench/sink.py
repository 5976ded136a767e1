"""Throughput of the ClickHouse sink on the embedded engine (chdb).

Run: ``.venv/bin/python -m bench.sink [--quick] [--compare]``. Prints a table and writes
``bench/results/sink-<timestamp>.json``. Goal: >= 500k rows/s through the sink.

Measured per record type, with records already decoded (pydantic construction is the
consumer's cost, not the sink's):

* ``add+flush``: ``add_*()`` for every record, then ``flush()`` every ``batch_rows`` — the whole
  sink path (obligation folding, Arrow build, dedup-token insert, materialized views).
* ``--runner``: the worker's path, per Kafka record: the canonical JSON value bytes (as the
  processor and the producers write them) through ``ClickHouseRunner``'s add step (since
  2026-12-07 the bytes are buffered and ClickHouse parses the batch as JSONEachRow at flush;
  figures in docs/benchmarks.md),
  flushed every ``batch_rows`` (``--flush-every N`` for the small flushes of a live worker,
  whose batches are cut by ``batch_age_s``). No broker: the fetch is aiokafka's cost and is
  measured by ``bench.kafka_limits``.
* ``--batch-records N`` (runner mode): the same rows from batch records (``fact_batch`` /
  ``event_batch``, ``schemas.batches``) of N items each, as the processor writes its output
  for inputs that came in batch records; the sink cuts each into its items' bytes.
* ``--ceiling``: chdb's own cost on the sink's JSONEachRow batch, no Python per row: the parse,
  the row checks, ``INSERT`` into a plain copy of the table and into the table with its
  materialized views, and each view's share (docs/benchmarks.md, 2026-12-07 16:10).
* ``--compare``: the raw insert paths on one Arrow table of facts, insert_arrow vs
  ``INSERT ... SELECT * FROM Python(table)`` (chdb only), which decided the sink's insert path.

Figures of 2026-11-26 (rows per CPU second, ``time.process_time``, chdb's threads included;
2 cores shared with other engineers' benchmarks, load 4-8, so single runs vary by +-25%: the
before/after pairs below were run back to back, before = commit fea71f2 with this file's
``--runner`` mode copied in). Commands: ``python -m bench.sink --rows 50000 --runner`` and
``python -m bench.sink --rows 10000 --only-runner --flush-every 250``.

=====================================  ================  ================
measurement                            before            after
=====================================  ================  ================
runner, facts, flush/50000             28.4k, 21.9k      26.7k, 25.1k
runner, interactions, flush/50000      37.3k, 35.8k      42.7k, 39.4k
runner, facts, flush/250               2.2k, 2.5k, 2.7k  1.7k, 2.4k, 2.5k
runner, interactions, flush/250        3.1k, 3.5k, 5.3k  4.3k, 5.4k, 6.3k
add+flush (models), facts              47.3k, 39.3k      55.2k, 45.5k
add+flush (models), interactions       160k, 105k        129k, 118k
=====================================  ================  ================

Reading them: the runner now decodes with orjson + field checks into row dicts
(``sinks.clickhouse.records``) instead of pydantic models; in-process A/B of the two decoders
through the same sink (best of 3, 50k rows) gave facts 31.4k vs 28.3k, interactions 49.7k vs
61.2k rows/CPU s — parity within the noise: pydantic-core's Rust decoder is as fast as orjson
plus Python checks (~6-7 us per record either way). What the rows buy is in the flush (Arrow
columns from ISO strings cast in bulk: facts_table ~6 -> ~2.5 us/row, interactions_table
~4 -> ~2.5 us/row), partly spent again on parsing timestamps in the obligation fold. Inline
insert SETTINGS (no SET/restore round trips in clickhouse-connect's chdb backend) save
~6-8 ms CPU per insert (250-row insert into sla_facts 44.7 -> 37.5 ms, interactions 31.5 ->
25.9 ms, best of 6). The dominant live cost is per flush, not per row: flushes of 250 rows
cost ~3k rows per CPU second, of 5,000 ~20k, of 50,000 ~30k — each insert writes a part in
the base table and every materialized-view target (~25-45 ms CPU each on chdb, whatever the
row count), so a worker flushing every ``batch_age_s`` = 1 s spends ~0.1 CPU s per second on
the sink at any traffic below a few thousand records/s.

Batch records, 2026-12-07 (``python -m bench.sink --rows 100000 --only-runner --batch-records
500``, rows per CPU second, two runs back to back on 2 shared cores, load average 6.8-8.3):

=====================================  ================  ================
runner, flush/50000                    single records    batches of 500
=====================================  ================  ================
facts                                  33.5k, 36.4k      31.5k, 36.1k
interactions                           107k, 109k        138k, 136k
=====================================  ================  ================

Facts cost the flush (obligation fold, inserts into the rollups), so they read the same either
way; interactions save the per-record runner step. The cut matters: splitting each batch
record by decoding and re-encoding its items (``schemas.batches.split``, 4-8 us an item)
measured 72k interactions and 29k facts per CPU second, below single records.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from schemas.events import CallOutcome, Channel, Direction, InteractionEvent, Kind
from schemas.facts import Fact, FactKind, ObligationKind, Outcome
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse.rows import Position, facts_table
from sinks.clickhouse.sink import ClickHouseSink

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FACTS_TOPIC = "sla-facts.v1"
INTERACTIONS_TOPIC = "interactions.v1"

A = TypeVar("A")
B = TypeVar("B")


def make_facts(n: int, rng: random.Random, days: int = 180) -> list[tuple[Fact, Position]]:
    """A realistic mix: each obligation opened then fulfilled, plus speed-of-answer facts, at
    instants spread over ``days`` days."""
    out: list[tuple[Fact, Position]] = []
    offsets = [0] * 6
    i = 0
    while len(out) < n:
        cid = f"client-{rng.randrange(2000)}"
        part = hash(cid) % 6
        at = T0 + timedelta(seconds=rng.randrange(days * 86400))
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
            out.append((fact, Position(FACTS_TOPIC, part, offsets[part])))
            offsets[part] += 1
        i += 1
    return out[:n]


def make_events(
    n: int, rng: random.Random, days: int = 180
) -> list[tuple[InteractionEvent, Position]]:
    """Email and phone interactions across 2000 clients and ``days`` days."""
    out = []
    for i in range(n):
        at = T0 + timedelta(seconds=rng.randrange(days * 86400))
        phone = i % 4 == 0
        event = InteractionEvent(
            event_id=f"e{i}", channel=Channel.PHONE if phone else Channel.EMAIL,
            kind=Kind.CALL if phone else Kind.MESSAGE,
            direction=Direction.INBOUND if i % 2 else Direction.OUTBOUND,
            occurred_at=at, recorded_at=at, client_id=f"client-{rng.randrange(2000)}",
            thread_key=f"t{i % 50_000}", counterpart="+81312345678", staff="s1",
            call_outcome=CallOutcome.ANSWERED if phone else None, source="bench",
        )  # fmt: skip
        out.append((event, Position(INTERACTIONS_TOPIC, i % 6, i // 6)))
    return out


def _through_sink(
    settings: ClickHouseSettings, records: list[tuple[Any, Position]]
) -> tuple[float, float]:
    """(rows per wall second, rows per CPU second) of add+flush; CPU time counts every thread
    of the process, chdb's included, so it is the figure that survives a busy machine."""
    sink = ClickHouseSink(settings)
    sink.setup()
    return _timed(sink, records, sink.add, settings.batch_rows)


def _timed(
    sink: ClickHouseSink,
    items: Sequence[tuple[A, B]],
    add: Callable[[A, B], object],
    flush_every: int,
) -> tuple[float, float]:
    """(items per wall second, items per CPU second) of ``add`` over ``items``, flushing the
    sink whenever ``flush_every`` rows are buffered and at the end; closes the sink."""
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for first, second in items:
            add(first, second)
            if sink.buffered >= flush_every:
                sink.flush()
        sink.flush()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return len(items) / wall, len(items) / cpu
    finally:
        sink.close()


class _Record(NamedTuple):
    """The two ConsumerRecord attributes the runner reads."""

    offset: int
    value: bytes


def _batch_messages(
    topic: str, records: list[tuple[Any, Position]], per_batch: int
) -> list[tuple[Any, _Record]]:
    """The records as batch records (``fact_batch`` / ``event_batch``) of ``per_batch`` items of
    one partition each, in order, at offsets 0, 1, 2, ... per partition: what the processor
    writes for inputs that came in batch records."""
    from aiokafka import TopicPartition

    from schemas.base import encode
    from schemas.batches import EVENT_BATCH, FACT_BATCH, join

    kind = FACT_BATCH if topic == FACTS_TOPIC else EVENT_BATCH
    per_partition: dict[int, list[bytes]] = {}
    for record, pos in records:
        per_partition.setdefault(pos.partition, []).append(encode(record))
    messages: list[tuple[Any, _Record]] = []
    for partition, values in per_partition.items():
        for n, start in enumerate(range(0, len(values), per_batch)):
            value = join(kind, values[start : start + per_batch])
            messages.append((TopicPartition(topic, partition), _Record(n, value)))
    return messages


def _through_runner(
    settings: ClickHouseSettings,
    topic: str,
    records: list[tuple[Any, Position]],
    flush_every: int,
    batch_records: int | None = None,
) -> tuple[float, float]:
    """(rows per wall second, rows per CPU second) from raw value bytes to rows in chdb, through
    ``ClickHouseRunner``'s per-record decode and add and the sink's flush (no Kafka I/O).
    ``batch_records``: the values come as batch records of that many items each."""
    from aiokafka import TopicPartition

    from schemas.base import encode
    from shinrai.metrics import WorkerMetrics
    from shinrai.settings import KafkaSettings
    from sinks.clickhouse.runner import ClickHouseRunner

    if batch_records:
        messages = _batch_messages(topic, records, batch_records)
    else:
        messages = [
            (TopicPartition(topic, pos.partition), _Record(pos.offset, encode(record)))
            for record, pos in records
        ]
    sink = ClickHouseSink(settings)
    sink.setup()
    runner = ClickHouseRunner(
        KafkaSettings(),
        sink,
        facts_topic=FACTS_TOPIC,
        interactions_topic=INTERACTIONS_TOPIC,
        group_id="bench",
        metrics=WorkerMetrics(),
        executor=None,  # type: ignore[arg-type]  # never used: no start()
        batch_rows=settings.batch_rows,
    )
    gc.collect()
    gc.freeze()
    # The runner's per-record step, without the consumer.
    wall, cpu = _timed(sink, messages, runner._add, flush_every)
    rows_per_message = len(records) / len(messages)
    return wall * rows_per_message, cpu * rows_per_message


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


def _ceiling_file(records: list[tuple[Any, Position]]) -> str:
    """The records' canonical value bytes as the sink's JSONEachRow batch file (in /dev/shm)."""
    from schemas.base import encode
    from sinks.clickhouse import json_batches

    body = json_batches.lines(
        [encode(r) for r, _ in records], [(p.topic, p.partition, p.offset) for _, p in records]
    )
    directory = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="bench-ceiling-", suffix=".jsonl", dir=directory)
    with open(fd, "wb") as out:
        out.write(body)
    return path


def _ceiling(
    settings: ClickHouseSettings, table: str, records: list[tuple[Any, Position]], reps: int = 3
) -> dict[str, float]:
    """What chdb itself does with the sink's JSONEachRow batch, rows per CPU second (best of
    ``reps``): (a) the parse alone, (b) parse + the row checks, (c) ``INSERT`` of the checked
    rows into a plain MergeTree copy of ``table`` (no materialized views), (d) the same into
    ``table`` with its materialized views, (e) into ``table`` with every view detached, and
    each view's cost alone (the insert with only that view attached, minus (e))."""
    from sinks.clickhouse import json_batches
    from sinks.clickhouse.sink import _INSERT_SETTINGS, settings_clause

    shape = json_batches.FACTS if table == "sla_facts" else json_batches.INTERACTIONS
    sink = ClickHouseSink(settings)
    sink.setup()
    client = sink.client
    path = _ceiling_file(records)
    n = len(records)
    src = f"file({json_batches.quote(path)}, JSONEachRow, {json_batches.quote(shape.structure)})"
    json_settings = settings_clause(json_batches.JSON_SETTINGS)
    cols = ", ".join(f"`{c}`" for c in shape.columns)
    counter = iter(range(1_000_000))

    def insert_sql(target: str) -> str:
        token = f"ceiling-{next(counter)}"
        clause = settings_clause(
            {**_INSERT_SETTINGS, **json_batches.JSON_SETTINGS, "insert_deduplication_token": token}
        )
        return f"INSERT INTO {target} ({cols}) SETTINGS {clause} {shape.query(path)}"

    def best(make_sql: Callable[[], str]) -> float:
        rates = []
        for _ in range(reps):
            sql = make_sql()
            cpu = time.process_time()
            client.command(sql)
            rates.append(n / (time.process_time() - cpu))
        return max(rates)

    out: dict[str, float] = {}
    try:
        client.command(f"CREATE TABLE plain_{table} AS {table}")
        out["(a) parse: count() WHERE NOT ignore(*)"] = best(
            lambda: f"SELECT count() FROM {src} WHERE NOT ignore(*) SETTINGS {json_settings}"
        )
        out["(b) parse + throwIf checks"] = best(
            lambda: (
                f"SELECT count() FROM {src} WHERE throwIf({shape.problem}, 'bad') = 0 "
                f"AND NOT ignore(*) SETTINGS {json_settings}"
            )
        )
        out["(b') parse + checks + stored columns"] = best(
            lambda: (
                f"SELECT count() FROM ({shape.query(path)}) WHERE NOT ignore(*) "
                f"SETTINGS {json_settings}"
            )
        )
        out["(c) INSERT into a plain MergeTree copy"] = best(lambda: insert_sql(f"plain_{table}"))
        out["(d) INSERT into the table with its MVs"] = best(lambda: insert_sql(table))
        # The views reading this table (their SELECT names it after FROM).
        reads = re.compile(rf"\bFROM\s+(?:\S+\.)?`?{table}`?(?![\w.])")
        views = [
            name
            for name, create in client.query(
                "SELECT name, create_table_query FROM system.tables "
                "WHERE database = currentDatabase() AND engine = 'MaterializedView' ORDER BY name"
            ).result_rows
            if reads.search(create)
        ]
        for view in views:
            client.command(f"DETACH TABLE {view}")
        alone = best(lambda: insert_sql(table))
        out["(e) INSERT into the table, all MVs detached"] = alone
        # Each view alone (attached by itself; a view's own cascade, e.g. interactions_daily_mv
        # -> interactions_monthly_mv, comes with it): the same whatever order they are read in.
        for view in views:
            client.command(f"ATTACH TABLE {view}")
            with_view = best(lambda: insert_sql(table))
            client.command(f"DETACH TABLE {view}")
            out[f"  MV {view} alone: CPU ns per row"] = (1 / with_view - 1 / alone) * 1e9
        for view in views:
            client.command(f"ATTACH TABLE {view}")
    finally:
        Path(path).unlink()
        sink.close()
    return out


def main() -> None:
    """Run the benchmark and print/write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k records per type")
    parser.add_argument("--compare", action="store_true", help="also compare raw insert paths")
    parser.add_argument("--rows", type=int, default=None, help="records per type")
    parser.add_argument(
        "--runner", action="store_true", help="also raw Kafka values through the runner's path"
    )
    parser.add_argument(
        "--flush-every", type=int, default=None, help="runner mode: rows per flush (batch_rows)"
    )
    parser.add_argument(
        "--only-runner", action="store_true", help="the runner mode only (implies --runner)"
    )
    parser.add_argument(
        "--batch-records",
        type=int,
        default=None,
        help="runner mode: also from batch records (fact_batch / event_batch) of N items each",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=180,
        help="spread the records' instants over N days (the rollups get ~1 row per record at "
        "180, the default; a live batch covers minutes to a day)",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="chdb's own ceiling on the sink's JSONEachRow batch (parse, checks, inserts, MVs)",
    )
    args = parser.parse_args()
    n = args.rows or (20_000 if args.quick else 500_000)
    rng = random.Random(1)
    print(f"generating {n:,} facts and {n:,} interactions over {args.days} days ...", flush=True)
    facts = make_facts(n, rng, args.days)
    events = make_events(n, rng, args.days)
    # The pre-generated input (millions of long-lived objects) would make every cyclic-GC pass
    # of the measured code scan it; a live consumer holds one batch, not the whole input.
    gc.collect()
    gc.freeze()
    root = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    settings = ClickHouseSettings(url=f"chdb://{root}", database="bench_sink")
    results: dict[str, float] = {}
    inputs = (("facts", "b_f", facts), ("interactions", "b_i", events))
    if args.ceiling:
        tables = {"facts": "sla_facts", "interactions": "interactions"}
        for label, db, records in inputs:
            for name, value in _ceiling(
                settings.model_copy(update={"database": f"{db}_ceiling"}), tables[label], records
            ).items():
                results[f"{label} ceiling {name}"] = value
    if not args.only_runner and not args.ceiling:
        for label, db, records in inputs:
            wall, cpu = _through_sink(settings.model_copy(update={"database": db}), records)
            results[f"{label} add+flush rows/s (wall)"] = wall
            results[f"{label} add+flush rows/s (CPU)"] = cpu
    if args.runner or args.only_runner:
        every = args.flush_every or settings.batch_rows
        topics = {"facts": FACTS_TOPIC, "interactions": INTERACTIONS_TOPIC}
        for label, db, records in inputs:
            wall, cpu = _through_runner(
                settings.model_copy(update={"database": f"{db}_runner"}),
                topics[label],
                records,
                every,
            )
            results[f"{label} runner bytes->rows, flush/{every} (wall)"] = wall
            results[f"{label} runner bytes->rows, flush/{every} (CPU)"] = cpu
            if args.batch_records:
                per = args.batch_records
                wall, cpu = _through_runner(
                    settings.model_copy(update={"database": f"{db}_runner_batches"}),
                    topics[label],
                    records,
                    every,
                    per,
                )
                results[f"{label} runner batches of {per}->rows, flush/{every} (wall)"] = wall
                results[f"{label} runner batches of {per}->rows, flush/{every} (CPU)"] = cpu
    if args.compare:
        for name, value in _compare(settings.model_copy(update={"database": "b_f"}), facts).items():
            results[f"raw {name} rows/s (median of 5)"] = value
    print(f"\n{'measurement':<58} {'value':>12}")
    for name, value in results.items():
        print(f"{name:<58} {value:>12,.0f}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"sink-{stamp}.json"
    path.write_text(
        json.dumps(
            {"rows": n, "days": args.days, "batch_rows": settings.batch_rows, **results}, indent=2
        )
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
