"""``shinrai backfill``: archives straight into ClickHouse, through the parsers and the engine.

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
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from engine.state import Event
    from schemas.directory import ClientDirectory
    from sinks.clickhouse.sink import ClickHouseSink

FORMAT_NAMES = (
    "mbox",
    "eml",
    "maildir",
    "asterisk",
    "cdr-csv",
    "twilio",
    "ics",
    "zoom",
    "graph",
    "jsonl",
)
DIRECTORY_VERSION = 0
"""Version of the client rows a backfill writes: a live directory (any higher version) wins."""


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
    progress: Any = None,
) -> BackfillSummary:
    """Parse ``paths`` in ``fmt``, replay and write through ``sink`` (already set up)."""
    from producers.resolution import Resolver
    from schemas.directory import ClientDirectory

    started = time.perf_counter()
    summary = BackfillSummary()
    resolver = Resolver(directory or ClientDirectory(), default_region=region)
    parse_task = progress.add_task("parsing", total=None) if progress is not None else None

    def parsed(s: BackfillSummary) -> None:
        if progress is not None and s.read % 128 == 0:
            progress.update(parse_task, completed=s.read, description=_describe(s))

    events = collect(paths, fmt, resolver, dict(options or {}), summary, parsed)
    if progress is not None:
        progress.update(parse_task, completed=summary.read, total=summary.read)
    if directory is not None and directory_policies_first:
        added = directory_policies(events, directory)
        summary.policies_added = len(added)
        events = [*added, *events]
    write_task = progress.add_task("writing", total=None) if progress is not None else None

    def written(rows: int) -> None:
        if progress is not None:
            progress.update(write_task, completed=rows, description=f"written {rows:,} rows")

    write(
        events,
        sink,
        summary,
        directory=directory,
        lateness=lateness,
        until=until,
        batch_rows=batch_rows,
        on_written=written,
    )
    if progress is not None:
        progress.update(write_task, total=summary.rows_written)
    summary.seconds = time.perf_counter() - started
    return summary


def _describe(s: BackfillSummary) -> str:
    return f"parsed {s.read:,} ({s.rejected:,} rejected, {s.duplicates:,} duplicates)"


def _print(summary: BackfillSummary, where: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"shinrai backfill → {where}", show_header=False, box=None)
    table.add_row("records read", f"{summary.read:,}")
    table.add_row("events (distinct)", f"{summary.events:,}")
    table.add_row("  duplicates (same event_id)", f"{summary.duplicates:,}")
    table.add_row("  without client (kept, no effect)", f"{summary.clientless:,}")
    table.add_row("rejected", f"{summary.rejected:,}")
    table.add_row("policies from directory", f"{summary.policies_added:,}")
    table.add_row("facts", f"{sum(summary.facts.values()):,}")
    for kind, count in sorted(summary.facts.items()):
        table.add_row(f"  {kind}", f"{count:,}")
    table.add_row("rows written", f"{summary.rows_written:,}")
    table.add_row("time", f"{summary.seconds:.2f} s")
    console = Console(stderr=True)
    console.print(table)
    for reason, count in summary.rejected_by_reason.most_common(10):
        console.print(f"  rejected x{count}: {reason}")


@click.command("backfill")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(FORMAT_NAMES))
@click.option(
    "--directory",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Client directory (YAML or CSV): resolves counterparts, supplies policies and owners.",
)
@click.option("--clickhouse", "url", default=None, help="chdb:///path or https://host:8443.")
@click.option("--database", default=None, help="Target database [default: from settings].")
@click.option("--region", default="US", show_default=True, help="Default phone region (ISO).")
@click.option("--tz", default=None, help="IANA zone for local times without offset (CDRs).")
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Column mapping file (cdr-csv).",
)
@click.option(
    "--directory-policies/--no-directory-policies",
    default=True,
    show_default=True,
    help="Start each client's log with its directory policy and calendar.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a TTY].")
def command(
    paths: tuple[Path, ...],
    fmt: str,
    directory: Path | None,
    url: str | None,
    database: str | None,
    region: str,
    tz: str | None,
    mapping: Path | None,
    directory_policies: bool,
    progress: bool | None,
) -> None:
    """Backfill archives (PATH...) into ClickHouse through the parsers and the SLA engine.

    Writes the same interactions, facts, obligations and rollups as the live pipeline. Running
    it twice on the same input leaves the tables unchanged (see the module docs for how).

    \b
    Examples:
      shinrai backfill list.mbox --format mbox --directory clients.yaml
      shinrai backfill Master.csv --format asterisk --tz Asia/Tokyo --clickhouse chdb:///data
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from producers.directory_io import load_directory
    from shinrai.errors import ShinraiError
    from shinrai.settings import Settings
    from sinks.clickhouse.client import parse_url
    from sinks.clickhouse.sink import ClickHouseSink

    base = Settings().clickhouse
    settings = base.model_copy(
        update={k: v for k, v in {"url": url, "database": database}.items() if v is not None}
    )
    options: dict[str, Any] = {"tz": tz, "mapping": mapping}
    console = Console(stderr=True)
    try:
        model = load_directory(directory, default_region=region) if directory else None
        sink = ClickHouseSink(settings)
        sink.setup()
        try:
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                disable=not (console.is_terminal if progress is None else progress),
            ) as bar:
                summary = backfill(
                    paths,
                    fmt,
                    sink,
                    directory=model,
                    region=region,
                    options=options,
                    directory_policies_first=directory_policies,
                    batch_rows=settings.batch_rows,
                    progress=bar,
                )
        finally:
            sink.close()
    except ShinraiError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(summary, f"{parse_url(settings.url).describe()} database {settings.database}")
