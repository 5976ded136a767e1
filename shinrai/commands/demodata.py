"""``shinrai demodata``: write the demo client directory and event log (deterministic)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from shinrai.commands._params import Instant


@click.command("demodata")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for clients.yaml and events.jsonl (created if missing).",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed.")
@click.option(
    "--weeks",
    default=6,
    show_default=True,
    type=click.IntRange(min=3),
    help="Historic mode: weeks of interactions from 2026-01-05.",
)
@click.option(
    "--live-now",
    default=None,
    type=Instant(allow_now=True),
    help="Live mode: lay the log out around this ISO-8601 instant (or 'now'); events after it "
    "go to scheduled.jsonl, to be emitted when the wall clock reaches them.",
)
def command(out: Path, seed: int, weeks: int, live_now: datetime | None) -> None:
    """Generate the demo: a Japanese client directory (YAML) and canonical events (JSONL).

    The same seed (and --live-now) always writes the same bytes. Replaying events.jsonl gives
    breaches, met-late answers, cross-channel fulfilments, a silence and trust moving both ways.

    \b
    Examples:
      shinrai demodata --out demo/ && shinrai replay demo/events.jsonl -o facts.jsonl
      shinrai demodata --out live/ --live-now now
    """
    from producers.demo import generate, generate_live, write

    data = generate_live(live_now, seed) if live_now is not None else generate(seed, weeks=weeks)
    paths = write(data, out)
    for name, path in paths.items():
        click.echo(f"{name}: {path}")
    click.echo(f"{len(data.events)} events, {len(data.directory.clients)} clients")
