"""``shinrai produce``: import a file or folder of one source format into the event log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shinrai.commands._context import get_settings
from shinrai.commands._params import (
    DIRECTORY_FILE,
    Instant,
    format_option,
    mapping_option,
    progress_option,
    region_option,
)
from shinrai.errors import ShinraiError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from producers.formats import ProduceResult
    from producers.jsonl import EventsFile
    from producers.kafka_producer import DeadLetterWriter, KafkaRecordProducer
    from producers.produce import RunSummary
    from producers.rejects import RejectsFile


def _print_summary(summary: RunSummary, *, as_json: bool) -> None:
    import orjson
    from rich.console import Console
    from rich.table import Table

    if as_json:
        click.echo(orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    console = Console(stderr=True)
    table = Table(title=f"shinrai produce ({summary.source})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("read", str(summary.read))
    table.add_row("produced", str(summary.produced))
    table.add_row("duplicates (same event_id, not re-sent)", str(summary.duplicates))
    table.add_row("unknown client (keyed _unknown)", str(summary.unknown_client))
    table.add_row("rejected", str(summary.rejected))
    if summary.written:
        table.add_row("written to --out", str(summary.written))
    for name, count in summary.to_json()["by_kind_direction"].items():
        table.add_row(f"  {name}", str(count))
    console.print(table)
    if summary.rejected_by_reason:
        reasons = Table(title="rejected by reason (top 20)")
        reasons.add_column("reason", overflow="fold")
        reasons.add_column("count", justify="right")
        for reason, count in summary.rejected_by_reason.most_common(20):
            reasons.add_row(reason, str(count))
        console.print(reasons)


class NothingRead(ShinraiError):
    """The input yielded no record at all for its format."""

    def __init__(self, path: Path, fmt: str) -> None:
        kind = "folder" if path.is_dir() else "file"
        super().__init__(
            f"{path}: read as --format {fmt}, this {kind} holds no record (nothing produced): "
            "is --format right for it?"
        )


@click.command("produce")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@format_option("Source format of PATH (jsonl = canonical InteractionEvent JSON, one per line).")
@click.option(
    "--directory",
    type=DIRECTORY_FILE,
    help="Client directory (YAML or CSV) used to resolve counterparts to clients.",
)
@region_option
@click.option("--topic", default=None, help="Target topic [default: interactions.v1].")
@click.option("--dlq-topic", default=None, help="Dead-letter topic [default: interactions.dlq].")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write rejected records here (JSONL: reason, origin, source, raw_base64).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the canonical events here (JSONL, readable by `shinrai replay` and "
    "`--format jsonl`); with --dry-run, only write it.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Parse and resolve only (no Kafka); print the summary as JSON.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (stdout).")
@click.option(
    "--tz",
    default=None,
    help="IANA zone of times without offset (asterisk, cdr-csv; ics floating times).",
)
@mapping_option
@click.option(
    "--window-start",
    type=Instant(naive_utc=True),
    help="ics: expand recurrences from (ISO; UTC without offset).",
)
@click.option(
    "--window-end",
    type=Instant(naive_utc=True),
    help="ics: expand recurrences until (ISO; UTC without offset).",
)
@progress_option
def command(
    path: Path,
    fmt: str,
    directory: Path | None,
    region: str,
    topic: str | None,
    dlq_topic: str | None,
    rejects: Path | None,
    out: Path | None,
    dry_run: bool,
    as_json: bool,
    tz: str | None,
    mapping: str | None,
    window_start: datetime | None,
    window_end: datetime | None,
    progress: bool | None,
) -> None:
    """Parse PATH in one source format and produce canonical events to Kafka.

    Events are keyed by client id (unresolved clients: key "_unknown"); delivery is confirmed
    (acks=all, idempotent producer). A record that cannot become an event never aborts the run:
    it goes to the dead-letter topic with its original bytes and the reason, and to --rejects.
    The same event_id twice in one run is produced once and counted as a duplicate.
    Events are sent in event-time order, in batch records of up to SHINRAI_KAFKA__BATCH_EVENTS
    events of one partition (1 = one record per event); --out writes the same events, in the
    same order, as canonical JSON lines (the file appears only when the whole input was read).

    \b
    Examples:
      shinrai produce events.jsonl --format jsonl
      shinrai produce list.mbox --format mbox --directory clients.yaml --rejects rejects.jsonl
      shinrai produce Master.csv --format asterisk --tz Asia/Tokyo --dry-run
      shinrai produce list.mbox --format mbox --directory clients.csv --dry-run --out events.jsonl
      shinrai replay events.jsonl -o facts.jsonl

    Exit status: 0 on success (even with rejects), 1 when Kafka did not confirm every record
    or PATH held no record at all for --format.
    """
    import itertools

    from producers.formats import get_format, prepare_parser
    from producers.jsonl import EventsFile
    from producers.kafka_producer import DeadLetterWriter, KafkaRecordProducer
    from producers.produce import RunSummary
    from producers.rejects import RejectsFile
    from producers.resolving import build_resolver
    from schemas.topics import DLQ, INTERACTIONS
    from shinrai.errors import KafkaUnavailable
    from shinrai.logging import configure

    settings = get_settings()
    configure(settings.log_level, json=settings.log_json)
    source = f"produce:{fmt}"
    options: dict[str, Any] = {
        "tz": tz,
        "mapping": mapping,
        "window_start": window_start,
        "window_end": window_end,
    }
    summary = RunSummary(source=source, dry_run=dry_run)
    # Arguments first: a bad option or directory must not leave an empty rejects or events file.
    parse = prepare_parser(get_format(fmt), options)
    resolver = build_resolver(directory, default_region=region)
    rejects_file = RejectsFile(rejects) if rejects is not None else None
    events_file: EventsFile | None = None
    producer: KafkaRecordProducer | None = None
    failed: KafkaUnavailable | None = None
    try:
        events_file = EventsFile(out) if out is not None else None
        results = iter(parse(path, resolver))
        first = next(results, None)
        if first is None:
            # Not one record (event or reject): the wrong --format, or not the file meant. Exit
            # 0 with a summary of zeros would read as "imported, nothing new". Found before Kafka
            # is asked anything.
            raise NothingRead(path, fmt)
        results = itertools.chain([first], results)
        if not dry_run:
            producer = KafkaRecordProducer(settings.kafka, client_id=f"shinrai-{source}")
        dead_letters = (
            DeadLetterWriter(producer, dlq_topic or DLQ.name) if producer is not None else None
        )
        _run_with_progress(
            results,
            summary,
            topic=topic or INTERACTIONS.name,
            producer=producer,
            dead_letters=dead_letters,
            rejects=rejects_file,
            out=events_file,
            show=progress,
            max_record_bytes=(
                producer.max_record_bytes(topic or INTERACTIONS.name) if producer else None
            ),
        )
    except KafkaUnavailable as exc:
        failed = exc  # print the partial summary first: the operator needs to know how far it got
    finally:
        if rejects_file is not None:
            rejects_file.close()
        if events_file is not None:
            events_file.close()
        if producer is not None:
            producer.close()
    if failed is None or summary.read:  # nothing read: the error line alone says it all
        _print_summary(summary, as_json=as_json or dry_run)
    if failed is not None:
        raise failed  # now the one error line and exit status 1 of every command


def _run_with_progress(
    results: Iterable[ProduceResult],
    summary: RunSummary,
    *,
    topic: str,
    producer: KafkaRecordProducer | None,
    dead_letters: DeadLetterWriter | None,
    rejects: RejectsFile | None,
    out: EventsFile | None,
    show: bool | None,
    max_record_bytes: int | None = None,
) -> None:
    """Drive the runner under a rich progress display on stderr (read, produced, rejected)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from producers.produce import run

    console = Console(stderr=True)
    enabled = console.is_terminal if show is None else show
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    ) as bar:
        task = bar.add_task(_describe(summary), total=None)

        def update(current: RunSummary) -> None:
            # Redrawing per record would dominate a bulk import; every 256 records is smooth enough.
            if current.read % 256 == 0:
                bar.update(task, description=_describe(current))

        try:
            run(
                results,
                source=summary.source,
                topic=topic,
                sink=producer,
                dead_letters=dead_letters,
                rejects=rejects,
                out=out,
                on_result=update,
                summary=summary,
                max_record_bytes=max_record_bytes,
                # Batch records of SHINRAI_KAFKA__BATCH_EVENTS events per partition.
                writer=producer.event_writer(topic) if producer is not None else None,
            )
        finally:
            bar.update(task, description=_describe(summary))


def _describe(summary: RunSummary) -> str:
    return (
        f"{summary.source}: {summary.read} read, {summary.produced} produced, "
        f"{summary.duplicates} duplicates, {summary.rejected} rejected"
    )
