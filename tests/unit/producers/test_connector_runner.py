"""The runner's calendar hook: the contract ``producers.connectors.caldav.follow_calendar`` is
run under (a module put in place of the CalDAV connector; the runner is what is tested)."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers.connectors.checkpoints import Checkpoints
from producers.connectors.config import CalendarSource, ConnectConfig
from producers.connectors.runner import ConnectorMetrics, Publisher, run_connectors
from producers.kafka_producer import Record
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.resolution import Resolver
from schemas.base import encode
from schemas.directory import ClientDirectory
from shinrai.errors import ConfigError
from tests.builders import email

pytestmark = pytest.mark.unit


class RecordingSink:
    """Stands in for the Kafka producer: keeps every batch it was asked to send."""

    def __init__(self) -> None:
        self.batches: list[list[Record]] = []

    def send_many_and_wait(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        self.batches.append(list(records))
        return [(0, n) for n in range(len(records))]


Hook = Callable[..., object]


def _install(monkeypatch: pytest.MonkeyPatch, hook: Hook) -> None:
    module = types.ModuleType("producers.connectors.caldav")
    module.follow_calendar = hook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "producers.connectors.caldav", module)


def _config(tmp_path: Path) -> ConnectConfig:
    calendar = CalendarSource(
        name="hanako", url="http://127.0.0.1:1/cal/", user="hanako", password_env="X", owner="h@o.x"
    )
    return ConnectConfig(state_dir=tmp_path, calendars=(calendar,))


async def _run(
    tmp_path: Path, sink: RecordingSink, stop: asyncio.Event, metrics: ConnectorMetrics
) -> None:
    with Checkpoints(tmp_path) as checkpoints:
        await run_connectors(
            _config(tmp_path),
            resolver=Resolver(ClientDirectory()),
            publisher=Publisher(sink, topic="events", dlq_topic="dlq"),
            checkpoints=checkpoints,
            stop=stop,
            metrics=metrics,
            backoff_max_s=0.05,
        )


async def test_the_hook_gets_its_source_a_publisher_the_checkpoints_and_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    async def follow_calendar(
        source: CalendarSource,
        publish: Callable[[Sequence[ParseResult]], None],
        checkpoints: Checkpoints,
        stop: asyncio.Event,
        *,
        resolver: Resolver,
        metrics: object,
    ) -> None:
        assert resolver.is_staff_email("h@o.x") is False  # the runner's own directory
        seen.append(source.name)
        event = email("cal-1", datetime(2026, 12, 7, 9, tzinfo=UTC))
        await asyncio.to_thread(
            publish, [Parsed(event, "x"), Rejected("DTSTART: missing", "y", b"raw")]
        )
        checkpoints.put(source.name, "sync-token", "t1")
        stop.set()  # done: the runner returns
        await stop.wait()

    _install(monkeypatch, follow_calendar)
    sink, metrics = RecordingSink(), ConnectorMetrics()
    await asyncio.wait_for(_run(tmp_path, sink, asyncio.Event(), metrics), 10)
    assert seen == ["hanako"]
    [batch] = sink.batches
    assert [r.topic for r in batch] == ["events", "dlq"]
    assert batch[0].key == b"c1"  # keyed by client id, as every producer does
    assert dict(batch[1].headers)["x-shinrai-source"] == b"connect:caldav:hanako"
    assert metrics.value("shinrai_connector_events_total", "hanako") == 1
    assert metrics.value("shinrai_connector_rejected_total", "hanako") == 1
    with Checkpoints(tmp_path) as checkpoints:
        assert checkpoints.get("hanako", "sync-token") == "t1"


async def test_a_failing_hook_is_started_again_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    async def follow_calendar(
        source: object, publish: object, checkpoints: object, stop: asyncio.Event, **_: object
    ) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("server went away")
        stop.set()

    _install(monkeypatch, follow_calendar)
    metrics = ConnectorMetrics()
    await asyncio.wait_for(_run(tmp_path, RecordingSink(), asyncio.Event(), metrics), 10)
    assert len(calls) == 3
    assert metrics.value("shinrai_connector_errors_total", "hanako") == 2


async def test_a_configuration_error_of_the_hook_stops_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def follow_calendar(
        source: object, publish: object, checkpoints: object, stop: object, **_: object
    ) -> None:
        raise ConfigError("calendar 'hanako': 401 from the server: check password_env X")

    _install(monkeypatch, follow_calendar)
    with pytest.raises(ConfigError, match="401 from the server"):
        await asyncio.wait_for(
            _run(tmp_path, RecordingSink(), asyncio.Event(), ConnectorMetrics()), 10
        )


def test_a_publish_marks_its_events_batchable_and_its_rejects_not() -> None:
    sink = RecordingSink()
    publish = Publisher(sink, topic="events", dlq_topic="dlq").for_source("imap:support")
    acme = email("e1", "2026-12-01T09:00:00+00:00", client="acme")
    globex = email("e2", "2026-12-01T09:01:00+00:00", client="globex")
    publish([Parsed(acme, "f#1"), Rejected("Date: missing", "f#2", b"raw"), Parsed(globex, "f#3")])

    [records] = sink.batches
    # The producer groups batchable records per partition into event_batch records.
    assert [(r.topic, r.batchable) for r in records] == [
        ("events", True),
        ("dlq", False),
        ("events", True),
    ]
    assert [r.value for r in records if r.topic == "events"] == [encode(acme), encode(globex)]
    assert [r.label for r in records if r.topic == "events"] == ["event e1", "event e2"]
