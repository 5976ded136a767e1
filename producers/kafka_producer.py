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

Batches (``schemas.batches``): a producer that holds many events at once writes them as
``event_batch`` records, up to ``SHINRAI_KAFKA__BATCH_EVENTS`` events of ONE partition each
(``EventWriter`` for a streaming run, ``send_many_and_wait`` for the records marked
``batchable``). Each event's partition is the default partitioner's for its key and the
topic's partition count; the batch is produced to that partition explicitly, keyed by its first
event's key, so every partition holds its events in the order they were given, as single
records would. A group of one event is sent as the single record it always was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import orjson

from schemas.base import encode
from schemas.batches import EVENT_BATCH, MAX_BATCH_ITEMS, join, partition_for
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

BATCH_MARGIN_BYTES = 1024
"""A batch record stays this far under the topic's record limit (framing estimates differ
between clients); a single event keeps the exact limit it always had."""

_BATCH_ENVELOPE_BYTES = len(join(EVENT_BATCH, [b""]))
"""The bytes of an event_batch around its items (plus one comma per item after the first)."""


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
    partition: int | None = None  # explicit partition (batch records); None: the key's
    events: int = 1  # events the record carries (a batch: its items), for the delivery report
    batchable: bool = False  # an interaction event send_many_and_wait may put in a batch


@dataclass
class DeliveryReport:
    """Thread-safe counters of acknowledged and failed records (callbacks run in the I/O thread)."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_sent(self, events: int = 1) -> None:
        with self._lock:
            self.sent += events

    def on_ack(self, _metadata: object, events: int = 1) -> None:
        with self._lock:
            self.acked += events

    def on_error(self, exc: BaseException, events: int = 1) -> None:
        with self._lock:
            self.failed += events
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


class BatchRecordSink(RecordSink, Protocol):
    """A sink that also takes an explicit partition and counts a batch as its events."""

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
        events: int = 1,
    ) -> None:
        """Queue one record (``events``: how many events it carries) for delivery."""


class EventBatcher:
    """Groups encoded events of one topic per partition into ``event_batch`` records.

    ``add`` takes events in the order they must keep on their partition; a group is handed to
    ``emit`` (as a ``Record`` with its partition set) when it holds ``max_events`` events, when
    the next event would take it over ``limit - BATCH_MARGIN_BYTES``, and at ``flush``. An event
    whose own record exceeds ``limit`` raises ``RecordTooLarge`` (nothing added), as a single
    record would. A group of one event is emitted as that event's single record.
    """

    def __init__(
        self,
        topic: str,
        *,
        partitions: int,
        max_events: int,
        limit: int,
        emit: Callable[[Record], None],
    ) -> None:
        if partitions < 1:
            raise ValueError(
                f"{topic}: a batch needs the topic's partition count, got {partitions}"
            )
        if not 1 <= max_events <= MAX_BATCH_ITEMS:
            raise ValueError(f"max_events must be within 1..{MAX_BATCH_ITEMS}, got {max_events}")
        self.topic = topic
        self.partitions = partitions
        self.max_events = max_events
        self.limit = limit
        self._batch_limit = limit - BATCH_MARGIN_BYTES
        self._emit = emit
        # partition -> (keys, values, labels, bytes of the batch record so far)
        self._groups: dict[int, tuple[list[bytes], list[bytes], list[str], list[int]]] = {}

    def add(self, key: bytes, value: bytes, label: str = "") -> None:
        """Queue one encoded event (keyed ``key``) behind the events of its partition."""
        size = record_size(key, value)
        if size > self.limit:
            raise RecordTooLarge(self.topic, size, self.limit, label=label, raw=value)
        partition = partition_for(key, self.partitions)
        group = self._groups.get(partition)
        if group is not None:
            keys, values, _labels, total = group
            # The batch's own key is its first event's; a comma joins each further item.
            grown = record_size(keys[0], None) + total[0] + len(value) + 1
            if grown > self._batch_limit:
                self._emit_group(partition)
                group = None
        if group is None:
            group = self._groups[partition] = ([], [], [], [_BATCH_ENVELOPE_BYTES - 1])
        keys, values, labels, total = group
        keys.append(key)
        values.append(value)
        labels.append(label)
        total[0] += len(value) + 1
        if len(values) >= self.max_events:
            self._emit_group(partition)

    def flush(self) -> None:
        """Emit every group still held (partition order; each partition keeps its own order)."""
        for partition in sorted(self._groups):
            self._emit_group(partition)

    @property
    def pending(self) -> int:
        """Events added and not emitted yet."""
        return sum(len(values) for _keys, values, _labels, _total in self._groups.values())

    def _emit_group(self, partition: int) -> None:
        keys, values, labels, _total = self._groups.pop(partition)
        if len(values) == 1:
            record = Record(self.topic, keys[0], values[0], label=labels[0], partition=partition)
        else:
            first = labels[0] or "its first event"
            record = Record(
                self.topic,
                keys[0],
                join(EVENT_BATCH, values),
                label=f"a batch of {len(values)} events from {first}",
                partition=partition,
                events=len(values),
            )
        self._emit(record)


class EventWriter:
    """Sends canonical events to ``topic``: one record each, or (``batch_events`` > 1, with the
    topic's ``partitions`` and record ``limit``) ``event_batch`` records per partition.

    ``flush`` hands the held groups to the sink; the sink's own ``flush`` then waits for them.
    """

    def __init__(
        self,
        sink: RecordSink,
        topic: str,
        *,
        batch_events: int = 1,
        partitions: int | None = None,
        limit: int | None = None,
    ) -> None:
        self._sink = sink
        self.topic = topic
        self._batcher: EventBatcher | None = None
        if batch_events > 1:
            if partitions is None or limit is None:
                raise ValueError("batching needs the topic's partition count and record limit")
            self._batcher = EventBatcher(
                topic, partitions=partitions, max_events=batch_events, limit=limit, emit=self._send
            )

    def write(self, event: InteractionEvent | ClientPolicyChanged) -> None:
        """Queue one event (in a batch of its partition when batching)."""
        if self._batcher is None:
            send_event(self._sink, self.topic, event)
        else:
            self._batcher.add(event_key(event), encode(event), f"event {event.event_id}")

    def flush(self) -> None:
        """Send the events still held in batches (does not wait for acknowledgements)."""
        if self._batcher is not None:
            self._batcher.flush()

    def _send(self, record: Record) -> None:
        if record.events == 1 and record.partition is not None:
            # A group of one is the event's ordinary record: its key already picks the partition.
            self._sink.send(record.topic, key=record.key, value=record.value)
            return
        sink = cast(BatchRecordSink, self._sink)
        sink.send(
            record.topic,
            key=record.key,
            value=record.value,
            partition=record.partition,
            events=record.events,
        )


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
        self.batch_events = kafka.batch_events
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
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
        events: int = 1,
    ) -> None:
        """Queue one record; its acknowledgement or failure is counted in ``report``, as
        ``events`` (a batch record's events all succeed or all fail with it).

        ``partition``: produce there instead of the key's partition (batch records).
        Raises ``RecordTooLarge`` (nothing queued) when it exceeds the topic's limit.
        """
        from kafka.errors import KafkaError

        self.check_size(Record(topic, key, value or b"", headers or []))
        try:
            future = self._producer.send(
                topic, value=value, key=key, headers=headers or [], partition=partition
            )
        except KafkaError as exc:
            # send() raises synchronously when metadata or buffer space cannot be had in time.
            self.report.on_error(exc, events)
            raise KafkaUnavailable(
                f"cannot send to {topic} (does the topic exist? see `shinrai topics`): {exc}"
            ) from exc
        report = self.report
        report.on_sent(events)
        future.add_callback(lambda metadata: report.on_ack(metadata, events))
        future.add_errback(lambda exc: report.on_error(exc, events))

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has, from the broker's metadata (what kafka-python's
        partitioner divides by); raises KafkaUnavailable when the topic cannot be found."""
        from kafka.errors import KafkaError

        try:
            partitions = self._producer.partitions_for(topic)
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"cannot send to {topic} (does the topic exist? see `shinrai topics`): {exc}"
            ) from exc
        if not partitions:
            raise KafkaUnavailable(f"cannot send to {topic}: the broker reports no partitions")
        return len(partitions)

    def event_writer(self, topic: str) -> EventWriter:
        """An ``EventWriter`` to ``topic`` in batches of ``SHINRAI_KAFKA__BATCH_EVENTS``."""
        if self.batch_events <= 1:
            return EventWriter(self, topic)
        return EventWriter(
            self,
            topic,
            batch_events=self.batch_events,
            partitions=self.partition_count(topic),
            limit=self.max_record_bytes(topic),
        )

    def send_and_wait(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> tuple[int, int]:
        """Send one record and block until acknowledged; return (partition, offset).

        For the HTTP gateway, which must not answer 2xx before the record is durable.
        """
        return self.send_many_and_wait([Record(topic, key, value, headers or [])])[0]

    def send_many_and_wait(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Send records together (one batch on the wire) and block until all are acknowledged.

        Records marked ``batchable`` (interaction events) go in ``event_batch`` records of their
        partition, in the order given, when ``SHINRAI_KAFKA__BATCH_EVENTS`` > 1 and more than
        one falls on a partition. Returns (partition, offset) of every record sent (a batch
        once). Raises KafkaUnavailable if any record failed (a batch: all its events); the
        others may have been written (the caller's retry then repeats them, which the engine
        absorbs by event id). Raises ``RecordTooLarge`` before sending anything when one record
        exceeds its topic's limit.
        """
        from kafka.errors import KafkaError

        for record in records:  # all checked before any is sent: the batch is all or nothing
            self.check_size(record)
        sending = self._batched(records)
        futures: list[Any] = []
        self.report.on_sent(sum(r.events for r in sending))
        try:
            for r in sending:
                futures.append(
                    self._producer.send(
                        r.topic,
                        value=r.value,
                        key=r.key,
                        headers=list(r.headers),
                        partition=r.partition,
                    )
                )
            self._producer.flush(timeout=self._timeout_s * 3)
            metadata = [f.get(timeout=self._timeout_s) for f in futures]
        except KafkaError as exc:
            # Every record not acknowledged (or never sent) counts as failed, a batch as all
            # its events: the report's sent = acked + failed stays true.
            acked = [
                (f.value, r.events) for r, f in zip(sending, futures, strict=False) if f.succeeded()
            ]
            for item, events in acked:
                self.report.on_ack(item, events)
            failed = sum(r.events for r in sending) - sum(events for _item, events in acked)
            self.report.on_error(exc, failed)
            raise KafkaUnavailable(f"record(s) not acknowledged: {exc}") from exc
        for item, r in zip(metadata, sending, strict=True):
            self.report.on_ack(item, r.events)
        return [(int(m.partition), int(m.offset)) for m in metadata]

    def _batched(self, records: Sequence[Record]) -> list[Record]:
        """``records`` with the batchable ones grouped per partition into batch records."""
        if self.batch_events <= 1 or sum(r.batchable for r in records) < 2:
            return list(records)
        sending: list[Record] = []
        batchers: dict[str, EventBatcher] = {}
        for record in records:
            if not record.batchable or record.partition is not None:
                sending.append(record)
                continue
            batcher = batchers.get(record.topic)
            if batcher is None:
                batcher = batchers[record.topic] = EventBatcher(
                    record.topic,
                    partitions=self.partition_count(record.topic),
                    max_events=self.batch_events,
                    limit=self.max_record_bytes(record.topic),
                    emit=sending.append,
                )
            batcher.add(record.key or UNKNOWN_CLIENT_KEY, record.value, record.label)
        for batcher in batchers.values():
            batcher.flush()
        return sending

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
            # Counted in events: a batch record's events fail (or are unconfirmed) with it.
            raise KafkaUnavailable(
                f"{report.failed} event(s) failed and {pending} unconfirmed "
                f"of {report.sent} sent: {sample}"
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
