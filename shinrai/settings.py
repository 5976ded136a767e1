"""The one settings object. The environment is read here and nowhere else.

Every variable has the ``SHINRAI_`` prefix; nested groups use a double underscore, e.g.
``SHINRAI_KAFKA__BOOTSTRAP=127.0.0.1:19092``. Tests build ``Settings(...)`` explicitly.

Nothing here points into the source tree (an installed wheel has none): local data defaults to
``.data/`` under the working directory the settings are loaded in (made absolute then, so a
later ``chdir`` cannot move it), and the local broker's jars and run state to the user's cache
directory. Files the code ships (SQL, JSON Schemas, the broker's pom and config templates) are
package data, read with ``importlib.resources``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shinrai.logging import register_secrets, secret_values


def local_data_dir(*parts: str) -> Path:
    """``<working directory>/.data/<parts>``: the default home of embedded data (absolute)."""
    return Path.cwd().joinpath(".data", *parts)


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/shinrai/<parts>`` (default ``~/.cache/shinrai/<parts>``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).joinpath("shinrai", *parts)


def _iana_zone(value: str) -> str:
    """``value`` when it is empty (UTC) or an IANA zone name; else a one-line error."""
    if value:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Asia/Tokyo)") from exc
    return value


class KafkaSettings(BaseModel):
    """How to reach Kafka (and how the local broker is laid out)."""

    bootstrap: str = Field(default="127.0.0.1:19092", description="host:port[,host:port]")
    security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: str | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols)"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(
        default=None, description="CA bundle (PEM) that signed the brokers; default: the system's"
    )
    ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM) for brokers that require mutual TLS"
    )
    ssl_keyfile: Path | None = Field(
        default=None, description="Its private key (PEM, unencrypted); with ssl_certfile"
    )
    request_timeout_s: float = Field(default=10.0, gt=0)
    topic_partitions: int = Field(default=6, ge=1, description="Partitions for data topics")
    replication_factor: int = Field(
        default=1, ge=1, description="Replicas of every topic `shinrai topics create` makes"
    )
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of the topics it makes (acks=all waits for this many); "
        "default min(2, replication_factor - 1), at least 1",
    )
    max_message_bytes: int = Field(
        default=1_048_588,
        gt=0,
        description="Largest record the producers send when a topic's own max.message.bytes "
        "cannot be read (the broker's default)",
    )
    batch_events: int = Field(
        default=500,
        ge=1,
        le=10_000,  # schemas.batches.MAX_BATCH_ITEMS (the foundation cannot import schemas)
        description="Events per batch record when a producer holds many at once (produce, "
        "a bulk POST, a connector's sync, the demo's history); 1 = one record per event",
    )


class LocalKafkaSettings(BaseModel):
    """The project's own single-node KRaft broker (``shinrai kafka``, shinrai/local_kafka.py)."""

    port: int = Field(default=19092, ge=1, le=65535)
    controller_port: int = Field(default=19093, ge=1, le=65535)
    data_dir: Path = Field(
        default_factory=lambda: user_cache_dir("kafka"),
        description="Resolved jars (cache/kafka-<version>/libs) and per-port broker state "
        "(run/<port>: data, config, log, pid); shared by every checkout and install of the user",
    )
    heap: str = Field(default="512m", description="-Xmx of the broker JVM")
    java_home: Path | None = Field(
        default=None, description="JDK for the broker; default: PATH java"
    )
    start_timeout_s: float = Field(default=90.0, gt=0)


class ClickHouseSettings(BaseModel):
    """Where facts go: ``chdb:///path`` (embedded, default) or ``https://host:8443``."""

    url: str = Field(
        default_factory=lambda: f"chdb://{local_data_dir('chdb')}",
        description="Default: embedded, in .data/chdb under the working directory",
    )
    database: str = "shinrai"
    username: str = "default"
    password: SecretStr = SecretStr("")
    batch_rows: int = Field(default=50_000, gt=0, description="Flush the sink at this many rows")
    batch_age_s: float = Field(
        default=3.0,
        gt=0,
        description="... or when its oldest row is this old: dashboard freshness and offset-commit "
        "delay. Every insert costs 25-45 ms of CPU whatever its size (a part in the base table and "
        "in each materialized view), so 1 s spent ~0.25 CPU s/s on the sink at 1k events/s",
    )


class AlertSettings(BaseModel):
    """Alert hook delivery."""

    webhook_url: str | None = None
    signing_secret: SecretStr = SecretStr("")
    max_age_s: float = Field(
        default=3600.0, gt=0, description="Dead-letter an alert older than this"
    )
    quiet_hours_calendar: str | None = Field(
        default=None,
        description="Calendar id (client directory) of the owners' business hours: warnings "
        "outside them are not paged (breaches always page); unset: off",
    )
    warning_digest_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="Batch warnings into one page per owner per this many seconds; unset: off",
    )
    time_zone: str = Field(
        default="",
        description="IANA zone of the times in the alerts' text (the Slack form), e.g. "
        "Asia/Tokyo; empty: UTC. The JSON payload's instants stay UTC (ISO-8601)",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _iana_zone(value)


class WorkerSettings(BaseModel):
    """The Faust worker (``shinrai worker``)."""

    app_id: str = Field(default="shinrai", description="Faust app id = consumer group prefix")
    data_dir: Path = Field(
        default_factory=lambda: local_data_dir("worker"),
        description="RocksDB tables and the alert delivery files; default .data/worker under the "
        "working directory",
    )
    store: str = Field(default="rocksdb://", description="Faust table store (memory:// in tests)")
    allowed_lateness_s: float = Field(
        default=0.5,
        ge=0,
        description="Live event-time lateness; later events take the engine's correction path",
    )
    tick_interval_s: float = Field(default=0.2, gt=0, description="Deadline index resolution")
    catch_up_gap_s: float = Field(
        default=10.0,
        gt=0,
        description="A partition with records still behind the last one read, whose event time "
        "is more than this behind the wall clock, reads as a backlog: event-time watermark, no "
        "ticks (streams/watermark.py)",
    )
    max_future_skew_s: float = Field(
        default=900.0,
        gt=0,
        description="An interaction dated further ahead of the worker's clock is dead-lettered "
        "(a wrong clock would make its partition look live and turn a backlog late)",
    )
    max_event_age_days: int = Field(
        default=3660,
        gt=0,
        description="An interaction older than this is dead-lettered (a date that cannot be right)",
    )
    history_gap_s: float = Field(
        default=3600.0,
        gt=0,
        description="An interaction further behind the clock is history: on a live partition its "
        "client is held in event time (no wall-clock advance) until no history came for it for "
        "catch_up_gap_s, so history imported into a running worker is processed as a replay",
    )
    metrics_port: int | None = Field(default=9464, description="Prometheus /metrics; None = off")
    web_port: int = Field(default=6066, description="Faust web / dashboard port")
    run_processor: bool = Field(
        default=True,
        description="Run the Faust SLA processor in this process (off: a sinks-only worker)",
    )
    run_clickhouse_sink: bool = True
    run_alert_sink: bool = True
    topic_suffix: str = Field(
        default="", description="Appended to every topic name (private topics on a shared broker)"
    )
    alert_routing_file: Path | None = Field(
        default=None, description="YAML/JSON alert routing; None = everything to alerts.webhook_url"
    )
    sink_commit_interval_s: float = Field(
        default=0.5, gt=0, description="How often the alert runner commits finished offsets"
    )
    shutdown_timeout_s: float = Field(
        default=20.0, gt=0, description="Grace for in-flight deliveries and app stop on SIGTERM"
    )
    batch_max_events: int = Field(
        default=1000,
        ge=1,
        description="Most input messages the SLA processor handles as one batch (one state "
        "read and write per client, one acknowledgement wait for all its facts)",
    )
    batch_max_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="Most input bytes the SLA processor handles as one step: a batch of batch "
        "records (each up to N events) is cut into steps of about this size, so a backlog of "
        "them is processed, acknowledged and stored in parts, never all at once",
    )
    batch_output_from: int = Field(
        default=100,
        ge=0,
        description="A step of at least this many input records (a backlog of single records) "
        "writes its facts and accepted interactions as batch records (fact_batch, event_batch), "
        "as it does for inputs that came in batch records; smaller steps (live traffic) write "
        "one record each. 0: only for inputs that came in batch records",
    )
    batch_wait_s: float = Field(
        default=0.02,
        gt=0,
        description="Longest a batch waits to fill: the latency added when traffic is light",
    )
    producer_compression: str | None = Field(
        default="lz4",
        description="Compression of everything the processor produces (facts, alerts and the "
        "state changelog, whose records are whole client states): uncompressed, the socket "
        "writes of the changelog were a third of the processor's time",
    )
    producer_linger_s: float = Field(
        default=0.002,
        ge=0,
        description="Faust producer linger: facts of one batch travel in few produce requests",
    )
    session_timeout_s: float = Field(
        default=30.0,
        ge=6,
        description="Kafka group session timeout (Faust and sink runners): how long a dead "
        "worker's partitions wait before another member takes them over",
    )
    group_instance_id: str | None = Field(
        default=None,
        description="Static group membership (Faust and sink runners): a name stable across "
        "restarts and unique per worker, e.g. the pod or host name. A worker back within "
        "session_timeout_s gets its partitions again without a rebalance of the others; "
        "None: dynamic membership",
    )
    chase_window_s: float = Field(
        default=0.0,
        ge=0,
        description="A new conversation from a client this soon after one of its open "
        "obligations was opened counts as a chase of it (engine.chase); 0 = never (default: "
        "a client with several topics at once is not chasing)",
    )
    state_merge_items: int | None = Field(
        default=None,
        ge=0,
        description="A client's state is stored as a core plus an old generation of its "
        "memory (seen ids, thread memory), rewritten only when this many items changed since "
        "(streams.state_parts); None = the engine's rule (256, more for a very big memory)",
    )


class GatewaySettings(BaseModel):
    """Secrets, limits and targets of the HTTP ingestion gateway."""

    model_config = ConfigDict(frozen=True)

    zoom_secret_token: SecretStr | None = Field(
        default=None, description="Zoom app 'Secret Token' (webhook signature and URL validation)"
    )
    zoom_max_skew_s: float = Field(
        default=300.0, gt=0, description="Reject Zoom requests whose timestamp is older/newer"
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Twilio auth token (X-Twilio-Signature)"
    )
    bearer_tokens: tuple[SecretStr, ...] = Field(
        default=(), description="Accepted tokens for POST /v1/events (JSON list in the env var)"
    )
    public_base_url: str | None = Field(
        default=None,
        description="URL the outside world calls (https://hooks.example.com) when behind a proxy; "
        "Twilio signs the full URL it called, so it must be known exactly",
    )
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, description="Larger bodies get 413")
    topic: str = "interactions.v1"  # schemas.topics.INTERACTIONS
    dlq_topic: str = "interactions.dlq"  # schemas.topics.DLQ
    directory: Path | None = Field(
        default=None, description="Client directory (YAML/CSV) used to resolve webhook parties"
    )
    default_region: str = Field(default="US", description="Phone region for national numbers")
    meeting_buffer: int = Field(
        default=10_000, gt=0, description="Zoom meetings whose payloads are kept until they end"
    )
    graph_client_state: SecretStr | None = Field(
        default=None,
        description="clientState of the Microsoft Graph subscriptions (checked on every "
        "notification to POST /v1/graph/notifications)",
    )
    graph_private_key_file: Path | None = Field(
        default=None,
        description="PEM RSA private key of the certificate given to Graph subscriptions with "
        "includeResourceData: decrypts rich notifications (encryptedContent)",
    )


class DashboardSettings(BaseModel):
    """The built-in dashboard: what it shows people (stored data stays UTC), where it listens
    (``shinrai worker``, ``shinrai dashboard``) and who may read it.

    Bound to loopback it is open (unless ``require_auth``); bound to any other address it
    requires a login: a bearer token from ``bearer_tokens`` or HTTP Basic for one of ``users``
    (name -> scrypt hash made by ``shinrai dashboard hash-password``, see dashboard/auth.py),
    and it refuses to start when neither is set.
    """

    model_config = ConfigDict(frozen=True)

    time_zone: str = Field(
        default="",
        description="IANA zone every time on the page is shown in, e.g. Asia/Tokyo; empty: the "
        "zone of the client directory's default calendar when the dashboard knows the directory "
        "(the demo, the worker), else UTC",
    )
    language: str = Field(
        default="auto",
        description="Labels: ja, en, or auto (the browser's Accept-Language, English otherwise)",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _iana_zone(value)

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("auto", "ja", "en"):
            raise ValueError(f"{value!r} is not one of auto, ja, en")
        return value

    host: str = Field(default="127.0.0.1", description="Address the dashboard binds")
    port: int = Field(
        default=8088, ge=0, le=65535, description="Port of the dashboard (0: any free port)"
    )
    in_worker: bool = Field(
        default=True,
        description="`shinrai worker` serves the dashboard (the worker that hosts the "
        "ClickHouse sink; with chdb the only process that can read the data)",
    )
    bearer_tokens: tuple[SecretStr, ...] = Field(
        default=(), description="Accepted bearer tokens (JSON list in the env var)"
    )
    users: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="HTTP Basic users: name -> scrypt hash (JSON object in the env var)",
    )
    require_auth: bool = Field(
        default=False, description="Require a login on loopback too (always off loopback)"
    )
    sql_max_rows: int = Field(default=10_000, gt=0, description="Rows /api/sql returns at most")
    sql_timeout_s: float = Field(default=30.0, gt=0, description="max_execution_time of /api/sql")


class Settings(BaseSettings):
    """All Shinrai configuration."""

    model_config = SettingsConfigDict(
        env_prefix="SHINRAI_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    local_kafka: LocalKafkaSettings = Field(default_factory=LocalKafkaSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    log_level: str = "INFO"
    log_json: bool = Field(default=False, description="JSON log lines (default: human console)")

    def model_post_init(self, context: object, /) -> None:
        """Register every secret value (Kafka SASL, alert signing, gateway tokens) for redaction,
        so no log line of any process that read these settings can show one."""
        register_secrets(*secret_values(self))
