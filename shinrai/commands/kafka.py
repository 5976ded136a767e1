"""``shinrai kafka start|stop|status|reset|logs``: the project's own local Kafka broker."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from shinrai.commands._context import get_settings

if TYPE_CHECKING:
    from shinrai.local_kafka import LocalKafka


def _broker(port: int | None) -> LocalKafka:
    from shinrai.local_kafka import LocalKafka

    settings = get_settings().local_kafka
    if port is not None:
        settings = settings.model_copy(update={"port": port, "controller_port": port + 1})
    return LocalKafka(settings)


port_option = click.option(
    "--port",
    type=int,
    default=None,
    help="Broker port (default SHINRAI_LOCAL_KAFKA__PORT or 19092).",
)


@click.group()
def command() -> None:
    """Run the local single-node Apache Kafka broker (KRaft) pinned in shinrai/kafka_broker/."""


command.name = "kafka"


@command.command()
@port_option
def start(port: int | None) -> None:
    """Provision on first use, format, start and wait until the broker answers (idempotent)."""
    broker = _broker(port)
    if not broker.running():
        broker.require_free_ports()  # a taken port is the one line, before anything is printed
        click.echo(f"local kafka {broker.version}: starting at {broker.address} ...", err=True)
    status = broker.start()
    click.echo(
        f"local kafka {status.version} started at {status.address} (pid {status.pid}); "
        f"log: {status.log_file}"
    )


@command.command()
@port_option
def stop(port: int | None) -> None:
    """Stop the broker by pid (SIGTERM, then SIGKILL after 30 s)."""
    broker = _broker(port)
    if broker.stop():
        click.echo(f"local kafka {broker.version} at {broker.address} stopped")
    else:
        click.echo(f"local kafka {broker.version} at {broker.address} was not running")


@command.command()
@port_option
def status(port: int | None) -> None:
    """Print whether the broker runs and answers; exit 1 when it does not answer."""
    st = _broker(port).status()
    click.echo(
        f"version={st.version} address={st.address} pid={st.pid} running={st.running} "
        f"answering={st.answering} log={st.log_file}"
    )
    if not st.answering:
        sys.exit(1)


@command.command()
@port_option
@click.confirmation_option(prompt="Delete all local topics and offsets?")
def reset(port: int | None) -> None:
    """Stop the broker and delete its data (the jar cache stays)."""
    _broker(port).reset()
    click.echo("local kafka data deleted")


@command.command()
@port_option
@click.option("-n", "--lines", default=40, show_default=True, help="How many lines.")
def logs(port: int | None, lines: int) -> None:
    """Print the tail of the broker log."""
    click.echo(_broker(port).log_tail(lines))
