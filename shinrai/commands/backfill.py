"""``shinrai backfill``: archives straight into ClickHouse, through the parsers and the engine.

The service itself (and how a rerun stays idempotent) is ``shinrai.jobs.backfill``; this module
parses the arguments, shows progress and prints the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shinrai.commands._params import (
    DIRECTORY_FILE,
    clickhouse_options,
    clickhouse_settings,
    format_option,
    mapping_option,
    progress_option,
    region_option,
)

if TYPE_CHECKING:
    from shinrai.jobs.backfill import BackfillSummary


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
@format_option()
@click.option(
    "--directory",
    type=DIRECTORY_FILE,
    help="Client directory (YAML or CSV): resolves counterparts, supplies policies and owners.",
)
@clickhouse_options("--clickhouse")
@region_option
@click.option("--tz", default=None, help="IANA zone for local times without offset (CDRs).")
@mapping_option
@click.option(
    "--directory-policies/--no-directory-policies",
    default=True,
    show_default=True,
    help="Start each client's log with its directory policy and calendar.",
)
@progress_option
def command(
    paths: tuple[Path, ...],
    fmt: str,
    directory: Path | None,
    url: str | None,
    database: str | None,
    region: str,
    tz: str | None,
    mapping: str | None,
    directory_policies: bool,
    progress: bool | None,
) -> None:
    """Backfill archives (PATH...) into ClickHouse through the parsers and the SLA engine.

    Writes the same interactions, facts, obligations and rollups as the live pipeline. Running
    it twice on the same input leaves the tables unchanged (same input, same batches: ClickHouse
    drops the repeated blocks). Archives carry no policies, so each --directory client's log
    starts with its directory policy and calendar (--no-directory-policies for a canonical JSONL
    log that carries its own). The arguments (format options, --mapping, the directory) are
    checked before the store is opened: a bad one creates nothing.

    \b
    Examples:
      shinrai backfill list.mbox --format mbox --directory clients.yaml
      shinrai backfill Master.csv --format asterisk --tz Asia/Tokyo --clickhouse chdb:///data
      shinrai backfill calls.tsv --format cdr-csv --mapping callcenter-1999
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

    from shinrai.jobs.backfill import PARSING, run_backfill
    from shinrai.jobs.backfill import Progress as Report
    from sinks.clickhouse.client import parse_url

    settings = clickhouse_settings(url, database)
    options: dict[str, Any] = {"tz": tz, "mapping": mapping}
    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (console.is_terminal if progress is None else progress),
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def show(report: Report) -> None:
            s = report.summary
            if report.phase not in tasks:
                tasks[report.phase] = bar.add_task(report.phase, total=None)
            task = tasks[report.phase]
            if report.phase == PARSING:
                bar.update(task, completed=s.read, description=_describe(s))
            else:
                rows = s.rows_written
                bar.update(task, completed=rows, description=f"written {rows:,} rows")
            if report.done:
                bar.update(task, total=s.read if report.phase == PARSING else s.rows_written)

        summary = run_backfill(
            paths,
            fmt,
            settings,
            directory_file=directory,
            region=region,
            options=options,
            directory_policies_first=directory_policies,
            on_progress=show,
        )
    if summary.read == 0:
        from shinrai.errors import ShinraiError

        # Not one record: the wrong --format (or files), not "backfilled, nothing new".
        named = ", ".join(str(p) for p in paths)
        raise ShinraiError(
            f"{named}: read as --format {fmt}, no record found (nothing backfilled): "
            "is --format right for it?"
        )
    _print(summary, f"{parse_url(settings.url).describe()} database {settings.database}")
