"""Build the Faust app in one place, with no import-time side effects.

``build_app`` returns a configured ``faust.App``; agents are attached by the modules that own them
(``streams.agents``). Nothing connects until the app is started by a worker or a test.
"""

from __future__ import annotations

from typing import Any

from schemas.topics import DAY_MS, TopicSpec
from shinrai.kafka_options import faust_options
from shinrai.settings import Settings


def build_app(
    settings: Settings,
    *,
    app_id: str = "shinrai",
    store: str = "rocksdb://",
    datadir: str | None = None,
    **overrides: Any,
) -> Any:
    """A Faust app on the configured broker, authenticating as every other client does
    (``shinrai.kafka_options.faust_options``: broker URLs and TLS/SASL credentials).

    ``store`` is ``rocksdb://`` for workers (fast restart from local state + changelog) and
    ``memory://`` only in unit tests. JSON is the only codec: no pickle anywhere.
    """
    import faust

    options: dict[str, Any] = {
        **faust_options(settings.kafka),
        "store": store,
        "value_serializer": "raw",
        "key_serializer": "raw",
        "topic_partitions": settings.kafka.topic_partitions,
        "topic_replication_factor": settings.kafka.replication_factor,
        "web_enabled": False,
        "consumer_auto_offset_reset": "earliest",
    }
    if datadir is not None:
        options["datadir"] = datadir
    options.update(overrides)
    return faust.App(app_id, **options)


def internal_topics(app: Any) -> list[TopicSpec]:
    """Every topic Faust creates by itself on start: each table's changelog and the leader topic.

    Faust declares them while it starts, racing its own consumer: when a changelog topic is
    created after the consumer's first metadata read, the consumer counts it as 0 partitions and
    the table's agent crashes on ``PartitionsMismatch`` (the directory feed crash-looped one
    record per restart on fresh topics). The worker creates these before the app starts
    (``shinrai.topic_admin.ensure_topics``), with the partitions and cleanup policy Faust would
    use, so Faust only finds them.
    """
    from mode.utils.times import want_seconds

    conf = app.conf
    specs: list[TopicSpec] = []
    for table in app.tables.values():
        changelog = table.changelog_topic
        policies = [
            name
            for name, on in (("compact", changelog.compacting), ("delete", changelog.deleting))
            if on
        ]
        retention = changelog.retention
        specs.append(
            TopicSpec(
                name=changelog.get_topic_name(),
                description=f"Faust changelog of the table {table.name!r}",
                key="the table's key",
                cleanup_policy=",".join(policies) or "compact",
                retention_ms=int(want_seconds(retention) * 1000) if retention else None,
                partitions=changelog.partitions or conf.topic_partitions,
            )
        )
    if not conf.topic_disable_leader:
        specs.append(
            TopicSpec(
                name=f"{conf.id}-__assignor-__leader",
                description="Faust's leader election topic (subscribed, never written)",
                key="none",
                retention_ms=DAY_MS,
                partitions=1,
            )
        )
    return specs
