"""Batch records (``schemas.batches``) read by the processor's step: one log replayed as single
records and as batch records of the same partition order gives the same facts, dead letters and
states; an item off its partition, an invalid item and a wrong envelope are dead-lettered alone;
items sharing one offset are not mistaken for a redelivery."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest

from bench.engine import START, generate_realistic
from engine.core import Engine
from engine.state import ClientState
from schemas.base import encode
from schemas.batches import EVENT_BATCH, FACT_BATCH, join, partition_for, split
from schemas.deadletter import ITEM, ORIGIN, REASON
from schemas.events import Direction
from schemas.facts import Fact
from streams.step import (
    ClientUpdate,
    InRecord,
    OutRecord,
    ProcessorStep,
    ProcessorTopics,
    cut_by_bytes,
)
from streams.watermark import PartitionWatermarks
from tests.builders import ONE_MINUTE, SlaPolicy, policy_event
from tests.builders import email as email_event

pytestmark = pytest.mark.unit

TOPICS = ProcessorTopics.default("-b")
PARTITIONS = 3
LATENESS = timedelta(hours=1)
NOW = START + timedelta(days=40)  # the log's ten days read as a backlog, then live


# -- the log -----------------------------------------------------------------------------------


def key_of(client_id: str | None) -> bytes:
    return (client_id or "_unknown").encode()


def realistic_log() -> list[tuple[bytes, bytes]]:
    """(key, value) of a realistic log as it arrives: several clients' threads, replies and
    follow-ups, arrivals late within the allowed lateness (and a few beyond it), duplicates, a
    policy change mid-log, events without a client and a few invalid records."""
    rng = random.Random(5)
    events = sorted(generate_realistic(700, clients=12, days=10), key=lambda e: e.occurred_at)
    arrivals: list[tuple[Any, int, bytes, bytes]] = []
    for n, ev in enumerate(events):
        r = rng.random()
        delay = rng.uniform(0, 0.9) * LATENESS if r < 0.95 else LATENESS * rng.uniform(1, 3)
        value = encode(ev)
        arrivals.append((ev.occurred_at + delay, n, key_of(ev.client_id), value))
        if r > 0.98:  # read twice (an at-least-once producer)
            arrivals.append((ev.occurred_at + 2 * delay, n, key_of(ev.client_id), value))
    mid = events[len(events) // 2].occurred_at
    changed = policy_event("client-00001", mid, SlaPolicy(policy_id="std", version=3))
    arrivals.append((mid, -1, b"client-00001", encode(changed)))
    nobody = email_event("nobody", mid, Direction.INBOUND, client=None)
    arrivals.append((mid, -2, key_of(None), encode(nobody)))
    arrivals.append((mid, -3, b"client-00002", b'{"type":"email","client_id":"client-00002"}'))
    arrivals.append((mid, -4, b"client-00003", b'{"type":"call","client_id":"client-00003",'))
    arrivals.append((mid, -5, b"client-00004", b'"not an event"'))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    return [(key, value) for _, _, key, value in arrivals]


def by_partition(log: list[tuple[bytes, bytes]]) -> dict[int, list[tuple[bytes, bytes]]]:
    """Each record on the partition the default partitioner gives its key, in log order."""
    parts: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in log:
        parts.setdefault(partition_for(key, PARTITIONS), []).append((key, value))
    return parts


Rows = list[tuple[bytes, bytes]]


def is_json(value: bytes) -> bool:
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return True


def cut(rows: Rows, size: int) -> list[tuple[bool, Rows]]:
    """The partition's rows in groups of up to ``size`` events, each group one batch record
    (True: a single record: a row that is not JSON cannot be an item, it stays on its own)."""
    groups: list[tuple[bool, Rows]] = []
    for key, value in rows:
        if not is_json(value):
            groups.append((True, [(key, value)]))
        elif groups and not groups[-1][0] and len(groups[-1][1]) < size:
            groups[-1][1].append((key, value))
        else:
            groups.append((False, [(key, value)]))
    return groups


def both_ways(
    parts: dict[int, Rows], size: int
) -> tuple[list[list[InRecord]], list[list[InRecord]]]:
    """The processor's batches reading the log as single records and as batch records of
    ``size`` events: the n-th holds, of each partition in turn, the n-th batch record (or the
    single records of its events). Offsets from 0 on each, Kafka's log end the partition's."""
    single_runs: list[list[InRecord]] = []
    batch_runs: list[list[InRecord]] = []
    for p in sorted(parts):
        groups = cut(parts[p], size)
        end = len(parts[p])
        offset = 0
        for n, (single, rows) in enumerate(groups):
            if n == len(single_runs):
                single_runs.append([])
                batch_runs.append([])
            for key, value in rows:
                single_runs[n].append(InRecord(TOPICS.interactions, p, offset, key, value, end))
                offset += 1
            value = rows[0][1] if single else join(EVENT_BATCH, [v for _, v in rows])
            batch_runs[n].append(
                InRecord(TOPICS.interactions, p, n, rows[0][0], value, len(groups))
            )
    return single_runs, batch_runs


# -- a worker without Kafka --------------------------------------------------------------------


def new_step(lateness: timedelta) -> ProcessorStep:
    return ProcessorStep(
        Engine(allowed_lateness=lateness),
        TOPICS,
        watermarks=PartitionWatermarks(timedelta(seconds=10)),
        partitions=PARTITIONS,
    )


@dataclass
class Worker:
    """A step with its state table, fed runs one after the other; what it produced, kept."""

    step: ProcessorStep = field(default_factory=lambda: new_step(LATENESS))
    table: dict[bytes, bytes] = field(default_factory=dict)
    produced: list[OutRecord] = field(default_factory=list)

    def load(self, anchor: InRecord) -> ClientState | None:
        raw = self.table.get(anchor.key or b"")
        return ClientState.from_bytes(raw) if raw else None

    def store(self, update: ClientUpdate) -> None:
        if update.state is not None:
            self.table[update.key] = update.state.to_bytes()

    async def feed(self, batches: Sequence[Sequence[InRecord]]) -> None:
        for n, batch in enumerate(batches):
            now = NOW + timedelta(seconds=n)  # the clock moves a second per batch
            result = self.step.run(batch, self.load, now)

            async def send(_record: OutRecord) -> Any:
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                done.set_result(None)
                return done

            await self.step.commit(result, send, self.store)
            self.produced += result.produce

    def on(self, topic: str) -> list[OutRecord]:
        """What went to ``topic``, batch records (output for batch inputs) as their items, each
        keyed by its client as its single record would be."""
        out = []
        for r in self.produced:
            if r.topic != topic:
                continue
            found = split(r.value) if topic in (TOPICS.facts, TOPICS.accepted) else None
            if found is None:
                out.append(r)
                continue
            for item in found[1]:
                out.append(OutRecord(r.topic, key_of(orjson.loads(item).get("client_id")), item))
        return out

    def facts_per_client(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for record in self.on(TOPICS.facts):
            fact = Fact.model_validate_json(record.value)
            out.setdefault(fact.client_id, []).append(fact.fact_id)
        return out

    def dead(self) -> list[tuple[bytes, bytes]]:
        """(value, reason) of every dead letter, in order."""
        return [(r.value, dict(r.headers or [])[REASON]) for r in self.on(TOPICS.dlq)]

    def states(self) -> dict[bytes, bytes]:
        """The stored states, the Kafka position left out (offsets differ between the logs)."""
        out = {}
        for key, raw in self.table.items():
            state = ClientState.from_bytes(raw)
            state.position = -1
            out[key] = state.to_bytes()
        return out


def per_key(records: Sequence[OutRecord]) -> dict[bytes | None, list[bytes]]:
    """The values of ``records`` per key, in order."""
    out: dict[bytes | None, list[bytes]] = {}
    for r in records:
        out.setdefault(r.key, []).append(r.value)
    return out


# -- one log, both ways ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parts() -> dict[int, Rows]:
    return by_partition(realistic_log())


async def _replay(runs: list[list[InRecord]]) -> Worker:
    worker = Worker()
    await worker.feed(runs)
    return worker


@pytest.mark.parametrize("size", [1, 7, 50, 100_000])
async def test_a_log_read_as_batch_records_gives_what_single_records_give(
    parts: dict[int, Rows], size: int
) -> None:
    # 100_000: the whole log (of a partition) in one batch record, bar the one broken record.
    single_runs, batch_runs = both_ways(parts, size)
    one = await _replay(single_runs)  # the same events per processor batch
    many = await _replay(batch_runs)

    expected = one.facts_per_client()
    assert len(expected) >= 10  # a real log
    assert sum(map(len, expected.values())) > 500
    assert many.facts_per_client() == expected
    # accepted: the same records in the same order per client (batch output groups a processor
    # batch's records per destination partition, so clients of other partitions interleave
    # differently; a topic keeps order per partition, never across)
    assert per_key(many.on(TOPICS.accepted)) == per_key(one.on(TOPICS.accepted))
    assert [(r.key, r.value) for r in many.on(TOPICS.alerts)] == [
        (r.key, r.value) for r in one.on(TOPICS.alerts)
    ]
    dead = one.dead()
    assert len(dead) >= 3  # the invalid records, and what the engine refused
    assert many.dead() == dead
    assert many.states() == one.states()
    s1, s2 = one.step.stats, many.step.stats
    assert (s2.events_in, s2.events_invalid, s2.dead_letters) == (
        s1.events_in,
        s1.events_invalid,
        s1.dead_letters,
    )
    assert (s1.events_unassigned, s2.events_unassigned) == (1, 1)
    assert s1.batches_in == 0
    assert s2.batches_in == sum(len(run) for run in batch_runs) - 1  # the broken single


async def test_dead_letters_of_items_name_their_batch_record_and_index(
    parts: dict[int, list[tuple[bytes, bytes]]],
) -> None:
    batch_runs = both_ways(parts, 40)[1]
    records = {(r.partition, r.offset): r for run in batch_runs for r in run}
    worker = await _replay(batch_runs)
    items = [r for r in worker.on(TOPICS.dlq) if ITEM in dict(r.headers or [])]
    assert items
    for letter in items:
        headers = dict(letter.headers or [])
        topic, partition, offset = headers[ORIGIN].decode().rsplit("/", 2)
        assert topic == TOPICS.interactions
        record = records[int(partition), int(offset)]
        found = split(record.value)
        assert found is not None
        assert found[1][int(headers[ITEM])] == letter.value  # the item's own bytes


# -- items and envelopes -----------------------------------------------------------------------


def step() -> Worker:
    """A worker whose engine allows no lateness: facts as soon as the clock passes."""
    return Worker(new_step(timedelta(0)))


def inbound(client_id: str, name: str, minutes_ago: float = 5) -> bytes:
    at = NOW - timedelta(minutes=minutes_ago)
    return encode(email_event(f"{name}-{client_id}", at, Direction.INBOUND, client=client_id))


def policy(client_id: str) -> bytes:
    at = NOW - timedelta(hours=2)
    return encode(policy_event(client_id, at, ONE_MINUTE, event_id=f"pol-{client_id}"))


def clients_on(partition: int, count: int) -> list[str]:
    """``count`` client ids the default partitioner puts on ``partition``."""
    names = (f"c{n}" for n in range(1000))
    return [c for c in names if partition_for(c.encode(), PARTITIONS) == partition][:count]


def record(partition: int, value: bytes, key: bytes | None = None, offset: int = 0) -> InRecord:
    return InRecord(TOPICS.interactions, partition, offset, key, value, offset + 1)


async def test_an_item_off_its_partition_is_dead_lettered_alone() -> None:
    [here] = clients_on(0, 1)
    [there] = clients_on(1, 1)
    items = [policy(here), inbound(there, "stray"), inbound(here, "in")]
    worker = step()
    await worker.feed([[record(0, join(EVENT_BATCH, items), here.encode(), offset=7)]])

    [letter] = worker.on(TOPICS.dlq)
    headers = dict(letter.headers or [])
    assert (letter.key, letter.value) == (there.encode(), items[1])
    reason = headers[REASON].decode()
    assert reason.startswith("<key>: item 1 of a batch record on partition 0")
    assert "belongs on partition 1 of 3" in reason
    assert (headers[ORIGIN], headers[ITEM]) == (f"{TOPICS.interactions}/0/7".encode(), b"1")
    assert worker.step.stats.dead_letters == {"mis_keyed": 1}
    assert set(worker.facts_per_client()) == {here}  # the rest of the batch was processed
    assert set(worker.table) == {here.encode()}


async def test_an_invalid_item_in_the_middle_of_a_batch_leaves_the_rest_processed() -> None:
    a, b = clients_on(2, 2)
    bad = inbound(a, "bad").replace(b'"inbound"', b'"sideways"')
    items = [policy(a), policy(b), inbound(a, "in"), bad, inbound(b, "in")]
    worker = step()
    await worker.feed([[record(2, join(EVENT_BATCH, items), b"whatever", offset=3)]])

    [letter] = worker.on(TOPICS.dlq)
    headers = dict(letter.headers or [])
    assert letter.value == bad
    assert headers[ITEM] == b"3"
    assert b"direction" in headers[REASON]
    # Both clients' states live under their own ids, not the batch record's key.
    assert set(worker.table) == {a.encode(), b.encode()}
    assert {r.key for r in worker.on(TOPICS.facts)} == {a.encode(), b.encode()}
    assert [r.value for r in worker.on(TOPICS.accepted)] == [items[2], items[4]]
    stats = worker.step.stats
    assert (stats.events_in, stats.batches_in, stats.events_invalid) == (5, 1, 1)


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        (b'{"schema_version":2,"type":"event_batch","events":[{}]}', "schema_version:"),
        (b'{"schema_version":1,"type":"event_batch","events":[]}', "events:"),
        (b'{"schema_version":1,"type":"event_batch","events":[],"x":1}', "x: unknown field"),
        (join(FACT_BATCH, [b"{}"]), "type: a fact_batch is not input"),
    ],
)
async def test_a_record_with_a_wrong_envelope_is_dead_lettered_whole(
    envelope: bytes, reason: str
) -> None:
    [a] = clients_on(0, 1)
    worker = step()
    await worker.feed([[record(0, envelope, b"k", 0), record(0, policy(a), a.encode(), 1)]])
    [letter] = worker.on(TOPICS.dlq)
    headers = dict(letter.headers or [])
    assert (letter.key, letter.value) == (b"k", envelope)
    assert headers[REASON].decode().startswith(reason)
    assert ITEM not in headers
    assert set(worker.table) == {a.encode()}  # the next record was read
    stats = worker.step.stats
    assert (stats.events_in, stats.batches_in, stats.events_invalid) == (2, 1, 1)


# -- a crash and the items of one offset -------------------------------------------------------


async def test_items_of_one_record_are_not_taken_for_a_redelivery_and_a_replay_adds_nothing() -> (
    None
):
    [a] = clients_on(1, 1)
    first = [record(1, join(EVENT_BATCH, [policy(a), inbound(a, "live", 1)]), a.encode(), 4)]
    fresh = inbound(a, "live-2", minutes_ago=0.5)
    too_old = inbound(a, "old", minutes_ago=20 * 24 * 60)  # beyond the duplicate window
    second = [record(1, join(EVENT_BATCH, [fresh, too_old]), a.encode(), offset=5)]

    def worker(table: dict[bytes, bytes]) -> Worker:
        """A worker process started on the stored states ``table``."""
        started = step()
        started.step.history_gap = timedelta(days=30)  # not held: the clock moves it on
        started.table = dict(table)
        return started

    one = worker({})
    await one.feed([first])
    stored_then, sent_then = dict(one.table), len(one.produced)
    await one.feed([second])
    # The old item is new input (an item after one applied in the same record is not a
    # redelivery): refused as its single record would be, not skipped.
    [letter] = one.on(TOPICS.dlq)
    assert (letter.value, dict(letter.headers or [])[ITEM]) == (too_old, b"1")
    assert b"duplicate window" in dict(letter.headers or [])[REASON]
    assert one.step.stats.redelivered == 0

    # Killed before the second record's states were stored: the next worker reads it again
    # and does what the first did.
    before = worker(stored_then)
    await before.feed([second])
    assert before.produced == one.produced[sent_then:]
    assert before.on(TOPICS.facts)  # the fresh item's facts, the same ids again

    # Killed after they were stored, before the offsets were committed: nothing again (the
    # fresh item a duplicate by id, the old one known by its offset).
    after = worker(one.table)
    await after.feed([second])
    assert after.produced == []
    assert after.step.stats.redelivered == 1


def test_a_faust_batch_is_cut_into_steps_by_bytes_in_order() -> None:
    values = [b"x" * n for n in (300, 300, 500, 2_000, 10, 10, 990)]
    records = [record(0, v, offset=i) for i, v in enumerate(values)]
    parts = list(cut_by_bytes(records, 1_000))
    # in order, nothing lost, each part within the budget unless one record alone is larger
    assert [r for part in parts for r in part] == records
    assert [[r.offset for r in part] for part in parts] == [[0, 1], [2], [3], [4, 5], [6]]
    assert all(sum(len(r.value or b"") for r in p) <= 1_000 or len(p) == 1 for p in parts)
    assert list(cut_by_bytes([], 1_000)) == []
