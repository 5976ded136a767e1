"""The SLA processor's per-batch logic as a pure step: records in, records out, states to store.

No Kafka and no Faust here (``streams.processor`` is the adapter that wires both around it), and
no clock: the caller passes ``now``. One batch of input records (interactions and ticks, any
partitions) goes through two calls:

``ProcessorStep.run(batch, load_state, now)`` (pure, synchronous) returns a :class:`StepResult`:

1. every interaction is decoded at the edge (``streams.dlq``); an invalid one, or one whose key
   is not its ``client_id`` (its state would be split across partitions), becomes a dead letter
   with its original bytes; the rest are grouped per client in arrival order, a tick adding its
   client with no input. Each client's state lives under the key and on the partition of its
   first record in the batch (its *anchor*);
   A batch record (``schemas.batches``: an ``event_batch`` of one partition's events) stands
   for its items, in order, each read exactly as the single record of the same partition and
   offset it would be (its bytes, its client's key), except that its key must hash to the
   record's partition; an invalid or mis-placed item is dead-lettered alone (its bytes, its
   index in a header), the rest of the batch goes on; a wrong envelope dead-letters the record.
   An interaction dated more than ``max_future_skew`` ahead of the clock (a wrong clock would
   make its partition look live and turn the rest of a backlog late), or older than
   ``max_event_age``, is dead-lettered too, with the reason;
2. the partition watermarks (``streams.watermark``) take the event times read and, per partition,
   the last offset read against Kafka's log end (``InRecord.highwater``);
3. per client, the state is read once (``load_state(anchor)``), its inputs applied in order, the
   client advanced after each to the partition's event time read so far (the per-event semantics
   of a replay), then to the partition's watermark (the clock, or the event time of a backlog;
   a tick only asks for this last advance). Before each input is applied, its client is
   advanced to the partition's event time read before that input: where the end of a batch cut
   just before it would have left the client. So whether an input is late depends on the
   partition's order alone, not on where its batches are cut: on a backlog, an input read
   after its partition's event time passed it by more than the allowed lateness is late (the
   engine's correction path; past the duplicate window, a dead letter) in every cut, and one
   read within it is processed in order in every cut, as the replay of the log does. Without
   this, the end-of-batch advance (the event time of the whole batch, other clients' later
   records included) made a client's next input late when the batch ended between them, and
   not when they shared a batch. What still depends on the cut: the clock (a live partition's
   watermark, which no log holds), and for a held client the moment its partition turns from
   a backlog to live. An input the engine cannot apply (``EngineError``,
   the engine's only error for bad input; ``InputRejected`` also from an advance, for a
   buffered event or a timer) is dead-lettered and skipped, the facts emitted before it kept;
   any other exception is a bug and propagates: it fails the batch, never passes as bad input.
   A client fed *history* (an input more than ``history_gap``, an hour, behind the clock: an
   import into a running worker, an integration back from a long outage, a backlog) is *held*
   in event time while its partition's history keeps coming: until no history was read on the
   partition for the catch-up gap, 10 s, and the records queued on it while history was read
   within that gap are read (a loaded worker that takes longer than the gap to reach the
   queued part of an import does not end the hold). It is advanced after each history
   input to that input's own time, never to the wall clock, and, while the partition reads as
   a backlog, to the event time of the *history* read on it, not the partition's own (live
   events interleaved with the import move that to the clock); a live input of it waits,
   buffered in event-time order; its due instant is pushed past the end of the import.
   History imported into a running worker (sorted, as ``shinrai produce`` sends it) is thus
   processed as a replay would, not turned late by the clock (breaches paged then retracted,
   or, past the duplicate window, dead-lettered); the cost: such a client's timers and live
   inputs wait for the import;
4. every interaction the engine took (not a duplicate, not refused) goes on, original bytes, to
   the accepted topic that storage reads (so dead-lettered input is never counted); every fact
   (facts topic), its alert (alerts topic) and every dead letter (DLQ) is an
   :class:`OutRecord` in ``StepResult.produce``, in the order the processor always sent them; each
   client's new state and next due instant is a :class:`ClientUpdate`. Inputs that came in
   batch records (``InRecord.batched``: a producer holding many events) get their output in
   batch records too (a single record each would cost more than the producer can send at
   that rate): what a client with such inputs writes to the accepted topic goes in
   ``event_batch`` and to the facts topic in ``fact_batch`` records (``schemas.batches``;
   the whole client, so its order on each topic is kept), one or more per destination partition,
   after every client of the batch, items in the order single records would have had; their
   alerts and dead letters stay single records, as does everything for single-record inputs
   read a few at a time (live traffic). A step of at least ``batch_output_from`` records (a
   backlog of single records, ``SHINRAI_WORKER__BATCH_OUTPUT_FROM``) writes all its facts and
   accepted interactions in batch records the same way: one fact record per fact cost the
   processor and the ClickHouse runner more than the fact itself.

``ProcessorStep.commit(result, send, store)`` (async; the I/O is passed in) is the crash-safety
order: hand every record to ``send``, wait for Kafka's acknowledgement of ALL of them, and only
then ``store`` each update (state and due instant). A crash before the store replays the batch
(the same fact ids again, deduplicated downstream); a crash after it replays duplicates the
engine ignores. A failed acknowledgement raises before anything is stored.

The counters and gauges the worker exports (:class:`ProcessorStats`) are kept by the step.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter

from engine.alerts import alert_for
from engine.core import Engine
from engine.state import ClientState, Event
from schemas import topics as specs
from schemas.alerts import Alert
from schemas.batches import (
    EVENT_BATCH,
    FACT_BATCH,
    MAX_BATCH_ITEMS,
    BatchInvalid,
    join,
    partition_for,
    split,
)
from schemas.events import ClientPolicyChanged, InteractionEvent
from schemas.facts import Fact
from shinrai.errors import EngineError, EventTooOld, InputRejected
from shinrai.settings import KafkaSettings
from streams.dlq import Rejected, dead_letter, decode_input
from streams.watermark import PartitionWatermarks

__all__ = [
    "ClientUpdate",
    "DueClients",
    "InRecord",
    "LoadState",
    "OutRecord",
    "ProcessorStats",
    "ProcessorStep",
    "ProcessorTopics",
    "Send",
    "StepResult",
    "Store",
    "cut_by_bytes",
]

log = logging.getLogger(__name__)

UNKNOWN_KEY = b"_unknown"  # the key producers give an event without a client (schemas.batches)

_DEFAULT_PARTITIONS: int = KafkaSettings.model_fields["topic_partitions"].default
BATCH_BYTES_MARGIN = 16_384
"""Room left under the largest record Kafka takes for the record's own framing, key and headers."""
DEFAULT_MAX_BATCH_BYTES = (
    min(KafkaSettings.model_fields["max_message_bytes"].default, 1_000_000) - BATCH_BYTES_MARGIN
)
"""Largest batch record the step writes by default: the broker's default ``max.message.bytes``
and Faust's producer request limit (1,000,000), less the margin."""

Headers = list[tuple[str, bytes]]

_EVENT_UTC = TypeAdapter(datetime).validate_json('"2000-01-01T00:00:00Z"').tzinfo
"""The tzinfo pydantic gives every decoded UTC time (one shared object). Two aware datetimes
compare through both ``utcoffset()`` calls unless they share the tzinfo object (~0.6 µs against
~0.03 µs): the bounds an event's time is compared with per event are expressed in this one.
Only for comparisons: what the engine is handed keeps the caller's ``now``."""

# ``schemas.base.encode`` of a Fact / an Alert without ``model_dump_json``'s Python wrapper and
# its str round trip: the same pydantic serializer, the same bytes (tests/unit/streams compare
# them on the facts of realistic logs), about a microsecond less per fact.
_fact_json: Callable[[Fact], bytes] = Fact.__pydantic_serializer__.to_json
_alert_json: Callable[[Alert], bytes] = Alert.__pydantic_serializer__.to_json


@dataclass
class ProcessorTopics:
    """Topic names the processor reads and writes (tests pass suffixed private topics)."""

    interactions: str
    ticks: str
    facts: str
    alerts: str
    dlq: str
    directory: str
    accepted: str = specs.ACCEPTED.name  # the interactions storage keeps

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
            accepted=specs.ACCEPTED.name + suffix,
        )


@dataclass
class ProcessorStats:
    """Counters the worker exports as metrics (monotonic unless noted)."""

    events_in: int = 0  # interaction messages read (valid or not; each item of a batch record)
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
    clients_held: int = 0  # gauge: clients fed history while it keeps coming (held in event time)
    redelivered: int = 0  # inputs read again after a crash, applied before: skipped
    batches_in: int = 0  # batch records read (``schemas.batches``; their items count as events_in)
    # Dead letters by cause (events_invalid is their sum): invalid, mis_keyed, future,
    # beyond_horizon, too_old, engine.
    dead_letters: Counter[str] = field(default_factory=Counter)
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


@dataclass(frozen=True, slots=True)
class InRecord:
    """One input record as the step sees it (an interaction or a tick).

    ``highwater``: Kafka's log end offset of the record's partition as last fetched (None: not
    known, counts as caught up). ``handle``: the adapter's own object for the record (a Faust
    event), handed back through ``ClientUpdate.anchor``; the step never reads it.

    ``index``: set on one item of a batch record (``schemas.batches``), which the step reads as
    the single record it stands for: same topic, partition, offset and handle, the item's bytes
    as ``value``, its client's key as ``key`` (not the batch record's), its index in the batch.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    highwater: int | None = None
    handle: Any = field(default=None, repr=False, compare=False)
    index: int | None = None  # an item of the batch record at ``offset``: its index (see above)

    @property
    def batched(self) -> bool:
        """An item of a batch record (``schemas.batches``): topic, partition and offset are the
        batch record's. What the step writes for it goes out in batch records too."""
        return self.index is not None


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce: facts, alerts and dead letters alike."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None
    partition: int | None = None
    """Produced to this partition (a batch record: its items' partition); None: the key's."""


@dataclass(frozen=True, slots=True)
class ClientUpdate:
    """One client's outcome of a batch, to store once every record of the batch is acknowledged.

    ``state`` None: the client has no state (a tick for an unknown client, or a first input the
    engine rejected): nothing to store, nothing due. ``key`` and ``anchor`` say where the state
    lives (the table key; the partition of the client's first record in the batch).
    """

    client_id: str
    key: bytes
    anchor: InRecord
    state: ClientState | None
    due: datetime | None  # the watermark at which the engine next has work for the client

    @property
    def partition(self) -> int:
        """The partition the client's state lives on."""
        return self.anchor.partition


def cut_by_bytes(records: Sequence[InRecord], max_bytes: int) -> Iterator[list[InRecord]]:
    """``records`` in order, cut into runs of at most ``max_bytes`` of values (a run holds at
    least one record). One Faust batch of batch records can hold hundreds of thousands of
    events; each run is a step of its own (run, acknowledged, stored), so memory and the time
    the event loop is held stay bounded. Facts do not depend on where a backlog is cut
    (``_client``), and offsets still commit after the whole Faust batch."""
    run: list[InRecord] = []
    size = 0
    for record in records:
        length = len(record.value or b"")
        if run and size + length > max_bytes:
            yield run
            run, size = [], 0
        run.append(record)
        size += length
    if run:
        yield run


@dataclass(slots=True)
class StepResult:
    """What one batch produces (in send order) and what it leaves to store afterwards."""

    produce: list[OutRecord] = field(default_factory=list)
    updates: list[ClientUpdate] = field(default_factory=list)

    @property
    def states(self) -> dict[str, tuple[InRecord, ClientState | None]]:
        """Per client: its anchor and new state (None: none)."""
        return {u.client_id: (u.anchor, u.state) for u in self.updates}

    @property
    def due(self) -> dict[str, tuple[datetime | None, int]]:
        """Per client: its next due instant (None: nothing pending) and its partition."""
        return {u.client_id: (u.due, u.partition) for u in self.updates}

    def on(self, topic: str) -> list[OutRecord]:
        """The records for ``topic``, in send order."""
        return [record for record in self.produce if record.topic == topic]


LoadState = Callable[[InRecord], ClientState | None]
"""The stored state of the client whose anchor record is given (None: no state yet)."""
Send = Callable[[OutRecord], Awaitable[Awaitable[Any]]]
"""Hand one record to the producer; returns its acknowledgement (awaited later, all at once)."""
Store = Callable[[ClientUpdate], None]
"""Keep one client's update: its state (unless None) and its due instant."""
DueClients = Callable[[int, datetime], Iterable[str]]
"""The clients of a partition whose due instant has come by ``now`` (the deadline index)."""


class _ClientWork:
    """One client's share of a batch: its inputs in arrival order, and its anchor.

    A plain class, not a dataclass: one is made per client and batch, and the dataclass's
    generated ``__init__`` plus ``__post_init__`` showed in the worker's profile."""

    __slots__ = ("anchor", "inputs", "key")

    def __init__(self, anchor: InRecord) -> None:
        self.anchor = anchor
        # (record, decoded event, the partition's event time read up to and with it, if any,
        # the partition's event time and its history's read before it: see ``_client``)
        self.inputs: list[
            tuple[InRecord, Event, datetime | None, datetime | None, datetime | None]
        ] = []
        key = anchor.key
        # the client's message key (used per record produced); bytes already from Kafka
        self.key: bytes = key if type(key) is bytes else bytes(key or b"")


class ProcessorStep:
    """The processor's per-batch logic around one engine (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        topics: ProcessorTopics,
        *,
        watermarks: PartitionWatermarks | None = None,
        stats: ProcessorStats | None = None,
        max_future_skew: timedelta = timedelta(minutes=15),
        max_event_age: timedelta = timedelta(days=3660),
        history_gap: timedelta = timedelta(hours=1),
        partitions: int | None = None,
        facts_partitions: int | None = None,
        accepted_partitions: int | None = None,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        batch_output_from: int = 0,
        due_clients: DueClients | None = None,
    ) -> None:
        """``watermarks`` default to the 10 s catch-up gap (also how long a history hold lasts);
        ``stats`` to fresh counters. Interactions more than ``max_future_skew`` ahead of the
        clock or older than ``max_event_age`` are dead-lettered; one more than ``history_gap``
        behind the clock is history (its client is held in event time). ``partitions``: the
        interactions topic's partition count, which an item of a batch record is checked
        against (its client's key must hash to the record's partition; None: not checked).

        Output for inputs that came in batch records is written as batch records
        (``schemas.batches``) to the partition of their keys among ``facts_partitions`` /
        ``accepted_partitions`` (default: the configured default partition count), each at
        most ``max_batch_bytes`` (the topic's ``max.message.bytes`` less a margin). So is all
        the facts and accepted output of a step of at least ``batch_output_from`` input records
        (0: never), whatever form its inputs came in: a backlog of single records.

        ``due_clients``: the
        clients of a partition whose due instant has come (the deadline index's ``take_due``;
        None: none), advanced on a partition tick and on every batch that reads the partition
        while it is live."""
        self.engine = engine
        self.due_clients = due_clients
        self.topics = topics
        self.marks = watermarks if watermarks is not None else PartitionWatermarks()
        self.stats = stats if stats is not None else ProcessorStats()
        self.max_future_skew = max_future_skew
        self.max_event_age = max_event_age
        self.history_gap = history_gap
        self.partitions = partitions
        self._held: dict[str, int] = {}  # client fed history -> its partition
        # partition -> wall clock until which its history import counts as going on
        self._history_until: dict[int, datetime] = {}
        # partition -> the log end to read up to before its import can end: the records that
        # were queued when it was read while its history kept coming (they may be more of it).
        # The import goes on until they are read, however long that takes (a loaded worker, a
        # starved event loop); only a read within the gap of history moves it (a busy live
        # partition, always a few records behind, does not hold its clients for ever).
        self._queued_to: dict[int, int] = {}
        # The event time of the history read per partition (live events left out: interleaved
        # with an import, they would move it to the clock), robust to one outlier as the
        # partition's own is: what a held client may be advanced to while its partition reads
        # as a backlog.
        self._history_time = PartitionWatermarks()
        self._partitions = {
            topics.facts: facts_partitions or specs.FACTS.partitions or _DEFAULT_PARTITIONS,
            topics.accepted: accepted_partitions
            or specs.ACCEPTED.partitions
            or _DEFAULT_PARTITIONS,
        }
        self.max_batch_bytes = max_batch_bytes
        self.batch_output_from = batch_output_from
        self._batch_all = False  # this run writes all its facts and accepted input batched
        # Per run: topic -> (key, encoded item) of output for batch inputs, in send order.
        self._batched: dict[str, list[tuple[bytes, bytes]]] = {}
        # Per run: partition -> (reads a backlog, its watermark). The watermarks move only
        # while the batch is read, so every client of a partition sees the same pair.
        self._backlog: dict[int, tuple[bool, datetime | None]] = {}

    # -- the batch ---------------------------------------------------------------------------

    def run(self, batch: Sequence[InRecord], load_state: LoadState, now: datetime) -> StepResult:
        """Decide everything one batch does (pure apart from the watermarks and counters it
        keeps): the records to produce, in order, and each client's update to store after."""
        result = StepResult()
        self._batched = {self.topics.facts: [], self.topics.accepted: []}
        self._backlog = {}
        # A backlog of single records (a step this full): its output in batch records too.
        self._batch_all = 0 < self.batch_output_from <= len(batch)
        work = self._read(batch, now, result.produce)
        for client_id, item in work.items():
            result.updates.append(self._client(client_id, item, load_state, now, result.produce))
        if work:  # once per run: counting per client was quadratic in the clients held
            self.stats.clients_held = self.held_clients(now)
        self._batch_records(result.produce)
        return result

    async def commit(self, result: StepResult, send: Send, store: Store) -> None:
        """Produce every record of ``result``, wait until Kafka acknowledged ALL of them, and
        only then ``store`` each update (the crash-safety order; see the module docstring)."""
        pending = [await send(record) for record in result.produce]
        for ack in pending:  # every fact, alert and dead letter acknowledged ...
            await ack
        for update in result.updates:  # ... before the states that remember them
            store(update)
            if update.state is not None:
                self.stats.set_open(update.client_id, len(update.state.open))

    def held_clients(self, now: datetime) -> int:
        """Clients held in event time now: fed history on a partition whose import goes on."""
        return sum(1 for part in self._held.values() if self._import_until(part, now))

    def _import_until(self, partition: int, now: datetime) -> datetime | None:
        """Until when the history import of ``partition`` counts as going on (None: it does
        not): the catch-up gap after the last read that found history on it, and after that
        while records queued within that gap are unread (then a gap from ``now`` on: the
        instant its held clients are due again)."""
        flow = self._history_until.get(partition)
        if flow is not None and flow > now:
            return flow
        if partition in self._queued_to:  # what was queued then is not read yet: it goes on
            return now + self.marks.gap
        return None

    # -- partitions reassigned ---------------------------------------------------------------

    def reassigned(self) -> None:
        """A new assignment: every partition live until read, open counts to be rebuilt."""
        self.stats.reset_open()
        self.marks.clear()
        self._held.clear()
        self._history_until.clear()
        self._queued_to.clear()
        self._history_time.clear()
        self.stats.partitions_catching_up = 0
        self.stats.clients_held = 0

    # -- the parts of a batch ----------------------------------------------------------------

    def _read(
        self, batch: Sequence[InRecord], now: datetime, produce: list[OutRecord]
    ) -> dict[str, _ClientWork]:
        """Decode and group the batch per client (arrival order); dead-letter what is invalid
        or mis-keyed; feed the watermarks."""
        stats, marks, ticks = self.stats, self.marks, self.topics.ticks
        work: dict[str, _ClientWork] = {}
        last_read: dict[int, InRecord] = {}  # interactions partition -> its last record here
        history = (now - self.history_gap).astimezone(_EVENT_UTC)
        fed: set[int] = set()  # partitions this batch read history on
        # The plausible range of event times, once per batch: the per-event test below only
        # compares (``_implausible`` says why when an event falls outside).
        latest = (now + self.max_future_skew).astimezone(_EVENT_UTC)
        earliest = (now - self.max_event_age).astimezone(_EVENT_UTC)
        ticked: dict[int, InRecord] = {}  # partition -> its tick or last record (due clients)
        # A batch record stands for its items, each read as the single record it would be.
        for record, decoded in self._decoded(batch):
            if record.topic == ticks:
                stats.ticks_in += 1
                if record.key:  # a client's own tick (the format before partition ticks)
                    client = record.key.decode("utf-8", errors="replace")
                    if client not in work:
                        work[client] = _ClientWork(record)
                else:  # a partition tick: its due clients, below
                    ticked.setdefault(record.partition, record)
                continue
            stats.events_in += 1
            last_read[record.partition] = record
            if decoded is None or isinstance(decoded, Rejected):  # None: only ever a tick
                reason = decoded.reason if decoded is not None else "<root>: not decoded"
                produce.append(self._reject(record, reason, now, "invalid"))
                continue
            client_id = decoded.client_id
            if record.index is not None:  # an item of a batch record: on its client's partition?
                misplaced = self._misplaced(record)
                if misplaced is not None:
                    produce.append(self._reject(record, misplaced, now, "mis_keyed"))
                    continue
            if client_id is None:
                stats.events_unassigned += 1
                continue
            if record.key != client_id.encode():
                # State lives on the partition of the key; a mis-keyed event would split a
                # client's state (and its order) across partitions.
                reason = f"<key>: message key {record.key!r} must equal client_id"
                produce.append(self._reject(record, reason, now, "mis_keyed"))
                continue
            at = decoded.occurred_at
            if at > latest or (at < earliest and isinstance(decoded, InteractionEvent)):
                implausible = self._implausible(decoded, now)
                if implausible is not None:
                    reason, cause = implausible
                    produce.append(self._reject(record, reason, now, cause))
                    continue
            # Where the end of a batch cut just before this record would have left its client.
            before = marks.event_time(record.partition)
            history_before = self._history_time.event_time(record.partition)
            if isinstance(decoded, ClientPolicyChanged):  # its effective time: no event time
                seen = before
            else:
                seen = marks.observe(record.partition, decoded.occurred_at)
                if isinstance(decoded, InteractionEvent) and decoded.occurred_at < history:
                    fed.add(record.partition)
                    self._history_time.observe(record.partition, decoded.occurred_at)
            item = work.get(client_id)
            if item is None:
                item = work[client_id] = _ClientWork(record)
            item.inputs.append((record, decoded, seen, before, history_before))
        if batch:
            stats.last_event_at = now
        for partition, record in last_read.items():
            marks.read_up_to(partition, record.offset, record.highwater)
            # The import's extent, set here for the whole batch before any client (a tick first
            # in the batch must not see a hold lapse that history later in the batch renews).
            if partition in fed:
                self._history_until[partition] = now + marks.gap
            queued_to = self._queued_to.get(partition)
            flow = self._history_until.get(partition)
            end = record.highwater
            if flow is not None and flow > now and end is not None and record.offset + 1 < end:
                queued_to = end if queued_to is None else max(queued_to, end)
            if queued_to is None or record.offset + 1 >= queued_to:
                self._queued_to.pop(partition, None)
            else:
                self._queued_to[partition] = queued_to
        stats.partitions_catching_up = marks.partitions_catching_up(now)
        self._due_work(work, ticked, last_read, now)
        return work

    def _decoded(
        self, batch: Sequence[InRecord]
    ) -> Iterator[tuple[InRecord, Event | Rejected | None]]:
        """Each record of ``batch`` with its input decoded at the edge (None: a tick, not
        decoded here). A batch record of the interactions topic stands for its items, in order:
        each as an ``InRecord`` of its own (``index`` set, keyed by its client: ``client_id``,
        or ``_unknown`` as producers key an event without one; an item that does not decode
        keeps the batch record's key). A record whose batch envelope is wrong is one invalid
        input, dead-lettered whole with the reason."""
        ticks, stats = self.topics.ticks, self.stats
        for record in batch:
            if record.topic == ticks:
                yield record, None
                continue
            try:
                found = split(record.value)
            except BatchInvalid as exc:
                stats.batches_in += 1
                yield record, Rejected(str(exc))
                continue
            if found is None:  # a single record (or not JSON: decoding says why)
                yield record, decode_input(record.value)
                continue
            stats.batches_in += 1
            kind, items = found
            if kind != EVENT_BATCH:
                yield record, Rejected(f"type: a {kind} is not input (an {EVENT_BATCH} is)")
                continue
            topic, partition, offset, high = (
                record.topic,
                record.partition,
                record.offset,
                record.highwater,
            )
            for index, raw in enumerate(items):
                decoded = decode_input(raw)
                key = record.key
                if not isinstance(decoded, Rejected):
                    client_id = decoded.client_id
                    key = client_id.encode() if client_id is not None else UNKNOWN_KEY
                item = InRecord(topic, partition, offset, key, raw, high, record.handle, index)
                yield item, decoded

    def _misplaced(self, item: InRecord) -> str | None:
        """Why an item of a batch record is not on its client's partition (None: it is). A
        batch holds the items of its own partition only; one elsewhere would split its client's
        state (and order) across partitions, as a mis-keyed single record would."""
        if self.partitions is None or item.key is None:
            return None
        home = partition_for(item.key, self.partitions)
        if home == item.partition:
            return None
        return (
            f"<key>: item {item.index} of a batch record on partition {item.partition} has key "
            f"{item.key!r}, which belongs on partition {home} of {self.partitions} (a batch "
            "holds the items of its own partition only)"
        )

    def _due_work(
        self,
        work: dict[str, _ClientWork],
        ticked: dict[int, InRecord],
        last_read: dict[int, InRecord],
        now: datetime,
    ) -> None:
        """Add the due clients of every partition this batch ticked or read, unless it reads a
        backlog (its clients go by their own events; the timer ticks them once it is live).
        Each is anchored on a record of its partition under its own key (where its state
        lives); a busy partition's due clients thus need no tick record at all."""
        if self.due_clients is None:
            return
        for partition, record in {**last_read, **ticked}.items():
            if self.marks.catching_up(partition, now):
                continue
            for client in self.due_clients(partition, now):
                if client not in work:
                    work[client] = _ClientWork(replace(record, key=client.encode(), index=None))

    def _implausible(self, event: Event, now: datetime) -> tuple[str, str] | None:
        """(reason, cause) when ``event`` is dated where no real input can be, else None."""
        at = event.occurred_at
        if at > now + self.max_future_skew:
            return (
                f"occurred_at: {at.isoformat()} is more than {self.max_future_skew} ahead of "
                f"the worker's clock {now.isoformat()} (worker.max_future_skew_s)",
                "future",
            )
        if isinstance(event, InteractionEvent) and at < now - self.max_event_age:
            return (
                f"occurred_at: {at.isoformat()} is more than {self.max_event_age.days} days "
                f"before the worker's clock {now.isoformat()} (worker.max_event_age_days)",
                "beyond_horizon",
            )
        return None

    def _client(
        self,
        client_id: str,
        item: _ClientWork,
        load_state: LoadState,
        now: datetime,
        produce: list[OutRecord],
    ) -> ClientUpdate:
        """Read one client's state, apply its inputs and advance it; its facts and alerts."""
        eng = self.engine
        gap = self.marks.gap
        history = (now - self.history_gap).astimezone(_EVENT_UTC)
        # ``now`` in the events' tzinfo, for comparisons only: ``now if now_e < t else t`` is
        # ``min(t, now)`` (the same object returned), without two utcoffset calls per compare.
        now_e = now.astimezone(_EVENT_UTC)
        state = load_state(item.anchor)
        # The offset of the last input the stored state applied: an input at or before it is
        # read again after a crash. The stored one, not the one this batch moves on: the items
        # of a batch record share its offset, and an item after one applied here is new.
        applied = state.position if state is not None else -1
        out: list[Fact] = []
        partition = item.anchor.partition
        # The partition's history import, if one goes on. A held client is never advanced to
        # the partition's watermark: that is the clock, or, while the partition reads as a
        # backlog, its event time read, which live events interleaved with the history move to
        # the clock too (the next part of the history, queued behind them, would then be late,
        # or past the duplicate window). On a backlog it goes to the history's event time.
        flow = self._import_until(partition, now)
        held = client_id in self._held and flow is not None
        # Inputs (some) from batch records: the client's output goes out in batch records, all
        # of it, so its order on each topic is the order it was produced in.
        batched = self._batch_all or any(record.batched for record, *_ in item.inputs)
        # Each input is applied and the client advanced after it to the partition's event
        # time read so far, as a replay of the partition would (an input later than that
        # by more than the allowed lateness takes the engine's correction path). A held client
        # (see the module docstring) goes to its history's own time only: a live input of it
        # waits, buffered in event-time order, until the partition's history has come in.
        # Then the client goes to the partition's watermark (the clock unless it reads a
        # backlog), unless held.
        marks = self._backlog.get(partition)
        if marks is None:
            marks = self._backlog[partition] = (
                self.marks.catching_up(partition, now),
                self.marks.watermark(partition, now),
            )
        catching_up, watermark = marks
        for record, decoded, seen, before, history_before in item.inputs:
            # Whether an input is late depends on the partition's order alone, never on where
            # the batch is cut: before it is applied, its client goes where the end of a batch
            # cut just before it would have taken it (below): the partition's event time read
            # before it (or, held, its history's while the partition catches up). Otherwise a
            # client advanced at the end of a batch to the event time of other clients' later
            # records would find its own next input late in one cut and in time in another.
            cut = history_before if held and catching_up else None if held else before
            if cut is not None and state is not None:
                state = self._advance(state, now if now_e < cut else cut, item, out, produce, now)
            fresh = isinstance(decoded, InteractionEvent) and (
                state is None or decoded.event_id not in state.seen
            )
            try:
                state, facts = eng.apply(state, decoded)
            # EngineError is the engine's one error for an input it cannot apply (schemas
            # already validated it; ValidationFailed comes only from decoders and feeds, never
            # from apply). Anything else is a bug: it fails the batch, which Kafka replays.
            # The state the engine leaves is consistent without the input: it is kept.
            except EngineError as exc:
                if isinstance(exc, InputRejected):
                    out.extend(f for f in exc.facts if isinstance(f, Fact))
                if (
                    isinstance(exc, EventTooOld)
                    and record.topic == self.topics.interactions
                    and record.offset <= applied
                ):
                    # Read again after a crash (at least once): applied before the state was
                    # stored, and too old for the engine to recognise by id. A duplicate.
                    self.stats.redelivered += 1
                    continue
                cause = "too_old" if isinstance(exc, EventTooOld) else "engine"
                produce.append(self._reject(record, f"<engine>: {exc}", now, cause))
                continue
            if state is not None and record.topic == self.topics.interactions:
                state.position = max(state.position, record.offset)
            if fresh and record.value is not None:  # storage keeps what the engine took
                if batched:  # came in a batch record: goes out in one (``run``)
                    pending = self._batched.setdefault(self.topics.accepted, [])
                    pending.append((item.key, record.value))
                else:
                    produce.append(OutRecord(self.topics.accepted, item.key, record.value))
            out.extend(facts)
            to = seen
            if isinstance(decoded, InteractionEvent) and decoded.occurred_at < history:
                # history: the import goes on (``_read`` renewed it for the whole batch)
                flow = self._import_until(partition, now) or now + gap
                self._held[client_id] = partition
                held = True
                to = decoded.occurred_at  # its own time: other clients' time is not its own
            elif held:
                to = None  # a live input while its history still comes: it waits, in order
            if to is not None and state is not None:
                state = self._advance(state, now if now_e < to else to, item, out, produce, now)
        if not held:
            self._held.pop(client_id, None)
        if not held:
            mark = watermark
        elif catching_up:
            mark = self._history_time.event_time(partition)
        else:
            mark = None
        if state is not None and mark is not None:
            state = self._advance(state, now if now_e < mark else mark, item, out, produce, now)
        self._emit(item.key, out, produce, batched)
        due = eng.next_due(state) if state is not None else None
        if due is not None and held and flow is not None:
            due = max(due, flow)  # what is due waits for the history: ticked once it has come
        return ClientUpdate(client_id, item.key, item.anchor, state, due)

    def _advance(
        self,
        state: ClientState,
        to: datetime,
        item: _ClientWork,
        out: list[Fact],
        produce: list[OutRecord],
        now: datetime,
    ) -> ClientState:
        """``engine.advance`` to ``to``; a buffered event or timer the engine rejects on the way
        is dead-lettered (its facts before it kept) and the advance goes on past it."""
        for _ in range(10_000):  # each rejection removes its input: this ends
            try:
                state, more = self.engine.advance(state, to)
            except InputRejected as exc:
                out.extend(f for f in exc.facts if isinstance(f, Fact))
                record = next((r for r, ev, *_ in item.inputs if ev.event_id == exc.event_id), None)
                if record is None:  # read in an earlier batch, or a timer: name it by its ids
                    record = InRecord(
                        self.topics.interactions,
                        item.anchor.partition,
                        -1,
                        item.key,
                        orjson.dumps({"client_id": exc.client_id, "event_id": exc.event_id}),
                    )
                produce.append(self._reject(record, f"<engine>: {exc}", now, "engine"))
                continue
            out.extend(more)
            return state
        raise EngineError(f"client {item.key!r}: advance rejected 10,000 inputs in a row")

    def _emit(
        self, key: bytes, facts: Iterable[Fact], produce: list[OutRecord], batched: bool = False
    ) -> None:
        """Each fact to the facts topic, followed by its alert (if it raises one).

        ``batched``: the client's inputs came (some) in batch records; its facts then go out in
        fact_batch records (``run`` writes them after every client), its alerts stay single."""
        topics, stats = self.topics, self.stats
        facts_topic, alerts_topic = topics.facts, topics.alerts
        pending = self._batched.setdefault(facts_topic, [])
        count = 0
        for fact in facts:
            count += 1
            if batched:
                pending.append((key, _fact_json(fact)))
            else:
                produce.append(OutRecord(facts_topic, key, _fact_json(fact)))
            alert = alert_for(fact)
            if alert is not None:
                produce.append(OutRecord(alerts_topic, key, _alert_json(alert)))
                stats.alerts_out += 1
        stats.facts_out += count

    def _batch_records(self, produce: list[OutRecord]) -> None:
        """The run's output for batch inputs as batch records: per topic and partition (of each
        item's key), in send order, cut at ``MAX_BATCH_ITEMS`` and ``max_batch_bytes``; each
        produced to its partition, keyed by its first item's key."""
        limit = self.max_batch_bytes
        for topic, kind in ((self.topics.facts, FACT_BATCH), (self.topics.accepted, EVENT_BATCH)):
            pending = self._batched.get(topic)
            if not pending:
                continue
            partitions = self._partitions[topic]
            grouped: dict[int, list[tuple[bytes, bytes]]] = {}
            for key, value in pending:
                grouped.setdefault(partition_for(key, partitions), []).append((key, value))
            overhead = len(join(kind, [b""]))  # the envelope around the items
            for partition, items in grouped.items():
                start, size = 0, overhead
                for i, (_, value) in enumerate(items):
                    grown = size + len(value) + (1 if i > start else 0)  # the comma
                    if i > start and (grown > limit or i - start >= MAX_BATCH_ITEMS):
                        produce.append(self._batch_record(topic, kind, partition, items[start:i]))
                        start, grown = i, overhead + len(value)
                    size = grown
                produce.append(self._batch_record(topic, kind, partition, items[start:]))
            pending.clear()

    @staticmethod
    def _batch_record(
        topic: str, kind: str, partition: int, items: list[tuple[bytes, bytes]]
    ) -> OutRecord:
        value = join(kind, [v for _, v in items])
        return OutRecord(topic, items[0][0], value, None, partition)

    def _reject(
        self, record: InRecord, reason: str, now: datetime, cause: str = "invalid"
    ) -> OutRecord:
        """The dead letter of ``record``: its original key and bytes, the reason and origin in
        headers, counted by ``cause``. Acknowledged with the batch, before its offsets commit:
        the bytes survive."""
        key, value, headers = dead_letter(
            record.value,
            record.key,
            reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            now=now,
            item=record.index,
        )
        self.stats.events_invalid += 1
        self.stats.dead_letters[cause] += 1
        where = f"{record.topic}/{record.partition}/{record.offset}"
        if record.index is not None:
            where += f" item {record.index}"
        log.warning("dead-lettered %s: %s", where, reason)
        return OutRecord(self.topics.dlq, key, value, headers)
