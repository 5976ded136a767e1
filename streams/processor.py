"""The Faust SLA processor: the thin live adapter around ``engine.core.Engine``.

One agent consumes the interactions topic AND the ticks topic (co-partitioned, both keyed by
client_id), so every change to a client's state happens inside stream iteration on the
partition that owns the client (Faust tables may only be written there):

* an interaction (InteractionEvent or ClientPolicyChanged) is decoded at the edge (invalid →
  DLQ with the original bytes), applied, and the client is advanced to the watermark;
* a tick (sent by our own timer when a client's ``next_due`` has come) advances the client to
  the watermark, which fires warnings, breaches and silences at their exact instants.

The watermark is the wall clock, except on a partition reading a backlog (records behind, event
time more than ``worker.catch_up_gap_s`` behind the clock), where it is the event time read so
far and no ticks are sent (``streams.watermark``): history published at once, or the log a worker
missed while it was down, is processed as a replay would, not turned late by the wall clock.

Messages are handled in batches (``stream.take_events``: up to ``worker.batch_max_events``,
waiting at most ``worker.batch_wait_s``): per client of the batch the state is read once, its
events applied in order, the client advanced after each to the partition's event time so far
(and to the wall clock at the end unless the partition reads a backlog); all facts (facts topic), their alerts
(alerts topic) and dead letters are produced, Kafka's acknowledgement of all of them is awaited
once, and only then each state goes back to the ``sla-state`` table (RocksDB + changelog) and
the client's next due instant to the deadline index that drives the timer. After every
rebalance/restart the index is rebuilt from the table once recovery completes, so a deadline
that passed while no worker ran fires at once (with its own instant as ``at``).

A second agent turns the compacted directory topic into ClientPolicyChanged events on the
interactions topic (``streams.directory_feed``).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from engine.alerts import alert_for
from engine.core import Engine
from engine.state import ClientState, Event
from schemas import topics as specs
from schemas.base import encode
from schemas.events import ClientPolicyChanged
from schemas.facts import Fact
from shinrai.errors import ShinraiError
from shinrai.settings import Settings
from streams.deadline_index import DeadlineIndex
from streams.directory_feed import attach_directory_feed
from streams.dlq import Rejected, dead_letter, decode_input
from streams.recovery import index_entries, raw_table_items
from streams.watermark import PartitionWatermarks

__all__ = ["STATE_TABLE", "ProcessorStats", "ProcessorTopics", "attach_processor", "wall_clock"]

log = logging.getLogger(__name__)

STATE_TABLE = "sla-state"


def wall_clock() -> datetime:
    """The live watermark: the wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass
class ProcessorTopics:
    """Topic names the processor reads and writes (tests pass suffixed private topics)."""

    interactions: str
    ticks: str
    facts: str
    alerts: str
    dlq: str
    directory: str

    @classmethod
    def default(cls, suffix: str = "") -> ProcessorTopics:
        """The names of ``schemas.topics``, each with ``suffix`` appended."""
        return cls(
            interactions=specs.INTERACTIONS.name + suffix,
            ticks=specs.TICKS.name + suffix,
            facts=specs.FACTS.name + suffix,
            alerts=specs.ALERTS.name + suffix,
            dlq=specs.DLQ.name + suffix,
            directory=specs.DIRECTORY.name + suffix,
        )


@dataclass
class ProcessorStats:
    """Counters the worker exports as metrics (monotonic unless noted)."""

    events_in: int = 0  # interaction messages read (valid or not)
    events_invalid: int = 0  # sent to the DLQ
    events_unassigned: int = 0  # valid events without a client_id (kept in the log, no state)
    facts_out: int = 0
    alerts_out: int = 0
    ticks_sent: int = 0
    ticks_in: int = 0
    policy_changes_out: int = 0  # ClientPolicyChanged events announced from the directory
    directory_records_in: int = 0
    index_rebuilds: int = 0
    partitions_catching_up: int = 0  # gauge: interactions partitions reading a backlog
    open_obligations: int = 0  # gauge, best effort: over the clients this worker has seen
    last_event_at: datetime | None = None  # wall clock of the last interaction processed
    _open_by_client: dict[str, int] = field(default_factory=dict, repr=False)

    def set_open(self, client_id: str, count: int) -> None:
        """Update the open-obligations gauge with one client's current count."""
        before = self._open_by_client.get(client_id, 0)
        if count:
            self._open_by_client[client_id] = count
        else:
            self._open_by_client.pop(client_id, None)
        self.open_obligations += count - before

    def reset_open(self) -> None:
        """Forget every client's count (before a rebuild from the table)."""
        self._open_by_client.clear()
        self.open_obligations = 0


@dataclass(slots=True)
class _ClientWork:
    """One client's share of a batch: its inputs in arrival order, and the message whose
    partition its state lives on (``anchor``: the first of the client's messages)."""

    anchor: Any
    # (message, decoded event, the partition's event time read up to and with it, if any)
    inputs: list[tuple[Any, Event, datetime | None]] = field(default_factory=list)
    key: bytes = b""  # the client's message key (set from ``anchor`` once, used per fact)

    def __post_init__(self) -> None:
        self.key = bytes(self.anchor.key)


def _highwater(app: Any, msg: Any) -> int | None:
    """Kafka's log end offset of ``msg``'s partition as last fetched (None: not known)."""
    try:
        highwater = app.consumer.highwater(msg.tp)
    except Exception:  # a consumer not ready or reassigned: assume caught up
        return None
    return highwater if isinstance(highwater, int) else None


@contextlib.contextmanager
def _current(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event while a table is read or written.

    A Faust table (and its RocksDB store) picks the partition of every get/set - the local
    database and the changelog partition - from the *current event*, which Faust sets only
    while it iterates a stream event by event. ``stream.take_events`` hands the agent a list
    instead, so the batch writer names the event itself. Faust has no public setter; this is
    the context variable ``faust.streams.current_event()`` reads (checked by
    tests/integration/streams: state restored from the changelog after a restart).
    """
    from faust.streams import _current_event

    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def attach_processor(
    app: Any,
    settings: Settings,
    topics: ProcessorTopics,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = wall_clock,
) -> ProcessorStats:
    """Add the SLA agent, its table, the deadline timer and the directory feed to ``app``.

    ``app`` is a ``faust.App`` from ``streams.app.build_app`` (raw key/value serializers).
    ``engine`` defaults to an Engine with ``settings.worker.allowed_lateness_s``. ``clock`` is
    the live watermark (wall clock, UTC). Returns the counters, updated as the app runs.
    """
    worker = settings.worker
    if engine is None:
        engine = Engine(allowed_lateness=timedelta(seconds=worker.allowed_lateness_s))
    eng = engine
    stats = ProcessorStats()
    index = DeadlineIndex()
    marks = PartitionWatermarks(timedelta(seconds=worker.catch_up_gap_s))
    partitions = specs.INTERACTIONS.partitions or settings.kafka.topic_partitions

    source = app.topic(topics.interactions, topics.ticks, key_type=bytes, value_type=bytes)
    ticks = app.topic(topics.ticks, key_type=bytes, value_type=bytes)
    table = app.Table(
        STATE_TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        store=worker.store,
    )

    async def process(batch: Sequence[Any]) -> None:
        """Handle one batch of input messages (interactions and ticks, any partitions).

        1. decode every interaction at the edge (invalid → DLQ) and group the work per client,
           keeping each client's arrival order;
        2. per client: read the state once, apply its events in order, each followed by an
           advance to the partition's event time read so far (the per-event semantics of a
           replay), then, unless the partition reads a backlog, to the clock (a tick only asks for
           the advance to the partition's watermark);
        3. produce every fact, alert and dead letter of the batch, then wait once for Kafka
           to acknowledge all of them (one round trip per batch, not per event);
        4. only then store each client's new state (RocksDB + changelog), re-index its next
           due instant. Acknowledged first, stored second: a crash before the store replays
           the batch (the same fact ids again, deduplicated downstream); a crash after it
           replays duplicates the engine ignores. Faust acknowledges the batch's offsets
           after this returns, so they commit only after all of it.
        """
        now = clock()
        work: dict[str, _ClientWork] = {}
        pending: list[Awaitable[Any]] = []
        last_read: dict[int, Any] = {}  # interactions partition -> its last message here
        for event in batch:
            msg = event.message
            if msg.topic == topics.ticks:
                stats.ticks_in += 1
                if event.key:
                    client_id = event.key.decode("utf-8", errors="replace")
                    if client_id not in work:
                        work[client_id] = _ClientWork(event)
                continue
            stats.events_in += 1
            last_read[msg.partition] = msg
            decoded = decode_input(event.value)
            if isinstance(decoded, Rejected):
                pending.append(await reject(event, decoded.reason, now))
                continue
            client_id = decoded.client_id
            if client_id is None:
                stats.events_unassigned += 1
                continue
            if event.key != client_id.encode():
                # State lives on the partition of the key; a mis-keyed event would split a
                # client's state (and its order) across partitions.
                reason = f"<key>: message key {event.key!r} must equal client_id"
                pending.append(await reject(event, reason, now))
                continue
            if isinstance(decoded, ClientPolicyChanged):  # stamped at announcement: no event time
                seen = marks.event_time(msg.partition)
            else:
                seen = marks.observe(msg.partition, decoded.occurred_at)
            item = work.get(client_id)
            if item is None:
                item = work[client_id] = _ClientWork(event)
            item.inputs.append((event, decoded, seen))
        if batch:
            stats.last_event_at = now
        for partition, msg in last_read.items():
            marks.read_up_to(partition, msg.offset, _highwater(app, msg))
        stats.partitions_catching_up = marks.partitions_catching_up(now)

        results: list[tuple[str, _ClientWork, ClientState | None]] = []
        for client_id, item in work.items():
            with _current(item.anchor):
                raw = table.get(item.key)
            state = ClientState.from_bytes(raw) if raw else None
            out: list[Fact] = []
            partition = item.anchor.message.partition
            # Each input is applied and the client advanced after it to the partition's event
            # time read so far, as a replay of the partition would (an input later than that
            # by more than the allowed lateness takes the engine's correction path). Then the
            # client goes to the partition's watermark: the clock unless it reads a backlog.
            for event, decoded, seen in item.inputs:
                try:
                    state, facts = eng.apply(state, decoded)
                except ShinraiError as exc:  # an input the engine cannot apply: state unchanged
                    pending.append(await reject(event, f"<engine>: {exc}", now))
                    continue
                out.extend(facts)
                if seen is not None:
                    state, more = eng.advance(state, min(seen, now))
                    out.extend(more)
            mark = marks.watermark(partition, now)
            if state is not None and mark is not None:
                state, more = eng.advance(state, mark)
                out.extend(more)
            for fact in out:
                pending.append(await send(topics.facts, item.key, encode(fact)))
                alert = alert_for(fact)
                if alert is not None:
                    pending.append(await send(topics.alerts, item.key, encode(alert)))
                    stats.alerts_out += 1
            stats.facts_out += len(out)
            results.append((client_id, item, state))

        for future in pending:  # every fact, alert and dead letter acknowledged ...
            await future
        for client_id, item, state in results:  # ... before the states that remember them
            partition = item.anchor.message.partition
            if state is None:  # a tick for a client with no state: nothing is due
                index.update(client_id, None, partition)
                continue
            with _current(item.anchor):
                table[item.key] = state.to_bytes()
            index.update(client_id, eng.next_due(state), partition)
            stats.set_open(client_id, len(state.open))

    async def send(topic: str, key: bytes | None, value: bytes, headers: Any = None) -> Any:
        """Hand one record to the app's producer; returns the acknowledgement future.

        The Faust producer directly (not ``topic.send``): no per-message channel plumbing, and
        never attached to the source offset (which would produce only at commit time, after
        the RocksDB write the crash-safety order above depends on).
        """
        return await app.producer.send(topic, key, value, None, None, headers)

    async def reject(event: Any, reason: str, now: datetime) -> Any:
        msg = event.message
        key, value, headers = dead_letter(
            event.value,
            event.key,
            reason,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            now=now,
        )
        stats.events_invalid += 1
        log.warning("dead-lettered %s/%s/%s: %s", msg.topic, msg.partition, msg.offset, reason)
        # Acknowledged with the batch, before its offsets commit: the original bytes survive.
        return await send(topics.dlq, key, value, headers)

    @app.agent(source, name="shinrai-sla-processor")  # type: ignore[untyped-decorator]
    async def sla_processor(stream: Any) -> None:
        # Never yield and never skip: every message is either processed or dead-lettered.
        async for batch in stream.take_events(worker.batch_max_events, within=worker.batch_wait_s):
            await process(batch)

    async def rebuild_index() -> None:
        """Re-index every client of the partitions we now hold (after recovery), from the
        state headers (``streams.recovery.index_entries``: no full decode of each state)."""
        stats.reset_open()
        marks.clear()  # a new assignment: every partition live until read
        stats.partitions_catching_up = 0
        entries, open_counts = index_entries(raw_table_items(table), eng)
        for client_id, count in open_counts.items():
            stats.set_open(client_id, count)
        index.rebuild(entries)
        stats.index_rebuilds += 1
        log.info("deadline index rebuilt: %d clients with pending work", len(index))

    table.on_recover(rebuild_index)

    @app.timer(interval=worker.tick_interval_s)  # type: ignore[untyped-decorator]
    async def send_ticks() -> None:
        # A tick with no explicit partition follows the key's hash, like every producer of
        # the interactions topic (murmur2 default partitioner), so it reaches the state.
        now = clock()
        for due in index.pop_due(now, lambda partition: marks.catching_up(partition, now)):
            value = orjson.dumps({"due": due.due.isoformat()})
            await ticks.send(key=due.client_id.encode(), value=value, partition=due.partition)
            stats.ticks_sent += 1

    def announced(_event: Any) -> None:
        stats.policy_changes_out += 1

    def directory_record() -> None:
        stats.directory_records_in += 1

    attach_directory_feed(
        app,
        directory_topic=topics.directory,
        interactions_topic=topics.interactions,
        clock=clock,
        on_announce=announced,
        on_record=directory_record,
    )
    return stats
