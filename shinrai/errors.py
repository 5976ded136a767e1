"""One exception tree with one root: every error Shinrai raises on purpose is a ShinraiError.

Vendor errors (kafka-python, aiokafka, clickhouse-connect, httpx, pydantic) are translated at the
boundary with ``raise ... from exc`` so callers never need to import a vendor's exception types.
"""

from __future__ import annotations


class ShinraiError(Exception):
    """Root of every error Shinrai raises on purpose.

    ``hint`` (optional) tells the operator what to do about it; the CLI prints it on its own line.
    """

    hint: str | None = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class ConfigError(ShinraiError):
    """Settings or configuration files are missing or invalid."""


class ValidationFailed(ShinraiError):
    """Input failed validation; ``errors`` lists (field, reason) pairs and ``raw`` holds the bytes."""

    def __init__(self, message: str, *, errors: list[tuple[str, str]], raw: bytes = b"") -> None:
        super().__init__(message)
        self.errors = errors
        self.raw = raw

    @property
    def reason(self) -> str:
        """A one-line reason naming every failing field, suitable for a DLQ header."""
        return "; ".join(f"{field}: {why}" for field, why in self.errors) or str(self)


class KafkaUnavailable(ShinraiError):
    """The Kafka broker could not be reached or did not answer in time."""


class LocalKafkaError(ShinraiError):
    """Provisioning, formatting, starting or stopping the local Kafka broker failed."""


class SinkError(ShinraiError):
    """A sink could not write."""


class SinkBackpressure(SinkError):
    """A sink's buffer is full; the caller must flush or slow down before adding more."""


class SinkUnavailable(SinkError):
    """The sink's target (ClickHouse, a webhook) is unreachable or refused the write."""


class EngineError(ShinraiError):
    """The SLA engine met an input it cannot apply (e.g. a policy for an unknown calendar)."""


class EventTooOld(EngineError):
    """An event older than what a client's state can still correct (its duplicate window).

    The engine cannot tell such an event from a re-delivered duplicate, so it is refused, never
    applied twice and never dropped silently: the processor dead-letters it with this reason.
    """

    def __init__(self, message: str, *, client_id: str, event_id: str) -> None:
        super().__init__(message)
        self.client_id = client_id
        self.event_id = event_id
