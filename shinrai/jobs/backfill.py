"""The backfill service: archives straight into ClickHouse, through the parsers and the engine.

PATH... → the format's parser (``producers.formats``) → ``engine.replay`` → ``ClickHouseSink``
(interactions, facts, obligations, rollups, clients): the same rows the live pipeline writes,
without Kafka.

Idempotent: records carry no Kafka position, so every batch's dedup token is derived from the
ids it holds; the same input cut into the same batches (deterministic: sorted events, fixed
``batch_rows``) re-sends identical tokens and ClickHouse drops the repeated blocks — rollups
included — within the tables' ``non_replicated_deduplication_window`` (1000 blocks, i.e. 1000
batches). Base tables are ReplacingMergeTree on stable ids on top of that.

The engine learns policies and calendars from ``ClientPolicyChanged`` events. Archives do not
carry them, so for every client of ``--directory`` that has events, a policy change with the
directory's policy and calendar is put just before the client's first event (turn this off with
``--no-directory-policies`` when the archive is a canonical JSONL log that carries its own).

Pure orchestration: no printing, no terminal. ``shinrai backfill`` parses its arguments, calls
:func:`run_backfill` and prints the :class:`BackfillSummary`; progress reaches it through the
``on_progress`` callback (a :class:`Progress` every 128 parsed records and every flush).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.state import Event
    from schemas.directory import ClientDirectory
    from shinrai.settings import ClickHouseSettings
    from sinks.clickhouse.sink import ClickHouseSink

DIRECTORY_VERSION = 0
"""Version of the client rows a backfill writes: a live directory (any higher version) wins."""
PARSING = "parsing"
WRITING = "writing"
PROGRESS_EVERY = 128  # parsed records between two progress reports while parsing


@dataclass
class BackfillSummary:
    """What a backfill did."""

    read: int = 0  # parser results (events + rejects)
    events: int = 0  # distinct events replayed
    duplicates: int = 0  # same event_id seen again (several archivers, re-deliveries)
    rejected: int = 0
    clientless: int = 0  # kept as interactions, no effect on SLAs
    policies_added: int = 0
    facts: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    rows_written: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report of a backfill.

    ``phase`` is ``parsing`` or ``writing``; ``summary`` is the running summary (read it, do not
    keep it); ``done`` says the phase just finished, so its totals are final.
    """

    phase: str
    summary: BackfillSummary
    done: bool = False


def collect(
    paths: Sequence[Path],
    fmt: str,
    resolver: object,
    options: dict[str, Any],
    summary: BackfillSummary,
    on_result: Callable[[BackfillSummary], None] | None = None,
) -> list[Event]:
    """Parse every path; distinct events (first occurrence of each event_id) in input order."""
    from producers.formats import get_format, open_parser
    from producers.parsers.base import Rejected

    fmt_obj = get_format(fmt)
    seen: set[str] = set()
    events: list[Event] = []
    for path in paths:
        for result in open_parser(fmt_obj, path, resolver, options):
            summary.read += 1
            if isinstance(result, Rejected):
                summary.rejected += 1
                summary.rejected_by_reason[result.reason[:120]] += 1
            elif result.event.event_id in seen:
                summary.duplicates += 1
            else:
                seen.add(result.event.event_id)
                events.append(result.event)
                if result.event.client_id is None:
                    summary.clientless += 1
            if on_result is not None:
                on_result(summary)
    summary.events = len(events)
    return events


def directory_policies(events: Iterable[Event], directory: ClientDirectory) -> list[Event]:
    """One ClientPolicyChanged per directory client with events, 1 s before its first event."""
    from schemas.events import ClientPolicyChanged

    first: dict[str, datetime] = {}
    for ev in events:
        if ev.client_id is not None and (
            ev.client_id not in first or ev.occurred_at < first[ev.client_id]
        ):
            first[ev.client_id] = ev.occurred_at
    policies = {p.policy_id: p for p in directory.policies}
    calendars = {c.calendar_id: c for c in directory.calendars}
    out: list[Event] = []
    for client in directory.clients:
        at = first.get(client.client_id)
        policy = policies.get(client.policy_id)
        calendar = calendars.get(client.calendar_id)
        if at is None or policy is None or calendar is None:
            continue
        at -= timedelta(seconds=1)
        out.append(
            ClientPolicyChanged(
                event_id=(
                    f"backfill-policy:{client.client_id}:{policy.policy_id}:v{policy.version}:"
                    f"{calendar.calendar_id}"
                ),
                client_id=client.client_id,
                occurred_at=at,
                recorded_at=at,
                policy=policy,
                calendar=calendar,
            )
        )
    return out


def write(
    events: Sequence[Event],
    sink: ClickHouseSink,
    summary: BackfillSummary,
    *,
    directory: ClientDirectory | None = None,
    lateness: timedelta = timedelta(minutes=5),
    until: datetime | None = None,
    batch_rows: int = 50_000,
    on_written: Callable[[int], None] | None = None,
) -> None:
    """Replay ``events`` and write clients, interactions and facts through ``sink`` (set up).

    Interactions go in event-time order, facts in replay order, flushed every
    ``batch_rows`` buffered records, so the same input always makes the same batches.
    """
    from engine.core import Engine
    from engine.replay import replay
    from engine.state import event_key
    from schemas.events import InteractionEvent

    if directory is not None and directory.clients:
        sink.upsert_clients(list(directory.clients), version=DIRECTORY_VERSION)
    ordered = sorted(events, key=event_key)
    if until is not None:
        ordered = [ev for ev in ordered if ev.occurred_at <= until]
    batch = batch_rows

    def add(record: Any) -> None:
        sink.add(record)
        if sink.buffered >= batch:
            summary.rows_written += sink.flush()
            if on_written is not None:
                on_written(summary.rows_written)

    for ev in ordered:
        if isinstance(ev, InteractionEvent):
            add(ev)
    for fact in replay(ordered, Engine(allowed_lateness=lateness), watermark_end=until):
        summary.facts[fact.kind.value] += 1
        add(fact)
    summary.rows_written += sink.flush()
    if on_written is not None:
        on_written(summary.rows_written)


def backfill(
    paths: Sequence[Path],
    fmt: str,
    sink: ClickHouseSink,
    *,
    directory: ClientDirectory | None = None,
    region: str = "US",
    options: dict[str, Any] | None = None,
    directory_policies_first: bool = True,
    lateness: timedelta = timedelta(minutes=5),
    until: datetime | None = None,
    batch_rows: int = 50_000,
    on_progress: Callable[[Progress], None] | None = None,
) -> BackfillSummary:
    """Parse ``paths`` in ``fmt``, replay and write through ``sink`` (already set up)."""
    from producers.resolution import Resolver
    from schemas.directory import ClientDirectory

    started = time.perf_counter()
    summary = BackfillSummary()
    resolver = Resolver(directory or ClientDirectory(), default_region=region)

    def report(phase: str, done: bool = False) -> None:
        if on_progress is not None:
            on_progress(Progress(phase, summary, done))

    def parsed(s: BackfillSummary) -> None:
        if s.read % PROGRESS_EVERY == 0:
            report(PARSING)

    events = collect(paths, fmt, resolver, dict(options or {}), summary, parsed)
    report(PARSING, done=True)
    if directory is not None and directory_policies_first:
        added = directory_policies(events, directory)
        summary.policies_added = len(added)
        events = [*added, *events]
    write(
        events,
        sink,
        summary,
        directory=directory,
        lateness=lateness,
        until=until,
        batch_rows=batch_rows,
        on_written=lambda _rows: report(WRITING),
    )
    report(WRITING, done=True)
    summary.seconds = time.perf_counter() - started
    return summary


def run_backfill(
    paths: Sequence[Path],
    fmt: str,
    settings: ClickHouseSettings,
    *,
    directory_file: Path | None = None,
    region: str = "US",
    options: dict[str, Any] | None = None,
    directory_policies_first: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
) -> BackfillSummary:
    """Check the arguments, load the directory file, open and set up the sink, backfill, close.

    Nothing is created (no chdb directory, no database, no table) until the format's options
    (``--mapping``, ``--tz``, ...) and the directory have been checked: a ConfigError leaves the
    store untouched.

    Batches are ``settings.batch_rows`` records, so the same input and settings always write
    the same blocks (the idempotence above rests on it).
    """
    from producers.directory_io import load_directory
    from producers.formats import get_format, prepare_parser
    from sinks.clickhouse.sink import ClickHouseSink

    prepare_parser(get_format(fmt), dict(options or {}))  # raises on a bad option, opens nothing
    model = load_directory(directory_file, default_region=region) if directory_file else None
    sink = ClickHouseSink(settings)
    try:
        sink.setup()
        return backfill(
            paths,
            fmt,
            sink,
            directory=model,
            region=region,
            options=options,
            directory_policies_first=directory_policies_first,
            batch_rows=settings.batch_rows,
            on_progress=on_progress,
        )
    finally:
        sink.close()
