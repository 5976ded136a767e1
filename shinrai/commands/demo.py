"""``shinrai demo``: the main job (local Kafka, worker, demo data, live dashboard)."""

from __future__ import annotations

import sys

import click

from shinrai.commands._context import get_settings


@click.command("demo")
@click.option("--port", default=8088, show_default=True, help="Dashboard port on 127.0.0.1.")
@click.option("--seed", default=7, show_default=True, help="Demo data seed.")
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--keep-kafka", is_flag=True, help="Leave the local broker running when the demo stops."
)
def command(port: int, seed: int, duration: float | None, keep_kafka: bool) -> None:
    """Run the whole pipeline on its embedded defaults with a live demo and its dashboard.

    Starts the local Kafka broker if needed, creates the topics, migrates the embedded
    ClickHouse, runs the SLA worker in this process, publishes a demo client directory, streams a
    generated event log (history, then events on the clock so warnings and breaches fire while you
    watch) and serves the dashboard. Ctrl-C stops everything it started.
    """
    import asyncio

    from shinrai.jobs.demo import run_demo
    from shinrai.logging import configure

    settings = get_settings()
    configure("WARNING" if settings.log_level.upper() == "INFO" else settings.log_level)
    report = asyncio.run(
        run_demo(
            settings,
            port=port,
            seed=seed,
            duration_s=duration,
            stop_kafka=not keep_kafka,
            echo=lambda line: click.echo(line, err=True),
        )
    )
    if report.errors:
        sys.exit(1)
