"""The one Kafka producer of the ingestion edge (kafka-python), and the dead-letter writer.

Delivery is confirmed, never assumed: every ``send`` registers a callback and an errback, and
``flush`` raises ``KafkaUnavailable`` when any record was not acknowledged by all in-sync replicas
(``acks=all``; idempotence on, so broker retries never duplicate a record). A failed record is
counted and reported; it is never silently lost.

Keys: an interaction is keyed by its ``client_id`` so all of one client's events land on one
partition (kafka-python's default partitioner is murmur2, the same as the Java client, aiokafka and
Faust). An event whose client could not be resolved is keyed ``_unknown``: it still belongs in the
log (the engine keeps it, and a later directory fix can re-resolve it on replay), and an explicit
key keeps those events together on one partition instead of scattering them at random.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from schemas.base import encode
from schemas.deadletter import DeadLetter
from schemas.events import ClientPolicyChanged, InteractionEvent
from shinrai.errors import KafkaUnavailable, ShinraiError
from shinrai.kafka_check import check_connection
from shinrai.kafka_options import kafka_python_options
from shinrai.logging import get_logger
from shinrai.settings import KafkaSettings

UNKNOWN_CLIENT_KEY = b"_unknown"
"""Key of events whose client is unknown (``client_id`` is None)."""

Headers = list[tuple[str, bytes]]

_log = get_logger("producers.kafka")

RECORD_OVERHEAD_BYTES = 512
"""Kafka's framing of one record in a batch of its own (batch header, varints), with room to
spare: a record is checked at its encoded size plus this, never at its compressed size."""

PRODUCER_MAX_REQUEST_BYTES = 1_048_576
"""kafka-python's ``max_request_size``: larger records fail in the client whatever the topic."""


class RecordTooLarge(ShinraiError):
    """A record is larger than its topic accepts (``max.message.bytes``): refused before sending,
    so it is rejected like other bad input instead of failing its whole batch at the broker."""

    def __init__(
        self, topic: str, size: int, limit: int, *, label: str = "", raw: bytes = b""
    ) -> None:
        what = label or "a record"
        super().__init__(
            f"{what} is {size:,} bytes encoded, over the {limit:,}-byte limit of topic {topic} "
            "(its max.message.bytes, or SHINRAI_KAFKA__MAX_MESSAGE_BYTES)"
        )
        self.topic = topic
        self.size = size
        self.limit = limit
        self.raw = raw  # the record's value, for the dead letter


def record_size(key: bytes | None, value: bytes | None, headers: Headers | None = None) -> int:
    """The bytes one record takes on the wire at most (uncompressed, with framing)."""
    head = sum(len(k) + len(v) for k, v in headers or ())
    return len(key or b"") + len(value or b"") + head + RECORD_OVERHEAD_BYTES


def compression_type() -> str:
    """The best codec kafka-python can use here without extra packages: lz4, zstd, else gzip.

    kafka-python compresses in pure Python only for gzip; lz4 needs the ``lz4`` package and zstd
    the ``zstandard`` package. lz4 is preferred: it is cheap on CPU and every broker reads it.
    """
    from kafka import codec

    if codec.has_lz4():
        return "lz4"
    if codec.has_zstd():
        return "zstd"
    return "gzip"


def event_key(event: InteractionEvent | ClientPolicyChanged) -> bytes:
    """The Kafka key of an engine input: its client id, or ``_unknown`` when it has none."""
    return event.key or UNKNOWN_CLIENT_KEY


def producer_config(kafka: KafkaSettings, *, client_id: str = "shinrai-producer") -> dict[str, Any]:
    """Full kafka-python producer configuration: durable, idempotent, batched and compressed."""
    request_ms = int(kafka.request_timeout_s * 1000)
    return {
        **kafka_python_options(kafka),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        # Idempotence keeps ordering with up to 5 in-flight requests per connection.
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 20,  # a short wait fills batches during bulk imports; invisible to webhooks
        "batch_size": 256 * 1024,
        "compression_type": compression_type(),
        # Bounded waits: a missing broker surfaces as KafkaUnavailable instead of hanging forever.
        "max_block_ms": request_ms,
        "bootstrap_timeout_ms": request_ms,
        "delivery_timeout_ms": max(120_000, request_ms + 20),
        # A missing topic is an error, not a topic silently created with the broker's defaults
        # (interactions.v1 needs its partition count; `shinrai topics create` makes it).
        "allow_auto_create_topics": False,
    }


@dataclass(frozen=True, slots=True)
class Record:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()
    label: str = ""  # what to call it in an error ("event <id>"); never sent


@dataclass
class DeliveryReport:
    """Thread-safe counters of acknowledged and failed records (callbacks run in the I/O thread)."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_sent(self) -> None:
        with self._lock:
            self.sent += 1

    def on_ack(self, _metadata: object) -> None:
        with self._lock:
            self.acked += 1

    def on_error(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
            if len(self.errors) < 10:  # keep a sample, not one string per failed record
                self.errors.append(f"{type(exc).__name__}: {exc}")


class RecordSink(Protocol):
    """Where the producing runner sends records (the Kafka producer, or a test double)."""

    def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        """Queue one record for delivery."""

    def flush(self) -> None:
        """Wait for every queued record; raise KafkaUnavailable if any was not acknowledged."""


class KafkaRecordProducer:
    """A kafka-python producer with confirmed delivery. Constructing it connects to the broker."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str = "shinrai-producer") -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError
        from kafka.net.compat import KafkaNetClient

        # A refused login or certificate is one clear error naming the setting, at once (the
        # producer itself would retry until its bootstrap timeout and then say only "timed out").
        check_connection(kafka)
        self.report = DeliveryReport()
        self._timeout_s = kafka.request_timeout_s
        self._kafka = kafka
        self._limits: dict[str, int] = {}
        self._limits_lock = threading.Lock()
        clients: list[Any] = []

        def tracked_client(**config: Any) -> Any:
            # kafka-python leaves its network client (sockets) open when bootstrapping fails
            # inside KafkaProducer.__init__; tracking the client lets us close it ourselves.
            client = KafkaNetClient(**config)
            clients.append(client)
            return client

        try:
            self._producer = KafkaProducer(
                **producer_config(kafka, client_id=client_id), kafka_client=tracked_client
            )
        except KafkaError as exc:
            for client in clients:
                client.close()
            # The bootstrap list is not secret; the SASL password never appears in this message.
            raise KafkaUnavailable(f"cannot connect to Kafka at {kafka.bootstrap}: {exc}") from exc
        _log.debug("producer connected", bootstrap=kafka.bootstrap, compression=compression_type())

    def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        """Queue one record; its acknowledgement or failure is counted in ``report``.

        Raises ``RecordTooLarge`` (nothing queued) when it exceeds the topic's limit.
        """
        from kafka.errors import KafkaError

        self.check_size(Record(topic, key, value or b"", headers or []))
        try:
            future = self._producer.send(topic, value=value, key=key, headers=headers or [])
        except KafkaError as exc:
            # send() raises synchronously when metadata or buffer space cannot be had in time.
            self.report.on_error(exc)
            raise KafkaUnavailable(
                f"cannot send to {topic} (does the topic exist? see `shinrai topics`): {exc}"
            ) from exc
        self.report.on_sent()
        future.add_callback(self.report.on_ack)
        future.add_errback(self.report.on_error)

    def send_and_wait(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> tuple[int, int]:
        """Send one record and block until acknowledged; return (partition, offset).

        For the HTTP gateway, which must not answer 2xx before the record is durable.
        """
        return self.send_many_and_wait([Record(topic, key, value, headers or [])])[0]

    def send_many_and_wait(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Send records together (one batch on the wire) and block until all are acknowledged.

        Raises KafkaUnavailable if any record failed; the others may have been written (the
        caller's retry then repeats them, which the engine absorbs by event id). Raises
        ``RecordTooLarge`` before sending anything when one record exceeds its topic's limit.
        """
        from kafka.errors import KafkaError

        for record in records:  # all checked before any is sent: the batch is all or nothing
            self.check_size(record)
        try:
            futures = [
                self._producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers))
                for r in records
            ]
            for _ in futures:
                self.report.on_sent()
            self._producer.flush(timeout=self._timeout_s * 3)
            metadata = [f.get(timeout=self._timeout_s) for f in futures]
        except KafkaError as exc:
            self.report.on_error(exc)
            raise KafkaUnavailable(f"record(s) not acknowledged: {exc}") from exc
        for item in metadata:
            self.report.on_ack(item)
        return [(int(m.partition), int(m.offset)) for m in metadata]

    def max_record_bytes(self, topic: str) -> int:
        """The largest record ``topic`` takes: its ``max.message.bytes`` (read once per topic;
        SHINRAI_KAFKA__MAX_MESSAGE_BYTES when the topic does not set it or cannot be asked),
        and never more than the client's own request limit."""
        with self._limits_lock:
            limit = self._limits.get(topic)
            if limit is None:
                limit = min(topic_max_message_bytes(self._kafka, topic), PRODUCER_MAX_REQUEST_BYTES)
                self._limits[topic] = limit
        return limit

    def check_size(self, record: Record) -> None:
        """Raise ``RecordTooLarge`` when ``record`` exceeds its topic's limit."""
        size = record_size(record.key, record.value, list(record.headers))
        limit = self.max_record_bytes(record.topic)
        if size > limit:
            raise RecordTooLarge(record.topic, size, limit, label=record.label, raw=record.value)

    def flush(self) -> None:
        """Wait for all queued records; raise KafkaUnavailable naming how many were lost."""
        from kafka.errors import KafkaError

        try:
            self._producer.flush(timeout=self._timeout_s * 12)
        except KafkaError as exc:
            raise KafkaUnavailable(f"flush did not complete: {exc}") from exc
        report = self.report
        pending = report.sent - report.acked - report.failed
        if report.failed or pending:
            sample = "; ".join(report.errors[:3])
            raise KafkaUnavailable(
                f"{report.failed} record(s) failed and {pending} unconfirmed "
                f"of {report.sent}: {sample}"
            )

    def close(self) -> None:
        """Flush what is buffered (best effort) and close the connection."""
        self._producer.close(timeout=self._timeout_s)

    def __enter__(self) -> KafkaRecordProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def topic_max_message_bytes(kafka: KafkaSettings, topic: str) -> int:
    """``max.message.bytes`` of ``topic`` as the broker describes it; the setting's value when the
    topic does not override it (the broker's default) or the broker cannot say."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(**kafka_python_options(kafka), client_id="shinrai-limits")
    except (KafkaError, OSError) as exc:
        _log.warning("topic_limit_unknown", topic=topic, error=str(exc))
        return kafka.max_message_bytes
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entry = described.get("topic", {}).get(topic, {}).get("max.message.bytes")
        return int(entry["value"]) if entry else kafka.max_message_bytes
    except (KafkaError, OSError, KeyError, TypeError, ValueError) as exc:
        _log.warning("topic_limit_unknown", topic=topic, error=str(exc))
        return kafka.max_message_bytes
    finally:
        admin.close()


def send_event(sink: RecordSink, topic: str, event: InteractionEvent | ClientPolicyChanged) -> None:
    """Queue one canonical event, keyed by client id, as its canonical JSON."""
    sink.send(topic, key=event_key(event), value=encode(event))


class DeadLetterWriter:
    """Sends ``DeadLetter`` records to the DLQ: original bytes as value, the why in headers."""

    def __init__(self, sink: RecordSink, topic: str) -> None:
        self._sink = sink
        self.topic = topic

    def write(self, letter: DeadLetter) -> None:
        """Queue one dead letter (delivery is confirmed by the sink's ``flush``)."""
        key, value, headers = letter.record()
        self._sink.send(self.topic, key=key, value=value, headers=headers)

    def write_all(self, letters: Iterable[DeadLetter]) -> None:
        """Queue several dead letters."""
        for letter in letters:
            self.write(letter)


def json_bytes(data: object) -> bytes:
    """Compact JSON (orjson) for non-model payloads such as directory records."""
    return orjson.dumps(data)
