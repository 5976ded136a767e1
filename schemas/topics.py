"""Every Kafka topic Shinrai uses, defined in one place (names, partitions, key, cleanup, retention).

No Faust import here: producers (kafka-python), the admin command and the Faust app all read these
definitions. ``shinrai topics create`` makes them idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: what it holds, how it is keyed, and how long Kafka keeps it."""

    name: str
    description: str
    key: str
    cleanup_policy: str = "delete"  # "delete" or "compact"
    retention_ms: int | None = 30 * DAY_MS  # None = infinite (the event log is the source of truth)
    partitions: int | None = None  # None = the configured default (Settings.kafka.topic_partitions)
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level configs as Kafka expects them."""
        cfg = {"cleanup.policy": self.cleanup_policy, **self.extra_config}
        cfg["retention.ms"] = "-1" if self.retention_ms is None else str(self.retention_ms)
        return cfg


INTERACTIONS = TopicSpec(
    name="interactions.v1",
    description="Canonical InteractionEvent and ClientPolicyChanged JSON (the event log)",
    key="client_id",
    retention_ms=None,
)
DIRECTORY = TopicSpec(
    name="directory.v1",
    description="Client directory: one Client JSON per client, plus staff/policies/calendars",
    key="client_id (or '_staff', 'policy:<id>', 'calendar:<id>')",
    cleanup_policy="compact",
    retention_ms=None,
    partitions=1,
)
FACTS = TopicSpec(
    name="sla-facts.v1",
    description="SLA facts emitted by the engine (schemas.facts.Fact JSON)",
    key="client_id",
)
ACCEPTED = TopicSpec(
    name="interactions.accepted.v1",
    description=(
        "The interactions the SLA processor accepted (their original bytes, keyed by client_id): "
        "what storage keeps. Dead-lettered input (invalid, mis-keyed, refused by the engine) and "
        "events without a client never reach it; duplicates of an id the engine remembers do not"
    ),
    key="client_id",
)
ALERTS = TopicSpec(
    name="sla-alerts.v1",
    description="Alerts to deliver (schemas.alerts.Alert JSON); alert_id is the idempotency key",
    key="client_id",
)
DLQ = TopicSpec(
    name="interactions.dlq",
    description="Rejected input: original bytes as value, reason and origin in headers",
    key="original key (or none)",
    retention_ms=90 * DAY_MS,
)

TICKS = TopicSpec(
    name="sla-ticks.v1",
    description=(
        "Timer ticks for the SLA workers (tiny, keyed by client_id); must have the same "
        "partition count as interactions.v1 (the worker consumes both co-partitioned)"
    ),
    key="client_id",
    retention_ms=DAY_MS,
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    INTERACTIONS,
    DIRECTORY,
    FACTS,
    ACCEPTED,
    ALERTS,
    DLQ,
    TICKS,
)
