"""Zoom meeting webhooks → one meeting event per meeting instance (uuid) once it has ended.

Zoom delivers ``meeting.started``, ``meeting.participant_joined``, ``meeting.participant_left``
and ``meeting.ended`` independently and not in order (a real capture has ``meeting.ended``
before the host's ``participant_left``). ``from_webhooks`` therefore folds a whole batch into
per-uuid state first and only then emits, so the result is the same for any arrival order:

- one event per uuid that has a ``meeting.ended`` payload (no event for one still running);
- occurred_at: the object's ``start_time`` (else the earliest join); end: ``end_time`` of the
  ended payload (else the latest leave); recorded_at: the latest ``event_ts`` seen for it;
- participants: every e-mail of joined/left payloads → CLIENT_ATTENDEE when one is a client;
- Flag.HELD: it ended, so it took place;
- events come out sorted by (start, uuid), not by arrival.

A payload that is not JSON, lacks ``event``/``payload.object.uuid``, or has a type we do not
use is Rejected with its bytes (a JSON array file is split into payloads, each re-serialised).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from producers.parsers._common import (
    event_result,
    meeting_event,
    meeting_parties,
    read_files,
    readable_id,
    reject,
)
from producers.parsers.base import ParseResult, Rejected
from producers.resolution import Resolver
from schemas.events import Flag
from schemas.identifiers import identifier_problem

SOURCE = "zoom"
_LIFECYCLE = frozenset({"meeting.started", "meeting.ended"})
_PARTICIPANT = frozenset({"meeting.participant_joined", "meeting.participant_left"})


@dataclass
class _Meeting:
    """What the batch told us about one meeting instance (order-insensitive merge)."""

    uuid: str
    starts: set[datetime] = field(default_factory=set)
    ends: set[datetime] = field(default_factory=set)
    joins: set[datetime] = field(default_factory=set)
    leaves: set[datetime] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    stamps: set[int] = field(default_factory=set)
    ended: bool = False
    origins: set[str] = field(default_factory=set)


def parse(path: Path, resolver: Resolver, /) -> Iterator[ParseResult]:
    """Parse a file (or every ``*.json`` below a folder) of webhook payloads as one batch.

    A file holds one payload object or a JSON array of them. All files form one batch, so a
    meeting whose payloads are spread over several files is still merged.
    """
    batch: list[tuple[str, bytes | Mapping[str, Any]]] = []
    rejected: list[Rejected] = []
    for file, data in read_files(path, (".json",)):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            rejected.append(reject(file.name, data, "json", f"not valid JSON: {exc}"))
            continue
        if isinstance(doc, list):
            batch.extend((f"{file.name}[{i}]", item) for i, item in enumerate(doc))
        else:
            batch.append((file.name, data))
    yield from rejected
    yield from _fold(batch, resolver)


def from_webhooks(
    payloads: Iterable[bytes | str | Mapping[str, Any]], resolver: Resolver
) -> Iterator[ParseResult]:
    """Meeting events from a batch of webhook bodies (bytes, str or decoded dicts), any order."""
    batch = [
        (f"payload {i}", p.encode() if isinstance(p, str) else p) for i, p in enumerate(payloads)
    ]
    yield from _fold(batch, resolver)


def _fold(
    batch: list[tuple[str, bytes | Mapping[str, Any]]], resolver: Resolver
) -> Iterator[ParseResult]:
    meetings: dict[str, _Meeting] = {}
    for origin, item in batch:
        raw = item if isinstance(item, bytes) else orjson.dumps(item)
        problem = _absorb(item, meetings, origin)
        if problem is not None:
            yield reject(origin, raw, *problem)
    done = [m for m in meetings.values() if m.ended]
    for meeting in done:
        if not _instants(meeting):
            raw = orjson.dumps({"uuid": meeting.uuid})
            origin = f"zoom:{meeting.uuid} ({', '.join(sorted(meeting.origins))})"
            yield reject(origin, raw, "payload.object.start_time", "missing (no start, end, join "
                         "or leave time in any payload of the meeting)")  # fmt: skip
    timed = [m for m in done if _instants(m)]
    for meeting in sorted(timed, key=lambda m: (min(_instants(m)), m.uuid)):
        yield _event(meeting, resolver)


def _instants(meeting: _Meeting) -> set[datetime]:
    """Every instant known of a meeting (empty when no payload carried a time)."""
    return meeting.starts | meeting.joins | meeting.ends | meeting.leaves


def _json_type(value: object) -> str:
    """The JSON type name of a decoded value, for reasons that never echo the value itself."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _from_millis(stamp: int) -> datetime | None:
    """The UTC instant of epoch milliseconds, or None when no datetime can hold it."""
    try:
        return datetime.fromtimestamp(stamp / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _absorb(
    item: bytes | Mapping[str, Any], meetings: dict[str, _Meeting], origin: str
) -> tuple[str, str] | None:
    """Merge one payload into ``meetings``; (field, reason) when it cannot be used."""
    if isinstance(item, bytes):
        try:
            doc = orjson.loads(item)
        except orjson.JSONDecodeError as exc:
            return "json", f"not valid JSON: {exc}"
    else:
        doc = item
    if not isinstance(doc, Mapping):
        return "payload", "not a JSON object"
    kind = doc.get("event")
    if not isinstance(kind, str):  # {} or [] would not even be hashable for the lookups below
        return "event", f"expected a string, got {_json_type(kind)}"
    if kind not in _LIFECYCLE and kind not in _PARTICIPANT:
        return "event", f"not a meeting lifecycle/participant event: {kind[:64]!r}"
    payload = doc.get("payload")
    obj = payload.get("object") if isinstance(payload, dict) else None
    if not isinstance(obj, dict):
        return "payload.object", "missing"
    uuid = obj.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        return "payload.object.uuid", "missing"
    # The uuid becomes the event id: refuse here what the event model would refuse, by name.
    problem = identifier_problem(uuid)
    if problem is not None:
        return "payload.object.uuid", problem
    times: dict[str, datetime | None] = {}
    participant = obj.get("participant") if kind in _PARTICIPANT else None
    if kind in _PARTICIPANT and not isinstance(participant, dict):
        return "payload.object.participant", "missing"
    sources = {"start_time": obj, "end_time": obj}
    if isinstance(participant, dict):
        sources |= {"join_time": participant, "leave_time": participant}
    for name, holder in sources.items():
        value = holder.get(name)
        if value in (None, ""):
            times[name] = None
            continue
        parsed = _iso(value)
        if parsed is None:
            shown = value[:64] if isinstance(value, str) else _json_type(value)
            return f"payload.object.{name}", f"not an ISO 8601 instant: {shown!r}"
        times[name] = parsed
    stamp = doc.get("event_ts")
    if stamp is not None and (not isinstance(stamp, int) or isinstance(stamp, bool)):
        return "event_ts", f"not an integer, got {_json_type(stamp)}"
    if stamp is not None and _from_millis(stamp) is None:
        return "event_ts", "out of range (epoch milliseconds between years 1 and 9999)"
    email = participant.get("email") if isinstance(participant, dict) else None
    if isinstance(email, str) and email.strip():
        # The address may become the event's counterpart or staff: an identifier.
        problem = identifier_problem(email.strip().lower())
        if problem is not None:
            return "payload.object.participant.email", problem
        if len(email.strip()) > 512:
            return "payload.object.participant.email", "longer than 512 characters"

    meeting = meetings.setdefault(uuid, _Meeting(uuid=uuid))
    meeting.origins.add(origin)
    if stamp is not None:
        meeting.stamps.add(stamp)
    started, ended = times["start_time"], times["end_time"]
    if started is not None:
        meeting.starts.add(started)
    if kind == "meeting.ended":
        meeting.ended = True
        if ended is not None:
            meeting.ends.add(ended)
    if isinstance(participant, dict):
        joined, left = times.get("join_time"), times.get("leave_time")
        if joined is not None:
            meeting.joins.add(joined)
        if left is not None:
            meeting.leaves.add(left)
        email = participant.get("email")
        if isinstance(email, str) and email.strip():
            meeting.emails.add(email.strip().lower())
    return None


def _event(meeting: _Meeting, resolver: Resolver) -> ParseResult:
    origin = f"zoom:{meeting.uuid} ({', '.join(sorted(meeting.origins))})"
    start = min(meeting.starts or meeting.joins or meeting.ends or meeting.leaves)
    end = max(meeting.ends or meeting.leaves or {start})
    end = max(end, start)
    last_ts = max(meeting.stamps) if meeting.stamps else None
    recorded = (None if last_ts is None else _from_millis(last_ts)) or end
    parties = meeting_parties(resolver, sorted(meeting.emails))
    flags = {Flag.HELD}
    if parties[1] is not None:
        flags.add(Flag.CLIENT_ATTENDEE)
    return event_result(
        origin,
        lambda: orjson.dumps({"uuid": meeting.uuid, "emails": sorted(meeting.emails)}),
        lambda: meeting_event(
            event_id=readable_id(SOURCE, meeting.uuid),
            parties=parties,
            start=start,
            end=end,
            recorded=recorded,
            thread_key=None,
            flags=flags,
            source=SOURCE,
        ),
    )


def _iso(value: object) -> datetime | None:
    """An aware UTC instant from Zoom's ISO 8601 text ("2022-03-23T12:33:26Z")."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # Year 1 with a positive offset (or 9999 with a negative one) has no UTC form.
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
