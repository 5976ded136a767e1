"""Replay an event log through the engine without Kafka: the batch twin of the live workers.

``replay`` sorts the log by event time (stable; ties by recorded_at then event_id), feeds each
client's events to ``Engine.apply`` and drives every client's timers with the event-time
watermark like the live adapter drives them with the wall clock: a heap holds each client's next
timer and the client is settled as soon as the watermark passes it. Because the log is sorted,
events go through ``Engine.apply_in_order`` (no buffering, no waiting for the allowed lateness);
the per-client facts are those of ``apply``/``advance`` in any arrival order within the lateness
(a property test checks it). At the end every client
is settled to ``watermark_end`` (default: the last event time), so the result is the complete,
in-order truth of the log; the same log always yields the same facts in the same order.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from pydantic import TypeAdapter, ValidationError

from engine.core import Engine
from engine.state import ClientState, Event
from schemas.base import validation_errors
from schemas.events import EngineInput
from schemas.facts import Fact
from shinrai.errors import InputRejected

__all__ = ["RejectedLine", "read_events_jsonl", "read_numbered_events_jsonl", "replay"]

# The watermark before an event at t is t minus the smallest datetime step: every event at t,
# whatever its tie-break, must still count as on time when it arrives.
_TICK = timedelta(microseconds=1)
_INPUT: TypeAdapter[Event] = TypeAdapter(EngineInput)
# state.event_key as a C-level key: the same (occurred_at, recorded_at, event_id) tuple.
_EVENT_KEY = attrgetter("occurred_at", "recorded_at", "event_id")


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A JSONL line that is not a valid engine input: where, which fields and why."""

    line_no: int
    reason: str  # "field: why; field: why"
    raw: bytes


def read_events_jsonl(lines: Iterable[bytes | str]) -> Iterator[Event | RejectedLine]:
    """Decode canonical JSON lines (InteractionEvent or ClientPolicyChanged, by ``type``).

    Yields one event per valid line and one ``RejectedLine`` (1-based line number, reason naming
    each bad field) per invalid one; blank lines are skipped; never raises for a bad line.
    """
    for _, item in read_numbered_events_jsonl(lines):
        yield item


def read_numbered_events_jsonl(
    lines: Iterable[bytes | str],
) -> Iterator[tuple[int, Event | RejectedLine]]:
    """``read_events_jsonl`` with each item's 1-based line number (to name a line the engine
    rejects later)."""
    for line_no, line in enumerate(lines, start=1):
        raw = (line.encode() if isinstance(line, str) else line).rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            yield line_no, _INPUT.validate_json(raw)
        except ValidationError as exc:
            # Field paths start with the union tag ("interaction.direction"): it says which
            # model the line was checked against, so it stays.
            reason = "; ".join(f"{f}: {r}" for f, r in validation_errors(exc))
            yield line_no, RejectedLine(line_no, reason or str(exc), raw)


def replay(
    events: Iterable[Event],
    engine: Engine,
    *,
    watermark_end: datetime | None = None,
    on_reject: Callable[[Event | None, InputRejected], None] | None = None,
) -> Iterator[Fact]:
    """Facts of ``events`` replayed in event-time order (see module docstring).

    With ``watermark_end`` the replay answers "as of" that instant: later events are left out
    and timers fire up to it. With ``on_reject``, an input the engine cannot compute
    (``InputRejected``: e.g. no deadline within ten years on the client's calendar) is handed to
    it and the replay goes on without it, for that client and every other; so is a timer the
    engine cannot compute (with None for the event: the engine drops that timer); without it,
    the error propagates.
    """
    ordered = sorted(events, key=_EVENT_KEY)
    if watermark_end is not None:
        ordered = [ev for ev in ordered if ev.occurred_at <= watermark_end]
    states: dict[str, ClientState] = {}
    scheduled: dict[str, datetime] = {}
    heap: list[tuple[datetime, int, str]] = []
    tiebreak = itertools.count()
    lateness = engine.allowed_lateness
    next_due = engine.next_due
    settle: Callable[[ClientState, datetime], tuple[ClientState, list[Fact]]] = (
        engine.settle if on_reject is None else _settling(engine, on_reject)
    )
    heappush, heappop = heapq.heappush, heapq.heappop

    def reschedule(client: str, st: ClientState) -> None:
        """Push the client's next due instant (unless it is already the one scheduled)."""
        nxt = next_due(st)
        if nxt is None:
            scheduled.pop(client, None)
            return
        nxt -= lateness  # the log is sorted and complete: no stragglers to wait for
        if scheduled.get(client) != nxt:
            scheduled[client] = nxt
            heappush(heap, (nxt, next(tiebreak), client))

    def drain(watermark: datetime) -> Iterator[Fact]:
        """Fire the timers of every client due up to ``watermark``, earliest first."""
        while heap and heap[0][0] <= watermark:
            due, _, client = heappop(heap)
            if scheduled.get(client) != due:
                continue  # superseded by a later reschedule
            del scheduled[client]
            st, facts = settle(states[client], watermark)
            yield from facts
            reschedule(client, st)

    # The loop below is the hot path of every replay and backfill: the drain generator is only
    # entered when a timer is due, and reschedule is one plain call per event (bench.engine
    # --quick, best of 4: the same CPU time as the inline loop, within its run-to-run noise).
    for ev in ordered:
        t = ev.occurred_at
        # Other clients' timers strictly before this event's instant fire first, so the output
        # is in event-time order across clients too.
        if heap and heap[0][0] < t:  # i.e. due <= t - _TICK, the watermark before t
            yield from drain(t - _TICK)
        client = ev.client_id or ""
        known = states.get(client)
        if known is None:
            # Created here, not by the engine, so a rejected first input keeps what it set.
            known = states[client] = ClientState(client_id=client)
        st = known
        try:
            st, facts = engine.apply_in_order(st, ev)
        except InputRejected as exc:
            if on_reject is None:
                raise
            facts = [f for f in exc.facts if isinstance(f, Fact)]  # timers fired before it
            on_reject(ev, exc)
        states[client] = st
        yield from facts
        reschedule(client, st)

    end = (
        watermark_end
        if watermark_end is not None
        else (ordered[-1].occurred_at if ordered else None)
    )
    if end is None:
        return
    yield from drain(end)
    for st in states.values():
        yield from settle(st, end)[1]


def _settling(
    engine: Engine, on_reject: Callable[[Event | None, InputRejected], None]
) -> Callable[[ClientState, datetime], tuple[ClientState, list[Fact]]]:
    """``engine.settle`` that hands every timer the engine cannot compute to ``on_reject`` and
    goes on (the engine drops each such timer, so this ends)."""

    def settle(state: ClientState, until: datetime) -> tuple[ClientState, list[Fact]]:
        facts: list[Fact] = []
        while True:
            try:
                state, more = engine.settle(state, until)
            except InputRejected as exc:
                facts.extend(f for f in exc.facts if isinstance(f, Fact))
                on_reject(None, exc)
                continue
            facts.extend(more)
            return state, facts

    return settle
