"""Run every configured connector until stopped: IMAP followers in threads, calendars as tasks.

``run_connectors`` is what ``shinrai connect`` runs. Each IMAP folder gets a ``FolderFollower``
(``imap.py``) in its own thread; each calendar runs the CalDAV connector's coroutine when the
module ``producers.connectors.caldav`` provides it. The calendar hook (the contract between this
runner and the CalDAV connector)::

    async def follow_calendar(
        source: CalendarSource,
        publish: Callable[[Sequence[ParseResult]], None],
        checkpoints: Checkpoints,
        stop: asyncio.Event,
        *,
        resolver: Resolver,
        metrics: CalendarMetrics,
    ) -> None

- ``resolver`` tells clients and staff among the attendees (the directory of ``shinrai
  connect``); ``metrics`` are the CalDAV connector's own, in the runner's registry.
- ``publish`` sends events and rejects through the same producer edge as ``shinrai produce``
  (events to the interactions topic keyed by client id, in ``event_batch`` records of one
  partition when there are several, rejects to the dead-letter topic with their bytes and
  reason) and returns only once the broker acknowledged every record. It blocks
  (a flush): call it with ``await asyncio.to_thread(publish, results)``. It raises
  ``KafkaUnavailable`` when the broker did not confirm: commit no checkpoint then.
- ``checkpoints`` is the shared durable store (``get``/``put``/``commit``/``published``): keep
  the sync token or ctag there, committed after ``publish`` returned.
- return when ``stop`` is set. Raising ``ShinraiError`` (a configuration mistake) stops
  ``shinrai connect`` with that one error line; any other exception is logged, counted in
  ``shinrai_connector_errors_total`` and the coroutine is started again after a backoff.

Metrics (``ConnectorMetrics``, labelled ``source`` = the configured name): messages read,
events published, rejects, errors, lag (messages on the server not yet acknowledged) and the
last completed sync time. Progress of a first sync of a large mailbox is reported through the
``progress`` callback (``shinrai connect`` draws it as a bar on a terminal).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from producers.connectors.checkpoints import Checkpoints
from producers.connectors.config import CalendarSource, ConnectConfig
from producers.connectors.imap import FolderFollower, FolderStats, Progress, check_reachable
from producers.kafka_producer import Record, event_key
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.resolution import Resolver
from schemas.base import encode
from schemas.batches import BatchInvalid, split
from schemas.deadletter import DeadLetter
from shinrai.errors import KafkaUnavailable, ShinraiError
from shinrai.kafka_options import kafka_python_options
from shinrai.logging import get_logger
from shinrai.settings import KafkaSettings

_log = get_logger("producers.connectors.runner")

CalendarHook = Callable[..., Awaitable[None]]
"""``follow_calendar``: see the module docstring for its arguments."""


class BatchSink(Protocol):
    """A sink that can send a batch and wait for it (``KafkaRecordProducer``)."""

    def send_many_and_wait(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Send and block until every record is acknowledged."""
        ...


class Publisher:
    """The producer edge of the connectors: events to ``topic``, rejects to ``dlq_topic``.

    With ``kafka`` settings it is also the IMAP followers' ledger (``imap.Ledger``): the topic's
    end offsets before a batch, and which event ids arrived since (crash recovery).
    """

    def __init__(
        self,
        sink: BatchSink,
        *,
        topic: str,
        dlq_topic: str,
        kafka: KafkaSettings | None = None,
    ) -> None:
        self._sink = sink
        self.topic = topic
        self.dlq_topic = dlq_topic
        self._kafka = kafka
        self._offsets_consumer: Any = None
        self._lock = threading.Lock()  # kafka-python consumers are not thread-safe

    @property
    def ledger(self) -> Publisher | None:
        """This publisher as a ledger when it can read the topic, else None."""
        return self if self._kafka is not None else None

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        assert self._kafka is not None
        return KafkaConsumer(
            **kafka_python_options(self._kafka), group_id=None, enable_auto_commit=False
        )

    def end_offsets(self) -> dict[int, int]:
        """The end offset of every partition of ``topic`` now."""
        from kafka import TopicPartition

        with self._lock:
            if self._offsets_consumer is None:
                self._offsets_consumer = self._consumer()
            consumer = self._offsets_consumer
            partitions = consumer.partitions_for_topic(self.topic) or set()
            ends = consumer.end_offsets([TopicPartition(self.topic, p) for p in partitions])
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    def sent_since(self, since: dict[int, int], event_ids: set[str]) -> set[str]:
        """Which of ``event_ids`` are on ``topic`` at or after the ``since`` offsets."""
        import orjson
        from kafka import TopicPartition

        consumer = self._consumer()
        found: set[str] = set()
        try:
            tps = [TopicPartition(self.topic, p) for p in since]
            consumer.assign(tps)
            ends = consumer.end_offsets(tps)
            remaining = set()
            for tp in tps:
                if ends[tp] > since[tp.partition]:
                    consumer.seek(tp, since[tp.partition])
                    remaining.add(tp)
            deadline = time.monotonic() + 120
            while remaining and time.monotonic() < deadline:
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for record in records:
                        for item in _items(record.value):
                            event_id = orjson.loads(item).get("event_id")
                            if event_id in event_ids:
                                found.add(event_id)
                        if record.offset + 1 >= ends[tp]:
                            remaining.discard(tp)
            if remaining:
                raise KafkaUnavailable(f"{self.topic}: could not read back the interrupted batch")
        finally:
            consumer.close()
        return found

    def close(self) -> None:
        """Close the offsets reader (the sink is the caller's)."""
        with self._lock:
            if self._offsets_consumer is not None:
                self._offsets_consumer.close()
                self._offsets_consumer = None

    def for_source(self, source: str) -> Callable[[Sequence[ParseResult]], None]:
        """``publish(results)`` for one source (its name goes into the dead letters' source)."""

        def publish(results: Sequence[ParseResult]) -> None:
            records: list[Record] = []
            for result in results:
                if isinstance(result, Parsed):
                    event = result.event
                    # Batchable: a sync's events of one partition go out as event_batch records.
                    records.append(
                        Record(
                            self.topic,
                            event_key(event),
                            encode(event),
                            label=f"event {event.event_id}",
                            batchable=True,
                        )
                    )
                else:
                    letter = DeadLetter(
                        raw=result.raw,
                        reason=result.reason,
                        source=f"connect:{source}",
                        origin=result.origin,
                    )
                    key, value, headers = letter.record()
                    records.append(Record(self.dlq_topic, key, value, headers))
            if records:
                self._sink.send_many_and_wait(records)

        return publish


def _items(value: bytes | None) -> list[bytes]:
    """The events a record of the topic carries: a batch record's items, else the record."""
    if not value:
        return []
    try:
        batch = split(value)
    except BatchInvalid:
        return []
    return batch[1] if batch is not None else [value]


@dataclass
class SourceStats:
    """Counters of one calendar source (the IMAP ones are per folder, in ``FolderStats``)."""

    events: int = 0
    rejected: int = 0
    errors: int = 0
    last_sync: float = 0.0


@dataclass(eq=False)  # hashable by identity: the registry keys its collectors
class ConnectorMetrics(Collector):
    """``shinrai_connector_*{source}`` read at scrape time from the followers' counters."""

    folders: dict[str, list[FolderStats]] = field(default_factory=dict)
    calendars: dict[str, SourceStats] = field(default_factory=dict)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """One sample per source and metric."""
        messages = CounterMetricFamily(
            "shinrai_connector_messages",
            "Messages read from a mailbox and acknowledged by the broker",
            labels=["source"],
        )
        events = CounterMetricFamily(
            "shinrai_connector_events", "Events a connector published", labels=["source"]
        )
        rejected = CounterMetricFamily(
            "shinrai_connector_rejected", "Records sent to the dead-letter topic", labels=["source"]
        )
        skipped = CounterMetricFamily(
            "shinrai_connector_skipped",
            "Events not sent again: already published (resync, same message in two folders)",
            labels=["source"],
        )
        errors = CounterMetricFamily(
            "shinrai_connector_errors", "Errors retried with backoff", labels=["source"]
        )
        lag = GaugeMetricFamily(
            "shinrai_connector_lag_messages",
            "Messages on the server past the checkpoint, not yet acknowledged",
            labels=["source"],
        )
        last = GaugeMetricFamily(
            "shinrai_connector_last_sync_timestamp_seconds",
            "Unix time of the last completed sync (oldest of the source's folders)",
            labels=["source"],
        )
        for name, stats in self.folders.items():
            messages.add_metric([name], sum(s.messages for s in stats))
            events.add_metric([name], sum(s.events for s in stats))
            rejected.add_metric([name], sum(s.rejected for s in stats))
            skipped.add_metric([name], sum(s.skipped for s in stats))
            errors.add_metric([name], sum(s.errors for s in stats))
            lag.add_metric([name], sum(s.lag for s in stats))
            last.add_metric([name], min(s.last_sync for s in stats))
        for name, cal in self.calendars.items():
            events.add_metric([name], cal.events)
            rejected.add_metric([name], cal.rejected)
            errors.add_metric([name], cal.errors)
            last.add_metric([name], cal.last_sync)
        yield from (messages, events, rejected, skipped, errors, lag, last)

    def value(self, name: str, source: str) -> float | None:
        """One sample's current value (tests, the final summary)."""
        return self.registry.get_sample_value(name, {"source": source})


def calendar_hook() -> CalendarHook | None:
    """``follow_calendar`` of the CalDAV connector, or None when that module is not there."""
    try:
        module = importlib.import_module("producers.connectors.caldav")
    except ModuleNotFoundError:
        return None
    hook = getattr(module, "follow_calendar", None)
    return hook if callable(hook) else None


def check_sources(config: ConnectConfig) -> None:
    """Fail fast, before any connection: a host that does not resolve, a secret that cannot be
    read (a variable not set, a token command failing) is one ``ShinraiError``."""
    for mailbox in config.mailboxes:
        check_reachable(mailbox)
        mailbox.secret()


async def run_connectors(
    config: ConnectConfig,
    *,
    resolver: Resolver,
    publisher: Publisher,
    checkpoints: Checkpoints,
    stop: asyncio.Event,
    metrics: ConnectorMetrics | None = None,
    progress: Progress | None = None,
    batch_size: int = 200,
    backoff_max_s: float = 60.0,
) -> ConnectorMetrics:
    """Run every mailbox folder and calendar of ``config`` until ``stop`` is set.

    Raises the first ``ShinraiError`` a source fails with before it ever synced (a refused login,
    an untrusted certificate, a missing folder), after stopping every other source.
    """
    metrics = metrics or ConnectorMetrics()
    # imapclient logs the protocol at DEBUG: fetched messages (bodies) would reach the log.
    logging.getLogger("imapclient").setLevel(logging.INFO)
    halt = threading.Event()  # the followers' threads watch this one
    followers: list[FolderFollower] = []
    check_sources(config)
    for mailbox in config.mailboxes:
        if not resolver.is_staff_email(mailbox.owner):
            # Its Sent mail would then not count as our replies: say so once, at start.
            _log.warning(
                "the mailbox owner is not staff in the directory: its sent mail will not "
                "fulfil obligations (add the address or its domain to the directory's staff)",
                source=mailbox.name,
                owner=mailbox.owner,
            )
        publish = publisher.for_source(f"imap:{mailbox.name}")
        for folder in mailbox.folders:
            followers.append(
                FolderFollower(
                    mailbox,
                    folder,
                    resolver=resolver,
                    publish=publish,
                    checkpoints=checkpoints,
                    stop=halt,
                    ledger=publisher.ledger,
                    batch_size=batch_size,
                    progress=progress,
                    backoff_max_s=backoff_max_s,
                )
            )
        metrics.folders[mailbox.name] = [f.stats for f in followers if f.source is mailbox]
    hook = calendar_hook() if config.calendars else None
    if config.calendars and hook is None:
        _log.warning("calendars configured but the CalDAV connector is not available: skipped")

    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(asyncio.to_thread(f.run), name=f"imap:{f.label}") for f in followers
    ]
    if hook is not None:
        # The CalDAV connector's own metrics, in this runner's registry (when it has any).
        metrics_type = getattr(
            sys.modules.get("producers.connectors.caldav"), "CalendarMetrics", None
        )
        calendar_metrics = metrics_type(metrics.registry) if metrics_type is not None else None
        for calendar in config.calendars:
            stats = metrics.calendars.setdefault(calendar.name, SourceStats())
            tasks.append(
                asyncio.create_task(
                    _calendar_loop(
                        hook,
                        calendar,
                        publisher.for_source(f"caldav:{calendar.name}"),
                        checkpoints,
                        stop,
                        stats,
                        backoff_max_s,
                        resolver=resolver,
                        metrics=calendar_metrics,
                    ),
                    name=f"caldav:{calendar.name}",
                )
            )
    stopper = asyncio.create_task(stop.wait())
    try:
        pending: set[asyncio.Task[Any]] = {*tasks, stopper}
        while not stop.is_set() and len(pending) > 1:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    finally:
        halt.set()
        stop.set()
        stopper.cancel()
        # Threads see `halt` within a second (IDLE slices) and return after their current batch.
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, ShinraiError | asyncio.CancelledError
            ):
                _log.error("connector stopped with an error", error=repr(result))
    return metrics


async def _calendar_loop(
    hook: CalendarHook,
    source: CalendarSource,
    publish: Callable[[Sequence[ParseResult]], None],
    checkpoints: Checkpoints,
    stop: asyncio.Event,
    stats: SourceStats,
    backoff_max_s: float,
    *,
    resolver: Resolver,
    metrics: object,
) -> None:
    """Run the CalDAV hook; restart it after a backoff when it fails with a non-config error."""

    def counted(results: Sequence[ParseResult]) -> None:
        publish(results)
        stats.events += sum(1 for r in results if isinstance(r, Parsed))
        stats.rejected += sum(1 for r in results if isinstance(r, Rejected))
        stats.last_sync = time.time()

    delay = 0.5
    while not stop.is_set():
        try:
            await hook(source, counted, checkpoints, stop, resolver=resolver, metrics=metrics)
            return
        except ShinraiError:
            raise
        except Exception as exc:
            stats.errors += 1
            _log.warning("caldav error, retrying", source=source.name, error=repr(exc)[:200])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, backoff_max_s)
