"""Factories for engine tests: events, policies and drivers (in-order replay, live arrival)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from engine.core import Engine
from engine.replay import replay
from engine.state import ClientState
from schemas.calendars import BusinessCalendar
from schemas.events import (
    CallOutcome,
    Channel,
    ClientPolicyChanged,
    Direction,
    Flag,
    InteractionEvent,
    Kind,
)
from schemas.facts import Fact, FactKind
from schemas.policies import SlaPolicy

IN = Direction.INBOUND
OUT = Direction.OUTBOUND
UTC_WEEK = BusinessCalendar(calendar_id="utc", timezone="UTC")

Event = InteractionEvent | ClientPolicyChanged


def at(text: str) -> datetime:
    """An aware datetime from ISO text; naive text means UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def email(
    eid: str,
    when: str | datetime,
    direction: Direction = IN,
    *,
    client: str | None = "c1",
    thread: str | None = "t1",
    flags: Iterable[Flag] = (),
    recorded: datetime | None = None,
) -> InteractionEvent:
    """An email message event."""
    t = at(when) if isinstance(when, str) else when
    return InteractionEvent(
        event_id=eid,
        channel=Channel.EMAIL,
        kind=Kind.MESSAGE,
        direction=direction,
        occurred_at=t,
        recorded_at=recorded or t,
        client_id=client,
        thread_key=thread,
        flags=frozenset(flags),
    )


def call(
    eid: str,
    when: str | datetime,
    direction: Direction,
    outcome: CallOutcome,
    *,
    duration: float | None = None,
    wait: float | None = None,
    client: str = "c1",
    thread: str | None = None,
    counterpart: str | None = "+81312345678",
) -> InteractionEvent:
    """A phone call event."""
    t = at(when) if isinstance(when, str) else when
    return InteractionEvent(
        event_id=eid,
        channel=Channel.PHONE,
        kind=Kind.CALL,
        direction=direction,
        occurred_at=t,
        recorded_at=t,
        client_id=client,
        thread_key=thread,
        counterpart=counterpart,
        call_outcome=outcome,
        duration_seconds=duration,
        wait_seconds=wait,
    )


def other(
    eid: str,
    when: str | datetime,
    kind: Kind,
    direction: Direction,
    *,
    channel: Channel,
    flags: Iterable[Flag] = (),
    client: str = "c1",
    thread: str | None = "t1",
) -> InteractionEvent:
    """Any other interaction (meeting, visit, voicemail, no_reply_needed, ...)."""
    t = at(when) if isinstance(when, str) else when
    return InteractionEvent(
        event_id=eid,
        channel=channel,
        kind=kind,
        direction=direction,
        occurred_at=t,
        recorded_at=t,
        client_id=client,
        thread_key=thread,
        flags=frozenset(flags),
    )


def policy_change(
    eid: str,
    when: str,
    policy: SlaPolicy,
    calendar: BusinessCalendar = UTC_WEEK,
    *,
    client: str = "c1",
) -> ClientPolicyChanged:
    """A ClientPolicyChanged event."""
    t = at(when)
    return ClientPolicyChanged(
        event_id=eid,
        client_id=client,
        occurred_at=t,
        recorded_at=t,
        policy=policy,
        calendar=calendar,
    )


def run(
    events: Iterable[Event], engine: Engine | None = None, until: str | datetime | None = None
) -> list[Fact]:
    """Facts of an in-order replay (default engine: zero lateness, UTC Mon-Fri 09-18)."""
    end = at(until) if isinstance(until, str) else until
    return list(replay(events, engine or Engine(allowed_lateness=timedelta(0)), watermark_end=end))


def live(
    arrivals: Iterable[Event], engine: Engine, end: datetime, *, roundtrip: bool = False
) -> dict[str, list[Fact]]:
    """Drive the engine like the live adapter: events in arrival order, watermark = max event
    time seen, then settle at ``end``. Returns facts per client, in emission order.
    ``roundtrip`` serialises every state after each step (what a RocksDB table does)."""
    states: dict[str, ClientState] = {}
    facts: dict[str, list[Fact]] = {}
    watermark: datetime | None = None
    for ev in arrivals:
        client = ev.client_id or ""
        st, out = engine.apply(states.get(client), ev)
        states[client] = st
        facts.setdefault(client, []).extend(out)
        watermark = ev.occurred_at if watermark is None else max(watermark, ev.occurred_at)
        for key, state in list(states.items()):
            state, out = engine.advance(state, watermark)
            facts.setdefault(key, []).extend(out)
            states[key] = ClientState.from_bytes(state.to_bytes()) if roundtrip else state
    for key, state in states.items():
        facts.setdefault(key, []).extend(engine.settle(state, end)[1])
    return {k: v for k, v in facts.items() if v}


def of_kind(facts: Iterable[Fact], kind: FactKind) -> list[Fact]:
    """The facts of one kind, in order."""
    return [f for f in facts if f.kind is kind]


def only(facts: Iterable[Fact], kind: FactKind) -> Fact:
    """The single fact of ``kind`` (fails when there are zero or several)."""
    found = of_kind(facts, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}: {found}"
    return found[0]
