"""Twilio Call resources (REST API JSON) → canonical call events.

Accepts a single Call resource or a list page (``{"calls": [...]}``), one per ``*.json`` file.
Only finished calls become events; a call still queued, ringing or in progress is rejected with
its status (re-fetch it later).

Mapping:
- status: completed → ANSWERED, busy → BUSY, no-answer → MISSED, failed → FAILED, canceled →
  ABANDONED for an inbound call (the caller hung up before it was answered) and FAILED for an
  outbound one (we withdrew our own attempt; nobody was reached).
- direction: ``inbound`` means ``from`` is the other party; ``outbound-api``/``outbound-dial``
  mean ``to`` is. The client comes from the resolver; an unknown other party gives direction
  unknown, a staff number on both sides internal.
- occurred_at: ``start_time`` (RFC 2822), else ``date_created``; recorded_at: ``date_updated``,
  else ``end_time``, else occurred_at.
- duration_seconds: ``duration`` (a string of seconds) for answered calls, else 0.
- wait_seconds: ``queue_time`` (milliseconds, per Twilio's Call resource) when present; else, for
  a call nobody answered, ``end_time - start_time`` (how long it rang); else 0 for an inbound call
  answered by Twilio (Twilio answers inbound calls itself, there is no ring time on the record).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from producers.parsers._common import (
    call_event,
    event_result,
    json_records,
    phone_party,
    read_files,
    readable_id,
    reject,
    seconds,
)
from producers.parsers.base import ParseResult, Rejected
from producers.resolution import Resolver
from schemas.events import CallOutcome, Direction
from schemas.identifiers import identifier_problem

SOURCE = "twilio"

_STATUSES = {
    "completed": CallOutcome.ANSWERED,
    "busy": CallOutcome.BUSY,
    "no-answer": CallOutcome.MISSED,
    "failed": CallOutcome.FAILED,
}
_UNFINISHED = frozenset({"queued", "initiated", "ringing", "in-progress"})
_DIRECTIONS = {"inbound": True, "outbound-api": False, "outbound-dial": False}


def parse(path: Path, resolver: Resolver, /, *, region: str | None = None) -> Iterator[ParseResult]:
    """Parse a Twilio Call JSON file (or every ``*.json`` below a folder) into call events."""
    for file, data in read_files(path, (".json",)):
        yield from parse_bytes(data, resolver, name=file.name, region=region)


def parse_bytes(
    data: bytes, resolver: Resolver, *, name: str, region: str | None = None
) -> Iterator[ParseResult]:
    """Parse one JSON document: a Call resource or a page of calls."""
    for record in json_records(name, data, "calls"):
        if isinstance(record, Rejected):
            yield record
        elif record.whole and not (
            isinstance(record.item, dict) and str(record.item.get("sid", "")).startswith("CA")
        ):
            yield reject(
                name, data, "sid", "not a Twilio Call resource (no 'calls' list, no CA sid)"
            )
        else:
            yield _one(record.item, record.raw, record.origin, resolver, region)


def _one(call: Any, raw: bytes, origin: str, resolver: Resolver, region: str | None) -> ParseResult:
    if not isinstance(call, dict):
        return reject(origin, raw, "call", "not a JSON object")
    sid = call.get("sid")
    if not isinstance(sid, str) or not sid:
        return reject(origin, raw, "sid", "missing")
    problem = identifier_problem(sid)  # the sid becomes the event id
    if problem is not None:
        return reject(origin, raw, "sid", problem)
    status = str(call.get("status", "")).lower()
    if status in _UNFINISHED:
        return reject(origin, raw, "status", f"call not finished yet ({status!r})")
    vendor_direction = str(call.get("direction", "")).lower()
    if vendor_direction not in _DIRECTIONS:
        return reject(origin, raw, "direction", f"unknown value {call.get('direction')!r}")
    inbound = _DIRECTIONS[vendor_direction]
    if status == "canceled":
        outcome = CallOutcome.ABANDONED if inbound else CallOutcome.FAILED
    elif status in _STATUSES:
        outcome = _STATUSES[status]
    else:
        return reject(origin, raw, "status", f"unknown value {call.get('status')!r}")

    times: dict[str, datetime | None] = {}
    for field in ("start_time", "end_time", "date_created", "date_updated"):
        value = call.get(field)
        if value in (None, ""):
            times[field] = None
            continue
        parsed = _rfc2822(value)
        if parsed is None:
            return reject(origin, raw, field, f"not an RFC 2822 date: {value!r}")
        times[field] = parsed
    occurred = times["start_time"] or times["date_created"]
    if occurred is None:
        return reject(origin, raw, "start_time", "missing (and no date_created)")
    recorded = times["date_updated"] or times["end_time"] or occurred

    duration = 0.0
    if outcome is CallOutcome.ANSWERED:
        duration_value = _number(call.get("duration") or 0)
        if duration_value is None:
            return reject(origin, raw, "duration", "not a finite number of seconds")
        duration = duration_value
    wait: float | None
    queue_time = call.get("queue_time")
    if queue_time not in (None, ""):
        queue_value = _number(queue_time)
        if queue_value is None:
            return reject(origin, raw, "queue_time", "not a finite number of milliseconds")
        wait = queue_value / 1000.0
    elif outcome is not CallOutcome.ANSWERED and times["end_time"] is not None:
        wait = seconds(times["end_time"] - occurred)
    else:
        wait = 0.0 if inbound else None

    # Twilio says which side is ours; the resolver only says who the other side is.
    caller, callee = str(call.get("from") or "").strip(), str(call.get("to") or "").strip()
    other, ours = (caller, callee) if inbound else (callee, caller)
    client, other_is_staff, counterpart = phone_party(resolver, other, region)
    if other_is_staff:
        direction, client = Direction.INTERNAL, None
    elif client is not None:
        direction = Direction.INBOUND if inbound else Direction.OUTBOUND
    else:
        direction = Direction.UNKNOWN
    staff = phone_party(resolver, ours, region)[2] or None
    return event_result(
        origin,
        raw,
        lambda: call_event(
            event_id=readable_id(SOURCE, sid),
            direction=direction,
            start=occurred,
            recorded=recorded,
            client=client,
            counterpart=counterpart,
            staff=staff,
            outcome=outcome,
            talk=duration,
            wait=wait,
            source=SOURCE,
        ),
    )


def _number(value: object) -> float | None:
    """A finite float from a JSON number or numeric string; None for anything else.

    ``float`` alone takes "inf", "nan", "1e400" and non-ASCII digits ("٣"): none is a duration.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and not value.strip().isascii():
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _rfc2822(value: object) -> datetime | None:
    """An aware UTC datetime from an RFC 2822 string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000" means UTC with unknown local zone (RFC 2822 §3.3)
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset has no UTC form
        return None
