"""The obligations table after random fact logs equals a plain fold written here (chdb).

Each log mixes every obligation fact kind (and a WARNING, which changes nothing stored),
obligations whose OPENED fact the sink never sees, retractions of the opening and of the
status, facts of one obligation spread over many flushes, and batch records whose items share
one Kafka offset. The reference below is this test's own per-fact fold, independent of
``sinks.clickhouse.obligations``, so a faster fold in the sink cannot drift from it unseen.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition

from schemas.base import encode
from schemas.batches import FACT_BATCH, join
from schemas.events import Channel
from schemas.facts import Fact, FactKind, ObligationKind, Outcome
from sinks.clickhouse import rows
from sinks.clickhouse.obligations import ObligationState
from sinks.clickhouse.sink import ClickHouseSink
from tests.integration.clickhouse.test_batch_records import Record, _runner

pytestmark = pytest.mark.integration

SinkFactory = Callable[..., ClickHouseSink]
FACTS_TOPIC = "sla-facts.v1"
T0 = datetime(2025, 5, 5, 8, tzinfo=UTC)
_STATUS_KINDS = (FactKind.BREACHED, FactKind.FULFILLED, FactKind.WAIVED)


def _log(rng: random.Random, n: int, retractions: bool) -> list[Fact]:
    """A random fact log of a few clients (one partition each in the feed). A flush holding a
    retraction takes the row path (its rollup key is looked up in Python): without them every
    flush takes the Arrow path."""
    facts: list[Fact] = []
    opened: list[tuple[str, str, str]] = []  # (obligation id, client, last status fact id)
    for i in range(n):
        at = T0 + timedelta(minutes=7 * i, microseconds=rng.randrange(1_000_000))
        roll = rng.random()
        base: dict[str, Any] = {"fact_id": f"f{i}", "at": at, "policy_id": "p",
                                "policy_version": rng.randint(1, 3)}  # fmt: skip
        if roll < 0.3 or not opened:
            client = f"c{rng.randrange(3)}"
            oid = f"o{i}"
            opened.append((oid, client, f"f{i}"))
            facts.append(Fact(
                kind=FactKind.OBLIGATION_OPENED, client_id=client, obligation_id=oid,
                obligation_kind=rng.choice(list(ObligationKind)), channel=Channel.EMAIL,
                thread_key=f"t{i}", deadline=at + timedelta(hours=4),
                opened_at=at - timedelta(seconds=rng.randrange(60)) if rng.random() < 0.5
                else None, **base))  # fmt: skip
            continue
        if roll < 0.36:  # an obligation whose OPENED fact the sink never saw (retention)
            oid, client = f"lost{i}", f"c{rng.randrange(3)}"
            kind = rng.choice([*_STATUS_KINDS, FactKind.DEADLINE_CHANGED])
        else:
            oid, client, status_fid = rng.choice(opened)
            kind = rng.choice([*_STATUS_KINDS, FactKind.DEADLINE_CHANGED, FactKind.WARNING,
                               *([FactKind.RETRACTED] * retractions)])  # fmt: skip
        extra: dict[str, Any] = {}
        if kind == FactKind.FULFILLED:
            took = rng.uniform(10, 9000)
            extra = {"outcome": rng.choice([Outcome.MET, Outcome.MET_LATE, None]),
                     "business_seconds": took, "calendar_seconds": took * 1.5,
                     "overage_business_seconds": rng.choice([None, took / 3]),
                     "fulfilled_by_channel": rng.choice([Channel.EMAIL, None]),
                     "fulfilled_at": rng.choice([at - timedelta(seconds=5), None])}  # fmt: skip
        elif kind == FactKind.DEADLINE_CHANGED:
            extra = {"deadline": at + timedelta(hours=rng.randint(1, 9))}
        elif kind == FactKind.WARNING:
            extra = {"warning_fraction": 0.8}
        elif kind == FactKind.RETRACTED:
            extra = {"retracts": rng.choice([_opened_fid(facts, oid), status_fid, "nothing"])}
        facts.append(Fact(kind=kind, client_id=client, obligation_id=oid, **base, **extra))
        if kind in _STATUS_KINDS or kind == FactKind.RETRACTED:
            opened = [(o, c, f"f{i}" if o == oid else s) for o, c, s in opened]
    return facts


def _opened_fid(facts: list[Fact], oid: str) -> str:
    return next(f.fact_id for f in facts if f.obligation_id == oid)


def _reference(log: list[tuple[Fact, int]]) -> dict[str, ObligationState]:
    """Each obligation's row after its facts in order: this test's own fold."""
    out: dict[str, dict[str, Any]] = {}
    for fact, offset in log:
        oid = fact.obligation_id
        if oid is None or fact.kind in (FactKind.WARNING,):
            continue
        row = out.get(oid)
        if fact.kind == FactKind.OBLIGATION_OPENED or row is None:
            if row is None and fact.kind == FactKind.RETRACTED:
                continue
            row = {"obligation_id": oid, "client_id": fact.client_id,
                   "thread_key": fact.thread_key, "kind": fact.obligation_kind or "",
                   "channel": fact.channel, "opened_at": fact.opened_at or fact.at,
                   "deadline": fact.deadline, "status": "open", "fulfilled_at": None,
                   "fulfilled_by_channel": None, "business_seconds": None,
                   "calendar_seconds": None, "overage_business_seconds": None,
                   "policy_id": fact.policy_id,
                   "opened_fact_id": fact.fact_id
                   if fact.kind == FactKind.OBLIGATION_OPENED else "",
                   "status_fact_id": fact.fact_id}  # fmt: skip
            out[oid] = row
        if fact.kind == FactKind.FULFILLED:
            row.update(status=fact.outcome or "met", status_fact_id=fact.fact_id,
                       fulfilled_at=fact.fulfilled_at or fact.at,
                       fulfilled_by_channel=fact.fulfilled_by_channel,
                       business_seconds=fact.business_seconds,
                       calendar_seconds=fact.calendar_seconds,
                       overage_business_seconds=fact.overage_business_seconds)  # fmt: skip
        elif fact.kind in (FactKind.BREACHED, FactKind.WAIVED):
            row.update(status=str(fact.kind), status_fact_id=fact.fact_id)
        elif fact.kind == FactKind.DEADLINE_CHANGED:
            row["deadline"] = fact.deadline or row["deadline"]
        elif fact.kind == FactKind.RETRACTED:
            if fact.retracts == row["opened_fact_id"]:
                row.update(status="retracted", status_fact_id=fact.fact_id)
            elif fact.retracts == row["status_fact_id"]:
                row.update(status="open", status_fact_id=fact.fact_id, fulfilled_at=None,
                           fulfilled_by_channel=None, business_seconds=None,
                           calendar_seconds=None, overage_business_seconds=None)  # fmt: skip
            else:
                continue  # retracts something that set nothing here: no new row
        row.update(policy_version=fact.policy_version, updated_at=fact.at, version=offset)
    return {
        oid: ObligationState(**{k: row[k] for k in ObligationState._fields})
        for oid, row in out.items()
    }


def _stored(sink: ClickHouseSink) -> dict[str, ObligationState]:
    result = sink.client.query(
        f"SELECT {', '.join(rows.OBLIGATION_COLUMNS)} FROM obligations FINAL"
    )
    states = (rows.obligation_from_row(row) for row in result.named_results())
    return {s.obligation_id: s for s in states}


@pytest.mark.parametrize(("seed", "retractions"), [(3, False), (17, False), (29, True)])
def test_random_fact_logs_fold_as_the_reference(
    sink_factory: SinkFactory, seed: int, retractions: bool
) -> None:
    rng = random.Random(seed)
    facts = _log(rng, 400, retractions)
    partition = {f"c{n}": n for n in range(3)}
    # Batch records of 1-6 items per partition; each item at its record's offset.
    streams: dict[int, list[Fact]] = {}
    for fact in facts:
        streams.setdefault(partition[fact.client_id], []).append(fact)
    records: list[tuple[int, int, list[Fact]]] = []  # (partition, offset, items)
    for part, items in streams.items():
        start, offset = 0, 0
        while start < len(items):
            size = rng.randint(1, 6)
            records.append((part, offset, items[start : start + size]))
            start, offset = start + size, offset + 1
    records.sort(key=lambda r: (r[1], r[0]))  # partitions interleaved, each in offset order
    expected = _reference([(f, offset) for _, offset, items in records for f in items])
    statuses = {"open", "met", "met_late", "breached", "waived"}
    assert {s.status for s in expected.values()} >= (
        statuses | {"retracted"} if retractions else statuses
    )

    sink = sink_factory()
    runner, _, letters = _runner(sink)
    for n, (part, offset, items) in enumerate(records, 1):
        value = join(FACT_BATCH, [encode(f) for f in items])
        runner._add(TopicPartition(FACTS_TOPIC, part), Record(offset, value))
        if n % rng.randint(5, 40) == 0:
            sink.flush()
    sink.flush()
    assert letters == []
    assert _stored(sink) == expected
