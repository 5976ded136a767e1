"""``shinrai replay``: run an event log (JSONL) through the SLA engine and write the facts."""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from shinrai.commands._params import Instant

if TYPE_CHECKING:
    from engine.replay import RejectedLine
    from engine.state import Event

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PROGRESS_MIN_BYTES = 1 << 20  # show a progress bar from 1 MiB of input on


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``2h``, ``1d``, ``250ms`` or a bare number of seconds, as a timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 2h or 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def _lateness(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def _report(rejected: RejectedLine, shown: int, limit: int) -> None:
    if shown < limit:
        click.echo(f"line {rejected.line_no}: rejected: {rejected.reason}", err=True)
    elif shown == limit:
        click.echo("(further rejected lines are counted, not printed)", err=True)


def _read(
    path: Path, limit: int, rejects: BinaryIO | None = None
) -> tuple[list[Event], dict[int, int], int]:
    """Events of ``path``, their line numbers (by ``id`` of the event) and the number of
    rejected lines (each reported on stderr, and written to ``rejects`` when given)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from engine.replay import RejectedLine, read_numbered_events_jsonl

    size = path.stat().st_size
    events: list[Event] = []
    line_of: dict[int, int] = {}
    rejected = 0
    with (
        path.open("rb") as handle,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=size < _PROGRESS_MIN_BYTES,
        ) as progress,
    ):
        task = progress.add_task("reading events", total=size)
        lines = _counted(handle, lambda n: progress.advance(task, n))
        for line_no, item in read_numbered_events_jsonl(lines):
            if isinstance(item, RejectedLine):
                _report(item, rejected, limit)
                if rejects is not None:
                    _write_reject(rejects, line_no, None, None, item.reason)
                rejected += 1
            else:
                events.append(item)
                line_of[id(item)] = line_no
    return events, line_of, rejected


def _write_reject(
    out: BinaryIO, line_no: int, event_id: str | None, client_id: str | None, reason: str
) -> None:
    """One JSON line of the rejects output: where, which event and client, and why."""
    import orjson

    record = {"line": line_no, "event_id": event_id, "client_id": client_id, "reason": reason}
    out.write(orjson.dumps(record) + b"\n")


def _counted(lines: Iterable[bytes], advance: Callable[[int], None]) -> Iterator[bytes]:
    """Yield ``lines``, reporting the bytes read to ``advance`` every 4 MiB and at the end."""
    pending = 0
    for line in lines:
        pending += len(line)
        if pending >= 1 << 22:
            advance(pending)
            pending = 0
        yield line
    advance(pending)


@click.command("replay")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the facts (JSON lines) to this file instead of stdout.",
)
@click.option(
    "--lateness",
    default="5m",
    show_default=True,
    callback=_lateness,
    help="Allowed lateness of the engine: 30s, 5m, 2h, 1d, 0. A replay sorts the log by event "
    "time first, so the facts do not depend on it; it is there to mirror the live setting.",
)
@click.option(
    "--until",
    default=None,
    type=Instant(),
    help="Answer 'as of' this ISO-8601 instant (with offset): later events are left out and "
    "timers (warnings, breaches, silences) fire up to it. Default: the last event's time.",
)
@click.option(
    "--show-rejected",
    default=20,
    show_default=True,
    type=click.IntRange(min=0),
    help="Print at most this many rejected lines (all are counted).",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every rejected input (JSON lines: line, event_id, client_id, reason) to this "
    "file: lines that are not valid events, and events the engine cannot compute.",
)
@click.option(
    "--strict", is_flag=True, help="Exit with status 1 if any line or input was rejected."
)
def command(
    events: Path,
    output: Path | None,
    lateness: timedelta,
    until: datetime | None,
    show_rejected: int,
    rejects: Path | None,
    strict: bool,
) -> None:
    """Replay EVENTS (JSON lines of InteractionEvent / ClientPolicyChanged) through the engine.

    Each line is one canonical event, discriminated by "type" ("interaction" or
    "policy_changed"). Invalid lines are reported on stderr with their line number, the failing
    field and the reason, counted, and skipped: they never abort the run. An event the engine
    cannot compute (e.g. no deadline within ten years on its client's calendar) is reported the
    same way with its line, event id and client, and skipped; that client's other events and
    every other client go on. Facts are written as
    JSON lines (stdout by default); a summary (events, facts by kind, rejected lines, events/s)
    goes to stderr. The same log always yields the same facts, in the same order.

    \b
    Examples:
      shinrai replay events.jsonl -o facts.jsonl
      shinrai replay events.jsonl --until 2026-03-31T23:59:59+09:00 | jq .kind
    """
    import time

    from rich.console import Console
    from rich.table import Table

    from engine.core import Engine
    from engine.replay import replay
    from schemas.base import encode
    from shinrai.errors import InputRejected

    started = time.perf_counter()
    reject_out = rejects.open("wb") if rejects is not None else None
    try:
        loaded, line_of, rejected = _read(events, show_rejected, reject_out)
    except BaseException:
        if reject_out is not None:
            reject_out.close()
        raise
    read_s = time.perf_counter() - started
    clientless = sum(1 for ev in loaded if ev.client_id is None)
    kinds: Counter[str] = Counter()
    engine = Engine(allowed_lateness=lateness)
    refused = 0

    def on_reject(event: Event | None, exc: InputRejected) -> None:
        # event None: a timer of the client (its event_id names the obligation's opening event)
        nonlocal refused
        line_no = 0 if event is None else line_of.get(id(event), 0)
        event_id = exc.event_id if event is None else event.event_id
        if refused + rejected < show_rejected:
            where = "timer" if event is None else f"line {line_no}"
            click.echo(
                f"{where}: event {event_id} of client {exc.client_id}: rejected: {exc.reason}",
                err=True,
            )
        if reject_out is not None:
            _write_reject(reject_out, line_no, event_id, exc.client_id, exc.reason)
        refused += 1

    sink = output.open("wb") if output is not None else sys.stdout.buffer
    try:
        write = sink.write
        for fact in replay(loaded, engine, watermark_end=until, on_reject=on_reject):
            kinds[fact.kind.value] += 1
            write(encode(fact))
            write(b"\n")
        sink.flush()
    finally:
        if output is not None:
            sink.close()
        if reject_out is not None:
            reject_out.close()
    total_s = time.perf_counter() - started
    table = Table(title="shinrai replay", show_header=False, box=None)
    table.add_row("events", f"{len(loaded):,}")
    table.add_row("  without client (kept, no effect)", f"{clientless:,}")
    table.add_row("rejected lines", f"{rejected:,}")
    table.add_row("rejected by the engine", f"{refused:,}")
    table.add_row("facts", f"{sum(kinds.values()):,}")
    for kind, count in sorted(kinds.items()):
        table.add_row(f"  {kind}", f"{count:,}")
    table.add_row("read", f"{read_s:.2f} s")
    table.add_row("total", f"{total_s:.2f} s")
    table.add_row("events/s", f"{len(loaded) / total_s:,.0f}" if total_s > 0 else "-")
    Console(stderr=True).print(table)
    if strict and (rejected or refused):
        raise SystemExit(1)
