"""Turn the compacted directory topic into ClientPolicyChanged events on the event log.

The engine learns a client's policy and calendar only from the event log (DESIGN §3: policy
changes are events, replays see them in order). So a worker reads ``directory.v1`` (one
partition: exactly one worker of the group does this), keeps the current directory, and whenever
a client's resolved (policy, calendar) pair differs from the pair last announced for it, produces
a ``ClientPolicyChanged`` keyed by the client to the interactions topic.

Idempotency: the digest of the last announced pair per client lives in a changelog-backed table,
so re-reading the topic after a restart announces nothing for an unchanged pair. The event id is
derived from (client, previous digest, new digest): a crash between the send and the table write
re-sends the *same* event id (the engine drops duplicates), while a genuine A → B → A change gets
a fresh id for the second A (an id from the pair alone would be dropped as a duplicate).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.base import encode
from schemas.calendars import BusinessCalendar
from schemas.directory import Client
from schemas.directory_records import CALENDAR_PREFIX, POLICY_PREFIX, STAFF_KEY
from schemas.events import ClientPolicyChanged
from schemas.policies import SlaPolicy, schedule_problems

__all__ = [
    "BEGINNING",
    "DirectoryView",
    "attach_directory_feed",
    "change_event",
    "pair_digest",
    "record_time",
]

log = logging.getLogger(__name__)

DEFAULT_ID = "default"
_DEFAULT_CALENDAR = BusinessCalendar(calendar_id=DEFAULT_ID, timezone="UTC")


def pair_digest(policy: SlaPolicy, calendar: BusinessCalendar) -> str:
    """A stable digest of a (policy, calendar) pair (their canonical JSON)."""
    return hashlib.sha256(encode(policy) + b"\n" + encode(calendar)).hexdigest()


BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
"""When a client's first directory entry takes effect: before any of its events."""


def change_event(
    client_id: str,
    policy: SlaPolicy,
    calendar: BusinessCalendar,
    previous: str | None,
    now: datetime,
    published_at: datetime | None = None,
) -> tuple[ClientPolicyChanged, str]:
    """The ClientPolicyChanged announcing ``(policy, calendar)`` for a client, and its digest.

    Its ``occurred_at`` is the instant the entry took effect (DESIGN: policies apply from their
    effective time, whenever the worker started): :data:`BEGINNING` for the client's first
    entry (``previous`` None), else ``published_at``, the instant the directory record was
    published (its Kafka timestamp; ``now`` when unknown). ``recorded_at`` is ``now``.
    """
    digest = pair_digest(policy, calendar)
    chained = hashlib.sha256(f"{previous or ''}|{digest}".encode()).hexdigest()[:16]
    effective = BEGINNING if previous is None else min(published_at or now, now)
    event = ClientPolicyChanged(
        event_id=f"policy:{client_id}:{chained}",
        client_id=client_id,
        occurred_at=effective,
        recorded_at=now,
        policy=policy,
        calendar=calendar,
    )
    return event, digest


def record_time(message: Any) -> datetime | None:
    """The Kafka timestamp of a consumed record (None when the record carries none)."""
    stamp = getattr(message, "timestamp", None)
    if not isinstance(stamp, int | float) or stamp <= 0:
        return None
    return datetime.fromtimestamp(stamp, UTC)


class DirectoryView:
    """The current directory, built record by record from the compacted topic."""

    def __init__(self) -> None:
        """An empty directory (the engine defaults stand for ``default`` ids until announced)."""
        self.clients: dict[str, Client] = {}
        self.policies: dict[str, SlaPolicy] = {}
        self.calendars: dict[str, BusinessCalendar] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> list[str]:
        """Take one topic record (None value = tombstone); the clients whose pair may change.

        A record that does not validate is logged and ignored (the previous value stands): one
        bad directory edit must not stop policy announcements for everyone else.
        """
        if not key or key == STAFF_KEY:
            return []
        name = key.decode("utf-8", errors="replace")
        try:
            if name.startswith(POLICY_PREFIX):
                pid = name.removeprefix(POLICY_PREFIX)
                if value is None:
                    self.policies.pop(pid, None)
                    return []
                self.policies[pid] = SlaPolicy.model_validate_json(value)
                return sorted(c for c, cl in self.clients.items() if cl.policy_id == pid)
            if name.startswith(CALENDAR_PREFIX):
                cid = name.removeprefix(CALENDAR_PREFIX)
                if value is None:
                    self.calendars.pop(cid, None)
                    return []
                self.calendars[cid] = BusinessCalendar.model_validate_json(value)
                return sorted(c for c, cl in self.clients.items() if cl.calendar_id == cid)
            if value is None:
                self.clients.pop(name, None)  # the engine keeps the client's last policy
                return []
            client = Client.model_validate_json(value)
        except ValidationError as exc:
            log.warning("directory record %r ignored: %s", name, exc)
            return []
        if client.client_id != name:
            log.warning("directory record %r ignored: client_id is %r", name, client.client_id)
            return []
        self.clients[name] = client
        return [name]

    def resolve(self, client_id: str) -> tuple[SlaPolicy, BusinessCalendar] | None:
        """The client's (policy, calendar), or None while a referenced record is still missing.

        ``default`` ids resolve to the built-in defaults when the topic carries no such record
        (the same defaults ``ClientDirectory`` supplies).
        """
        client = self.clients.get(client_id)
        if client is None:
            return None
        policy = self.policies.get(client.policy_id)
        if policy is None and client.policy_id == DEFAULT_ID:
            policy = SlaPolicy.default()
        calendar = self.calendars.get(client.calendar_id)
        if calendar is None and client.calendar_id == DEFAULT_ID:
            calendar = _DEFAULT_CALENDAR
        if policy is None or calendar is None:
            return None
        problems = schedule_problems(policy, calendar)
        if problems:
            # Records are checked one by one; a pair can only be checked here. Announcing it
            # would fail (ClientPolicyChanged refuses it) and stop the feed for every client:
            # the client keeps the pair it had, and the reason is logged.
            log.warning(
                "client %s: policy %r on calendar %r not announced: %s",
                client_id,
                client.policy_id,
                client.calendar_id,
                "; ".join(problems),
            )
            return None
        return policy, calendar


def attach_directory_feed(
    app: Any,
    *,
    directory_topic: str,
    interactions_topic: str,
    clock: Callable[[], datetime],
    on_announce: Callable[[ClientPolicyChanged], None] | None = None,
    on_record: Callable[[], None] | None = None,
) -> DirectoryView:
    """Add the directory agent and its ``sla-policy-announced`` table to ``app``.

    ``on_announce`` is called after each change event is sent, ``on_record`` after each
    directory record is handled (counters). Returns the live ``DirectoryView`` (read-only).
    """
    view = DirectoryView()
    source = app.topic(directory_topic, key_type=bytes, value_type=bytes)
    sink = app.topic(interactions_topic, key_type=bytes, value_type=bytes)
    # One partition, like the directory topic it is filled from (co-partitioned by construction).
    announced = app.Table(
        "sla-policy-announced", default=None, partitions=1, key_type=bytes, value_type=bytes
    )

    @app.agent(source, name="shinrai-directory-feed")  # type: ignore[untyped-decorator]
    async def directory_feed(stream: Any) -> None:
        async for event in stream.events():
            for client_id in view.apply(event.key, event.value):
                pair = view.resolve(client_id)
                if pair is None:
                    continue
                key = client_id.encode()
                stored = announced.get(key)
                previous = stored.decode() if stored else None
                digest = pair_digest(*pair)
                if digest == previous:
                    continue
                change, digest = change_event(
                    client_id, *pair, previous, clock(), record_time(event.message)
                )
                await sink.send(key=key, value=encode(change))
                announced[key] = digest.encode()
                if on_announce is not None:
                    on_announce(change)
            if on_record is not None:
                on_record()

    return view
