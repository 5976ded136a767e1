"""Asterisk cdr-csv ``Master.csv`` → one canonical call event per real call.

The file has no header. Column order (cdr_csv's fixed layout; Asterisk 12+ appends the last
three): accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start,
answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield[, peeraccount,
linkedid, sequence].

One call often writes several rows ("legs"): a ring group dials phones in parallel, a Local/
channel chain forks, a retry re-dials. Rows are grouped by ``linkedid`` (Asterisk 12+: shared by
every leg of one call), else by ``uniqueid``, else by (src, start), and each group becomes ONE
event:

- outcome: ANSWERED if any bridged leg (one with a ``dstchannel``) was answered. Rows without a
  dstchannel are the caller's channel after the dialplan ran (e.g. ``Hangup`` after a ring group
  timed out): the PBX answered that channel, not a person, so they decide only when the group
  has no bridged leg at all (an IVR or announcement that picked up). Otherwise any NO ANSWER
  leg → MISSED, then BUSY, then FAILED/CONGESTION → FAILED. A group that ended in ``VoiceMail``
  without a person answering is a VOICEMAIL event.
- wait_seconds: earliest answer of an answered leg minus the earliest start (``duration -
  billsec`` when the answer column is empty); for an unanswered call, how long it rang: latest
  end minus earliest start.
- duration_seconds: the longest ``billsec`` of the answered legs (talk time); 0 when unanswered.
- event_id: ``asterisk:<linkedid or uniqueid>`` (a hash of src, dst, start when neither exists).
- times: the CSV holds local wall-clock times without zone; ``tz`` (IANA name, default "UTC",
  the right value when cdr.conf has ``usegmtime=yes``) says which zone they are in. The
  ``recorded_at`` of an event is the end of its last leg (Asterisk writes the row at hang-up).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from producers.parsers._common import (
    CSV_ERROR,
    call_direction,
    call_event,
    csv_records,
    event_result,
    localise,
    read_files,
    readable_id,
    reject,
    seconds,
    stable_id,
    zone,
)
from producers.parsers.base import ParseResult
from producers.resolution import Resolver
from schemas.events import CallOutcome, InteractionEvent, Kind

SOURCE = "asterisk"
MIN_COLUMNS = 15  # up to and including disposition
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_DISPOSITIONS = {
    "ANSWERED": CallOutcome.ANSWERED,
    "NO ANSWER": CallOutcome.MISSED,
    "BUSY": CallOutcome.BUSY,
    "FAILED": CallOutcome.FAILED,
    "CONGESTION": CallOutcome.FAILED,
}
# When no leg was answered, the most telling outcome of the legs wins: a phone that rang
# (MISSED) says more about our responsiveness than a busy or failed parallel leg.
_PRECEDENCE = (CallOutcome.MISSED, CallOutcome.BUSY, CallOutcome.FAILED)


@dataclass(frozen=True, slots=True)
class Leg:
    """One validated Master.csv row."""

    line: int
    raw: bytes
    src: str
    dst: str
    dstchannel: str
    lastapp: str
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    billsec: int
    outcome: CallOutcome
    group: str


def parse(
    path: Path,
    resolver: Resolver,
    /,
    *,
    tz: str = "UTC",
    region: str | None = None,
    extension_max_digits: int = 6,
) -> Iterator[ParseResult]:
    """Parse a Master.csv file (or every ``*.csv`` below a folder) into call events.

    ``region`` is the country of numbers written without a country code (default: the
    resolver's); digit strings of at most ``extension_max_digits`` digits that are not
    phone numbers count as our own internal extensions.
    """
    tzinfo = zone(tz)
    for file, data in read_files(path, (".csv",)):
        yield from parse_bytes(
            data,
            resolver,
            name=file.name,
            tz=tzinfo,
            region=region,
            extension_max_digits=extension_max_digits,
        )


def parse_bytes(
    data: bytes,
    resolver: Resolver,
    *,
    name: str,
    tz: ZoneInfo,
    region: str | None = None,
    extension_max_digits: int = 6,
) -> Iterator[ParseResult]:
    """Parse the bytes of one Master.csv (``name`` is used in origins)."""
    groups: dict[str, list[Leg]] = {}
    for line, row, raw in csv_records(data):
        origin = f"{name}:line {line}"
        leg = _leg(row, raw, line, tz)
        if isinstance(leg, tuple):
            yield reject(origin, raw, *leg)
            continue
        groups.setdefault(leg.group, []).append(leg)  # dicts keep first-seen order
    for key, legs in groups.items():
        origin = f"{name}:lines {','.join(str(leg.line) for leg in legs)}"
        raw = b"".join(leg.raw for leg in legs)
        make = partial(_event, key, legs, resolver, region, extension_max_digits)
        yield event_result(origin, raw, make)


def _leg(row: list[str], raw: bytes, line: int, tz: ZoneInfo) -> Leg | tuple[str, str]:
    """A validated leg, or (field, reason) saying why the row is unusable."""
    if row and row[0].startswith(CSV_ERROR):
        return "record", row[0].removeprefix(CSV_ERROR)
    if len(row) < MIN_COLUMNS:
        return "record", f"{len(row)} columns, expected at least {MIN_COLUMNS}"
    src, dst, dstchannel, lastapp = row[1].strip(), row[2].strip(), row[6].strip(), row[7].strip()
    times: dict[str, datetime | None] = {}
    for field, index in (("start", 9), ("answer", 10), ("end", 11)):
        text = row[index].strip()
        if not text:
            times[field] = None
            continue
        try:
            times[field] = localise(datetime.strptime(text, TIME_FORMAT), tz)
        except ValueError:
            return field, f"unparseable time {text!r} (expected {TIME_FORMAT})"
    start, end = times["start"], times["end"]
    if start is None:
        return "start", "missing"
    if end is None:
        return "end", "missing"
    counts: dict[str, int] = {}
    for field, index in (("duration", 12), ("billsec", 13)):
        text = row[index].strip()
        if not text.isdigit():
            return field, f"not a non-negative integer: {text!r}"
        counts[field] = int(text)
    disposition = row[14].strip().upper()
    if disposition not in _DISPOSITIONS:
        return "disposition", f"unknown value {row[14]!r}"
    uniqueid = row[16].strip() if len(row) > 16 else ""
    linkedid = row[19].strip() if len(row) > 19 else ""
    group = linkedid or uniqueid or stable_id("h", src, dst, row[9].strip())
    return Leg(
        line=line,
        raw=raw,
        src=src,
        dst=dst,
        dstchannel=dstchannel,
        lastapp=lastapp,
        start=start,
        answer=times["answer"],
        end=end,
        duration=counts["duration"],
        billsec=counts["billsec"],
        outcome=_DISPOSITIONS[disposition],
        group=group,
    )


def _event(
    key: str,
    legs: list[Leg],
    resolver: Resolver,
    region: str | None,
    extension_max_digits: int,
) -> InteractionEvent:
    """Collapse the legs of one call into one event (rules in the module docstring)."""
    first = min(legs, key=lambda leg: (leg.start, leg.line))
    start = first.start
    bridged = [leg for leg in legs if leg.dstchannel]
    deciding = bridged or legs
    answered = [leg for leg in deciding if leg.outcome is CallOutcome.ANSWERED]
    kind = Kind.CALL
    outcome: CallOutcome | None
    if answered:
        outcome = CallOutcome.ANSWERED
        answer_at = min(
            leg.answer or leg.start + timedelta(seconds=leg.duration - leg.billsec)
            for leg in answered
        )
        wait = seconds(answer_at - start)
        talk = float(max(leg.billsec for leg in answered))
    else:
        present = {leg.outcome for leg in deciding}
        outcome = next(o for o in _PRECEDENCE if o in present)
        wait = seconds(max(leg.end for leg in deciding) - start)
        talk = 0.0
        if any(leg.lastapp.lower() == "voicemail" for leg in legs):
            kind, outcome = Kind.VOICEMAIL, None
    direction, client, counterpart, staff = call_direction(
        resolver,
        first.src,
        first.dst,
        region=region,
        extension_max_digits=extension_max_digits,
    )
    return call_event(
        # A uniqueid has no colon, so "asterisk:h:<hash>" never collides with a native id.
        event_id=readable_id(SOURCE, key),
        kind=kind,
        direction=direction,
        start=start,
        recorded=max(leg.end for leg in legs),
        client=client,
        counterpart=counterpart,
        staff=staff,
        outcome=outcome,
        talk=talk,
        wait=wait,
        source=SOURCE,
    )
