"""The Faust SLA processor: the live adapter around the pure step (``streams.step``).

This module only wires: the topics, the ``sla-state`` table, the agent, the deadline timer,
recovery and the directory feed. What a batch does (decode, dead letters, watermarks, the engine,
facts and alerts, the next due instants) is decided by ``streams.step.ProcessorStep``, which is
unit-tested without Kafka; here Faust events become its records, the table is its state loader,
and its result is produced, acknowledged, and only then stored.

One agent consumes the interactions topic AND the ticks topic (co-partitioned, both keyed by
client_id), so every change to a client's state happens inside stream iteration on the
partition that owns the client (Faust tables may only be written there):

* an interaction (InteractionEvent or ClientPolicyChanged) is decoded at the edge (invalid →
  DLQ with the original bytes), applied, and the client is advanced to the watermark;
* a tick advances clients whose ``next_due`` has come to the watermark, which fires warnings,
  breaches and silences at their exact instants (and releases live events the engine buffered
  for the allowed lateness).

Ticks are per partition, not per client. The deadline index (``streams.deadline_index``) knows
each client's due instant and partition; every ``worker.tick_interval_s`` the timer sends ONE
tick record per interactions partition with due clients (no key, value
``{"due": <earliest>, "partition": p}``, produced to partition p of the co-partitioned ticks
topic), and the step, reading it, asks the index for every due client of that partition
(``DeadlineIndex.take_due``) and advances each one as a client tick did: state loaded under the
client's key on that partition, advanced, facts produced and acknowledged, then stored. The step
asks the same for every live partition an interactions batch reads, so on a busy partition the
due clients are advanced by the next batch and the timer finds nothing left to tick. A backlog
partition's clients are left to their own events (no tick, no extra advance). A tick keyed by a
client id (the format before, or a client whose partition is unknown) still advances just that
client, so a running log upgrades. The second pass of a live event stays (the engine buffers it
for the allowed lateness, 0.5 s, and only an advance after that instant emits what it decides)
but costs no Kafka record of its own: a client with nothing buffered and nothing due is in no
index entry and gets no pass at all.

The watermark is the wall clock, except on a partition reading a backlog (records behind, event
time more than ``worker.catch_up_gap_s`` behind the clock), where it is the event time read so
far and no ticks are sent (``streams.watermark``): history published at once, or the log a worker
missed while it was down, is processed as a replay would, not turned late by the wall clock.

Messages are handled in batches (``stream.take_events``: up to ``worker.batch_max_events``,
waiting at most ``worker.batch_wait_s``): all facts (facts topic), their alerts (alerts topic)
and dead letters of a batch are produced, Kafka's acknowledgement of all of them is awaited
once, and only then each state goes back to the ``sla-state`` table (RocksDB + changelog) and
the client's next due instant to the deadline index that drives the timer
(``ProcessorStep.commit``). Faust acknowledges the batch's offsets after that, so they commit
only after all of it. After every rebalance/restart the index is rebuilt from the table once
recovery completes, so a deadline that passed while no worker ran fires at once (with its own
instant as ``at``).

A second agent turns the compacted directory topic into ClientPolicyChanged events on the
interactions topic (``streams.directory_feed``).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from engine.core import Engine
from engine.state import ClientState
from schemas import topics as specs
from schemas.batches import partition_for
from shinrai.settings import Settings
from streams.deadline_index import DeadlineIndex
from streams.directory_feed import attach_directory_feed
from streams.recovery import index_entries, raw_table_items
from streams.state_cache import StateCache
from streams.state_parts import read_state, write_state
from streams.step import (
    BATCH_BYTES_MARGIN,
    ClientUpdate,
    InRecord,
    OutRecord,
    ProcessorStats,
    ProcessorStep,
    ProcessorTopics,
    cut_by_bytes,
)
from streams.watermark import PartitionWatermarks

__all__ = ["STATE_TABLE", "ProcessorStats", "ProcessorTopics", "attach_processor", "wall_clock"]

log = logging.getLogger(__name__)

STATE_TABLE = "sla-state"


def wall_clock() -> datetime:
    """The live watermark: the wall clock, in UTC."""
    return datetime.now(UTC)


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
        engine = Engine(
            allowed_lateness=timedelta(seconds=worker.allowed_lateness_s),
            chase_window=timedelta(seconds=worker.chase_window_s) or None,
        )
    eng = engine
    marks = PartitionWatermarks(timedelta(seconds=worker.catch_up_gap_s))
    marks.clear()  # no partition is live before its assignment is known (rebuild_index)
    partitions = specs.INTERACTIONS.partitions or settings.kafka.topic_partitions
    index = DeadlineIndex()
    step = ProcessorStep(
        eng,
        topics,
        watermarks=marks,
        max_future_skew=timedelta(seconds=worker.max_future_skew_s),
        max_event_age=timedelta(days=worker.max_event_age_days),
        history_gap=timedelta(seconds=worker.history_gap_s),
        partitions=partitions,  # an item of a batch record must hash to its record's partition
        facts_partitions=specs.FACTS.partitions or settings.kafka.topic_partitions,
        accepted_partitions=specs.ACCEPTED.partitions or settings.kafka.topic_partitions,
        # The broker's limit and the Faust producer's request limit, less room for framing.
        max_batch_bytes=min(settings.kafka.max_message_bytes, app.conf.producer_max_request_size)
        - BATCH_BYTES_MARGIN,
        batch_output_from=worker.batch_output_from,
        due_clients=index.take_due,
    )
    stats = step.stats

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

    def records(batch: Sequence[Any]) -> list[InRecord]:
        """The batch's Faust events as the step's records (each event kept as the handle); a
        batch record (``schemas.batches``) is one of them, the step reads its items."""
        highwaters: dict[Any, int | None] = {}  # once per partition and batch
        out: list[InRecord] = []
        for event in batch:
            msg = event.message
            highwater = None
            if msg.topic != topics.ticks:
                tp = msg.tp
                if tp in highwaters:
                    highwater = highwaters[tp]
                else:
                    highwater = highwaters[tp] = _highwater(app, msg)
            out.append(
                InRecord(
                    msg.topic, msg.partition, msg.offset, event.key, event.value, highwater, event
                )
            )
        return out

    states = StateCache()  # decoded states this worker stored last (``streams.state_cache``)

    def load_state(anchor: InRecord) -> ClientState | None:
        """The client's state: its core and, unless this worker stored it last (``states``),
        its old generation (``streams.state_parts``)."""
        with _current(anchor.handle):
            return read_state(table.get, anchor.key or b"", states)

    async def send(record: OutRecord) -> Any:
        """Hand one record to the app's producer; returns the acknowledgement future.

        The Faust producer directly (not ``topic.send``): no per-message channel plumbing, and
        never attached to the source offset (which would produce only at commit time, after
        the RocksDB write the crash-safety order depends on).
        """
        return await app.producer.send(
            record.topic, record.key, record.value, record.partition, None, record.headers
        )

    def store(update: ClientUpdate) -> None:
        """The client's state to the table (RocksDB + changelog), its due instant to the index."""
        if update.state is not None:  # None: a tick for a client with no state, nothing due
            # Core and (now and then) old generation, in the anchor's partition and changelog.
            with _current(update.anchor.handle):
                write_state(
                    table.__setitem__,
                    update.key,
                    update.state,
                    states,
                    merge_at=worker.state_merge_items,
                )
        index.update(update.client_id, update.due, update.partition)

    async def process(batch: Sequence[Any]) -> None:
        """Handle one batch of input messages (interactions and ticks, any partitions): the
        step decides (``streams.step``), then every record it produces is acknowledged before
        any state is stored. Faust acknowledges the batch's offsets after this returns, so they
        commit only after all of it."""
        for part in cut_by_bytes(records(batch), worker.batch_max_bytes):
            result = step.run(part, load_state, clock())
            await step.commit(result, send, store)

    @app.agent(source, name="shinrai-sla-processor")  # type: ignore[untyped-decorator]
    async def sla_processor(stream: Any) -> None:
        # Never yield and never skip: every message is either processed or dead-lettered.
        async for batch in stream.take_events(worker.batch_max_events, within=worker.batch_wait_s):
            await process(batch)

    async def rebuild_index() -> None:
        """Re-index every client of the partitions we now hold (after recovery), from the
        state headers (``streams.recovery.index_entries``: no full decode of each state)."""
        step.reassigned()  # open counts from the table, watermarks from the assignment
        states.clear()  # the table may now hold states other workers wrote
        await _mark_assigned()
        entries, open_counts = index_entries(raw_table_items(table), eng)
        for client_id, count in open_counts.items():
            stats.set_open(client_id, count)
        # Each client on the partition its key hashes to (where its state and events are), so
        # a partition tick finds it.
        index.rebuild(
            (client_id, due, partition_for(client_id.encode(), partitions))
            for client_id, due, _ in entries
        )
        stats.index_rebuilds += 1
        log.info("deadline index rebuilt: %d clients with pending work", len(index))

    async def _mark_assigned() -> None:
        """A partition assigned with records queued behind its read position reads as a
        backlog until they are read: no tick and no wall-clock advance moves its clients past
        replies still queued (``PartitionWatermarks.assigned``)."""
        consumer = app.consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic == topics.interactions]
        behind = 0
        try:
            ends = await consumer.highwaters(*assigned) if assigned else {}
            for tp in assigned:
                try:
                    position = await consumer.position(tp)
                except Exception:
                    position = None
                end = ends.get(tp)
                marks.assigned(tp.partition, position, end)
                if position is not None and end is not None and position < end:
                    behind += end - position
        except Exception as exc:  # offsets unknown: live, as before (never hold on a guess)
            log.warning("log ends of the assigned partitions unknown: %s", exc)
        finally:
            marks.assignment_known()
        log.info("assigned %d interactions partitions, %d records queued", len(assigned), behind)

    table.on_recover(rebuild_index)

    @app.timer(interval=worker.tick_interval_s)  # type: ignore[untyped-decorator]
    async def send_ticks() -> None:
        # One tick per partition with due clients, produced to that partition explicitly (the
        # step asks the index which of its clients are due); a client whose partition is not
        # known gets its own tick, keyed by its id (the default partitioner finds its state).
        now = clock()
        stats.clients_held = step.held_clients(now)  # the gauge falls when an import ends
        due_partitions: dict[int, datetime] = {}
        for due in index.pop_due(now, lambda partition: marks.catching_up(partition, now)):
            if due.partition is None:
                value = orjson.dumps({"due": due.due.isoformat()})
                await ticks.send(key=due.client_id.encode(), value=value)
                stats.ticks_sent += 1
            elif due.partition not in due_partitions:
                due_partitions[due.partition] = due.due  # the earliest: popped in due order
        for partition, first in sorted(due_partitions.items()):
            value = orjson.dumps({"due": first.isoformat(), "partition": partition})
            await ticks.send(key=None, value=value, partition=partition)
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
