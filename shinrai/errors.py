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


class KafkaRejected(KafkaUnavailable, ConfigError):
    """Kafka refused us because of our own settings (SASL login, TLS certificates, protocol).

    Both unavailable (nothing can be produced or consumed) and a configuration error (retrying
    will not help): the message names the ``SHINRAI_KAFKA__*`` variable to fix.
    """


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


class InputRejected(EngineError):
    """The engine cannot compute one input of one client (e.g. no deadline within ten years on
    its calendar). Dead-letter that input with ``client_id``, ``event_id`` and ``reason``; the
    client's other inputs and every other client go on.

    The client state stays consistent without the input (keep the state the engine mutated);
    ``facts`` are the facts the same call emitted before the input (timers that fired first):
    they stand and must still be published.
    """

    def __init__(
        self,
        *,
        client_id: str,
        event_id: str | None,
        reason: str,
        facts: list[object] | None = None,
    ) -> None:
        where = f"client {client_id}" + (f", event {event_id}" if event_id else "")
        super().__init__(f"{where}: {reason}")
        self.client_id = client_id
        self.event_id = event_id
        self.reason = reason
        self.facts: list[object] = facts if facts is not None else []


class EventTooOld(InputRejected):
    """An interaction older than what its client's state can still correct (the duplicate
    window): the engine cannot tell it from a re-delivered duplicate, so it is refused, never
    applied twice and never dropped silently (the processor dead-letters it with the reason)."""
