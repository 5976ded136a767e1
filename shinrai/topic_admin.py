"""Create and describe the topics of ``schemas.topics`` (kafka-python admin client)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.topics import ALL_TOPICS, TopicSpec
from shinrai.errors import ConfigError, KafkaUnavailable
from shinrai.kafka_check import check_connection
from shinrai.kafka_options import kafka_python_options
from shinrai.settings import KafkaSettings


def replica_configs(settings: KafkaSettings) -> dict[str, str]:
    """``min.insync.replicas`` of every topic made: SHINRAI_KAFKA__MIN_INSYNC_REPLICAS, else
    min(2, replication factor - 1) and at least 1 (3 replicas: a write survives one broker
    down and is on two before it is acknowledged)."""
    replicas = settings.replication_factor
    wanted = settings.min_insync_replicas or max(1, min(2, replicas - 1))
    if wanted > replicas:
        raise ConfigError(
            f"SHINRAI_KAFKA__MIN_INSYNC_REPLICAS={wanted} is more than "
            f"SHINRAI_KAFKA__REPLICATION_FACTOR={replicas}: no acks=all write could succeed"
        )
    return {"min.insync.replicas": str(wanted)}


@dataclass(frozen=True, slots=True)
class TopicResult:
    """The outcome for one topic: created now, or already there (with its partition count)."""

    name: str
    created: bool
    partitions: int


def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec] = ALL_TOPICS, *, suffix: str = ""
) -> list[TopicResult]:
    """Create every topic that does not exist yet; leave existing ones as they are (idempotent).

    ``suffix`` is appended to every name (tests use it to get private topics on a shared broker).
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    replica_configs(settings)  # a bad combination fails before the broker is asked anything
    check_connection(settings)  # a refused login or certificate: one clear error, at once
    try:
        admin = KafkaAdminClient(**kafka_python_options(settings), client_id="shinrai-admin")
    except (KafkaError, OSError) as exc:
        raise KafkaUnavailable(f"Kafka at {settings.bootstrap} is unreachable: {exc}") from exc
    try:
        specs = list(specs)
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name=spec.name + suffix,
                num_partitions=spec.partitions or settings.topic_partitions,
                replication_factor=settings.replication_factor,
                topic_configs={**spec.config(), **replica_configs(settings)},
            )
            for spec in specs
            if spec.name + suffix not in existing
        ]
        created: set[str] = set()
        for topic in wanted:  # one by one: a concurrent creator must not fail the others
            try:
                admin.create_topics([topic])
                created.add(topic.name)
            except TopicAlreadyExistsError:
                pass
        names = [spec.name + suffix for spec in specs]
        # Metadata of a just-created topic can lag a moment: re-describe until every topic has
        # its partitions (bounded, so a broken cluster still answers).
        deadline = time.monotonic() + settings.request_timeout_s
        while True:
            described = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names)}
            if all(described.get(n) for n in names) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return [TopicResult(name, name in created, described.get(name, 0)) for name in names]
    except KafkaError as exc:
        raise KafkaUnavailable(f"creating topics on {settings.bootstrap} failed: {exc}") from exc
    finally:
        admin.close()


def wait_for_group_coordinator(settings: KafkaSettings, group_id: str) -> float:
    """Wait until the broker has a coordinator for ``group_id``; returns the seconds waited.

    On a fresh broker the first group lookup creates ``__consumer_offsets``: until its
    partitions have leaders every consumer logs ``GroupCoordinatorNotAvailable`` errors and
    retries. Asking once here, before the consumers start, keeps that noise out of a first run.
    Bounded by ``kafka.request_timeout_s``; a broker that never answers is left to the
    consumers' own retries and errors.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    began = time.monotonic()
    deadline = began + settings.request_timeout_s
    try:
        admin = KafkaAdminClient(**kafka_python_options(settings), client_id="shinrai-admin")
    except (KafkaError, OSError):
        return time.monotonic() - began
    try:
        while True:
            try:
                admin.describe_groups([group_id])
                break
            except KafkaError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
    finally:
        admin.close()
    return time.monotonic() - began
