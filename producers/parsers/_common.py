"""Helpers shared by the phone and meeting parsers (files, ids, time zones, direction, events,
rejects).

Kept private (underscore module): the public surface of each parser is its ``parse`` function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import ValidationError

from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.resolution import Resolver
from schemas.base import validation_reason
from schemas.events import CallOutcome, Channel, Direction, Flag, InteractionEvent, Kind
from shinrai.errors import ConfigError, ShinraiError

MAX_ID = 512  # InteractionEvent.event_id max_length


def stable_id(prefix: str, *parts: str) -> str:
    """``prefix:<sha256 of parts>``: the same real-world record always gives the same id.

    Parts are joined with a separator that cannot occur in the parts' text form (NUL), so
    ("a", "bc") and ("ab", "c") never collide.
    """
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{prefix}:{digest[:32]}"


def readable_id(prefix: str, native: str) -> str:
    """``prefix:native`` when short enough for an event id, else a stable hash of it."""
    candidate = f"{prefix}:{native}"
    return candidate if len(candidate) <= MAX_ID and native else stable_id(prefix, native)


def zone(name: str) -> ZoneInfo:
    """An IANA zone by name; a bad name is a configuration error (the whole input is unusable)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"tz: unknown IANA time zone {name!r}") from exc


def localise(naive: datetime, tz: tzinfo) -> datetime:
    """Attach ``tz`` to a naive wall-clock time and convert to UTC.

    ``fold=0`` is used on purpose: an ambiguous wall time in the repeated DST hour is read as
    the first occurrence, a non-existent one (spring gap) is shifted by zoneinfo's rules. Local
    CDR exports carry no offset, so this is the best a reader can do; it is documented here
    rather than guessed per call.
    """
    return naive.replace(tzinfo=tz).astimezone(UTC)


def seconds(delta: timedelta) -> float:
    """A non-negative number of seconds (clock skew between legs never yields a negative wait)."""
    return max(0.0, delta.total_seconds())


def reject(origin: str, raw: bytes, field: str, why: str) -> Rejected:
    """A Rejected whose reason names the field first, e.g. ``start: unparseable 'foo'``."""
    return Rejected(reason=f"{field}: {why}", origin=origin, raw=raw)


def files(path: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """``path`` itself, or every file below it whose name ends with one of ``suffixes`` (sorted)."""
    if path.is_dir():
        yield from sorted(
            p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes)
        )
    else:
        yield path


def read_files(path: Path, suffixes: tuple[str, ...]) -> Iterator[tuple[Path, bytes]]:
    """(file, its bytes) for every file of ``files(path, suffixes)``; a file that cannot be read
    stops the run with an error naming it (an input we cannot read is not a bad record)."""
    for file in files(path, suffixes):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ShinraiError(f"cannot read {file}: {exc}") from exc
        yield file, data


class JsonRecord(NamedTuple):
    """One record of a JSON document: an item of its collection, or the whole document."""

    origin: str
    item: Any
    raw: bytes
    whole: bool


def json_records(name: str, data: bytes, collection: str) -> Iterator[JsonRecord | Rejected]:
    """The records of one JSON document: each item of its ``collection`` list (origin
    ``name#collection[i]``, the item's own bytes), else the document itself (``whole``); a
    document that is not JSON is one reject."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield reject(name, data, "json", f"not valid JSON: {exc}")
        return
    if isinstance(doc, dict) and isinstance(doc.get(collection), list):
        for index, item in enumerate(doc[collection]):
            yield JsonRecord(f"{name}#{collection}[{index}]", item, orjson.dumps(item), False)
    else:
        yield JsonRecord(name, doc, data, True)


def event_result(
    origin: str, raw: bytes | Callable[[], bytes], make: Callable[[], InteractionEvent]
) -> ParseResult:
    """``make()`` as a Parsed result, or, when the model refuses it, the Rejected that names every
    bad field (``raw`` may be a function: the bytes are then only built for a reject)."""
    try:
        event = make()
    except ValidationError as exc:
        return reject(
            origin, raw if isinstance(raw, bytes) else raw(), "event", validation_reason(exc)
        )
    return Parsed(event=event, origin=origin)


def call_event(
    *,
    event_id: str,
    kind: Kind = Kind.CALL,
    direction: Direction,
    start: datetime,
    recorded: datetime,
    client: str | None,
    counterpart: str | None,
    staff: str | None,
    outcome: CallOutcome | None,
    talk: float | None,
    wait: float | None,
    source: str,
) -> InteractionEvent:
    """A phone event; calls with the same counterpart number share a thread (``phone:<number>``)."""
    return InteractionEvent(
        event_id=event_id,
        channel=Channel.PHONE,
        kind=kind,
        direction=direction,
        occurred_at=start,
        recorded_at=recorded,
        client_id=client,
        thread_key=f"phone:{counterpart}" if counterpart else None,
        counterpart=counterpart or None,
        staff=staff,
        call_outcome=outcome,
        duration_seconds=talk,
        wait_seconds=wait,
        source=source,
    )


def meeting_event(
    *,
    event_id: str,
    parties: tuple[Direction, str | None, str | None, str | None],
    start: datetime,
    end: datetime,
    recorded: datetime,
    thread_key: str | None,
    flags: Iterable[Flag],
    source: str,
) -> InteractionEvent:
    """A meeting event from ``start`` to ``end``; ``parties`` as ``meeting_parties`` gives them."""
    direction, client, counterpart, staff = parties
    return InteractionEvent(
        event_id=event_id,
        channel=Channel.MEETING,
        kind=Kind.MEETING,
        direction=direction,
        occurred_at=start,
        recorded_at=recorded,
        client_id=client,
        thread_key=thread_key,
        counterpart=counterpart,
        staff=staff,
        flags=frozenset(flags),
        duration_seconds=(end - start).total_seconds(),
        source=source,
    )


def phone_party(resolver: Resolver, raw: str, region: str | None) -> tuple[str | None, bool, str]:
    """(client id, is staff, display form) of one side of a call.

    The display form is E.164 when the number parses, else the raw text (internal extensions,
    anonymised or withheld numbers stay as they are).
    """
    text = raw.strip()
    number = resolver.normalise_phone(text, region) if text else None
    client = resolver.client_for_phone(text, region) if number else None
    staff = resolver.is_staff_phone(text, region) if number else False
    return client, staff, number or text


def call_direction(
    resolver: Resolver,
    caller: str,
    callee: str,
    *,
    region: str | None = None,
    extension_max_digits: int = 0,
) -> tuple[Direction, str | None, str | None, str | None]:
    """(direction, client id, counterpart, staff side) of a call between ``caller`` and ``callee``.

    Rules: client caller → inbound; client callee → outbound (the caller wins when both sides
    are clients, since the caller is who opened the conversation); staff on both sides (staff
    numbers, or internal extensions of at most ``extension_max_digits`` digits) → internal;
    anything else is unknown and stays unknown (we never guess a client).
    """
    c_client, c_staff, c_show = phone_party(resolver, caller, region)
    d_client, d_staff, d_show = phone_party(resolver, callee, region)
    c_staff = c_staff or _is_extension(caller, extension_max_digits)
    d_staff = d_staff or _is_extension(callee, extension_max_digits)
    if c_client is not None:
        return Direction.INBOUND, c_client, c_show or None, d_show or None
    if d_client is not None:
        return Direction.OUTBOUND, d_client, d_show or None, c_show or None
    if c_staff and d_staff:
        return Direction.INTERNAL, None, None, c_show or None
    if c_staff:
        return Direction.UNKNOWN, None, d_show or None, c_show or None
    if d_staff:
        return Direction.UNKNOWN, None, c_show or None, d_show or None
    # Neither side is known: report the caller as the counterpart, claim nobody as staff.
    return Direction.UNKNOWN, None, c_show or None, None


def _is_extension(raw: str, max_digits: int) -> bool:
    text = raw.strip()
    return 0 < len(text) <= max_digits and text.isdigit()


def csv_records(
    data: bytes, *, delimiter: str = ",", skip_header: bool = False
) -> Iterator[tuple[int, list[str], bytes]]:
    """(first line number, fields, original bytes) of every CSV record in ``data``.

    The csv module does the quoting; this wrapper remembers which physical lines each record
    consumed, so a rejected record can be dead-lettered byte for byte (quoted fields may span
    lines). Bytes that are not UTF-8 (garbled caller names are common in CDRs) survive the
    round trip through ``surrogateescape``.
    """
    import csv  # local: only the CSV parsers need it

    lines = data.splitlines(keepends=True)
    consumed: list[bytes] = []
    position = 0

    def feed() -> Iterator[str]:
        nonlocal position
        while position < len(lines):
            raw = lines[position]
            position += 1
            consumed.append(raw)
            yield raw.decode("utf-8", "surrogateescape")

    reader = csv.reader(feed(), delimiter=delimiter, strict=False)
    first = True
    while True:
        start_line = position + 1
        consumed.clear()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. NUL byte or runaway quote: reject what was consumed
            yield start_line, [f"\x00csv-error: {exc}"], b"".join(consumed)
            continue
        if first and skip_header:
            first = False
            continue
        first = False
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line: nothing to report
        yield start_line, row, b"".join(consumed)


CSV_ERROR = "\x00csv-error: "
"""Marker of a record the csv module itself could not read (see ``csv_records``)."""


def meeting_parties(
    resolver: Resolver, addresses: Iterator[str] | list[str]
) -> tuple[Direction, str | None, str | None, str | None]:
    """(direction, client id, counterpart, staff) of a meeting from its participants' addresses.

    Addresses are examined in sorted order so the result never depends on the order a source
    lists (or a webhook delivers) them. The calendars and meeting accounts we read are our own,
    so a meeting with a client participant is our touch towards that client (outbound); only
    staff → internal; nobody recognised → unknown.
    """
    cleaned = sorted({a.strip().lower().removeprefix("mailto:") for a in addresses if a.strip()})
    staff = [a for a in cleaned if resolver.is_staff_email(a)]
    for address in cleaned:
        client = resolver.client_for_email(address)
        if client is not None:
            return Direction.OUTBOUND, client, address, staff[0] if staff else None
    if staff and len(staff) == len(cleaned):
        return Direction.INTERNAL, None, None, staff[0]
    return Direction.UNKNOWN, None, None, staff[0] if staff else None
