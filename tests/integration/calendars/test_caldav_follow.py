"""The calendar connector against a real Radicale server, publishing into the real broker.

Each scenario runs in both change-detection modes the connector has: RFC 6578 sync-token (what
Radicale offers) and the ctag/etag comparison used for servers without it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from caldav.calendarobjectresource import CalendarObjectResource
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from prometheus_client import CollectorRegistry

from producers.connectors.caldav import CalendarMetrics, follow_calendar
from producers.connectors.config import CalendarSource
from producers.kafka_producer import KafkaRecordProducer, Record, event_key
from producers.parsers import ics
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.resolution import Resolver
from schemas.base import decode, encode
from schemas.events import Flag, InteractionEvent
from shinrai.errors import ConfigError
from shinrai.settings import KafkaSettings
from tests.builders import client, directory
from tests.integration.calendars.conftest import RadicaleServer
from tests.unit.meetings.test_caldav_tracker import vcalendar, vevent
from tests.unit.producers.conftest import quiet_kafka_import

quiet_kafka_import()

from kafka import KafkaConsumer  # noqa: E402  (after the warning-free import above)

pytestmark = pytest.mark.integration

PASSWORD_ENV = "SHINRAI_TEST_CALDAV_PASSWORD"
MODES = [pytest.param(True, id="sync-token"), pytest.param(False, id="etag")]


def _resolver() -> Resolver:
    acme = client("acme", name="Acme", owner="ann@ours.example", domains=("acme.example",))
    return Resolver(directory(acme, staff_domains=("ours.example",)))


class MemoryCheckpoints:
    """The runner's checkpoint store, reduced to a dict (the real one is the runner's)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    def get(self, source: str, key: str) -> str | None:
        return self.values.get((source, key))

    def put(self, source: str, key: str, value: str) -> None:
        self.values[(source, key)] = value


@dataclass
class TopicPublisher:
    """Publishes parsed events to a topic and waits for the broker's acknowledgement."""

    producer: KafkaRecordProducer
    topic: str
    rejected: list[Rejected] = field(default_factory=list)

    def __call__(self, results: Sequence[ParseResult]) -> None:
        records = []
        for result in results:
            if isinstance(result, Parsed):
                records.append(Record(self.topic, event_key(result.event), encode(result.event)))
            else:
                self.rejected.append(result)
        self.producer.send_many_and_wait(records)


class TopicReader:
    """Reads a topic from the start, remembering what it already returned."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )

    def read(
        self, count: int, timeout_s: float = 20.0, settle_s: float = 1.0
    ) -> list[InteractionEvent]:
        """The next ``count`` events (and any extra ones arriving within ``settle_s``)."""
        events: list[InteractionEvent] = []
        deadline = time.monotonic() + timeout_s
        settle: float | None = None
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            for batch in self.consumer.poll(timeout_ms=200).values():
                for message in batch:
                    events.append(decode(InteractionEvent, message.value))
            if settle is None and len(events) >= count:
                settle = time.monotonic() + settle_s
        return events

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Harness:
    """A fresh calendar on the server, and the topic its connector publishes to."""

    calendar: Calendar
    source: CalendarSource
    topic: str
    reader: TopicReader
    publisher: TopicPublisher
    checkpoints: MemoryCheckpoints
    registry: CollectorRegistry
    metrics: CalendarMetrics


@pytest.fixture
def harness(
    radicale: RadicaleServer,
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    """A new calendar of the Radicale user, a topic, a producer and a reader."""
    monkeypatch.setenv(PASSWORD_ENV, radicale.password)
    dav = DAVClient(
        url=f"{radicale.url}/{radicale.user}/",
        username=radicale.user,
        password=radicale.password,
        enable_rfc6764=False,
        require_tls=False,
    )
    cal_id = f"cal-{uuid.uuid4().hex[:8]}"
    principal = dav.principal()  # type: ignore[no-untyped-call]
    calendar = principal.make_calendar(name=cal_id, cal_id=cal_id)
    source = CalendarSource(
        name=cal_id,
        url=str(calendar.url),
        user=radicale.user,
        password_env=PASSWORD_ENV,
        owner="ann@ours.example",
        poll_interval_s=0.2,
    )
    topic = topic_factory("test-caldav", partitions=1)
    producer = KafkaRecordProducer(kafka_settings, client_id="test-caldav")
    registry = CollectorRegistry()
    reader = TopicReader(kafka_settings.bootstrap, topic)
    try:
        yield Harness(
            calendar,
            source,
            topic,
            reader,
            TopicPublisher(producer, topic),
            MemoryCheckpoints(),
            registry,
            CalendarMetrics(registry),
        )
    finally:
        reader.close()
        producer.close()
        dav.close()


@asynccontextmanager
async def following(
    h: Harness, *, use_sync_token: bool, history: timedelta = timedelta(days=7)
) -> AsyncIterator[asyncio.Task[None]]:
    """Run the connector while the block runs; stop it cleanly after."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        follow_calendar(
            h.source,
            h.publisher,
            h.checkpoints,
            stop,
            resolver=_resolver(),
            metrics=h.metrics,
            use_sync_token=use_sync_token,
            history=history,
        )
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def _save(h: Harness, data: bytes) -> None:
    await asyncio.to_thread(h.calendar.save_event, data.decode())


async def _delete(h: Harness, uid: str) -> None:
    def delete() -> None:
        found = h.calendar.get_event_by_uid(uid)
        assert isinstance(found, CalendarObjectResource)
        found.delete()

    await asyncio.to_thread(delete)


async def _read(h: Harness, count: int, settle_s: float = 1.0) -> list[InteractionEvent]:
    return await asyncio.to_thread(h.reader.read, count, 20.0, settle_s)


@pytest.mark.parametrize("use_sync_token", MODES)
async def test_meeting_created_moved_and_cancelled(harness: Harness, use_sync_token: bool) -> None:
    h = harness
    start = _now() - timedelta(hours=3)
    await _save(h, vcalendar(vevent("review-1", start)))
    internal = vevent("standup-1", start, attendees=("cy@ours.example",))
    await _save(h, vcalendar(internal))
    future = _now() + timedelta(days=1)
    await _save(h, vcalendar(vevent("later-1", future)))
    async with following(h, use_sync_token=use_sync_token):
        [created] = await _read(h, 1)
        assert created.event_id == f"ics:review-1@{start.isoformat()}"
        assert {Flag.HELD, Flag.CLIENT_ATTENDEE} <= created.flags
        assert created.client_id == "acme"
        assert created.occurred_at == start

        moved_to = start + timedelta(hours=1)
        await _save(h, vcalendar(vevent("review-1", moved_to)))
        moved = {Flag.CANCELLED in e.flags: e for e in await _read(h, 2)}
        assert moved[True].event_id == f"ics-cancel:{created.event_id}"
        assert moved[True].occurred_at == start
        assert moved[False].event_id == f"ics:review-1@{moved_to.isoformat()}"
        assert moved[False].occurred_at == moved_to

        await _save(h, vcalendar(vevent("review-1", moved_to, extra="STATUS:CANCELLED")))
        [cancelled] = await _read(h, 1)
        assert cancelled.event_id == f"ics-cancel:{moved[False].event_id}"
        assert Flag.CANCELLED in cancelled.flags
        assert Flag.HELD not in cancelled.flags

        deleted_start = _now() - timedelta(hours=2)
        await _save(h, vcalendar(vevent("review-2", deleted_start)))
        [second] = await _read(h, 1)
        await _delete(h, "review-2")
        [gone] = await _read(h, 1)
        assert gone.event_id == f"ics-cancel:{second.event_id}"
    assert h.publisher.rejected == []
    mode = "sync-token" if use_sync_token else "etag"
    labels = {"calendar": h.source.name}
    assert (
        h.registry.get_sample_value("shinrai_calendar_events_total", labels | {"kind": "held"})
        == 3.0
    )
    assert (
        h.registry.get_sample_value("shinrai_calendar_events_total", labels | {"kind": "cancelled"})
        == 3.0
    )
    assert (
        h.registry.get_sample_value("shinrai_calendar_syncs_total", labels | {"mode": mode}) or 0
    ) >= 1


@pytest.mark.parametrize("use_sync_token", MODES)
async def test_recurrence_is_expanded_like_the_ics_importer(
    harness: Harness, use_sync_token: bool
) -> None:
    h = harness
    first = _now() - timedelta(weeks=5, hours=2)
    exdate = first + timedelta(weeks=2)
    moved_slot = first + timedelta(weeks=3)
    master = vevent(
        "weekly-1",
        first,
        extra=f"RRULE:FREQ=WEEKLY;COUNT=8\r\nEXDATE:{exdate.strftime('%Y%m%dT%H%M%SZ')}",
    )
    override = vevent(
        "weekly-1",
        moved_slot + timedelta(hours=1),
        extra=f"RECURRENCE-ID:{moved_slot.strftime('%Y%m%dT%H%M%SZ')}",
    )
    data = vcalendar(master, override)
    async with following(h, use_sync_token=use_sync_token, history=timedelta(days=30)):
        await _save(h, data)
        events = await _read(h, 4, settle_s=1.5)
    # The independent check: the importer on the same VCALENDAR, same window, same "now".
    now = _now()
    expected = {
        r.event.event_id: r.event.occurred_at
        for r in ics.parse_bytes(
            data,
            _resolver(),
            name="weekly.ics",
            window_start=now - timedelta(days=30),
            window_end=now,
            as_of=now,
        )
        if isinstance(r, Parsed) and Flag.HELD in r.event.flags
    }
    assert {e.event_id: e.occurred_at for e in events} == expected
    # By hand: the slots 4, 3, 2, 1 and 0 weeks (+2 h) ago are inside the 30-day window and have
    # ended; the EXDATE removes one: four meetings, the overridden one an hour late.
    assert len(expected) == 4
    assert expected[f"ics:weekly-1@{moved_slot.isoformat()}"] == moved_slot + timedelta(hours=1)


async def test_a_restart_resumes_from_the_checkpoint(harness: Harness) -> None:
    h = harness
    start = _now() - timedelta(hours=5)
    await _save(h, vcalendar(vevent("kept-1", start)))
    await _save(h, vcalendar(vevent("dropped-1", start + timedelta(minutes=90))))
    async with following(h, use_sync_token=True):
        assert len(await _read(h, 2)) == 2
    await _delete(h, "dropped-1")  # deleted while the connector is down
    async with following(h, use_sync_token=True):
        after = await _read(h, 1, settle_s=2.0)
    assert [e.event_id for e in after] == [
        f"ics-cancel:ics:dropped-1@{(start + timedelta(minutes=90)).isoformat()}"
    ]


async def test_a_wrong_password_is_one_clear_error(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with pytest.raises(ConfigError) as caught:
        async with following(harness, use_sync_token=True) as task:
            await asyncio.wait_for(task, timeout=20)
    message = str(caught.value)
    assert "\n" not in message
    assert PASSWORD_ENV in message
    assert harness.source.name in message
    assert "not-the-password" not in message


async def test_the_server_restarted_under_the_connector(
    harness: Harness, radicale: RadicaleServer
) -> None:
    h = harness
    labels = {"calendar": h.source.name}
    start = _now() - timedelta(hours=2)
    async with following(h, use_sync_token=True):
        await _save(h, vcalendar(vevent("before-1", start)))
        assert len(await _read(h, 1)) == 1
        await asyncio.to_thread(radicale.stop)
        deadline = time.monotonic() + 15
        while not h.registry.get_sample_value("shinrai_calendar_errors_total", labels):
            assert time.monotonic() < deadline, "the connector never noticed the server was gone"
            await asyncio.sleep(0.1)
        await asyncio.to_thread(radicale.start)
        await _save(h, vcalendar(vevent("after-1", start + timedelta(minutes=30))))
        events = await _read(h, 1, settle_s=2.0)
    assert [e.event_id for e in events] == [
        f"ics:after-1@{(start + timedelta(minutes=30)).isoformat()}"
    ]
