"""The Faust SLA processor: the thin live adapter around ``engine.core.Engine``.

One agent consumes the interactions topic AND the ticks topic (co-partitioned, both keyed by
client_id), so every change to a client's state happens inside stream iteration on the
partition that owns the client (Faust tables may only be written there):

* an interaction (InteractionEvent or ClientPolicyChanged) is decoded at the edge (invalid →
  DLQ with the original bytes), applied, and the client is advanced to the wall clock;
* a tick (sent by our own timer when a client's ``next_due`` has come) advances the client to
  the wall clock, which fires warnings, breaches and silences at their exact instants.

After either, the state goes back to the ``sla-state`` table (RocksDB + changelog), the facts
go to the facts topic, their alerts to the alerts topic, and the client's next due instant to the
deadline index that drives the timer. After every rebalance/restart the index is rebuilt from
the table once recovery completes, so a deadline that passed while no worker ran fires at once
(with its own instant as ``at``).

A second agent turns the compacted directory topic into ClientPolicyChanged events on the
interactions topic (``streams.directory_feed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from engine.alerts import alert_for
from engine.core import Engine
from engine.state import ClientState, Event
from schemas.base import encode
from schemas.facts import Fact
from shinrai.errors import ShinraiError
from shinrai.settings import Settings
from streams import topics as specs
from streams.deadline_index import DeadlineIndex
from streams.directory_feed import attach_directory_feed
from streams.dlq import Rejected, dead_letter, decode_input

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
        """The names of ``streams.topics``, each with ``suffix`` appended."""
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
    partitions = specs.INTERACTIONS.partitions or settings.kafka.topic_partitions

    source = app.topic(topics.interactions, topics.ticks, key_type=bytes, value_type=bytes)
    ticks = app.topic(topics.ticks, key_type=bytes, value_type=bytes)
    facts_topic = app.topic(topics.facts, key_type=bytes, value_type=bytes)
    alerts_topic = app.topic(topics.alerts, key_type=bytes, value_type=bytes)
    dlq_topic = app.topic(topics.dlq, key_type=bytes, value_type=bytes)
    table = app.Table(
        STATE_TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        store=worker.store,
    )

    async def emit(key: bytes, facts: list[Fact]) -> None:
        """Produce the facts and their alerts and wait until Kafka acknowledged every one.

        ``force=True``: inside an agent Faust would otherwise attach the sends to the source
        offset and produce them only at commit time, while the RocksDB table write below is
        local and immediate. A kill -9 in between left a state that had already "emitted"
        facts nobody ever received. Acknowledged first, stored second: a crash before the
        store replays the event (the same fact ids again, deduplicated downstream); a crash
        after it replays a duplicate the engine ignores.
        """
        pending: list[Any] = []
        for fact in facts:
            pending.append(await facts_topic.send(key=key, value=encode(fact), force=True))
            stats.facts_out += 1
            alert = alert_for(fact)
            if alert is not None:
                pending.append(await alerts_topic.send(key=key, value=encode(alert), force=True))
                stats.alerts_out += 1
        for future in pending:
            await future

    async def step(client_id: str, partition: int, event: Event | None) -> None:
        """Apply ``event`` (None: a tick) and advance the client to the clock; store and emit."""
        key = client_id.encode()
        raw = table.get(key)
        state = ClientState.from_bytes(raw) if raw else None
        out: list[Fact] = []
        if event is not None:
            state, out = eng.apply(state, event)
        if state is None:  # a tick for a client with no state: nothing is due
            index.update(client_id, None, partition)
            return
        state, more = eng.advance(state, clock())
        out.extend(more)
        await emit(key, out)  # acknowledged before the state that remembers them is stored
        table[key] = state.to_bytes()
        index.update(client_id, eng.next_due(state), partition)
        stats.set_open(client_id, len(state.open))

    async def reject(event: Any, reason: str) -> None:
        msg = event.message
        key, value, headers = dead_letter(
            event.value,
            event.key,
            reason,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            now=clock(),
        )
        # Acknowledged before the agent moves on, so the original bytes survive a crash.
        await (await dlq_topic.send(key=key, value=value, headers=headers, force=True))
        stats.events_invalid += 1
        log.warning("dead-lettered %s/%s/%s: %s", msg.topic, msg.partition, msg.offset, reason)

    @app.agent(source, name="shinrai-sla-processor")  # type: ignore[untyped-decorator]
    async def sla_processor(stream: Any) -> None:
        # Never yield and never skip: every message is either processed or dead-lettered.
        async for event in stream.events():
            msg = event.message
            if msg.topic == topics.ticks:
                stats.ticks_in += 1
                if event.key:
                    await step(event.key.decode("utf-8", errors="replace"), msg.partition, None)
                continue
            stats.events_in += 1
            stats.last_event_at = clock()
            decoded = decode_input(event.value)
            if isinstance(decoded, Rejected):
                await reject(event, decoded.reason)
                continue
            client_id = decoded.client_id
            if client_id is None:
                stats.events_unassigned += 1
                continue
            if event.key != client_id.encode():
                # State lives on the partition of the key; a mis-keyed event would split a
                # client's state (and its order) across partitions.
                await reject(event, f"<key>: message key {event.key!r} must equal client_id")
                continue
            try:
                await step(client_id, msg.partition, decoded)
            except ShinraiError as exc:  # e.g. EngineError: an input the engine cannot apply
                await reject(event, f"<engine>: {exc}")

    async def rebuild_index() -> None:
        """Re-index every client of the partitions we now hold (after recovery)."""
        entries: list[tuple[str, datetime | None, int | None]] = []
        stats.reset_open()
        for _key, raw in table.items():
            if not raw:
                continue
            state = ClientState.from_bytes(raw)
            entries.append((state.client_id, eng.next_due(state), None))
            stats.set_open(state.client_id, len(state.open))
        index.rebuild(entries)
        stats.index_rebuilds += 1
        log.info("deadline index rebuilt: %d clients with pending work", len(index))

    table.on_recover(rebuild_index)

    @app.timer(interval=worker.tick_interval_s)  # type: ignore[untyped-decorator]
    async def send_ticks() -> None:
        # A tick with no explicit partition follows the key's hash, like every producer of
        # the interactions topic (murmur2 default partitioner), so it reaches the state.
        for due in index.pop_due(clock()):
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
