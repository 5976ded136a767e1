"""Prometheus metrics of one worker process: the processor's counters and the sink runners'.

Every metric lives in a registry owned by :class:`WorkerMetrics` (never the global default
registry), so several workers in one test process do not collide. The processor keeps plain
integer counters (``ProcessorStats``); a custom collector reads them at scrape time instead of
the processor having to know about Prometheus.

Exported names (all prefixed ``shinrai_``):

- ``events_in_total`` / ``events_invalid_total`` (= dead-lettered input) / ``facts_out_total`` /
  ``alerts_out_total`` / ``ticks_sent_total``: processor counters; ``rate(...[1m])`` is events/s.
- ``redelivered_total``: inputs read again after a crash that were applied before (skipped).
- ``batch_records_in_total``: batch records read (``schemas.batches``; each of their events
  counts in ``events_in_total``).
- ``dead_letters_total{cause}``: dead-lettered input by cause (invalid, mis_keyed, future,
  beyond_horizon, too_old, engine); nothing the processor refuses goes uncounted.
- ``open_obligations``, ``last_event_timestamp_seconds``, ``partitions_catching_up`` (partitions
  whose watermark is the event time of a backlog, not the wall clock), ``clients_held`` (clients
  fed history on a live partition, advanced in event time): processor gauges.
- ``consumer_lag{group,topic,partition}``: records behind the log end, per sink-runner partition.
- ``sink_rows_written_total{table}``, ``sink_flush_seconds`` (histogram),
  ``sink_flush_failures_total``, ``sink_records_skipped_total{reason}``.
- ``alert_deliveries_total{outcome}`` (final outcomes: delivered, failed, dead_letter) and
  ``alert_attempts_total{outcome}`` (every HTTP attempt, including retries).
- ``sink_up{sink}``: 1 while a sink's target takes writes, 0 while the runner waits for it
  (ClickHouse unreachable at start or failing flushes; the processor and alerts go on).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["MetricsServer", "StatsSource", "WorkerMetrics"]


class StatsSource(Protocol):
    """What the metrics read from the processor (``streams.processor.ProcessorStats``)."""

    events_in: int
    events_invalid: int
    facts_out: int
    alerts_out: int


_COUNTERS = (
    ("events_in", "events_in", "Input records read by the SLA processor"),
    ("events_invalid", "events_invalid", "Input records rejected to the dead-letter topic"),
    ("facts_out", "facts_out", "SLA facts emitted to the facts topic"),
    ("alerts_out", "alerts_out", "Alerts emitted to the alerts topic"),
    ("ticks_sent", "ticks_sent", "Timer ticks sent to the ticks topic"),
    ("redelivered", "redelivered", "Inputs read again after a crash, applied before: skipped"),
    ("batches_in", "batch_records_in", "Batch records read (their events count in events_in)"),
)
_GAUGES = (
    ("open_obligations", "Open obligations in this worker's partitions"),
    (
        "partitions_catching_up",
        "Interactions partitions read with a backlog behind them (watermark: event time)",
    ),
    ("clients_held", "Clients fed history on a live partition, held in event time"),
)


class _ProcessorCollector(Collector):
    """Reads the processor's stats object at scrape time."""

    def __init__(self) -> None:
        self.stats: Any = None

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        if stats is None:
            return
        for attr, name, doc in _COUNTERS:
            value = getattr(stats, attr, None)
            if value is not None:
                # CounterMetricFamily appends "_total" to the name itself.
                yield CounterMetricFamily(f"shinrai_{name}", doc, value=float(value))
        causes = getattr(stats, "dead_letters", None)
        if causes:
            family = CounterMetricFamily(
                "shinrai_dead_letters",
                "Input records dead-lettered by the SLA processor, by cause",
                labels=["cause"],
            )
            for cause, count in sorted(causes.items()):
                family.add_metric([cause], float(count))
            yield family
        for attr, doc in _GAUGES:
            value = getattr(stats, attr, None)
            if value is not None:
                yield GaugeMetricFamily(f"shinrai_{attr}", doc, value=float(value))
        last = getattr(stats, "last_event_at", None)
        if last is not None:
            stamp = last.timestamp() if hasattr(last, "timestamp") else float(last)
            yield GaugeMetricFamily(
                "shinrai_last_event_timestamp_seconds",
                "Wall-clock time the processor last read an input record",
                value=stamp,
            )


class WorkerMetrics:
    """The metrics of one worker; pass one instance to the runners and the worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._processor = _ProcessorCollector()
        self.registry.register(self._processor)
        r = self.registry
        self.consumer_lag = Gauge(
            "shinrai_consumer_lag",
            "Records between a sink runner's consumed position and the partition's log end",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.sink_rows = Counter(
            "shinrai_sink_rows_written",
            "Rows flushed to ClickHouse, per table",
            ["table"],
            registry=r,
        )
        self.flush_seconds = Histogram(
            "shinrai_sink_flush_seconds",
            "ClickHouse flush latency (successful flushes)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.flush_failures = Counter(
            "shinrai_sink_flush_failures",
            "ClickHouse flushes that failed (retried; offsets not committed)",
            registry=r,
        )
        self.sink_skipped = Counter(
            "shinrai_sink_records_skipped",
            "Records a sink runner did not write: already written, not an interaction, invalid",
            ["reason"],
            registry=r,
        )
        self.alert_deliveries = Counter(
            "shinrai_alert_deliveries",
            "Alert deliveries that reached a final outcome",
            ["outcome"],
            registry=r,
        )
        self.alert_attempts = Counter(
            "shinrai_alert_attempts",
            "Webhook attempts, per outcome (retry counts the failed attempts that are retried)",
            ["outcome"],
            registry=r,
        )
        self.sink_up = Gauge(
            "shinrai_sink_up",
            "1 while the sink's target takes writes, 0 while its runner retries (records wait "
            "in Kafka, uncommitted)",
            ["sink"],
            registry=r,
        )
        self.alerts_invalid = Counter(
            "shinrai_alerts_invalid",
            "Records on the alerts topic that are not a valid Alert (skipped)",
            registry=r,
        )

    def watch_processor(self, stats: StatsSource | None) -> None:
        """Export ``stats`` (the processor's counters) from now on."""
        self._processor.stats = stats

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (tests, logs); None if it does not exist."""
        return self.registry.get_sample_value(name, labels or {})


class MetricsServer:
    """``/metrics`` over HTTP on a background thread (prometheus_client's WSGI server)."""

    def __init__(self, metrics: WorkerMetrics, port: int, host: str = "0.0.0.0") -> None:
        self._metrics = metrics
        self._host = host
        self._requested = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._server is None:
            return self._requested
        return int(self._server.server_port)

    def start(self) -> None:
        """Bind and serve; raises ``PortInUse`` when the port is taken."""
        from prometheus_client import start_http_server

        from shinrai.ports import PortInUse

        try:
            self._server, self._thread = start_http_server(
                self._requested, addr=self._host, registry=self._metrics.registry
            )
        except OSError as exc:  # taken since the start-up check: still one line naming it
            raise PortInUse(
                f"port {self._requested} for /metrics cannot be bound ({exc.strerror or exc}): "
                "set SHINRAI_WORKER__METRICS_PORT to another port"
            ) from exc

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
