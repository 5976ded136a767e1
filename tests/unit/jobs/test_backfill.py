"""The backfill service without ClickHouse: what it hands the sink, in which batches, and the
progress it reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producers.demo import generate, write
from schemas.directory import Client
from schemas.events import InteractionEvent
from schemas.facts import Fact
from shinrai.jobs.backfill import (
    DIRECTORY_VERSION,
    PARSING,
    WRITING,
    BackfillSummary,
    Progress,
    backfill,
)

pytestmark = pytest.mark.unit

BATCH = 500


class FakeSink:
    """Records what a ClickHouseSink would be asked to write, batch by batch."""

    def __init__(self) -> None:
        self.clients: list[tuple[list[Client], int]] = []
        self.pending: list[Any] = []
        self.batches: list[list[Any]] = []

    @property
    def buffered(self) -> int:
        return len(self.pending)

    def add(self, record: Any) -> bool:
        self.pending.append(record)
        return True

    def upsert_clients(self, clients: list[Client], *, version: int) -> None:
        self.clients.append((clients, version))

    def flush(self) -> int:
        batch, self.pending = self.pending, []
        if batch:
            self.batches.append(batch)
        return len(batch)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    data = generate(weeks=3)
    paths = write(data, tmp_path_factory.mktemp("demo"))
    return paths["events"], data


def _run(events: Path, data: Any, paths: list[Path]) -> tuple[Any, FakeSink, list[Progress]]:
    sink = FakeSink()
    reports: list[Progress] = []

    def keep(report: Progress) -> None:
        # The summary object is the live one: copy what the test looks at.
        s = report.summary
        copy = BackfillSummary(read=s.read, rows_written=s.rows_written)
        reports.append(Progress(report.phase, copy, report.done))

    summary = backfill(
        paths,
        "jsonl",
        sink,  # type: ignore[arg-type]  # duck-typed stand-in for ClickHouseSink
        directory=data.directory,
        batch_rows=BATCH,
        on_progress=keep,
    )
    return summary, sink, reports


def test_every_event_and_fact_reaches_the_sink_in_fixed_batches(demo: tuple[Path, Any]) -> None:
    events, data = demo
    lines = [line for line in events.read_bytes().splitlines() if line.strip()]
    summary, sink, _ = _run(events, data, [events])
    written = [record for batch in sink.batches for record in batch]
    interactions = [r for r in written if isinstance(r, InteractionEvent)]
    facts = [r for r in written if isinstance(r, Fact)]
    assert summary.read == len(lines)
    assert summary.rejected == 0
    assert summary.events == len(lines)
    assert len(interactions) == sum(1 for ev in data.events if isinstance(ev, InteractionEvent))
    assert len(facts) == sum(summary.facts.values()) > 0
    assert len(written) == summary.rows_written
    assert all(len(batch) == BATCH for batch in sink.batches[:-1])
    # Interactions first, in event-time order, then the facts.
    assert written[: len(interactions)] == sorted(interactions, key=lambda e: e.occurred_at)
    assert sink.clients == [(list(data.directory.clients), DIRECTORY_VERSION)]
    with_events = {ev.client_id for ev in data.events if ev.client_id is not None}
    directory_ids = {c.client_id for c in data.directory.clients}
    assert summary.policies_added == len(with_events & directory_ids) > 0


def test_the_same_input_makes_the_same_batches(demo: tuple[Path, Any]) -> None:
    events, data = demo
    _, first, _ = _run(events, data, [events])
    _, again, _ = _run(events, data, [events])
    assert again.batches == first.batches  # the ClickHouse dedup tokens rest on this


def test_an_event_read_twice_is_a_duplicate(demo: tuple[Path, Any]) -> None:
    events, data = demo
    once, sink_once, _ = _run(events, data, [events])
    twice, sink_twice, _ = _run(events, data, [events, events])
    assert twice.read == 2 * once.read
    assert twice.duplicates == once.events
    assert twice.events == once.events
    assert sink_twice.batches == sink_once.batches


def test_progress_is_reported_through_the_callback(demo: tuple[Path, Any]) -> None:
    events, data = demo
    summary, sink, reports = _run(events, data, [events])
    phases = [r.phase for r in reports]
    assert phases == sorted(phases, key=[PARSING, WRITING].index)  # parsing, then writing
    parsing = [r for r in reports if r.phase == PARSING]
    writing = [r for r in reports if r.phase == WRITING]
    assert [r.done for r in parsing] == [False] * (len(parsing) - 1) + [True]
    assert all(r.summary.read % 128 == 0 for r in parsing[:-1])
    assert len(parsing) - 1 == summary.read // 128
    assert parsing[-1].summary.read == summary.read
    # One report per flush, and a last one saying the writing is done.
    assert [r.summary.rows_written for r in writing[:-2]] == [
        BATCH * (i + 1) for i in range(len(sink.batches) - 1)
    ]
    assert writing[-1].done
    assert writing[-1].summary.rows_written == summary.rows_written
