"""Microsoft Graph calendar events (JSON) → meeting events.

Accepts a single event resource or a collection page (``{"value": [...]}``: list events,
calendarView, instances, delta), one per ``*.json`` file.

- start/end: ``{"dateTime": "2017-04-21T10:00:00.0000000", "timeZone": "Pacific Standard Time"}``.
  Graph uses Windows zone names by default (or IANA names when the client asked for them with
  ``Prefer: outlook.timezone``); Windows names are mapped with icalendar's CLDR table.
- ``isCancelled`` → excluded; ``isAllDay`` → skipped unless ``include_all_day`` (as for .ics);
  an occurrence we declined (``responseStatus.response == "declined"``) is not held.
- attendees + organizer e-mails → client resolution and Flag.CLIENT_ATTENDEE; Flag.HELD when
  the meeting ended at or before ``as_of`` (and was not declined).
- ``showAs`` and ``onlineMeeting`` are read but do not change the event: free/busy display is
  the owner's choice, not evidence that the meeting did or did not happen, and the canonical
  model has no field for a join URL.
- event_id: ``graph:<iCalUId>@<start UTC>`` when iCalUId is present (shared by every copy of the
  meeting in every attendee's mailbox), else ``graph:<id>``.
- recorded_at: ``lastModifiedDateTime``, else ``createdDateTime``, else the start.

Items without start/end (messages, call records, delta tombstones) are rejected, never raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from producers.parsers._common import (
    event_result,
    json_records,
    meeting_event,
    meeting_parties,
    read_files,
    readable_id,
    reject,
)
from producers.parsers.base import ParseResult, Rejected
from producers.resolution import Resolver
from schemas.events import Flag

SOURCE = "graph"


def parse(
    path: Path,
    resolver: Resolver,
    /,
    *,
    as_of: datetime | None = None,
    include_all_day: bool = False,
) -> Iterator[ParseResult]:
    """Parse a Graph event JSON file (or every ``*.json`` below a folder) into meeting events."""
    for file, data in read_files(path, (".json",)):
        yield from parse_bytes(
            data, resolver, name=file.name, as_of=as_of, include_all_day=include_all_day
        )


def parse_bytes(
    data: bytes,
    resolver: Resolver,
    *,
    name: str,
    as_of: datetime | None = None,
    include_all_day: bool = False,
) -> Iterator[ParseResult]:
    """Parse one Graph JSON document: an event or a ``value`` collection of events."""
    for record in json_records(name, data, "value"):
        if isinstance(record, Rejected):
            yield record
            continue
        result = _one(record.item, record.raw, record.origin, resolver, as_of, include_all_day)
        if result is not None:
            yield result


def _one(
    item: Any,
    raw: bytes,
    origin: str,
    resolver: Resolver,
    as_of: datetime | None,
    include_all_day: bool,
) -> ParseResult | None:
    if not isinstance(item, dict):
        return reject(origin, raw, "event", "not a JSON object")
    if item.get("isCancelled") is True:
        return None
    if item.get("isAllDay") is True and not include_all_day:
        return None
    times: dict[str, datetime] = {}
    for field in ("start", "end"):
        value = item.get(field)
        if not isinstance(value, dict) or "dateTime" not in value:
            return reject(origin, raw, field, "missing dateTime (not a calendar event)")
        parsed = _when(value)
        if isinstance(parsed, str):
            return reject(origin, raw, field, parsed)
        times[field] = parsed
    start, end = times["start"], times["end"]
    if end < start:
        return reject(origin, raw, "end", f"before start ({end.isoformat()})")

    addresses: list[str] = []
    for person in [*(item.get("attendees") or []), item.get("organizer")]:
        address = ((person or {}).get("emailAddress") or {}).get("address")
        if isinstance(address, str):
            addresses.append(address)
    parties = meeting_parties(resolver, addresses)
    client = parties[1]
    declined = (item.get("responseStatus") or {}).get("response") == "declined"
    flags: set[Flag] = set()
    if client is not None:
        flags.add(Flag.CLIENT_ATTENDEE)
    if as_of is not None and end <= as_of and not declined:
        flags.add(Flag.HELD)

    ical_uid, graph_id = item.get("iCalUId"), item.get("id")
    if isinstance(ical_uid, str) and ical_uid:
        event_id = readable_id(SOURCE, f"{ical_uid}@{start.isoformat()}")
    elif isinstance(graph_id, str) and graph_id:
        event_id = readable_id(SOURCE, graph_id)
    else:
        return reject(origin, raw, "id", "missing (and no iCalUId)")
    recorded = _instant(item.get("lastModifiedDateTime")) or _instant(item.get("createdDateTime"))
    thread = f"meeting:{item.get('seriesMasterId') or ical_uid or graph_id}"
    return event_result(
        origin,
        raw,
        lambda: meeting_event(
            event_id=event_id,
            parties=parties,
            start=start,
            end=end,
            recorded=recorded or start,
            thread_key=thread,
            flags=flags,
            source=SOURCE,
        ),
    )


def _zone(name: str) -> tzinfo | None:
    """A zone from a Windows or IANA name (Graph emits both), None when unknown."""
    iana = WINDOWS_TO_OLSON.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _when(value: dict[str, Any]) -> datetime | str:
    """The UTC instant of a Graph dateTimeTimeZone, or an error text."""
    text, zone_name = value.get("dateTime"), value.get("timeZone") or "UTC"
    if not isinstance(text, str) or not isinstance(zone_name, str):
        return f"dateTime/timeZone not strings: {value!r}"
    head, dot, fraction = text.partition(".")
    # Graph writes 7 fractional digits; Python reads at most 6.
    cleaned = f"{head}.{fraction[:6]}" if dot else head
    try:
        naive = datetime.fromisoformat(cleaned.removesuffix("Z"))
    except ValueError:
        return f"unparseable dateTime {text!r}"
    tz = _zone(zone_name)
    if tz is None:
        return f"unknown timeZone {zone_name!r}"
    local = naive if naive.tzinfo is not None else naive.replace(tzinfo=tz)
    return local.astimezone(UTC)


def _instant(value: object) -> datetime | None:
    """An aware UTC instant from an ISO 8601 string with offset, else None."""
    if not isinstance(value, str):
        return None
    head, dot, rest = value.partition(".")
    if dot:  # trim a 7-digit fraction, keep the zone suffix
        digits = "".join(ch for ch in rest if ch.isdigit())
        suffix = rest[len(digits) :]
        value = f"{head}.{digits[:6]}{suffix}"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
