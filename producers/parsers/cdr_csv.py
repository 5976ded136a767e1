"""Generic call-detail-record CSV/TSV → call events, driven by a small column mapping.

Any CDR export with a header row can be read by describing it with a ``CdrMapping``: which
columns hold the id, the times, the parties, the wait and talk durations, and how the export's
outcome values map to ``CallOutcome``. ``CALLCENTER_1999`` is the mapping of the Technion
"Anonymous Bank" call-center week (../shared/data/phone/callcenter-1999) and the worked example.

Time rules: times are local wall-clock values in ``tz`` (IANA). When the date lives in its own
column (``date_column``) and the times carry only h:mm:ss, a time more than 12 hours *before*
the start belongs to the next day (a call that crossed midnight); smaller negative gaps are the
export's clock skew (e.g. service starting 1 s before the queue exit) and are kept as they are.
Values listed in ``null_values`` (e.g. "0:00:00") mean "did not happen".

Outcome rules are tried in order; the first whose ``value`` matches (and whose ``when_present``
/``when_absent`` column conditions hold) decides. A rule with ``outcome: null`` skips the record:
it is yielded as ``Rejected`` with a reason starting "outcome: skipped by mapping", so nothing
disappears silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    zone,
)
from producers.parsers.base import ParseResult
from producers.resolution import Resolver
from schemas.events import CallOutcome, Direction
from shinrai.errors import ConfigError

_MIDNIGHT_SLACK = timedelta(hours=12)


class OutcomeRule(BaseModel):
    """``value`` of the outcome column → ``outcome`` (None: skip), optionally conditional."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str
    outcome: CallOutcome | None
    when_present: str | None = Field(default=None, description="Column that must hold a value")
    when_absent: str | None = Field(default=None, description="Column that must be null")
    reason: str = Field(default="", description="Why records are skipped (outcome None)")


class CdrMapping(BaseModel):
    """How to read one CDR export. Column names refer to the header row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1, max_length=128, description="Event source and id prefix")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    tz: str = Field(default="UTC", description="IANA zone of the wall-clock times")
    id_columns: tuple[str, ...] = Field(min_length=1, description="Joined with '/' for event_id")
    date_column: str | None = Field(default=None, description="Date when times are time-only")
    date_format: str = "%Y-%m-%d"
    time_format: str = Field(default="%Y-%m-%d %H:%M:%S", description="strptime format of times")
    null_values: tuple[str, ...] = ("",)
    start_column: str = Field(description="When the call arrived / was placed (occurred_at)")
    answer_column: str | None = None
    end_columns: tuple[str, ...] = Field(default=(), description="First non-null is the end")
    wait_column: str | None = Field(default=None, description="Seconds waited (else answer-start)")
    duration_column: str | None = Field(default=None, description="Talk seconds (else end-answer)")
    from_column: str | None = None
    to_column: str | None = None
    client_column: str | None = Field(default=None, description="A client id held in the export")
    client_prefix: str = ""
    client_null_values: tuple[str, ...] = ("",)
    direction: Direction | None = Field(
        default=None, description="Fixed direction of a one-way export (e.g. inbound call center)"
    )
    outcome_column: str
    outcome_rules: tuple[OutcomeRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _time_only_needs_date(self) -> CdrMapping:
        if self.date_column is None and "%d" not in self.time_format:
            raise ValueError("time_format has no date: set date_column")
        return self

    def columns(self) -> set[str]:
        """Every column this mapping reads (checked against the header once per file)."""
        named = [
            self.date_column,
            self.start_column,
            self.answer_column,
            self.wait_column,
            self.duration_column,
            self.from_column,
            self.to_column,
            self.client_column,
            self.outcome_column,
        ]
        rules = [c for r in self.outcome_rules for c in (r.when_present, r.when_absent)]
        return {c for c in [*named, *rules, *self.id_columns, *self.end_columns] if c}


CALLCENTER_1999 = CdrMapping(
    source="callcenter-1999",
    delimiter="\t",
    tz="Asia/Jerusalem",  # an Israeli bank; the export has no zone (PROVENANCE.md)
    id_columns=("date", "vru+line", "call_id"),  # call_id alone repeats within the week
    date_column="date",
    date_format="%y%m%d",
    time_format="%H:%M:%S",
    null_values=("", "0:00:00"),  # 0:00:00 = "did not happen"
    start_column="vru_entry",
    answer_column="ser_start",
    end_columns=("ser_exit", "q_exit", "vru_exit"),
    wait_column="q_time",  # seconds in the agent queue: the speed of answer (0 = no queue)
    duration_column="ser_time",
    client_column="customer_id",
    client_prefix="anonbank-",
    client_null_values=("0",),  # 0 = unidentified caller
    direction=Direction.INBOUND,  # every record is a call into the bank
    outcome_column="outcome",
    outcome_rules=(
        OutcomeRule(value="AGENT", outcome=CallOutcome.ANSWERED),
        OutcomeRule(value="HANG", outcome=CallOutcome.ABANDONED, when_present="q_start"),
        OutcomeRule(
            value="HANG",
            outcome=None,
            when_absent="q_start",
            reason="caller left in the VRU (self-service) and never queued for an agent",
        ),
        OutcomeRule(
            value="PHANTOM", outcome=None, reason="a virtual call the source says to ignore"
        ),
    ),
)
"""Mapping of the Technion SEE Lab "Anonymous Bank" call-center export (Feb 1999)."""


def parse(
    path: Path,
    resolver: Resolver,
    /,
    *,
    mapping: CdrMapping,
    region: str | None = None,
) -> Iterator[ParseResult]:
    """Parse a CDR export (or every csv/tsv/txt file below a folder) with ``mapping``."""
    tz = zone(mapping.tz)
    for file, data in read_files(path, (".csv", ".tsv", ".txt")):
        yield from parse_bytes(
            data, resolver, mapping=mapping, name=file.name, tz=tz, region=region
        )


def parse_bytes(
    data: bytes,
    resolver: Resolver,
    *,
    mapping: CdrMapping,
    name: str,
    tz: tzinfo,
    region: str | None = None,
) -> Iterator[ParseResult]:
    """Parse the bytes of one export; the first record is the header row."""
    header: list[str] | None = None
    for line, row, raw in csv_records(data, delimiter=mapping.delimiter):
        if header is None:
            header = [cell.strip() for cell in row]
            missing = mapping.columns() - set(header)
            if missing:
                raise ConfigError(f"{name}: mapping {mapping.source!r} needs columns {missing}")
            continue
        origin = f"{name}:line {line}"
        if row and row[0].startswith(CSV_ERROR):
            yield reject(origin, raw, "record", row[0].removeprefix(CSV_ERROR))
            continue
        if len(row) != len(header):
            yield reject(origin, raw, "record", f"{len(row)} fields, header has {len(header)}")
            continue
        record = {key: value.strip() for key, value in zip(header, row, strict=True)}
        yield _record(record, raw, origin, mapping, tz, resolver, region)


def _record(
    record: dict[str, str],
    raw: bytes,
    origin: str,
    mapping: CdrMapping,
    tz: tzinfo,
    resolver: Resolver,
    region: str | None,
) -> ParseResult:
    def value(column: str | None) -> str | None:
        if column is None:
            return None
        text = record[column]
        return None if text in mapping.null_values else text

    outcome_text = record[mapping.outcome_column]
    rule = next(
        (
            r
            for r in mapping.outcome_rules
            if r.value == outcome_text
            and (r.when_present is None or value(r.when_present) is not None)
            and (r.when_absent is None or value(r.when_absent) is None)
        ),
        None,
    )
    if rule is None:
        return reject(origin, raw, mapping.outcome_column, f"unmapped value {outcome_text!r}")
    if rule.outcome is None:
        why = rule.reason or f"value {outcome_text!r}"
        return reject(origin, raw, mapping.outcome_column, f"skipped by mapping: {why}")

    day: datetime | None = None
    if mapping.date_column is not None:
        text = record[mapping.date_column]
        try:
            day = datetime.strptime(text, mapping.date_format)
        except ValueError:
            return reject(origin, raw, mapping.date_column, f"unparseable date {text!r}")

    def when(column: str, start: datetime | None) -> datetime | str | None:
        """The instant in ``column``, None when null, or an error text."""
        text = value(column)
        if text is None:
            return None
        try:
            parsed = datetime.strptime(text, mapping.time_format)
        except ValueError:
            return f"unparseable time {text!r} (expected {mapping.time_format})"
        if day is not None:
            parsed = datetime.combine(day.date(), parsed.time())
            if start is not None and localise(parsed, tz) < start - _MIDNIGHT_SLACK:
                parsed += timedelta(days=1)  # crossed midnight
        return localise(parsed, tz)

    start = when(mapping.start_column, None)
    if start is None:
        return reject(origin, raw, mapping.start_column, "missing")
    if isinstance(start, str):
        return reject(origin, raw, mapping.start_column, start)
    answer: datetime | None = None
    if mapping.answer_column is not None:
        got = when(mapping.answer_column, start)
        if isinstance(got, str):
            return reject(origin, raw, mapping.answer_column, got)
        answer = got
    end: datetime | None = None
    for column in mapping.end_columns:
        got = when(column, start)
        if isinstance(got, str):
            return reject(origin, raw, column, got)
        if got is not None:
            end = got
            break

    answered = rule.outcome is CallOutcome.ANSWERED
    wait: float | None = None
    if mapping.wait_column is not None:
        number = _number(record[mapping.wait_column])
        if number is None:
            return reject(
                origin, raw, mapping.wait_column, f"not a number {record[mapping.wait_column]!r}"
            )
        wait = number
    elif answered and answer is not None:
        wait = seconds(answer - start)
    elif not answered and end is not None:
        wait = seconds(end - start)
    duration: float | None = 0.0
    if answered:
        if mapping.duration_column is not None:
            duration = _number(record[mapping.duration_column])
            if duration is None:
                text = record[mapping.duration_column]
                return reject(origin, raw, mapping.duration_column, f"not a number {text!r}")
        else:
            duration = seconds(end - answer) if end and answer else None

    client: str | None = None
    counterpart: str | None = None
    staff: str | None = None
    direction = Direction.UNKNOWN
    if mapping.from_column is not None and mapping.to_column is not None:
        direction, client, counterpart, staff = call_direction(
            resolver,
            record[mapping.from_column],
            record[mapping.to_column],
            region=region,
        )
    if mapping.client_column is not None:
        held = record[mapping.client_column]
        if held and held not in mapping.client_null_values:
            client = f"{mapping.client_prefix}{held}"
            counterpart = counterpart or client
    if client is not None and mapping.direction is not None:
        direction = mapping.direction

    event_native = "/".join(record[c] for c in mapping.id_columns)
    return event_result(
        origin,
        raw,
        lambda: call_event(
            event_id=readable_id(mapping.source, event_native),
            direction=direction,
            start=start,
            recorded=end or start,
            client=client,
            counterpart=counterpart,
            staff=staff,
            outcome=rule.outcome,
            talk=duration,
            wait=wait,
            source=mapping.source,
        ),
    )


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number >= 0 else None
