"""``shinrai directory publish|show``: the client directory on the compacted topic directory.v1."""

from __future__ import annotations

from pathlib import Path

import click

from shinrai.commands._context import get_settings
from shinrai.commands._params import DIRECTORY_FILE, region_option


@click.group("directory")
def command() -> None:
    """Publish the client directory (YAML/CSV) to Kafka, or show what the topic holds.

    \b
    YAML: clients, staff (domains, phone_numbers, members, groups), policies, calendars.
    CSV: one row per client: client_id,name,domains,addresses,phone_numbers,owner,...
    (multi-valued cells separated by ";"). An optional "kind" column declares us too:
      staff  our domains, addresses (name = the person) and phone numbers
      group  list / group addresses (neither staff nor client; YAML staff.groups)
    A client_id may be an e-mail address: the id becomes a safe one derived from it
    (alice@gmail.com -> alice_at_gmail.com) and the address is kept as the client's.
    The same file works for `produce --directory` and `backfill --directory`.
    """


@command.command("publish")
@click.argument("path", type=DIRECTORY_FILE)
@click.option("--topic", default=None, help="Directory topic [default: directory.v1].")
@region_option
@click.option(
    "--staff-domain",
    "staff_domains",
    multiple=True,
    help="CSV only: one of our own domains (adds to the file's kind=staff rows).",
)
@click.option(
    "--staff-phone",
    "staff_phones",
    multiple=True,
    help="CSV only: one of our own numbers (adds to the file's kind=staff rows).",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete (tombstone) clients/policies/calendars on the topic that the file lacks.",
)
def publish(
    path: Path,
    topic: str | None,
    region: str,
    staff_domains: tuple[str, ...],
    staff_phones: tuple[str, ...],
    prune: bool,
) -> None:
    """Validate PATH (clients.yaml or clients.csv) and publish it, one record per key.

    Keys: the client id (Client JSON), "_staff", "policy:<id>", "calendar:<id>". Publishing the
    same file twice is harmless (compaction keeps the latest value per key). Without --prune,
    keys on the topic that the file no longer has are kept and listed.
    """
    from producers.directory_io import load_directory
    from producers.directory_topic import publish as publish_directory
    from producers.directory_topic import read_all
    from producers.kafka_producer import KafkaRecordProducer
    from schemas.topics import DIRECTORY
    from shinrai.logging import configure

    settings = get_settings()
    configure(settings.log_level, json=settings.log_json)
    name = topic or DIRECTORY.name
    directory = load_directory(
        path,
        default_region=region,
        staff_domains=staff_domains,
        staff_phone_numbers=staff_phones,
    )
    existing = read_all(settings.kafka, name)
    with KafkaRecordProducer(settings.kafka, client_id="shinrai-directory") as producer:
        result = publish_directory(producer, directory, name, existing=existing, prune=prune)
    click.echo(
        f"published {result.published} records to {name}: {len(directory.clients)} clients, "
        f"{len(directory.policies)} policies, {len(directory.calendars)} calendars, staff"
    )
    if result.deleted:
        click.echo(f"deleted {len(result.deleted)}: {', '.join(result.deleted)}")
    if result.stale:
        click.echo(
            f"kept {len(result.stale)} key(s) not in the file (use --prune to delete): "
            + ", ".join(result.stale)
        )


@command.command("show")
@click.option("--topic", default=None, help="Directory topic [default: directory.v1].")
@click.option("--json", "as_json", is_flag=True, help="Print the whole directory as JSON.")
def show(topic: str | None, as_json: bool) -> None:
    """Read the directory topic from the beginning and summarise the current directory."""
    from rich.console import Console
    from rich.table import Table

    from producers.directory_topic import read_all
    from schemas.base import encode
    from schemas.directory_records import directory_from_records
    from schemas.topics import DIRECTORY
    from shinrai.logging import configure

    settings = get_settings()
    configure(settings.log_level, json=settings.log_json)
    name = topic or DIRECTORY.name
    records = read_all(settings.kafka, name)
    directory = directory_from_records(records)
    if as_json:
        click.echo(encode(directory).decode())
        return
    console = Console()
    console.print(
        f"{name}: {len(records)} records, {len(directory.clients)} clients, "
        f"{len(directory.policies)} policies, {len(directory.calendars)} calendars; "
        f"staff: {len(directory.staff.domains)} domains, "
        f"{len(directory.staff.phone_numbers)} numbers, {len(directory.staff.members)} members, "
        f"{len(directory.staff.groups)} groups"
    )
    table = Table("client_id", "name", "domains", "addresses", "phones", "policy", "calendar")
    for client in sorted(directory.clients, key=lambda c: c.client_id):
        table.add_row(
            client.client_id,
            client.name,
            ", ".join(client.domains),
            str(len(client.addresses)),
            str(len(client.phone_numbers)),
            client.policy_id,
            client.calendar_id,
        )
    console.print(table)
