"""``shinrai topics create|list``: the topics defined in schemas/topics.py."""

from __future__ import annotations

import click

from shinrai.commands._context import get_settings


@click.group()
def command() -> None:
    """Manage Shinrai's Kafka topics (names, partitions, cleanup and retention from schemas/topics.py)."""


command.name = "topics"


@command.command()
@click.option("--partitions", type=int, default=None, help="Default partitions for data topics.")
def create(partitions: int | None) -> None:
    """Create every Shinrai topic that does not exist yet (idempotent).

    Names carry SHINRAI_WORKER__TOPIC_SUFFIX; replicas and min.insync.replicas come from
    SHINRAI_KAFKA__REPLICATION_FACTOR and SHINRAI_KAFKA__MIN_INSYNC_REPLICAS.
    """
    from shinrai.topic_admin import ensure_topics

    settings = get_settings()
    kafka = settings.kafka
    if partitions is not None:
        kafka = kafka.model_copy(update={"topic_partitions": partitions})
    # The names the worker and the producers use: SHINRAI_WORKER__TOPIC_SUFFIX included.
    results = ensure_topics(kafka, suffix=settings.worker.topic_suffix)
    for r in results:
        state = "created" if r.created else "exists "
        click.echo(f"{state} {r.name} ({r.partitions} partitions)")


@command.command(name="list")
def list_() -> None:
    """List the topic definitions: name, key, cleanup policy, retention."""
    from schemas.topics import ALL_TOPICS

    for spec in ALL_TOPICS:
        retention = (
            "infinite" if spec.retention_ms is None else f"{spec.retention_ms // 86_400_000}d"
        )
        click.echo(
            f"{spec.name:20} key={spec.key:12.12} cleanup={spec.cleanup_policy:8} "
            f"retention={retention:9} {spec.description}"
        )
