"""Whether the worker beside the dashboard is reading a backlog, and how far behind it is.

Two honest sources, used together:

- the worker's own metrics, when the dashboard runs in the worker's process (the demo, the
  worker's embedded dashboard): ``shinrai_partitions_catching_up`` (partitions whose watermark is
  the event time of a backlog, ``streams/watermark.py``) and the sum of ``shinrai_consumer_lag``
  (records between the sink runners' positions and the log end: read but not yet stored);
- the stored data (``dashboard_freshness``): the newest interaction stored, in event time. While
  a backlog is read it trails the clock by how far behind the worker is.

A dashboard that runs in another process (``shinrai dashboard``) has no metrics: it never claims
to be catching up, and shows how recent the newest stored interaction is, so a person can judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry


@dataclass(frozen=True)
class WorkerProgress:
    """The worker's reading state at one instant."""

    partitions_catching_up: int
    records_behind: int

    @property
    def catching_up(self) -> bool:
        """True while any partition reads a backlog."""
        return self.partitions_catching_up > 0


ProgressSource = Callable[[], WorkerProgress | None]


def from_registry(registry: CollectorRegistry) -> ProgressSource:
    """A source reading a worker's Prometheus registry (``WorkerMetrics.registry``)."""

    def read() -> WorkerProgress | None:
        catching = registry.get_sample_value("shinrai_partitions_catching_up")
        lag = 0.0
        for family in registry.collect():
            if family.name == "shinrai_consumer_lag":
                lag += sum(sample.value for sample in family.samples)
        if catching is None:
            return None  # no processor in this process (a sinks-only worker)
        return WorkerProgress(int(catching), int(lag))

    return read
