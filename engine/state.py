"""Per-client engine state: small, JSON-serialisable, so a Faust RocksDB table can hold it.

One ``ClientState`` holds everything the engine remembers about one client: its policy and
calendar (None = the engine defaults), the open obligations with their pending timers, the
events buffered until the watermark passes them (out-of-order tolerance), the event ids seen
recently (duplicate suppression), the silence cadence and the trust record.

The engine mutates a state in place and returns it (speed: no copy per event); callers must keep
the returned object. ``to_bytes``/``from_bytes`` round-trip everything with orjson; the calendar
clock is a derived cache and is rebuilt on load.

State bytes start with a fixed 16-byte header (``HEADER_MAGIC``, the instant of the earliest
pending work in event time, the number of open obligations) before the JSON body, so a restart
can rebuild its deadline index from ``read_header`` without decoding every state (see
``streams.recovery``). Bytes written before the header existed (plain JSON, starting with ``{``)
still load; ``read_header`` returns None for them. Body version 2 added ``links`` (the e-mail message id →
parent memory, see ``engine.threads``); version 1 bodies load with an empty memory.

A busy client's state is mostly its duplicate window (seen ids) and thread memory (fulfilled
threads, message-id links): tens of thousands of items. They are encoded and decoded by C-level
iteration (orjson, map/zip). The engine keeps no cache: the processor keeps the states it
stored decoded (``streams.state_cache``), so a state it wrote is not parsed again.

A write need not encode the whole memory: ``to_parts`` splits a state in two generations, as an
LSM tree does. The core (header, body version 3) holds everything but the bulk of the memory and
the memory's young part, what changed since the old generation was written; the old generation
(``OLD_MAGIC``) holds the memory as of its writing and is rewritten only when the young part has
grown past a threshold. ``from_parts`` joins them back, forgetting exactly what the state forgot
since. ``to_bytes``/``from_bytes`` keep the single-value form (version 2) for replay tools and
tests; a core of a state without an old generation IS that form.
"""

from __future__ import annotations

import bisect
import struct
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import compress, islice
from math import isqrt
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar, cast

import orjson
from pydantic import BaseModel, TypeAdapter

from engine.calendar import CalendarClock
from schemas.calendars import BusinessCalendar
from schemas.events import Channel, ClientPolicyChanged, EngineInput, InteractionEvent
from schemas.facts import ObligationKind, TrustLevel
from schemas.policies import SlaPolicy

__all__ = [
    "HEADER_MAGIC",
    "MERGE_MIN",
    "OLD_MAGIC",
    "START_LEVEL",
    "TRUST_LOG_SIZE",
    "ClientState",
    "EventKey",
    "Obligation",
    "StateHeader",
    "StateParts",
    "TrustEntry",
    "TrustFact",
    "TrustMachine",
    "event_key",
    "generation_of",
    "read_header",
]

START_LEVEL = TrustLevel.ASSURED
"""Every client starts at 安心 (assured): no record yet is neither good nor bad news."""

Event = InteractionEvent | ClientPolicyChanged
EventKey = tuple[datetime, datetime, str]

_INPUT: TypeAdapter[Event] = TypeAdapter(EngineInput)
_DAY = timedelta(days=1)

HEADER_MAGIC = b"\x00SR\x01"
"""First bytes of headed state bytes (never valid JSON, so old plain-JSON states are told apart)."""

_HEADER = struct.Struct("<4sqI")  # magic, pending_at (µs since the epoch), open obligations
_NONE_US = -(2**63)  # pending_at is None
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class StateHeader(NamedTuple):
    """What the header of state bytes says without decoding the state."""

    pending_at: datetime | None  # earliest pending work (event time), before allowed lateness
    open_count: int  # open obligations (breached ones included)


def read_header(raw: bytes) -> StateHeader | None:
    """The header of ``raw`` state bytes; None for bytes written before headers existed."""
    if raw[:4] != HEADER_MAGIC:
        return None
    _, us, count = _HEADER.unpack_from(raw)
    return StateHeader(None if us == _NONE_US else _EPOCH + us * _US, count)


OLD_MAGIC = b"\x00SO\x01"
"""First bytes of an old generation (``ClientState.to_parts``): never a state's first bytes."""

_OLD = struct.Struct("<4sQ")  # magic, generation
_CORE = struct.Struct("<BQ")  # after the header of a core: the layout mark, the generation
_CORE_MARK = 3  # (a single-value body starts with "{" right after the header)

MERGE_MIN = 256
"""Young items (seen ids, fulfilled and chased threads, links changed since the old generation
was written) a core carries at least before they are merged into a new old generation."""


class StateParts(NamedTuple):
    """A state written in two generations (see ``ClientState.to_parts``)."""

    core: bytes  # header (``read_header``), then the state without its old generation
    old: bytes | None  # the old generation when this write rewrites it; None: unchanged
    generation: int  # the old generation ``core`` refers to (0: none, ``core`` is whole)


def generation_of(raw: bytes) -> int:
    """The old generation that state bytes refer to; 0 for a whole state (single value)."""
    if len(raw) > _HEADER.size and raw[:4] == HEADER_MAGIC and raw[_HEADER.size] == _CORE_MARK:
        return int(_CORE.unpack_from(raw, _HEADER.size)[1])
    return 0


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _US


def event_key(event: Event) -> EventKey:
    """Event-time order with deterministic tie-breaks: occurred_at, recorded_at, event_id."""
    return (event.occurred_at, event.recorded_at, event.event_id)


# Policies and calendars are few and shared by many clients: a state read validates each
# distinct JSON once (the models are frozen, so sharing one instance is safe).
_M = TypeVar("_M", bound=BaseModel)
_PARSED: dict[tuple[type[Any], bytes], Any] = {}
_PARSED_MAX = 4096


def _parsed(model: type[_M], raw: bytes) -> _M:
    key = (model, raw)
    found = _PARSED.get(key)
    if found is None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        found = _PARSED[key] = model.model_validate_json(raw)
    return cast(_M, found)


_dt = datetime.fromisoformat  # (the C function itself: it is mapped over whole segments)
_first_item = (itemgetter(0), itemgetter(1))


def _instants(raw: dict[str, str]) -> dict[str, datetime]:
    """``{key: ISO instant}`` decoded without a Python-level loop."""
    return dict(zip(raw, map(_dt, raw.values()), strict=True))


def _links(raw: dict[str, list[str]]) -> dict[str, tuple[str, datetime]]:
    """``{id: [parent, ISO last use]}`` decoded without a Python-level loop."""
    pairs = raw.values()
    parents = map(_first_item[0], pairs)
    used = map(_dt, map(_first_item[1], pairs))
    return dict(zip(raw, zip(parents, used, strict=True), strict=True))


def _merged(
    old: dict[str, Any], at: int | None, cut: datetime | None, dead: list[str]
) -> dict[str, Any]:
    """An old generation's dict as the state holds it now: without what sweeps since dropped
    (instant, or item ``at`` of the value, before ``cut``) and without the keys ``dead``."""
    if cut is not None:
        values = old.values() if at is None else map(itemgetter(at), old.values())
        old = dict(compress(old.items(), map(cut.__le__, values)))
    for key in dead:
        old.pop(key, None)
    return old


def _gen_of_old(raw: bytes) -> int:
    return int(_OLD.unpack_from(raw)[1]) if len(raw) >= _OLD.size else -1


def _encode_default(value: Any) -> Any:
    """orjson's fallback: a deque (the seen ids) encodes as the array of its items."""
    if isinstance(value, deque):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _opt_dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(slots=True)
class Obligation:
    """A response we owe in one thread, with its deadline and pending timers."""

    obligation_id: str
    kind: ObligationKind
    thread: str
    channel: Channel
    opened_at: datetime
    source_event_id: str
    deadline: datetime
    target_business_s: float
    # When the breach timer fires: the deadline, or the policy-change instant if a stricter
    # policy made the obligation overdue at the change (the timer cannot fire in the past).
    due: datetime
    warnings: list[tuple[float, datetime]] = field(default_factory=list)  # pending, ascending
    fired: list[tuple[float, datetime, str]] = field(default_factory=list)  # warning fact ids
    breach_fact: str | None = None
    # Warning instants are computed lazily (most obligations are answered before the first
    # one): until then ``warnings`` is empty and this lower bound of the first instant (business
    # time never runs faster than the wall clock) stands in as the timer.
    warn_lb: datetime | None = None
    # When the event that opened it reached us (its ``recorded_at``): warnings whose instant is
    # before it were missed before anyone could act, so they stay facts but page nobody.
    arrived: datetime | None = None
    # Chases the client made while this obligation was open: (instant, CHASED fact id), in
    # processing order; a late answer dated before one retracts it (``engine.chase``).
    chases: list[tuple[datetime, str]] = field(default_factory=list)

    def next_timer(self) -> datetime | None:
        """The instant of this obligation's next timer (warning, lazy warning bound, breach)."""
        if self.warn_lb is not None:
            return self.warn_lb
        if self.warnings:
            return self.warnings[0][1]
        return None if self.breach_fact is not None else self.due

    def to_json(self) -> list[Any]:
        """Compact positional JSON form (see ``from_json``)."""
        return [
            self.obligation_id,
            self.kind.value,
            self.thread,
            self.channel.value,
            self.opened_at,
            self.source_event_id,
            self.deadline,
            self.target_business_s,
            self.due,
            [[f, t] for f, t in self.warnings],
            [[f, t, i] for f, t, i in self.fired],
            self.breach_fact,
            self.warn_lb,
            self.arrived,
            [[t, i] for t, i in self.chases],
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Obligation:
        """Inverse of ``to_json``."""
        return cls(
            obligation_id=raw[0],
            kind=ObligationKind(raw[1]),
            thread=raw[2],
            channel=Channel(raw[3]),
            opened_at=_dt(raw[4]),
            source_event_id=raw[5],
            deadline=_dt(raw[6]),
            target_business_s=float(raw[7]),
            due=_dt(raw[8]),
            warnings=[(float(f), _dt(t)) for f, t in raw[9]],
            fired=[(float(f), _dt(t), i) for f, t, i in raw[10]],
            breach_fact=raw[11],
            warn_lb=_opt_dt(raw[12]),
            arrived=_opt_dt(raw[13]) if len(raw) > 13 else None,  # (not kept before)
            # Obligations stored before chases existed have at most 14 positions.
            chases=[(_dt(t), i) for t, i in raw[14]] if len(raw) > 14 else [],
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class TrustEntry:
    """One scored outcome in the trust record: what it was about, its points, a label and the
    event-time instant it happened (a breach: its deadline; an answer: its time)."""

    subject: str  # obligation id, or silence fact id
    points: float
    label: str  # "fast", "on_time", "late", "breach", "silence"
    at: datetime = _EPOCH  # (records written before instants were kept: the epoch)


@dataclass(slots=True)
class TrustMachine:
    """Where the trust ladder stands after a run of outcomes (see ``engine.trust.step``).

    ``ClientState.trust_anchor`` is the machine after every outcome that has left the record;
    the level the record earns is the anchor stepped through the record, so a correction inside
    the record re-scores exactly what in-order processing would have scored.
    """

    level: TrustLevel = START_LEVEL
    since: datetime | None = None  # when the level was reached (None: no outcome yet)
    score: float = 0.0  # running score: an exponentially weighted average of the points
    outcomes: int = 0  # outcomes seen (capped)
    streak: float = 0.0  # points of good outcomes since the last bad outcome or level change
    streak_n: int = 0
    streak_start: datetime | None = None
    breaches: list[datetime] = field(default_factory=list)  # within the repeated-breach period
    reason: str | None = None  # why the level last changed
    changed_at: datetime | None = None

    def copy(self) -> TrustMachine:
        """An independent copy (the breach list is not shared)."""
        return TrustMachine(
            self.level,
            self.since,
            self.score,
            self.outcomes,
            self.streak,
            self.streak_n,
            self.streak_start,
            list(self.breaches),
            self.reason,
            self.changed_at,
        )

    def to_json(self) -> list[Any]:
        """Compact positional JSON form (see ``from_json``)."""
        return [
            self.level.value,
            self.since,
            self.score,
            self.outcomes,
            self.streak,
            self.streak_n,
            self.streak_start,
            self.breaches,
            self.reason,
            self.changed_at,
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> TrustMachine:
        """Inverse of ``to_json``."""
        return cls(
            TrustLevel(raw[0]),
            _opt_dt(raw[1]),
            float(raw[2]),
            int(raw[3]),
            float(raw[4]),
            int(raw[5]),
            _opt_dt(raw[6]),
            [_dt(b) for b in raw[7]],
            raw[8],
            _opt_dt(raw[9]),
        )


class TrustFact(NamedTuple):
    """A TRUST_CHANGED fact the engine emitted and has not retracted (see ``ClientState``)."""

    fact_id: str
    at: datetime
    trust_from: TrustLevel
    trust_to: TrustLevel
    subject: str | None  # the record entry whose outcome caused it (obligation or silence id)


TRUST_LOG_SIZE = 16
"""Trust facts remembered for retraction (also forgotten past the duplicate window): an older
one stands even if its cause is corrected, and the corrected level is still emitted."""


@dataclass(slots=True)
class ClientState:
    """Everything the engine remembers about one client (see module docstring)."""

    client_id: str
    policy: SlaPolicy | None = None
    calendar: BusinessCalendar | None = None
    # Event time up to which events and timers have been processed (None: nothing yet).
    processed_until: datetime | None = None
    buffer: list[tuple[EventKey, Event]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    seen_order: deque[tuple[datetime, str]] = field(default_factory=deque)
    open: dict[str, Obligation] = field(default_factory=dict)  # thread -> open obligation
    # The open obligations that still have a timer (not breached): what the timer scan walks.
    # Derived from ``open``, not serialised.
    timed: dict[str, Obligation] = field(default_factory=dict)
    answered: dict[str, datetime] = field(default_factory=dict)  # thread -> last fulfilment
    # E-mail conversations: hashed message id -> (parent id, last use); see engine.threads.
    links: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    stretch_start: datetime | None = None  # last outbound touch (or first event seen)
    silence_due: datetime | None = None
    # False: ``silence_due`` is only a lower bound (the exact instant costs calendar work and
    # most stretches end with a touch long before it); the engine refines it when it passes.
    silence_exact: bool = True
    silence_fact: tuple[str, datetime] | None = None  # fired silence of the current stretch
    trust: TrustLevel = START_LEVEL
    record: list[TrustEntry] = field(default_factory=list)  # recent outcomes, by instant
    # The ladder after the outcomes that have left ``record`` (see TrustMachine), and the ladder
    # after the whole record (a derived cache, not serialised; None: to be recomputed).
    trust_anchor: TrustMachine = field(default_factory=TrustMachine)
    trust_head: TrustMachine | None = field(default=None, repr=False, compare=False)
    # Recent trust facts still standing, oldest first (a chain: each one's trust_from is the
    # previous one's trust_to), and the latest instant any trust fact was stamped at: a
    # correction retracts what it supersedes and is stamped no earlier (engine.core._retrust).
    trust_log: list[TrustFact] = field(default_factory=list)
    trust_at: datetime | None = None
    swept_at: datetime | None = None  # last sweep of ``answered`` (derived, not serialised)
    too_late: int = 0  # events dropped: older than the duplicate window (cannot be deduplicated)
    # The adapter's position of the last input applied (a Kafka offset of the client's partition;
    # -1: none). Opaque to the engine: it lets the live adapter recognise a re-delivery after a
    # crash that is older than the duplicate window (the ids are forgotten, the offset is not).
    position: int = -1
    # Chases that came before our deadline, newest last (fact id, waited business seconds, our
    # target in business seconds), and the target last suggested from them (engine.chase).
    chase_log: list[tuple[str, float, float]] = field(default_factory=list)
    suggested: float | None = None
    # Conversations the client chased in, with the last chase instant (forgotten with
    # ``answered``): an answer there before any chase counts for trust (engine.chase).
    chased_threads: dict[str, datetime] = field(default_factory=dict)
    clock: CalendarClock | None = field(default=None, repr=False, compare=False)  # derived cache
    # The two-generation layout (``to_parts``), not part of the state's value: the old
    # generation last written (0: none) and how much of the memory changed since. The seen ids
    # are a deque appended to on the right and forgotten from the left, so counting the ids
    # remembered since is enough; the memory dicts name the keys set or deleted since.
    generation: int = field(default=0, repr=False, compare=False)
    old_seen: int = field(default=0, repr=False, compare=False)  # seen ids in the old generation
    old_items: int = field(default=0, repr=False, compare=False)  # all its items
    old_size: int = field(default=0, repr=False, compare=False)  # its bytes
    seen_young: int = field(default=0, repr=False, compare=False)  # ids remembered since
    young_answered: set[str] = field(default_factory=set, repr=False, compare=False)
    young_links: set[str] = field(default_factory=set, repr=False, compare=False)
    young_chased: set[str] = field(default_factory=set, repr=False, compare=False)
    old_cut: datetime | None = field(default=None, repr=False, compare=False)  # last sweep since

    def buffer_event(self, event: Event) -> None:
        """Insert ``event`` into the buffer, keeping it in event-time order."""
        key = event_key(event)
        if not self.buffer or self.buffer[-1][0] <= key:
            self.buffer.append((key, event))  # the common case: events arrive in order
        else:
            bisect.insort(self.buffer, (key, event), key=lambda item: item[0])

    def remember(self, event_id: str, at: datetime) -> None:
        """Record ``event_id`` as seen (for duplicate suppression)."""
        self.seen.add(event_id)
        self.seen_order.append((at, event_id))
        self.seen_young += 1

    def set_answered(self, thread: str, at: datetime) -> None:
        """Remember ``thread`` as fulfilled at ``at`` (the thread memory)."""
        self.answered[thread] = at
        self.young_answered.add(thread)

    def pop_answered(self, thread: str) -> datetime | None:
        """Forget and return the last fulfilment of ``thread`` (None: none remembered)."""
        when = self.answered.pop(thread, None)
        if when is not None:
            self.young_answered.add(thread)
        return when

    def set_chased(self, thread: str, at: datetime) -> None:
        """Remember that the client chased in ``thread``, last at ``at``."""
        self.chased_threads[thread] = at
        self.young_chased.add(thread)

    def forget_before(self, seen_cutoff: datetime, thread_cutoff: datetime) -> None:
        """Drop seen ids of events older than ``seen_cutoff`` and fulfilments older than
        ``thread_cutoff`` (neither can change the outcome of any event still accepted)."""
        order = self.seen_order
        while order and order[0][0] < seen_cutoff:
            self.seen.discard(order.popleft()[1])
        # A correction is at most the duplicate window late and retracts only trust facts
        # stamped after it (at the breach or silence it corrects): older ones are final.
        trust_log = self.trust_log
        while trust_log and trust_log[0].at < seen_cutoff:
            del trust_log[0]
        # Sweeping is O(threads): do it at most once per day of event time. Message-id links
        # unused for the thread memory go with the fulfilments: both bound the same horizon.
        if (self.answered or self.links) and (
            self.swept_at is None or thread_cutoff - self.swept_at > _DAY
        ):
            # The keys to drop are picked by C-level iteration (compress over the comparisons):
            # the same keys as ``[k for k, v in d.items() if v < thread_cutoff]``.
            older = thread_cutoff.__gt__  # older(v) == (v < thread_cutoff)
            answered = self.answered
            for thread in list(compress(answered, map(older, answered.values()))):
                del answered[thread]
            chased = self.chased_threads
            if chased:
                for thread in list(compress(chased, map(older, chased.values()))):
                    del chased[thread]
            links = self.links
            if links:
                used = map(_first_item[1], links.values())
                for key in list(compress(links, map(older, used))):
                    del links[key]
            self.swept_at = thread_cutoff
            # What the sweep dropped from the old generation is dropped again when it is read:
            # everything in it older than the latest cutoff (``from_parts``).
            if self.generation and (self.old_cut is None or self.old_cut < thread_cutoff):
                self.old_cut = thread_cutoff

    def pending_at(self) -> datetime | None:
        """The earliest event-time instant with pending work: a timer (warning, lazy warning
        bound, breach) of an unbreached open obligation, the silence instant, or the first
        buffered event. ``Engine.next_due`` of the loaded state is this plus the lateness."""
        best: datetime | None = None
        for ob in self.open.values():
            if ob.breach_fact is not None:
                continue  # not timed once loaded (see ``from_bytes``)
            at = ob.warn_lb
            if at is None:
                at = ob.warnings[0][1] if ob.warnings else ob.due
            if best is None or at < best:
                best = at
        for at in (self.silence_due, self.buffer[0][0][0] if self.buffer else None):
            if at is not None and (best is None or at < best):
                best = at
        return best

    def to_bytes(self) -> bytes:
        """Serialise: the fixed header (see ``read_header``), then compact JSON (orjson)."""
        return self._header() + orjson.dumps(self._body(), default=_encode_default)

    def _header(self) -> bytes:
        pending = self.pending_at()
        return _HEADER.pack(
            HEADER_MAGIC, _NONE_US if pending is None else _micros(pending), len(self.open)
        )

    def _body(self) -> dict[str, Any]:
        """The whole state as the JSON-able body of ``to_bytes`` (version 2)."""
        return {
            "v": 2,
            "client_id": self.client_id,
            "policy": None if self.policy is None else self.policy.model_dump(mode="json"),
            "calendar": None if self.calendar is None else self.calendar.model_dump(mode="json"),
            "processed_until": self.processed_until,
            "buffer": [ev.model_dump(mode="json") for _, ev in self.buffer],
            "seen": self.seen_order,  # a deque of (instant, id): _encode_default
            "open": [ob.to_json() for ob in self.open.values()],
            "answered": self.answered,
            "links": self.links,  # (parent, last use) tuples encode as the same arrays
            "stretch_start": self.stretch_start,
            "silence_due": self.silence_due,
            "silence_exact": self.silence_exact,
            "silence_fact": None if self.silence_fact is None else list(self.silence_fact),
            "trust": self.trust.value,
            "record": [[e.subject, e.points, e.label, e.at] for e in self.record],
            "trust_anchor": self.trust_anchor.to_json(),
            "trust_log": [
                [f.fact_id, f.at, f.trust_from.value, f.trust_to.value, f.subject]
                for f in self.trust_log
            ],
            "trust_at": self.trust_at,
            "too_late": self.too_late,
            "position": self.position,
            "chase_log": [list(c) for c in self.chase_log],
            "suggested": self.suggested,
            "chased_threads": self.chased_threads,
        }

    def memory_items(self) -> int:
        """Items of the duplicate window and the thread memory (what ``to_parts`` splits)."""
        return (
            len(self.seen_order) + len(self.answered) + len(self.links) + len(self.chased_threads)
        )

    def young_items(self) -> int:
        """Items of the memory changed since the old generation was written (all without one)."""
        if not self.generation:
            return self.memory_items()
        return (
            min(self.seen_young, len(self.seen_order))
            + len(self.young_answered)
            + len(self.young_links)
            + len(self.young_chased)
        )

    def to_parts(self, merge_at: int | None = None) -> StateParts:
        """Serialise in two generations, so a write costs what changed, not the whole memory.

        The core (the client's own key) holds the header and everything but the bulk of the
        memory, plus the memory's young part: seen ids remembered and thread-memory entries set
        or deleted since the old generation was written. The old generation (a second key)
        holds the whole memory as of its writing and is rewritten only when the young part
        outgrows ``MERGE_MIN`` items (or the square root of 16 times the old size, which keeps
        the core small next to the merges it saves): then everything the windows have
        forgotten by now is left out of it. Forgetting in between is exact without rewriting
        it: the core says how many of its seen ids are gone (the window forgets the oldest
        first), the latest sweep cutoff of the thread memory, and the keys deleted since.

        ``merge_at`` overrides that threshold (young items above which a write merges; tests use
        small ones). A state without an old generation and a small memory is written whole: the core is
        then ``to_bytes`` itself. Writing resets what counts as young once a merge happened, so
        call it once per stored write, and store ``old`` (when not None) before ``core``:
        ``generation`` alternates between two keys, so a crash between the two writes leaves
        the previous core with its own old generation intact.
        """
        young = self.young_items()
        if merge_at is None:
            merge_at = max(MERGE_MIN, isqrt(16 * self.old_items))
        if young <= merge_at:
            if not self.generation:
                return StateParts(self.to_bytes(), None, 0)
            return StateParts(self._young_core(), None, self.generation)
        self.generation += 1
        old = _OLD.pack(OLD_MAGIC, self.generation) + orjson.dumps(
            {
                "seen": self.seen_order,
                "answered": self.answered,
                "links": self.links,
                "chased": self.chased_threads,
            },
            default=_encode_default,
        )
        self.old_seen = len(self.seen_order)
        self.old_items = self.memory_items()
        self.old_size = len(old)
        self.seen_young = 0
        self.young_answered = set()
        self.young_links = set()
        self.young_chased = set()
        self.old_cut = None
        return StateParts(self._young_core(), old, self.generation)

    def _young_core(self) -> bytes:
        """The core of a state with an old generation: header, generation, body version 3."""
        order = self.seen_order
        n = len(order)
        young = min(self.seen_young, n)
        data = self._body()
        data["v"] = 3
        data["seen"] = list(islice(reversed(order), young))[::-1]
        # Sorted: the same state gives the same bytes in every process.
        answered, links, chased = self.answered, self.links, self.chased_threads
        keys_a = sorted(self.young_answered)
        keys_l = sorted(self.young_links)
        keys_c = sorted(self.young_chased)
        data["answered"] = {k: answered[k] for k in keys_a if k in answered}
        data["links"] = {k: links[k] for k in keys_l if k in links}
        data["chased_threads"] = {k: chased[k] for k in keys_c if k in chased}
        data["old"] = [
            self.old_seen - (n - young),  # seen ids of the old generation forgotten since
            self.old_cut,
            [k for k in keys_a if k not in answered],
            [k for k in keys_l if k not in links],
            [k for k in keys_c if k not in chased],
        ]
        return (
            self._header()
            + _CORE.pack(_CORE_MARK, self.generation)
            + orjson.dumps(data, default=_encode_default)
        )

    @classmethod
    def from_parts(cls, core: bytes, old: bytes | None) -> ClientState:
        """Inverse of ``to_parts``: ``core`` and the old generation it refers to (None when
        ``generation_of(core)`` is 0: every single-value form of ``from_bytes`` loads here).

        Raises ValueError when ``old`` is not the generation ``core`` refers to.
        """
        generation = generation_of(core)
        if not generation:
            return cls.from_bytes(core)
        if old is None or old[:4] != OLD_MAGIC or _OLD.unpack_from(old)[1] != generation:
            found = "none" if old is None else f"{old[:4]!r}, generation {_gen_of_old(old)}"
            raise ValueError(
                f"client state refers to its old generation {generation}, found {found}"
            )
        data = orjson.loads(memoryview(core)[_HEADER.size + _CORE.size :])
        aged = orjson.loads(memoryview(old)[_OLD.size :])
        state = cls._decode(data)
        skip, cut, dead_a, dead_l, dead_c = data["old"]
        seen = aged["seen"]
        old_seen = len(seen)
        young_seen = len(data["seen"])
        if skip:
            del seen[:skip]  # forgotten by the window since the old generation was written
        seen += data["seen"]
        ids = list(map(_first_item[1], seen))
        state.seen = set(ids)
        state.seen_order = deque(zip(map(_dt, map(_first_item[0], seen)), ids, strict=True))
        cut_at = None if cut is None else _dt(cut)
        state.answered = _merged(_instants(aged["answered"]), None, cut_at, dead_a)
        state.answered.update(_instants(data["answered"]))
        state.links = _merged(_links(aged["links"]), 1, cut_at, dead_l)
        state.links.update(_links(data["links"]))
        state.chased_threads = _merged(_instants(aged["chased"]), None, cut_at, dead_c)
        state.chased_threads.update(_instants(data["chased_threads"]))
        state.generation = generation
        state.old_seen = old_seen
        state.old_items = (
            state.old_seen + len(aged["answered"]) + len(aged["links"]) + len(aged["chased"])
        )
        state.seen_young = young_seen
        state.young_answered = set(data["answered"]).union(dead_a)
        state.young_links = set(data["links"]).union(dead_l)
        state.young_chased = set(data["chased_threads"]).union(dead_c)
        state.old_cut = cut_at
        state.old_size = len(old)
        return state

    @classmethod
    def from_bytes(cls, raw: bytes) -> ClientState:
        """Inverse of ``to_bytes`` (also reads the plain JSON of states written before).

        The processor keeps the states it stored decoded (``streams.state_cache``), so a state
        it wrote itself is not read back through here.
        """
        generation = generation_of(raw)
        if generation:
            raise ValueError(
                f"client state refers to its old generation {generation}: read it with from_parts"
            )
        data = orjson.loads(memoryview(raw)[_HEADER.size :] if raw[:4] == HEADER_MAGIC else raw)
        state = cls._decode(data)
        # The duplicate window and the thread memory are the bulk of a busy client's state: they
        # are decoded by C-level iteration (map/zip into the containers), no bytecode per item.
        seen = data["seen"]
        ids = list(map(_first_item[1], seen))
        state.seen = set(ids)
        state.seen_order = deque(zip(map(_dt, map(_first_item[0], seen)), ids, strict=True))
        state.answered = _instants(data["answered"])
        # v1 states (before e-mail threading) have no links: an empty memory.
        links = data.get("links")
        if links:
            state.links = _links(links)
        # States written before chases existed have no chased threads.
        state.chased_threads = _instants(data.get("chased_threads", {}))
        return state

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> ClientState:
        """A state from its parsed JSON body, except the bulk segments (seen ids, answered, links,
        chased threads: ``from_bytes`` maps them in C)."""
        policy = data["policy"]
        calendar = data["calendar"]
        state = cls(
            client_id=data["client_id"],
            policy=None if policy is None else _parsed(SlaPolicy, orjson.dumps(policy)),
            calendar=None
            if calendar is None
            else _parsed(BusinessCalendar, orjson.dumps(calendar)),
            processed_until=_opt_dt(data["processed_until"]),
            stretch_start=_opt_dt(data["stretch_start"]),
            silence_due=_opt_dt(data["silence_due"]),
            silence_exact=bool(data["silence_exact"]),
            trust=TrustLevel(data["trust"]),
            too_late=int(data["too_late"]),
            position=int(data.get("position", -1)),
        )
        for ev in data["buffer"]:
            state.buffer_event(_INPUT.validate_json(orjson.dumps(ev)))
        for raw_ob in data["open"]:
            ob = Obligation.from_json(raw_ob)
            state.open[ob.thread] = ob
            if ob.breach_fact is None:
                state.timed[ob.thread] = ob
        if data["silence_fact"] is not None:
            fid, at = data["silence_fact"]
            state.silence_fact = (fid, _dt(at))
        # Records written before outcome instants were kept: the epoch, and a fresh anchor.
        state.record = [
            TrustEntry(e[0], float(e[1]), e[2], _dt(e[3]) if len(e) > 3 else _EPOCH)
            for e in data["record"]
        ]
        anchor = data.get("trust_anchor")
        if anchor is not None:
            state.trust_anchor = TrustMachine.from_json(anchor)
        # States written before trust facts were remembered have neither key.
        state.trust_log = [
            TrustFact(fid, _dt(at), TrustLevel(a), TrustLevel(b), subject)
            for fid, at, a, b, subject in data.get("trust_log", ())
        ]
        state.trust_at = _opt_dt(data.get("trust_at"))
        # States written before chases existed have neither key.
        state.chase_log = [(i, float(w), float(t)) for i, w, t in data.get("chase_log", ())]
        suggested = data.get("suggested")
        state.suggested = None if suggested is None else float(suggested)
        return state
