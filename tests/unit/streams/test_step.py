"""The processor's pure step without Kafka: dead letters, ticks, engine errors, backlog watermarks,
per-client order, and the crash-safety order of produce, acknowledge, then store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.core import Engine
from engine.replay import replay
from engine.state import ClientState
from schemas.base import encode
from schemas.calendars import BusinessCalendar
from schemas.deadletter import ORIGIN, REASON, SOURCE
from schemas.events import Direction
from schemas.facts import Fact, FactKind, Outcome
from shinrai.errors import EngineError, ValidationFailed
from streams.deadline_index import DeadlineIndex
from streams.dlq import Rejected, decode_input
from streams.step import (
    ClientUpdate,
    InRecord,
    OutRecord,
    ProcessorStep,
    ProcessorTopics,
    StepResult,
)
from streams.watermark import PartitionWatermarks
from tests.builders import ALWAYS_OPEN, ONE_MINUTE, policy_event
from tests.builders import email as email_event

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
TOPICS = ProcessorTopics.default("-t")


# -- builders ----------------------------------------------------------------------------------


def policy(client_id: str, at: datetime, calendar: BusinessCalendar = ALWAYS_OPEN) -> bytes:
    """The 1-minute, 24x7 policy in force for ``client_id`` from a second before ``at`` on."""
    at -= timedelta(seconds=1)
    eid = f"pol-{client_id}-{at.isoformat()}-{calendar.calendar_id}"
    return encode(policy_event(client_id, at, ONE_MINUTE, calendar, event_id=eid))


def email(client_id: str | None, at: datetime, direction: Direction, name: str) -> bytes:
    return encode(email_event(name, at, direction, client=client_id))


IN = Direction.INBOUND


def inbound(client_id: str | None, at: datetime, name: str = "in") -> bytes:
    return email(client_id, at, Direction.INBOUND, f"{name}-{client_id}")


def reply(client_id: str, at: datetime, name: str = "out") -> bytes:
    return email(client_id, at, Direction.OUTBOUND, f"{name}-{client_id}")


class Log:
    """Records of a few partitions with increasing offsets, and a fixed log end per partition."""

    def __init__(self, highwater: int | None = None) -> None:
        self.highwater = highwater  # None: Kafka's log end not known (counts as caught up)
        self.offsets: dict[int, int] = {}

    def record(self, key: bytes | None, value: bytes | None, partition: int = 0) -> InRecord:
        offset = self.offsets.get(partition, 0)
        self.offsets[partition] = offset + 1
        high = self.highwater if self.highwater is not None else offset + 1
        return InRecord(TOPICS.interactions, partition, offset, key, value, high)


def opening(log: Log, client_id: str, at: datetime, partition: int = 0) -> list[InRecord]:
    """The 1-minute policy of ``client_id``, then an inbound e-mail at ``at`` (opens a thread)."""
    key = client_id.encode()
    return [
        log.record(key, policy(client_id, at), partition),
        log.record(key, inbound(client_id, at), partition),
    ]


def tick(client_id: str, partition: int = 0) -> InRecord:
    return InRecord(TOPICS.ticks, partition, 0, client_id.encode(), b'{"due":"x"}')


class Table:
    """The state table as the adapter keeps it: bytes per key, read per anchor."""

    def __init__(self) -> None:
        self.raw: dict[bytes, bytes] = {}
        self.reads: list[InRecord] = []

    def load(self, anchor: InRecord) -> ClientState | None:
        self.reads.append(anchor)
        raw = self.raw.get(anchor.key or b"")
        return ClientState.from_bytes(raw) if raw else None

    def store(self, update: ClientUpdate) -> None:
        if update.state is not None:
            self.raw[update.key] = update.state.to_bytes()


def new_step(engine: Engine | None = None) -> ProcessorStep:
    engine = engine or Engine(allowed_lateness=timedelta(0))
    return ProcessorStep(engine, TOPICS, watermarks=PartitionWatermarks(timedelta(seconds=10)))


def facts(result: StepResult) -> list[Fact]:
    return [Fact.model_validate_json(r.value) for r in result.on(TOPICS.facts)]


def kinds(result: StepResult) -> list[FactKind]:
    return [f.kind for f in facts(result)]


async def run_and_commit(
    step: ProcessorStep, table: Table, batch: Sequence[InRecord], now: datetime = NOW
) -> StepResult:
    """One batch end to end, with a producer that acknowledges everything at once."""
    result = step.run(batch, table.load, now)

    async def send(_record: OutRecord) -> Any:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    await step.commit(result, send, table.store)
    return result


# -- dead letters ------------------------------------------------------------------------------


def test_a_mis_keyed_event_is_dead_lettered_with_its_original_bytes() -> None:
    step, table, log = new_step(), Table(), Log()
    value = inbound("acme", NOW - timedelta(seconds=5))
    result = step.run([log.record(b"globex", value, partition=2)], table.load, NOW)

    [letter] = result.produce
    assert letter.topic == TOPICS.dlq
    assert (letter.key, letter.value) == (b"globex", value)
    headers = dict(letter.headers or [])
    assert headers[REASON].startswith(b"<key>: message key b'globex' must equal client_id")
    assert headers[ORIGIN] == f"{TOPICS.interactions}/2/0".encode()
    assert headers[SOURCE] == b"worker"
    assert result.updates == []
    assert table.reads == []
    assert (step.stats.events_in, step.stats.events_invalid) == (1, 1)


def test_undecodable_input_is_dead_lettered_and_the_client_goes_on() -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(minutes=2)
    batch = [
        log.record(b"acme", policy("acme", t)),
        log.record(b"acme", b"\xff not json"),
        log.record(b"acme", None),
        log.record(b"acme", inbound("acme", t)),
    ]
    result = step.run(batch, table.load, NOW)

    letters = result.on(TOPICS.dlq)
    assert [r.value for r in letters] == [b"\xff not json", b""]
    reasons = [dict(r.headers or [])[REASON] for r in letters]
    assert reasons[0].startswith(b"<root>: Invalid JSON")
    assert reasons[1] == b"<root>: empty message (no value)"
    assert FactKind.BREACHED in kinds(result)  # the valid events around them were processed
    assert (step.stats.events_in, step.stats.events_invalid) == (4, 2)


def test_an_event_without_a_client_is_counted_and_kept_out_of_any_state() -> None:
    step, table, log = new_step(), Table(), Log()
    result = step.run([log.record(None, inbound(None, NOW))], table.load, NOW)
    assert result.produce == []
    assert result.updates == []
    assert step.stats.events_unassigned == 1


# -- ticks -------------------------------------------------------------------------------------


def test_a_tick_for_a_client_without_state_produces_nothing_and_leaves_nothing_due() -> None:
    step, table = new_step(), Table()
    result = step.run([tick("ghost", partition=1)], table.load, NOW)
    assert result.produce == []
    assert result.states == {"ghost": (tick("ghost", partition=1), None)}
    assert result.due == {"ghost": (None, 1)}
    assert [r.key for r in table.reads] == [b"ghost"]
    assert (step.stats.ticks_in, step.stats.events_in) == (1, 0)


async def test_a_tick_fires_what_has_come_due_since_the_last_batch() -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(seconds=10)
    first = await run_and_commit(step, table, opening(log, "acme", t))
    assert kinds(first) == [FactKind.OBLIGATION_OPENED]
    [(due, partition)] = first.due.values()
    assert (due, partition) == (t + timedelta(seconds=30), 0)  # the 50% warning

    later = step.run([tick("acme")], table.load, NOW + timedelta(minutes=1))
    assert FactKind.BREACHED in kinds(later)
    assert [r.topic for r in later.produce].count(TOPICS.alerts) >= 1  # a breach pages


def partition_tick(partition: int) -> InRecord:
    """A partition tick as the timer sends it: no key, the partition named."""
    value = b'{"due":"2026-03-04T12:00:00+00:00","partition":%d}' % partition
    return InRecord(TOPICS.ticks, partition, 0, None, value)


def indexed_step(table: Table) -> tuple[ProcessorStep, DeadlineIndex, Callable[..., Any]]:
    """A step that asks a real deadline index for due clients, and a store that feeds it."""
    index = DeadlineIndex()
    step = ProcessorStep(
        Engine(allowed_lateness=timedelta(0)),
        TOPICS,
        watermarks=PartitionWatermarks(timedelta(seconds=10)),
        due_clients=index.take_due,
    )

    def store(update: ClientUpdate) -> None:
        table.store(update)
        index.update(update.client_id, update.due, update.partition)

    return step, index, store


async def test_a_partition_tick_advances_every_due_client_of_its_partition_only() -> None:
    table, log = Table(), Log()
    step, index, store = indexed_step(table)
    t = NOW - timedelta(seconds=50)
    opened = step.run(
        opening(log, "acme", t) + opening(log, "initech", t) + opening(log, "globex", t, 1),
        table.load,
        NOW,
    )
    await step.commit(opened, _acked, store)
    later = NOW + timedelta(minutes=1)
    assert sorted(index.take_due(0, later)) == ["acme", "initech"]

    result = step.run([partition_tick(0)], table.load, later)
    breached = {f.client_id for f in facts(result) if f.kind is FactKind.BREACHED}
    assert breached == {"acme", "initech"}  # globex lives on partition 1: not this tick's
    # Each state read and stored under its own key, on the tick's partition.
    assert {(u.key, u.partition) for u in result.updates} == {(b"acme", 0), (b"initech", 0)}
    await step.commit(result, _acked, store)
    assert index.take_due(0, later) == []
    assert index.take_due(1, later) == ["globex"]
    assert step.run([partition_tick(0)], table.load, later).produce == []  # nothing due: no-op


async def test_a_batch_of_a_live_partition_advances_its_due_clients_without_a_tick() -> None:
    table, log = Table(), Log()
    step, index, store = indexed_step(table)
    t = NOW - timedelta(seconds=50)
    await step.commit(step.run(opening(log, "acme", t), table.load, NOW), _acked, store)
    later = NOW + timedelta(minutes=1)
    other = log.record(b"initech", policy("initech", later))  # another client's record
    result = step.run([other], table.load, later)
    assert FactKind.BREACHED in [f.kind for f in facts(result) if f.client_id == "acme"]
    await step.commit(result, _acked, store)
    assert index.due_of("acme") is None or index.due_of("acme") > later
    assert index.pop_due(later) == []  # nothing left for the timer


async def test_a_backlog_partition_leaves_its_due_clients_to_their_own_events() -> None:
    table, log = Table(), Log(highwater=1000)  # far from the log end: a backlog
    step, index, store = indexed_step(table)
    t = NOW - timedelta(seconds=50)
    await step.commit(step.run(opening(log, "acme", t), table.load, NOW), _acked, store)
    assert step.marks.catching_up(0, NOW)
    assert index.take_due(0, NOW) == ["acme"]  # due by the wall clock ...
    other = log.record(b"initech", policy("initech", t))
    result = step.run([other, partition_tick(0)], table.load, NOW)
    assert [u.client_id for u in result.updates] == ["initech"]  # ... yet not advanced


async def _acked(_record: OutRecord) -> Any:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


# -- engine errors -----------------------------------------------------------------------------


NOWHERE = BusinessCalendar(calendar_id="nowhere", timezone="UTC", holiday_country="ZZ")


async def _late_bad_policy(step: ProcessorStep, table: Table, log: Log) -> InRecord:
    """acme with an open obligation, then the record of a late policy change whose calendar
    names a country ``holidays`` lacks: applied at once (late), the engine raises EngineError."""
    t = NOW - timedelta(minutes=10)
    await run_and_commit(step, table, opening(log, "acme", t))
    return log.record(b"acme", policy("acme", t + timedelta(seconds=1), NOWHERE))


async def test_an_input_the_engine_rejects_is_dead_lettered_and_the_batch_goes_on() -> None:
    step, table, log = new_step(), Table(), Log()
    bad = await _late_bad_policy(step, table, log)
    others = opening(log, "globex", NOW - timedelta(minutes=2), partition=1)
    result = step.run([bad, *others], table.load, NOW)

    [letter] = result.on(TOPICS.dlq)
    assert letter.value == bad.value
    assert letter.key == b"acme"
    headers = dict(letter.headers or [])
    assert headers[REASON].startswith(b"<engine>: client acme, event pol-acme-")
    assert b"calendar 'nowhere': no public holidays for 'ZZ'" in headers[REASON]
    assert headers[ORIGIN] == f"{TOPICS.interactions}/0/2".encode()
    assert [u.client_id for u in result.updates] == ["acme", "globex"]
    assert FactKind.BREACHED in [f.kind for f in facts(result) if f.client_id == "globex"]
    assert step.stats.events_invalid == 1


async def test_an_input_the_engine_rejects_leaves_the_state_as_it_was() -> None:
    step, table, log = new_step(), Table(), Log()
    bad = await _late_bad_policy(step, table, log)
    answer = log.record(b"acme", reply("acme", NOW - timedelta(minutes=1)))
    result = step.run([bad, answer], table.load, NOW)
    [update] = result.updates
    assert update.state is not None
    assert update.state.calendar == ALWAYS_OPEN
    assert len(result.on(TOPICS.dlq)) == 1  # the answer is applied, not rejected as well


class _Broken(Engine):
    """An engine with a bug: ``apply`` raises ``error`` for the event named ``poison``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(allowed_lateness=timedelta(0))
        self.error = error

    def apply(self, state: Any, event: Any) -> Any:
        if event.event_id.startswith("poison"):
            raise self.error
        return super().apply(state, event)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("a bug"),
        KeyError("a bug"),
        ValidationFailed("not the engine's error", errors=[("x", "bad")]),
    ],
    ids=["runtime", "key", "shinrai-but-not-engine"],
)
def test_a_bug_is_not_disguised_as_bad_input(error: Exception) -> None:
    step, table, log = new_step(_Broken(error)), Table(), Log()
    batch = [log.record(b"acme", email("acme", NOW, Direction.INBOUND, "poison-1"))]
    with pytest.raises(type(error)):
        step.run(batch, table.load, NOW)
    assert step.stats.events_invalid == 0  # nothing dead-lettered: the batch fails, and retries


def test_only_an_engine_error_is_dead_lettered() -> None:
    step, table, log = new_step(_Broken(EngineError("cannot apply"))), Table(), Log()
    batch = [
        log.record(b"acme", policy("acme", NOW - timedelta(seconds=5))),
        log.record(b"acme", email("acme", NOW, Direction.INBOUND, "poison-1")),
    ]
    result = step.run(batch, table.load, NOW)
    [letter] = result.produce
    assert letter.topic == TOPICS.dlq
    assert dict(letter.headers or [])[REASON] == b"<engine>: cannot apply"
    assert [u.client_id for u in result.updates] == ["acme"]  # the policy change still stands


# -- watermarks --------------------------------------------------------------------------------


async def test_a_backlog_is_processed_in_event_time_not_on_the_wall_clock() -> None:
    step, table, log = new_step(), Table(), Log(highwater=1000)  # far from the log end
    t0 = NOW - timedelta(days=3)
    first = await run_and_commit(
        step,
        table,
        [*opening(log, "acme", t0), *opening(log, "initech", t0 + timedelta(seconds=25))],
    )
    # The watermark is the event time read (about t0), not NOW: the 1-minute SLA still runs.
    assert [f.kind for f in facts(first) if f.client_id == "acme"] == [FactKind.OBLIGATION_OPENED]
    assert step.stats.partitions_catching_up == 1
    mark = step.marks.watermark(0, NOW)
    assert mark is not None
    assert mark < NOW - timedelta(days=2)
    # Its 50% warning (t0 + 30 s) waits while the partition's history keeps coming.
    assert first.due["acme"] == (NOW + step.marks.gap, 0)
    assert step.stats.clients_held == 2

    # The answer is among the next records of the log: on time, as a replay would have it.
    answer = log.record(b"acme", reply("acme", t0 + timedelta(seconds=20)))
    more = log.record(b"initech", email("initech", t0 + timedelta(minutes=2), IN, "in-2"))
    second = await run_and_commit(step, table, [answer, more])
    assert [f.kind for f in facts(second) if f.client_id == "acme"] == [FactKind.FULFILLED]


async def test_recent_records_read_live_are_advanced_to_the_clock() -> None:
    step, table, log = new_step(), Table(), Log()  # every record is the log end
    t0 = NOW - timedelta(minutes=30)  # a lagging integration: late, not history
    result = await run_and_commit(step, table, opening(log, "acme", t0))
    assert kinds(result)[:2] == [FactKind.OBLIGATION_OPENED, FactKind.WARNING]
    assert FactKind.BREACHED in kinds(result)
    assert step.stats.partitions_catching_up == step.stats.clients_held == 0


async def test_history_read_live_is_held_in_event_time_then_the_clock_rules() -> None:
    # History trickled into a running worker: the partition is live (every record is the log
    # end), but a client's history must not be advanced to the clock between its records.
    step, table, log = new_step(), Table(), Log()
    t0 = NOW - timedelta(days=3)
    later = t0 + timedelta(hours=1)
    key = b"acme"
    trickle = [
        opening(log, "acme", t0),
        [log.record(key, email("acme", t0 + timedelta(seconds=40), Direction.OUTBOUND, "o1"))],
        [log.record(key, inbound("acme", later, "in2"))],  # never answered
    ]
    got: list[Fact] = []
    clock = NOW
    for batch, pending in zip(trickle, (True, False, True), strict=True):
        result = await run_and_commit(step, table, batch, clock)
        got += facts(result)
        assert FactKind.BREACHED not in kinds(result)  # the clock never reaches the history
        assert step.stats.clients_held == 1
        # What is due waits for the hold to end (nothing is due once the reply is in).
        assert result.due["acme"][0] == (clock + step.marks.gap if pending else None)
        clock += timedelta(seconds=1)
    end_of_hold = clock - timedelta(seconds=1) + step.marks.gap
    ticked = await run_and_commit(step, table, [tick("acme")], end_of_hold)
    got += facts(ticked)
    assert step.stats.clients_held == 0
    # Exactly what a replay of the three records gives: the 50% warning at its instant, the
    # reply in time (met), the second obligation breached at its own deadline.
    assert [(f.kind, f.outcome, f.at) for f in got] == [
        (FactKind.OBLIGATION_OPENED, None, t0),
        (FactKind.WARNING, None, t0 + timedelta(seconds=30)),
        (FactKind.FULFILLED, Outcome.MET, t0 + timedelta(seconds=40)),
        (FactKind.OBLIGATION_OPENED, None, later),
        (FactKind.WARNING, None, later + timedelta(seconds=30)),
        (FactKind.WARNING, None, later + timedelta(seconds=45)),
        (FactKind.WARNING, None, later + timedelta(seconds=54)),
        (FactKind.BREACHED, None, later + timedelta(minutes=1)),
    ]


def test_implausible_dates_are_dead_lettered_and_move_no_watermark() -> None:
    step, table, log = new_step(), Table(), Log(highwater=1000)
    t0 = NOW - timedelta(days=20)
    batch = [
        *opening(log, "acme", t0),
        log.record(b"acme", inbound("acme", NOW + timedelta(days=3650))),  # a wrong clock
        log.record(b"acme", inbound("acme", NOW - timedelta(days=4000))),  # beyond the horizon
        log.record(b"acme", inbound("acme", NOW + timedelta(minutes=5))),  # within the skew
    ]
    result = step.run(batch, table.load, NOW)
    reasons = [dict(r.headers or [])[REASON] for r in result.on(TOPICS.dlq)]
    assert len(reasons) == 2
    assert reasons[0].startswith(b"occurred_at: 2036-")
    assert b"worker.max_future_skew_s" in reasons[0]
    assert b"worker.max_event_age_days" in reasons[1]
    assert step.stats.dead_letters == {"future": 1, "beyond_horizon": 1}
    assert step.stats.events_invalid == 2
    assert step.marks.catching_up(0, NOW)
    assert step.marks.watermark(0, NOW) == t0  # the two plausible events; no outlier


def test_a_backlog_that_starts_with_policy_changes_advances_nobody() -> None:
    step, table, log = new_step(), Table(), Log(highwater=1000)
    result = step.run(
        [log.record(b"acme", policy("acme", NOW - timedelta(days=3)))], table.load, NOW
    )
    [update] = result.updates
    assert update.state is not None
    assert update.state.processed_until is None
    assert step.marks.watermark(0, NOW) is None


def test_timers_fire_at_their_own_instants_within_a_backlog_batch() -> None:
    # One batch of a backlog: acme's breach (t0 + 1 min) lies before the event time the batch
    # reads up to (other clients' events minutes later), so it fires, at its own instant.
    step, table, log = new_step(), Table(), Log(highwater=1000)
    t0 = NOW - timedelta(days=3)
    later = [
        log.record(b"initech", email("initech", t0 + timedelta(minutes=m), IN, f"in-{m}"))
        for m in (5, 6, 7)
    ]
    result = step.run([*opening(log, "acme", t0), *later], table.load, NOW)
    breach = next(f for f in facts(result) if f.kind is FactKind.BREACHED)
    assert (breach.client_id, breach.at) == ("acme", t0 + timedelta(minutes=1))


# -- order -------------------------------------------------------------------------------------


def test_each_client_is_read_once_and_its_inputs_applied_in_arrival_order() -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(seconds=40)
    batch = [
        log.record(b"acme", policy("acme", t), partition=0),
        log.record(b"globex", policy("globex", t), partition=1),
        log.record(b"acme", inbound("acme", t), partition=0),
        log.record(b"globex", inbound("globex", t), partition=1),
        log.record(b"acme", reply("acme", t + timedelta(seconds=10)), partition=0),
        tick("globex", partition=1),
    ]
    result = step.run(batch, table.load, NOW)

    assert [u.client_id for u in result.updates] == ["acme", "globex"]  # first seen, first out
    assert table.reads == [batch[0], batch[1]]  # once per client, by its anchor
    assert [u.anchor for u in result.updates] == [batch[0], batch[1]]
    keys = [r.key for r in result.produce]
    assert keys == sorted(keys)  # every record of acme, then every record of globex
    acme = [f for f in facts(result) if f.client_id == "acme"]
    assert [f.kind for f in acme] == [FactKind.OBLIGATION_OPENED, FactKind.FULFILLED]
    globex = [f for f in facts(result) if f.client_id == "globex"]
    assert [f.kind for f in globex] == [FactKind.OBLIGATION_OPENED, FactKind.WARNING]  # 40 s
    assert step.stats.facts_out == len(result.on(TOPICS.facts))
    assert step.stats.alerts_out == len(result.on(TOPICS.alerts))


def test_alerts_follow_their_facts() -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(minutes=5)
    batch = opening(log, "acme", t)
    result = step.run(batch, table.load, NOW)
    topics = [r.topic for r in result.produce]
    for i, topic in enumerate(topics):
        if topic == TOPICS.alerts:
            assert topics[i - 1] == TOPICS.facts  # the fact it was raised by, just before


# -- acknowledge, then store -------------------------------------------------------------------


class Producer:
    """A producer whose acknowledgements the test resolves by hand."""

    def __init__(self) -> None:
        self.sent: list[OutRecord] = []
        self.acks: list[asyncio.Future[None]] = []

    async def send(self, record: OutRecord) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append(record)
        self.acks.append(ack)
        return ack


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("missing", [0, -1], ids=["first-ack-missing", "last-ack-missing"])
async def test_nothing_is_stored_before_every_record_is_acknowledged(missing: int) -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(minutes=5)
    batch = [
        *opening(log, "acme", t),
        log.record(b"acme", b"poison"),
        *opening(log, "globex", t, partition=1),
    ]
    result = step.run(batch, table.load, NOW)
    assert result.on(TOPICS.facts)
    assert result.on(TOPICS.alerts)
    assert result.on(TOPICS.dlq)
    producer, stored = Producer(), []
    task = asyncio.create_task(step.commit(result, producer.send, stored.append))
    await settle()
    assert producer.sent == result.produce  # all handed over at once, in order
    late = producer.acks.pop(missing)
    for ack in producer.acks:
        ack.set_result(None)
        await settle()
        assert stored == []  # one acknowledgement missing: nothing remembered yet
    assert step.stats.open_obligations == 0
    late.set_result(None)
    await task
    assert stored == result.updates
    assert step.stats.open_obligations == 2  # the gauge follows what was stored


async def test_a_failed_acknowledgement_stores_nothing() -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(minutes=5)
    batch = opening(log, "acme", t)
    result = step.run(batch, table.load, NOW)
    producer, stored = Producer(), []
    task = asyncio.create_task(step.commit(result, producer.send, stored.append))
    await settle()
    producer.acks[0].set_exception(OSError("broker gone"))
    for ack in producer.acks[1:]:
        ack.set_result(None)
    with pytest.raises(OSError, match="broker gone"):
        await task
    assert stored == []  # the batch is replayed from its uncommitted offsets


async def test_a_stored_state_is_what_the_next_batch_reads() -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(seconds=20)
    await run_and_commit(step, table, opening(log, "acme", t))
    assert set(table.raw) == {b"acme"}
    result = await run_and_commit(
        step, table, [log.record(b"acme", reply("acme", t + timedelta(seconds=5)))]
    )
    assert kinds(result) == [FactKind.FULFILLED]
    assert result.due == {"acme": (None, 0)}  # nothing pending any more
    assert step.stats.open_obligations == 0


def test_a_new_assignment_forgets_watermarks_and_open_counts() -> None:
    step = new_step()
    step.marks.observe(0, NOW - timedelta(days=1))
    step.marks.read_up_to(0, 0, 100)
    step.stats.partitions_catching_up = 1
    step.stats.set_open("acme", 2)
    step.reassigned()
    assert step.marks.watermark(0, NOW) is None  # nothing live until the assignment is known
    step.marks.assignment_known()
    assert step.marks.watermark(0, NOW) == NOW
    assert (step.stats.partitions_catching_up, step.stats.open_obligations) == (0, 0)


def test_storage_gets_what_the_engine_took_and_nothing_it_refused() -> None:
    step, table, log = new_step(), Table(), Log()
    t = NOW - timedelta(minutes=2)
    taken = log.record(b"acme", inbound("acme", t))
    batch = [
        log.record(b"acme", policy("acme", t)),
        taken,
        log.record(b"acme", inbound("acme", t)),  # the same event id again: a duplicate
        log.record(b"other", inbound("acme", t, "mis")),  # mis-keyed
        log.record(None, email(None, t, IN, "nobody")),  # no client
        log.record(b"acme", b"{}"),  # invalid
    ]
    result = step.run(batch, table.load, NOW)
    assert [(r.key, r.value) for r in result.on(TOPICS.accepted)] == [(b"acme", taken.value)]
    assert len(result.on(TOPICS.dlq)) == 2


async def test_a_redelivery_after_a_crash_older_than_the_duplicate_window_is_a_duplicate() -> None:
    # A worker killed before its offsets were committed: the next one reads the log again from
    # the committed offset, with the state the first one stored. An input it applied then is
    # older than the duplicate window now, so the engine cannot recognise it by id: its offset
    # says it was applied. A new input that old is still refused.
    step, table, log = new_step(), Table(), Log(highwater=None)
    step.history_gap = timedelta(days=30)  # not held: the clock moves the client past the window
    old = log.record(b"acme", inbound("acme", NOW - timedelta(days=20)))
    await run_and_commit(step, table, [log.record(b"acme", policy("acme", NOW)), old])
    live = log.record(b"acme", inbound("acme", NOW - timedelta(seconds=30), "in-2"))
    await run_and_commit(step, table, [live])
    again = await run_and_commit(step, table, [old])  # the crash: read again
    assert again.on(TOPICS.dlq) == []
    assert step.stats.redelivered == 1
    new_but_old = log.record(b"acme", inbound("acme", NOW - timedelta(days=20), "in-3"))
    refused = await run_and_commit(step, table, [new_but_old])
    [letter] = refused.on(TOPICS.dlq)
    assert b"duplicate window" in dict(letter.headers or [])[REASON]


# -- history interleaved with live events on a loaded worker -----------------------------------


def _at(log: Log, value: bytes, key: bytes, highwater: int) -> InRecord:
    """The next record of partition 0 with Kafka's log end at ``highwater``."""
    record = log.record(key, value)
    return InRecord(record.topic, 0, record.offset, key, value, highwater)


async def test_history_still_queued_behind_live_events_keeps_its_clients_in_event_time() -> None:
    # The oracle's interleaved case on a loaded machine: live events raise the partition's event
    # time to the clock; the next part of the history is queued behind them and the worker takes
    # longer than the catch-up gap to reach it (the partition then reads as catching up, with an
    # event time that is the clock's). A client fed history must stay in its own event time
    # until the queued history is read: never advanced to that live instant or the clock.
    step, table, log = new_step(), Table(), Log()
    gap = step.marks.gap
    t0 = NOW - timedelta(days=10)
    history = [  # (client, occurred_at, direction): two parts, more than 7 days before NOW
        ("acme", t0, IN),
        ("initech", t0 + timedelta(seconds=5), IN),
        ("acme", t0 + timedelta(seconds=40), Direction.OUTBOUND),
        ("initech", t0 + timedelta(hours=2), Direction.OUTBOUND),  # breached, met late
        ("acme", t0 + timedelta(hours=3), IN),  # never answered
        ("initech", t0 + timedelta(hours=4), IN),
        ("initech", t0 + timedelta(hours=4, seconds=10), Direction.OUTBOUND),
    ]
    values = {n: email(c, at, d, f"h{n}") for n, (c, at, d) in enumerate(history)}
    pol = {c: policy(c, t0 - timedelta(hours=1)) for c in ("acme", "initech", "live")}
    live_values = [  # answered within a second
        inbound("live", NOW - timedelta(seconds=2), "l1"),
        reply("live", NOW - timedelta(seconds=1), "l2"),
    ]

    # Policies and the first part of the history, read up to the log end.
    first = [_at(log, v, c.encode(), 5) for c, v in pol.items()]
    first += [_at(log, values[n], history[n][0].encode(), 5) for n in (0, 1)]
    got = facts(await run_and_commit(step, table, first, NOW))
    # Live events, with the second part of the history already queued behind them (log end 12).
    second = [_at(log, v, b"live", 12) for v in live_values]
    got += facts(await run_and_commit(step, table, second, NOW + timedelta(seconds=1)))
    # The loaded worker reads on long after the gap: first the ticks of what the hold pushed
    # (the partition read as live at the gap's end: its event time was the clock's) ...
    clock = NOW + gap + timedelta(seconds=5)
    ticks = await run_and_commit(step, table, [tick("acme"), tick("initech")], clock)
    got += facts(ticks)
    assert not ticks.on(TOPICS.dlq)
    # ... then the queued history, one record per batch, each later still.
    for n in range(2, len(history)):
        clock += gap
        client = history[n][0]
        result = await run_and_commit(
            step, table, [_at(log, values[n], client.encode(), 12)], clock
        )
        assert not result.on(TOPICS.dlq), result.on(TOPICS.dlq)[0].headers
        got += facts(result)
    assert step.stats.clients_held == 2  # the history's clients wait for the gap after it
    end = clock + gap
    got += facts(await run_and_commit(step, table, [tick("acme"), tick("initech")], end))
    assert step.stats.clients_held == 0

    # Exactly the facts of a replay of what was read, settled at the end of the hold.
    events = [decode_input(v) for v in [*pol.values(), *values.values(), *live_values]]
    engine = Engine(allowed_lateness=timedelta(0))
    valid = [e for e in events if not isinstance(e, Rejected)]
    expected = list(replay(valid, engine, watermark_end=end))
    assert sorted((f.fact_id, f.kind, f.at) for f in got) == sorted(
        (f.fact_id, f.kind, f.at) for f in expected
    )
    assert FactKind.BREACHED in {f.kind for f in got if f.client_id == "initech"}


async def test_a_busy_live_partition_ends_the_hold_once_its_import_queue_is_read() -> None:
    # Records always queued (live traffic the worker reads a little behind) must not hold a
    # client fed history for ever: only what was queued while history came counts.
    step, table, log = new_step(), Table(), Log()
    gap = step.marks.gap
    t0 = NOW - timedelta(days=3)
    first = [_at(log, policy("acme", t0), b"acme", 3), _at(log, inbound("acme", t0), b"acme", 3)]
    result = await run_and_commit(step, table, first, NOW)
    assert step.stats.clients_held == 1
    assert FactKind.BREACHED not in kinds(result)
    clock, held = NOW, []
    for k in range(4):  # one live record every 0.4 gap, always two records behind
        clock += gap * 0.4
        value = inbound("busy", clock - timedelta(seconds=1), f"b{k}")
        offset = log.offsets[0]
        await run_and_commit(step, table, [_at(log, value, b"busy", offset + 3)], clock)
        held.append(step.held_clients(clock))
    # Held while the history's gap lasts and the records queued within it are unread; then not.
    assert held == [1, 1, 1, 0]
    ticked = await run_and_commit(step, table, [tick("acme")], clock)
    assert [(f.kind, f.at) for f in facts(ticked) if f.kind is FactKind.BREACHED] == [
        (FactKind.BREACHED, t0 + timedelta(minutes=1))
    ]
