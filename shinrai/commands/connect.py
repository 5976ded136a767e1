"""``shinrai connect``: follow the team's mailboxes (IMAP) and calendars (CalDAV) live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from shinrai.commands._context import get_settings
from shinrai.commands._params import DIRECTORY_FILE, progress_option, region_option

if TYPE_CHECKING:
    from producers.connectors.imap import Progress


@click.command("connect")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The connect YAML file: mailboxes, calendars, state_dir (see README).",
)
@click.option(
    "--directory",
    type=DIRECTORY_FILE,
    help="Client directory (YAML or CSV): who is staff and which client an address belongs to.",
)
@region_option
@click.option("--topic", default=None, help="Target topic [default: interactions.v1].")
@click.option("--dlq-topic", default=None, help="Dead-letter topic [default: interactions.dlq].")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=9467,
    show_default=True,
    help="Prometheus /metrics (shinrai_connector_*); 0 = off.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 5000),
    default=200,
    show_default=True,
    help="Messages fetched, acknowledged and checkpointed together.",
)
@progress_option
def command(
    config_path: Path,
    directory: Path | None,
    region: str,
    topic: str | None,
    dlq_topic: str | None,
    metrics_port: int,
    batch_size: int,
    progress: bool | None,
) -> None:
    """Follow the mailboxes and calendars of --config and produce their events live.

    Each IMAP folder is followed with IDLE (NOOP polling where the server has no IDLE); each new
    message goes through the same parser, ids and Kafka edge as `shinrai produce` (a message's
    event id comes from its Message-ID, so an archive imported earlier is not counted twice).
    Checkpoints (UIDVALIDITY and last UID per folder, CalDAV sync tokens) are kept in
    state_dir/checkpoints.sqlite3 and committed only after the broker acknowledged the events:
    a restart, even after kill -9, resumes exactly where it stopped. Errors after start are
    retried with backoff; a refused login, an untrusted certificate or a missing folder stop
    the command at start with one error line. Ctrl-C stops after the current batch.

    \b
    Examples:
      export SUPPORT_IMAP_PASSWORD=...        # the file names the variable, never the secret
      shinrai connect --config connect.yaml --directory clients.yaml
      curl -s localhost:9467/metrics | grep shinrai_connector_

    Exit status: 0 after Ctrl-C/SIGTERM, 1 on a configuration or connection error.
    """
    import asyncio
    import signal

    from producers.connectors.checkpoints import Checkpoints
    from producers.connectors.config import load_config
    from producers.connectors.runner import (
        ConnectorMetrics,
        Publisher,
        check_sources,
        run_connectors,
    )
    from producers.kafka_producer import KafkaRecordProducer
    from producers.resolving import build_resolver
    from schemas.topics import DLQ, INTERACTIONS
    from shinrai.logging import configure, get_logger

    settings = get_settings()
    configure(settings.log_level, json=settings.log_json)
    import logging

    # kafka-python narrates every connection and metadata refresh at INFO: a follower running for
    # weeks would log little else. Its warnings and errors still show.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    log = get_logger("shinrai.connect")
    config = load_config(config_path)
    check_sources(config)  # a secret not set is found before the broker is asked
    resolver = build_resolver(directory, default_region=region)
    metrics = ConnectorMetrics()
    server = None
    if metrics_port:
        from prometheus_client import start_http_server

        try:
            server, _thread = start_http_server(metrics_port, registry=metrics.registry)
        except OSError as exc:
            from shinrai.errors import ConfigError

            raise ConfigError(
                f"--metrics-port {metrics_port}: cannot listen ({exc.strerror})",
                hint="pick another port with --metrics-port, or 0 to turn metrics off",
            ) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with (
            Checkpoints(config.state_dir) as checkpoints,
            KafkaRecordProducer(settings.kafka, client_id="shinrai-connect") as producer,
            _progress_bar(progress) as bar,
        ):
            publisher = Publisher(
                producer,
                topic=topic or INTERACTIONS.name,
                dlq_topic=dlq_topic or DLQ.name,
                kafka=settings.kafka,  # reads back a batch a crash interrupted
            )
            log.info(
                "following",
                mailboxes=[m.name for m in config.mailboxes],
                calendars=[c.name for c in config.calendars],
                state=str(checkpoints.path),
            )
            try:
                await run_connectors(
                    config,
                    resolver=resolver,
                    publisher=publisher,
                    checkpoints=checkpoints,
                    stop=stop,
                    metrics=metrics,
                    progress=bar,
                    batch_size=batch_size,
                )
            finally:
                publisher.close()

    try:
        asyncio.run(main())
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    for mailbox in config.mailboxes:
        read = metrics.value("shinrai_connector_messages_total", mailbox.name) or 0
        click.echo(f"{mailbox.name}: {int(read)} message(s) read this run", err=True)


class _progress_bar:
    """A rich progress bar per folder whose first sync is large (on a terminal, or forced)."""

    def __init__(self, show: bool | None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=not (console.is_terminal if show is None else show),
        )
        self._tasks: dict[str, object] = {}

    def __enter__(self) -> Progress:
        self._bar.start()

        def update(label: str, done: int, total: int) -> None:
            task = self._tasks.get(label)
            if task is None:
                task = self._tasks[label] = self._bar.add_task(f"first sync {label}", total=total)
            self._bar.update(task, completed=done, total=total)  # type: ignore[arg-type]

        return update

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()
