"""The oracle of issue 18: what the live worker stored equals a replay of what it read.

"What it read" is the interactions topic itself, every record in offset order per partition (a
worker reads nothing else: the directory feed writes its policy announcements there too), minus
the records the worker dead-lettered (``interactions.dlq``, matched by the origin header). The
rest is replayed with ``engine.replay`` and settled at the instant the live side was read; the
facts must equal ClickHouse's ``sla_facts FINAL`` and the alerts those facts raise must equal
the alerts the loopback receiver acknowledged: none lost, none extra, none duplicated, and every
dead letter is one the scenario expected (with a reason), nothing else.

The workload is generated from a seed: many clients on a 24x7 calendar with 1-minute SLAs (so
warnings, breaches, late answers and callbacks all occur), weeks of history ending an hour ago
(every timer of the history has fired by then, so the live side and the replay never disagree on
a timer still pending at the instant they are compared; :func:`compare` checks it).

Batch records (``schemas.batches``): the history can be produced as ``shinrai produce`` writes
it, ``event_batch`` records of one partition each, by the producers' own batch writer
(:func:`produce_batched`). Reading back, every item of a batch record is an event of its own, in
the record's order; a dead letter of one item names its record (the origin header) and the
item's index (``x-shinrai-item``), one of a whole record names the record alone (:func:`dead_id`).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.alerts import alert_for
from engine.state import Event
from schemas.base import encode
from schemas.batches import BatchInvalid, split
from schemas.deadletter import ITEM, ORIGIN, REASON, TRUNCATED
from schemas.directory import Client, ClientDirectory
from schemas.events import CallOutcome, ClientPolicyChanged, Direction, InteractionEvent
from schemas.facts import Fact, FactKind
from shinrai.settings import Settings
from streams.dlq import Rejected, decode_input
from tests.builders import ALWAYS_OPEN, ONE_MINUTE, interaction, phone_call
from tests.integration.alerts.harness import Received

from .scenario import expected_facts, group_caught_up

POLICY = ONE_MINUTE.model_copy(update={"policy_id": "oracle-minute", "warning_fractions": (0.75,)})
"""1-minute SLAs on a 24x7 calendar, one warning at 45 s (fewer pages to deliver per breach)."""

HISTORY = timedelta(days=14)  # longer than the engine's 7-day duplicate window
HISTORY_ENDS = timedelta(hours=1)  # before the wall clock: every history timer has fired
QUIET = timedelta(seconds=20)  # no timer may fall this close to the comparison instant


@dataclass(frozen=True)
class Produced:
    """One record as produced: where it landed and why it is there."""

    partition: int
    offset: int
    what: str  # "event", or the name of an expected rejection


@dataclass
class Workload:
    """A seeded history: per client a policy at the start and conversations over two weeks."""

    clients: list[str]
    policies: list[ClientPolicyChanged]
    history: list[InteractionEvent]  # in event-time order, as ``shinrai produce`` sends it

    def directory(self) -> ClientDirectory:
        """The same clients and policy as a directory (for the directory-feed scenario)."""
        return ClientDirectory(
            clients=tuple(
                Client(
                    client_id=c,
                    name=c,
                    owner="owner@us.example",
                    policy_id=POLICY.policy_id,
                    calendar_id=ALWAYS_OPEN.calendar_id,
                )
                for c in self.clients
            ),
            policies=(POLICY,),
            calendars=(ALWAYS_OPEN,),
        )


def make_workload(run: str, end: datetime, *, seed: int, clients: int, threads: int) -> Workload:
    """``clients`` clients with ``threads`` conversations each, the last ending before ``end``.

    Answer delays (1-minute SLA, a warning at 75 %): most answered well within (met, no
    page), some after a warning, some after the breach (met late), some never; a share of the
    conversations are missed calls called back, and a share get a follow-up question.
    """
    rng = random.Random(seed)
    start = end - HISTORY
    names = [f"c{i:03d}-{run}" for i in range(clients)]
    policies = [
        ClientPolicyChanged(
            event_id=f"pol-{c}",
            client_id=c,
            occurred_at=start - timedelta(hours=1),
            recorded_at=start - timedelta(hours=1),
            policy=POLICY,
            calendar=ALWAYS_OPEN,
        )
        for c in names
    ]
    events: list[InteractionEvent] = []
    span = (HISTORY - timedelta(hours=2)).total_seconds()

    def renamed(ev: InteractionEvent, n: int) -> InteractionEvent:
        # Deterministic ids (the helpers draw random ones): the same seed, the same log.
        return ev.model_copy(update={"event_id": f"{ev.client_id}-e{n}"})

    for c in names:
        n = 0
        for k in range(threads):
            t = start + timedelta(seconds=rng.uniform(0, span), microseconds=rng.randrange(10**6))
            roll = rng.random()
            thread = f"t{k}"
            if roll < 0.08:  # a missed call, called back (a callback obligation)
                events.append(phone_call(c, t, Direction.INBOUND, CallOutcome.MISSED, wait=25))
                back = t + timedelta(seconds=rng.uniform(10, 200))
                events.append(
                    phone_call(c, back, Direction.OUTBOUND, CallOutcome.ANSWERED, duration=90)
                )
                events[-2:] = [renamed(events[-2], n), renamed(events[-1], n + 1)]
                n += 2
                continue
            events.append(
                renamed(interaction(t, client=c, thread=thread, direction=Direction.INBOUND), n)
            )
            n += 1
            if roll < 0.60:
                delay = rng.uniform(2, 25)  # met, no warning
            elif roll < 0.75:
                delay = rng.uniform(47, 58)  # a warning, then met
            elif roll < 0.90:
                delay = rng.uniform(90, 900)  # breached, met late
            else:
                continue  # never answered: breached
            reply = t + timedelta(seconds=delay)
            events.append(
                renamed(
                    interaction(reply, client=c, thread=thread, direction=Direction.OUTBOUND), n
                )
            )
            n += 1
            if rng.random() < 0.3:  # a follow-up question, answered
                again = reply + timedelta(minutes=rng.uniform(5, 120))
                events.append(
                    renamed(
                        interaction(again, client=c, thread=thread, direction=Direction.INBOUND), n
                    )
                )
                answer = again + timedelta(seconds=rng.uniform(5, 25))
                events.append(
                    renamed(
                        interaction(answer, client=c, thread=thread, direction=Direction.OUTBOUND),
                        n + 1,
                    )
                )
                n += 2
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return Workload(clients=names, policies=policies, history=events)


# -- producing -----------------------------------------------------------------------------------


Raw = tuple[bytes | None, bytes | None, str]  # key, value, what it is


def as_raw(events: Iterable[Event]) -> list[Raw]:
    """Events as records keyed by client (what ``shinrai produce`` sends)."""
    return [(e.key, encode(e), "event") for e in events]


def produce_batched(settings: Settings, topic: str, items: Sequence[Event | Raw]) -> None:
    """Send ``items`` in order as ``shinrai produce`` does: the producers' batch writer
    (``KafkaRecordProducer.event_writer``: ``event_batch`` records of up to
    SHINRAI_KAFKA__BATCH_EVENTS events of one partition), flushed and acknowledged.

    A ``Raw`` item (bytes no producer of ours would write: an invalid event a third party sent)
    goes into the same per-partition batches, under its key, at its place in the order.
    Blocking: call through ``asyncio.to_thread``."""
    from producers.kafka_producer import UNKNOWN_CLIENT_KEY, KafkaRecordProducer

    with KafkaRecordProducer(settings.kafka, client_id="oracle-produce") as producer:
        writer = producer.event_writer(topic)
        # The writer's batcher is what ``write`` feeds; a raw item needs it directly. None here
        # would mean no batching at all (SHINRAI_KAFKA__BATCH_EVENTS=1): not what is tested.
        batcher = writer._batcher
        assert batcher is not None, "the batch writer does not batch (batch_events <= 1)"
        for item in items:
            if isinstance(item, tuple):
                key, value, what = item
                assert value is not None
                batcher.add(key or UNKNOWN_CLIENT_KEY, value, what)
            else:
                writer.write(item)
        writer.flush()
        producer.flush()


def produce(bootstrap: str, topic: str, records: Sequence[Raw]) -> list[Produced]:
    """Send ``records`` in order (batched, acks=all, one producer: per-partition order kept);
    where each landed. Blocking: call through ``asyncio.to_thread``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_in_flight_requests_per_connection=1,  # retries must not reorder a partition
        max_request_size=1_048_576,
    )
    try:
        futures = [(producer.send(topic, key=k, value=v), what) for k, v, what in records]
        producer.flush(timeout=60)
        done = []
        for future, what in futures:
            meta = future.get(timeout=30)
            done.append(Produced(meta.partition, meta.offset, what))
        return done
    finally:
        producer.close()


# -- reading back --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record of a topic (or one item of a batch record: ``index`` set, ``value`` the
    item's own bytes; partition, offset, key and headers are the batch record's)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    index: int | None = None
    items: int = 1  # how many items the Kafka record holding it has (1: a single record)

    def where(self, topic: str) -> str:
        """Its origin as a dead letter names it: ``topic/partition/offset[ item i]``."""
        origin = f"{topic}/{self.partition}/{self.offset}"
        return origin if self.index is None else f"{origin} item {self.index}"


def dead_id(dead: Record) -> str:
    """What a dead letter names: its origin, and ``item i`` for one item of a batch record."""
    origin = dead.headers.get(ORIGIN, b"").decode()
    item = dead.headers.get(ITEM)
    return origin if item is None else f"{origin} item {item.decode()}"


def _items(value: bytes | None) -> list[bytes | None] | None:
    """A batch record's items; None for a single record (or a batch envelope that is wrong:
    the worker dead-letters that record whole, as one)."""
    try:
        found = split(value)
    except BatchInvalid:
        return None
    return None if found is None else list(found[1])


def read_all(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` up to its current end, in offset order per partition."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: list[Record] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for tp, messages in consumer.poll(timeout_ms=500, max_records=5000).items():
                for m in messages:
                    if m.offset < ends[tp]:
                        heads = {k: v for k, v in m.headers or ()}
                        # a batch record stands for its items: one each, with its index
                        found = _items(m.value)
                        if found is None:
                            out.append(Record(tp.partition, m.offset, m.key, m.value, heads))
                            continue
                        for i, value in enumerate(found):
                            out.append(
                                Record(tp.partition, m.offset, m.key, value, heads, i, len(found))
                            )
        out.sort(key=lambda r: (r.partition, r.offset))  # stable: a batch's items keep order
        return out
    finally:
        consumer.close()


async def drained(settings: Settings, *, within: float, alerts: bool = True) -> None:
    """Wait until the processor and both sinks committed everything there is to read.

    The processor commits an input offset only after its facts, alerts and dead letters were
    acknowledged; the sinks commit after ClickHouse holds a fact and after an alert's delivery
    is final. All caught up twice, a second apart: nothing is left in flight.
    """
    bootstrap, app_id = settings.kafka.bootstrap, settings.worker.app_id
    suffix = settings.worker.topic_suffix
    groups = [
        # Ticks too: the timers of clients not in the backlog's last batch fire on ticks.
        (app_id, ["interactions.v1" + suffix, "sla-ticks.v1" + suffix]),
        (
            f"{app_id}-sink-clickhouse",
            ["sla-facts.v1" + suffix, "interactions.accepted.v1" + suffix],
        ),
    ]
    if alerts:
        groups.append((f"{app_id}-sink-alerts", ["sla-alerts.v1" + suffix]))

    began = time.monotonic()
    first: dict[str, float] = {}

    def all_caught_up() -> bool:
        done = [group_caught_up(bootstrap, g, t) for g, t in groups]
        for (g, _), ok in zip(groups, done, strict=True):
            first.setdefault(g, time.monotonic() - began) if ok else first.pop(g, None)
        return all(done)

    deadline = time.monotonic() + within
    streak = 0
    while streak < 2:
        if await asyncio.to_thread(all_caught_up):
            streak += 1
        else:
            streak = 0
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker did not catch up within {within:g} s")
        await asyncio.sleep(1.0)
    print(
        "caught up: "
        + ", ".join(f"{g.removeprefix(app_id) or 'processor'} {t:.1f} s" for g, t in first.items())
    )


# -- the oracle and the verdict ------------------------------------------------------------------


@dataclass(frozen=True)
class LiveFact:
    """One ClickHouse ``sla_facts FINAL`` row, the fields compared."""

    fact_id: str
    kind: str
    client_id: str
    at_us: int
    obligation_id: str | None
    retracts: str | None


def facts_rows_query(database: str) -> str:
    """Every fact row kept by ClickHouse (FINAL: the latest version per key), instants in µs."""
    return (
        "SELECT fact_id, kind, client_id, toUnixTimestamp64Micro(at), "
        "ifNull(obligation_id, ''), ifNull(retracts, '') "
        f"FROM `{database}`.sla_facts FINAL"
    )


def live_facts(rows: Iterable[Sequence[object]]) -> list[LiveFact]:
    """The query's rows (native values or strings from a subprocess) as :class:`LiveFact`."""
    return [
        LiveFact(str(f), str(k), str(c), int(str(at)), str(ob) or None, str(r) or None)
        for f, k, c, at, ob, r in rows
    ]


def _us(at: datetime) -> int:
    return round(at.timestamp() * 1_000_000)


@dataclass
class Oracle:
    """The replay of what the worker read."""

    facts: list[Fact]
    read: int  # events on the interactions topic (single records and items of batch records)
    records: int  # Kafka records on the interactions topic (a batch record once)
    replayed: int  # events replayed (read, valid, not dead-lettered)
    dead: list[Record]  # the worker's dead letters
    undecodable_kept: list[Record]  # invalid records the worker neither processed nor rejected


def replay_of_what_was_read(settings: Settings, until: datetime) -> Oracle:
    """Read the interactions topic and the DLQ back; replay what was not dead-lettered."""
    bootstrap, suffix = settings.kafka.bootstrap, settings.worker.topic_suffix
    topic = "interactions.v1" + suffix
    log = read_all(bootstrap, topic)
    dead = read_all(bootstrap, "interactions.dlq" + suffix)
    rejected = {dead_id(r) for r in dead}
    events: list[Event] = []
    kept: list[Record] = []
    for rec in log:
        # an item dead-lettered on its own, or its whole record (a wrong batch envelope)
        if rec.where(topic) in rejected or f"{topic}/{rec.partition}/{rec.offset}" in rejected:
            continue
        decoded = decode_input(rec.value)
        if isinstance(decoded, Rejected):
            kept.append(rec)
            continue
        events.append(decoded)
    facts = expected_facts(events, settings, until=until)
    records = len({(r.partition, r.offset) for r in log})
    return Oracle(facts, len(log), records, len(events), dead, kept)


@dataclass
class Verdict:
    """Live against the oracle; ``problems()`` is empty when they are equal."""

    name: str
    expected_facts: int
    live_facts: int
    lost: list[tuple[str, str, str]] = field(default_factory=list)  # (fact id, kind, client)
    extra: list[tuple[str, str, str]] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)  # fact ids with more than one row
    changed: list[str] = field(default_factory=list)  # same id, another kind/instant/target
    alerts_expected: int = 0
    alerts_lost: list[str] = field(default_factory=list)
    alerts_extra: list[str] = field(default_factory=list)
    alerts_duplicated: list[str] = field(default_factory=list)  # under distinct keys
    alerts_redelivered: int = 0  # the same key acknowledged again (see acknowledged_alerts)
    dead_missing: list[str] = field(default_factory=list)  # expected rejections not on the DLQ
    dead_unexpected: list[str] = field(default_factory=list)  # "origin: reason"
    dead_without_reason: int = 0
    undecodable_kept: int = 0
    timers_at_cut: list[str] = field(default_factory=list)  # an inconclusive workload
    dead_reasons: Counter[str] = field(default_factory=Counter)  # unexpected ones, by shape

    def counts(self) -> str:
        """One line of figures (the report's)."""
        return (
            f"facts expected {self.expected_facts} live {self.live_facts}: lost {len(self.lost)} "
            f"extra {len(self.extra)} duplicated {len(self.duplicated)} changed "
            f"{len(self.changed)}; alerts expected {self.alerts_expected}: lost "
            f"{len(self.alerts_lost)} extra {len(self.alerts_extra)} duplicated "
            f"{len(self.alerts_duplicated)} (redelivered, same key: {self.alerts_redelivered}); "
            f"dead letters missing {len(self.dead_missing)} "
            f"unexpected {len(self.dead_unexpected)} without reason {self.dead_without_reason}"
        )

    def problems(self) -> str:
        """Empty when live equals the replay, else the figures and a few examples of each."""
        parts = {
            "lost": [f"{k} {c} {f}" for f, k, c in self.lost[:5]],
            "extra": [f"{k} {c} {f}" for f, k, c in self.extra[:5]],
            "duplicated": self.duplicated[:5],
            "changed": self.changed[:5],
            "alerts lost": self.alerts_lost[:5],
            "alerts extra": self.alerts_extra[:5],
            "alerts duplicated": self.alerts_duplicated[:5],
            "expected dead letters missing": self.dead_missing,
            "unexpected dead letters": self.dead_unexpected[:5],
        }
        bad = {k: v for k, v in parts.items() if v}
        if self.dead_without_reason:
            bad["dead letters without a reason"] = [str(self.dead_without_reason)]
        if self.undecodable_kept:
            bad["invalid records neither processed nor dead-lettered"] = [
                str(self.undecodable_kept)
            ]
        if self.timers_at_cut:
            bad["inconclusive: timers at the comparison instant"] = self.timers_at_cut[:5]
        if not bad:
            return ""
        lines = [f"{self.name}: live != replay of what it read: {self.counts()}"]
        lines += [f"  {what}, e.g.: {'; '.join(v)}" for what, v in bad.items()]
        lines += [f"  unexpected dead letters: {n} x {why}" for why, n in self.dead_reasons.items()]
        return "\n".join(lines)


def _shape(reason: str) -> str:
    """A reason without its ids and instants (to count dead letters by why)."""
    return re.sub(r"'[^']*'|\d[\d:.T+-]*", "_", reason)[:100]


def compare(
    name: str,
    oracle: Oracle,
    live: Sequence[LiveFact],
    acked: Counter[str],
    *,
    redelivered: int = 0,
    until: datetime,
    expected_dead: dict[str, str],
) -> Verdict:
    """The verdict: ClickHouse rows and acknowledged alerts (per alert id) against the oracle.

    ``acked``: distinct Idempotency-Keys acknowledged per alert id (:func:`acknowledged_alerts`).
    ``expected_dead`` maps the origin (``topic/partition/offset``, with `` item i`` for an item
    of a batch record: :func:`dead_id`) of every record the worker must dead-letter to what it
    is ("oversized record", ...).
    """
    want = {f.fact_id: f for f in oracle.facts}
    rows = Counter(r.fact_id for r in live)
    got = {r.fact_id: r for r in live}
    v = Verdict(name, len(want), len(got), undecodable_kept=len(oracle.undecodable_kept))
    v.alerts_redelivered = redelivered
    retracted_want = {f.retracts for f in oracle.facts if f.retracts}
    retracted_got = {r.retracts for r in live if r.retracts}
    v.lost = sorted((f, want[f].kind.value, want[f].client_id) for f in want.keys() - got.keys())
    v.extra = sorted((f, got[f].kind, got[f].client_id) for f in got.keys() - want.keys())
    v.duplicated = sorted(f for f, n in rows.items() if n > 1)
    for fid in sorted(want.keys() & got.keys()):
        w, g = want[fid], got[fid]
        mine = (w.kind.value, _us(w.at), w.obligation_id, w.retracts, fid in retracted_want)
        theirs = (g.kind, g.at_us, g.obligation_id, g.retracts, fid in retracted_got)
        if mine != theirs:
            v.changed.append(f"{fid}: replay {mine} live {theirs}")
    # A timer this close to the cut could fire on one side only: the workload must avoid it.
    v.timers_at_cut = [
        f"{f.kind.value} {f.fact_id} at {f.at.isoformat()}"
        for f in oracle.facts
        if f.source_event_id is None and abs(until - f.at) < QUIET
    ]

    alerts = [a for a in (alert_for(f) for f in oracle.facts) if a is not None]
    wanted_alerts = {a.alert_id: a for a in alerts}
    v.alerts_expected = len(wanted_alerts)
    v.alerts_lost = sorted(
        f"{wanted_alerts[a].level.value} {wanted_alerts[a].client_id} {a}"
        for a in wanted_alerts.keys() - acked.keys()
    )
    v.alerts_extra = sorted(acked.keys() - wanted_alerts.keys())
    v.alerts_duplicated = sorted(f"{a} x{n}" for a, n in acked.items() if n > 1)

    seen: set[str] = set()
    for rec in oracle.dead:
        origin = dead_id(rec)
        reason = rec.headers.get(REASON, b"").decode()
        if not reason:
            v.dead_without_reason += 1
        seen.add(origin)
        if origin not in expected_dead:
            v.dead_unexpected.append(f"{origin}: {reason[:160]}")
            v.dead_reasons[_shape(reason)] += 1
    v.dead_missing = [f"{what} at {o}" for o, what in expected_dead.items() if o not in seen]
    return v


def acknowledged_alerts(requests: Iterable[Received]) -> tuple[Counter[str], int]:
    """Per alert id, how many distinct Idempotency-Keys the receiver acknowledged (one per
    alert and target is exactly once); and how many 2xx repeated a key already acknowledged.

    A repeat under the same key is the alert runner's documented at-least-once window (a kill
    between the 2xx and the delivered-store mark): a receiver that honours the key drops it, so
    it is counted and reported, not a duplicate page.
    """
    keys: dict[str, set[str]] = {}
    acks = 0
    for req in requests:
        if req.status is not None and 200 <= req.status < 300:
            keys.setdefault(json.loads(req.body)["alert_id"], set()).add(req.key)
            acks += 1
    per_alert = Counter({alert: len(k) for alert, k in keys.items()})
    return per_alert, acks - sum(per_alert.values())


def truncated_dead_letter(oracle: Oracle, origin: str) -> Record | None:
    """The dead letter of ``origin`` when it says it holds a cut original."""
    for rec in oracle.dead:
        if rec.headers.get(ORIGIN, b"").decode() == origin and TRUNCATED in rec.headers:
            return rec
    return None


def kinds(facts: Iterable[Fact]) -> set[FactKind]:
    """Which kinds a replay produced (the workload covers what it claims to)."""
    return {f.kind for f in facts}
