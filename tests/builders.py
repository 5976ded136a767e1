"""The one home of test builders: interaction events, policy changes, facts and directories.

Every builder returns a validated model and takes keyword overrides for any other field, so a
test states only what it is about. Two families of event builders share one body
(``interaction``):

* id first (``email``, ``call``, ``other``, ``policy_change``): engine tests that name every
  event and compare facts by id;
* client first with a fresh unique id (``inbound_email``, ``outbound_email``, ``phone_call``,
  ``policy_event``): tests and benches that send events through Kafka, where ids must not
  collide with those of an earlier run on the same topics.

Test code only: the production packages never import it (the benches do, from a checkout).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.base import encode
from schemas.calendars import BusinessCalendar
from schemas.directory import Client, ClientDirectory, StaffDirectory
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
from schemas.policies import CalendarDuration, SlaPolicy

IN = Direction.INBOUND
OUT = Direction.OUTBOUND

UTC_WEEK = BusinessCalendar(calendar_id="utc", timezone="UTC")
"""UTC, Monday to Friday 09:00-18:00: the engine tests' default calendar."""
ALWAYS_OPEN = BusinessCalendar(calendar_id="24x7", timezone="UTC", always_open=True)
ONE_MINUTE = SlaPolicy(
    policy_id="one-minute",
    first_response=CalendarDuration(minutes=1),
    follow_up=CalendarDuration(minutes=1),
    silence_business_days=None,
)
"""One minute of calendar time to answer: breaches within a test's patience."""

NUMBERED_BASE = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
"""Where ``numbered_event`` 0 occurs."""


def at(when: str | datetime) -> datetime:
    """An aware datetime from ISO text (naive text means UTC); a datetime is returned as is."""
    if isinstance(when, datetime):
        return when
    value = datetime.fromisoformat(when)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    """``prefix`` with a random suffix: unique across runs that share topics."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def interaction(
    when: str | datetime,
    *,
    event_id: str | None = None,
    channel: Channel = Channel.EMAIL,
    kind: Kind = Kind.MESSAGE,
    direction: Direction = IN,
    client: str | None = "c1",
    thread: str | None = "t1",
    flags: Iterable[Flag] = (),
    recorded: datetime | None = None,
    **fields: Any,
) -> InteractionEvent:
    """Any interaction event (default: an inbound e-mail of ``c1`` in thread ``t1``), recorded
    when it occurred unless ``recorded`` says otherwise; ``fields`` set any other field."""
    t = at(when)
    return InteractionEvent(
        event_id=event_id or new_id(f"{kind.value}-{client}"),
        channel=channel,
        kind=kind,
        direction=direction,
        occurred_at=t,
        recorded_at=recorded or t,
        client_id=client,
        thread_key=thread,
        flags=frozenset(flags),
        **fields,
    )


def email(
    eid: str, when: str | datetime, direction: Direction = IN, **overrides: Any
) -> InteractionEvent:
    """E-mail ``eid`` (inbound by default) of ``c1`` in thread ``t1``."""
    return interaction(when, event_id=eid, direction=direction, **overrides)


def call(
    eid: str,
    when: str | datetime,
    direction: Direction,
    outcome: CallOutcome,
    *,
    duration: float | None = None,
    wait: float | None = None,
    thread: str | None = None,
    counterpart: str | None = "+81312345678",
    **overrides: Any,
) -> InteractionEvent:
    """Phone call ``eid`` of ``c1`` with the client's number, outside any thread by default."""
    return interaction(
        when,
        event_id=eid,
        channel=Channel.PHONE,
        kind=Kind.CALL,
        direction=direction,
        thread=thread,
        counterpart=counterpart,
        call_outcome=outcome,
        duration_seconds=duration,
        wait_seconds=wait,
        **overrides,
    )


def other(
    eid: str, when: str | datetime, kind: Kind, direction: Direction, **overrides: Any
) -> InteractionEvent:
    """Any other interaction (meeting, visit, voicemail, no_reply_needed, ...); ``channel`` is
    among the overrides and defaults to e-mail."""
    return interaction(when, event_id=eid, kind=kind, direction=direction, **overrides)


def policy_change(
    eid: str,
    when: str | datetime,
    policy: SlaPolicy,
    calendar: BusinessCalendar = UTC_WEEK,
    *,
    client: str = "c1",
    recorded: datetime | None = None,
) -> ClientPolicyChanged:
    """``client`` (default ``c1``) is under ``policy`` on ``calendar`` from ``when`` on."""
    t = at(when)
    return ClientPolicyChanged(
        event_id=eid,
        client_id=client,
        occurred_at=t,
        recorded_at=recorded or t,
        policy=policy,
        calendar=calendar,
    )


def policy_event(
    client: str,
    when: datetime,
    policy: SlaPolicy = ONE_MINUTE,
    calendar: BusinessCalendar = ALWAYS_OPEN,
    *,
    event_id: str | None = None,
) -> ClientPolicyChanged:
    """``policy`` (default: one minute) on ``calendar`` (default: 24x7) for ``client`` from
    ``when`` on, with a fresh id unless ``event_id`` is given."""
    eid = event_id or new_id(f"pol-{client}")
    return policy_change(eid, when, policy, calendar, client=client)


def inbound_email(
    client: str, when: datetime, thread: str = "t1", **overrides: Any
) -> InteractionEvent:
    """An inbound e-mail of ``client`` in ``thread`` (opens a first-response obligation)."""
    overrides.setdefault("event_id", new_id(f"in-{client}-{thread}"))
    return interaction(when, client=client, thread=thread, direction=IN, **overrides)


def outbound_email(
    client: str, when: datetime, thread: str = "t1", **overrides: Any
) -> InteractionEvent:
    """Our reply to ``client`` in ``thread`` (fulfils its obligation)."""
    overrides.setdefault("event_id", new_id(f"out-{client}-{thread}"))
    return interaction(when, client=client, thread=thread, direction=OUT, **overrides)


def phone_call(
    client: str,
    when: datetime,
    direction: Direction,
    outcome: CallOutcome,
    *,
    wait: float | None = None,
    duration: float | None = None,
) -> InteractionEvent:
    """A call with ``client`` on its own phone thread, no number (a missed inbound opens a
    callback; a long enough answered outbound fulfils it)."""
    return call(
        new_id(f"call-{client}"),
        when,
        direction,
        outcome,
        wait=wait,
        duration=duration,
        client=client,
        thread=f"phone-{client}",
        counterpart=None,
    )


def numbered_event(n: int, client_id: str | None, **overrides: Any) -> InteractionEvent:
    """Event number ``n`` of ``client_id`` a minute apart from ``NUMBERED_BASE``, source
    ``test``: inbound e-mails, every third an outbound call; four events a thread."""
    is_call = n % 3 == 2
    fields: dict[str, Any] = {
        "event_id": f"test:{client_id or 'nobody'}:{n}",
        "channel": Channel.PHONE if is_call else Channel.EMAIL,
        "kind": Kind.CALL if is_call else Kind.MESSAGE,
        "direction": Direction.OUTBOUND if is_call else Direction.INBOUND,
        "occurred_at": NUMBERED_BASE + timedelta(minutes=n),
        "recorded_at": NUMBERED_BASE + timedelta(minutes=n, seconds=5),
        "client_id": client_id,
        "thread_key": f"thread-{client_id}-{n // 4}",
        "source": "test",
    }
    fields.update(overrides)
    return InteractionEvent(**fields)


def jsonl(events: Iterable[InteractionEvent]) -> bytes:
    """Canonical JSON lines, one per event."""
    return b"".join(encode(e) + b"\n" for e in events)


def fact(
    kind: FactKind,
    fact_id: str,
    when: datetime,
    *,
    client_id: str = "c1",
    policy_id: str = "default",
    policy_version: int = 1,
    **fields: Any,
) -> Fact:
    """A fact of ``kind`` with the policy fields filled in; ``fields`` set any other field."""
    return Fact(
        fact_id=fact_id,
        kind=kind,
        client_id=client_id,
        at=when,
        policy_id=policy_id,
        policy_version=policy_version,
        **fields,
    )


def client(client_id: str, **overrides: Any) -> Client:
    """A directory client named after its id, owned by ``owner@us.example`` unless overridden."""
    fields: dict[str, Any] = {
        "client_id": client_id,
        "name": client_id,
        "owner": "owner@us.example",
    }
    fields.update(overrides)
    return Client(**fields)


def directory(
    *clients: Client,
    staff_domains: Iterable[str] = (),
    staff_phones: Iterable[str] = (),
    **overrides: Any,
) -> ClientDirectory:
    """A directory of ``clients`` and our own staff domains and numbers; ``overrides`` set the
    other fields (policies, calendars, a whole ``staff``)."""
    fields: dict[str, Any] = {
        "clients": clients,
        "staff": StaffDirectory(domains=tuple(staff_domains), phone_numbers=tuple(staff_phones)),
    }
    fields.update(overrides)
    return ClientDirectory(**fields)
