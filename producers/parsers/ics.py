"""iCalendar (.ics) files → one meeting event per occurrence inside a window.

Parsing is icalendar's; recurrence (RRULE, RDATE, EXDATE, moved RECURRENCE-ID instances) is
expanded by recurring-ical-events between ``window_start`` and ``window_end`` (both required:
an open-ended RRULE has no last occurrence).

Deliberate choices:
- STATUS:CANCELLED occurrences are excluded (not a meeting; the series' other instances stay).
- All-day events (DTSTART is a DATE) are holidays, out-of-office and reminders far more often
  than meetings: skipped unless ``include_all_day``; then they run from midnight to midnight in
  ``floating_tz``.
- Floating times (no TZID, no Z) are read in ``floating_tz`` (IANA, default "UTC"): the file
  does not say where they are, so the caller must.
- Flags: CLIENT_ATTENDEE when an attendee or the organizer resolves to a client; HELD when the
  occurrence ended at or before ``as_of`` (no ``as_of``: nothing is marked held).
- event_id: ``ics:<UID>@<RECURRENCE-ID or DTSTART in UTC>`` (hashed when too long): a moved
  instance keeps the id of the slot it replaces.
- recorded_at: DTSTAMP, else LAST-MODIFIED, else the start.

A file icalendar cannot read, or whose recurrence cannot be expanded, is one Rejected record
(the file's bytes); a single unusable occurrence is rejected with its component re-serialised
(icalendar does not keep the original span of a component).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events
from icalendar.error import GloballyUniqueTZIDGuessed

from producers.parsers._common import (
    event_result,
    meeting_event,
    meeting_parties,
    read_files,
    readable_id,
    reject,
    zone,
)
from producers.parsers.base import ParseResult, Rejected
from producers.resolution import Resolver
from schemas.events import Flag
from shinrai.errors import ShinraiError

SOURCE = "ics"


def parse(
    path: Path,
    resolver: Resolver,
    /,
    *,
    window_start: datetime,
    window_end: datetime,
    as_of: datetime | None = None,
    floating_tz: str = "UTC",
    include_all_day: bool = False,
) -> Iterator[ParseResult]:
    """Parse one .ics file (or every ``*.ics`` below a folder) into meeting events."""
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ShinraiError("window_start/window_end must be aware datetimes")
    floating = zone(floating_tz)
    for file, data in read_files(path, (".ics",)):
        yield from parse_bytes(
            data,
            resolver,
            name=file.name,
            window_start=window_start,
            window_end=window_end,
            as_of=as_of,
            floating=floating,
            include_all_day=include_all_day,
        )


def parse_bytes(
    data: bytes,
    resolver: Resolver,
    *,
    name: str,
    window_start: datetime,
    window_end: datetime,
    as_of: datetime | None = None,
    floating: tzinfo = UTC,
    include_all_day: bool = False,
) -> Iterator[ParseResult]:
    """Parse the bytes of one .ics file."""
    # icalendar warns when it guesses an IANA zone from a vendor TZID such as
    # "/mozilla.org/20070129_1/America/New_York"; the guess is the best available reading, so
    # the warning is expected here. The guard covers the work, never a suspended ``yield``.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        results = list(
            _parse(data, resolver, name, window_start, window_end, as_of, floating, include_all_day)
        )
    yield from results


def _parse(
    data: bytes,
    resolver: Resolver,
    name: str,
    window_start: datetime,
    window_end: datetime,
    as_of: datetime | None,
    floating: tzinfo,
    include_all_day: bool,
) -> Iterator[ParseResult]:
    # Third-party parsers raise many exception types on hostile input (ValueError, KeyError,
    # IndexError, TypeError, their own); every one of them means "this input is unusable".
    try:
        calendars = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:
        yield reject(name, data, "calendar", f"unparseable: {type(exc).__name__}: {exc}")
        return
    if not calendars and b"BEGIN:VCALENDAR" in data.upper():
        # icalendar returns nothing (no error) when BEGIN/END do not balance: say so.
        yield reject(name, data, "calendar", "no complete VCALENDAR (unbalanced BEGIN/END)")
        return
    for number, calendar in enumerate(calendars):
        for occurrence in _expand(calendar, f"{name}#calendar {number}", window_start, window_end):
            if isinstance(occurrence, Rejected):
                yield occurrence
                continue
            result = _occurrence(occurrence, name, resolver, as_of, floating, include_all_day)
            if result is not None:
                yield result


def _expand(
    calendar: icalendar.Calendar, origin: str, window_start: datetime, window_end: datetime
) -> Iterator[Any]:
    """Occurrences in the window; one broken series is rejected without losing the others.

    The whole calendar is expanded at once (fast path); when that fails, each series (the
    VEVENTs sharing a UID, with the calendar's VTIMEZONEs) is expanded on its own so only the
    broken one is rejected.
    """
    try:
        yield from list(recurring_ical_events.of(calendar).between(window_start, window_end))
        return
    except Exception:
        pass  # find the culprit series below
    series: dict[str, list[Any]] = {}
    for component in calendar.walk("VEVENT"):
        series.setdefault(str(component.get("UID", "")), []).append(component)
    timezones = calendar.walk("VTIMEZONE")
    for uid, components in series.items():
        single = icalendar.Calendar()
        for part in [*timezones, *components]:
            single.add_component(part)
        try:
            found = list(recurring_ical_events.of(single).between(window_start, window_end))
        except Exception as exc:
            raw = b"".join(_bytes(c) for c in components)
            why = f"series cannot be expanded: {type(exc).__name__}: {exc}"
            yield reject(f"{origin}#{uid or '<no UID>'}", raw, "VEVENT", why)
            continue
        yield from found


def _bytes(component: Any) -> bytes:
    """The component re-serialised (icalendar keeps no original span), or its repr."""
    try:
        return bytes(component.to_ical())
    except Exception:
        return repr(component).encode()


def _occurrence(
    component: Any,
    name: str,
    resolver: Resolver,
    as_of: datetime | None,
    floating: tzinfo,
    include_all_day: bool,
) -> ParseResult | None:
    uid = str(component.get("UID", "")).strip()
    origin = f"{name}#{uid or '<no UID>'}"
    raw = _bytes(component)
    if str(component.get("STATUS", "")).upper() == "CANCELLED":
        return None
    start_prop = component.get("DTSTART")
    if start_prop is None:
        return reject(origin, raw, "DTSTART", "missing")
    start_value = start_prop.dt
    all_day = isinstance(start_value, date) and not isinstance(start_value, datetime)
    if all_day and not include_all_day:
        return None
    start = _instant(start_value, floating)
    if start is None:
        return reject(origin, raw, "DTSTART", f"not a date or date-time: {start_value!r}")
    end_prop = component.get("DTEND")
    end = _instant(end_prop.dt, floating) if end_prop is not None else None
    if end is None:
        duration = component.get("DURATION")
        delta = getattr(duration, "dt", None)
        if isinstance(delta, timedelta):
            end = start + delta
        else:
            end = start + (timedelta(days=1) if all_day else timedelta(0))
    if end < start:
        return reject(origin, raw, "DTEND", f"before DTSTART ({end.isoformat()})")

    addresses = [str(a) for a in _as_list(component.get("ATTENDEE"))]
    organizer = component.get("ORGANIZER")
    if organizer is not None:
        addresses.append(str(organizer))
    parties = meeting_parties(resolver, addresses)
    flags: set[Flag] = set()
    if parties[1] is not None:
        flags.add(Flag.CLIENT_ATTENDEE)
    if as_of is not None and end <= as_of:
        flags.add(Flag.HELD)

    recurrence = component.get("RECURRENCE-ID")
    slot = _instant(recurrence.dt, floating) if recurrence is not None else None
    key = f"{uid}@{(slot or start).astimezone(UTC).isoformat()}"
    recorded = None
    for stamp in ("DTSTAMP", "LAST-MODIFIED"):
        prop = component.get(stamp)
        if prop is not None and recorded is None:
            recorded = _instant(prop.dt, floating)
    return event_result(
        origin,
        raw,
        lambda: meeting_event(
            event_id=readable_id(SOURCE, key),
            parties=parties,
            start=start,
            end=end,
            recorded=recorded or start,
            thread_key=f"meeting:{uid}" if uid else None,
            flags=flags,
            source=SOURCE,
        ),
    )


def _instant(value: object, floating: tzinfo) -> datetime | None:
    """An aware UTC instant: floating times in ``floating``, dates at their local midnight."""
    if isinstance(value, datetime):
        local = value if value.tzinfo is not None else value.replace(tzinfo=floating)
        return local.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=floating).astimezone(UTC)
    return None


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
