"""The directory view: which clients a record affects, how pairs resolve, stable change ids."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

import pytest

from schemas.base import encode
from schemas.calendars import BusinessCalendar, TimeInterval
from schemas.directory import Client, ClientDirectory
from schemas.directory_records import directory_records
from schemas.policies import BusinessDuration, CalendarDuration, SlaPolicy
from streams.directory_feed import (
    BEGINNING,
    DirectoryView,
    change_event,
    pair_digest,
    record_time,
)

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOLD = SlaPolicy(policy_id="gold", first_response=CalendarDuration(minutes=30))
TOKYO = BusinessCalendar(calendar_id="tokyo", timezone="Asia/Tokyo")


def client(cid: str, policy: str = "gold", calendar: str = "tokyo") -> Client:
    return Client(
        client_id=cid, name=cid, owner="o@us.example", policy_id=policy, calendar_id=calendar
    )


def test_a_full_directory_resolves_every_client() -> None:
    directory = ClientDirectory(
        clients=(client("acme"), client("globex", "default", "default")),
        policies=(GOLD, SlaPolicy.default()),
        calendars=(TOKYO, BusinessCalendar(calendar_id="default", timezone="UTC")),
    )
    view = DirectoryView()
    affected: list[str] = []
    for key, value in directory_records(directory):
        affected += view.apply(key, value)
    assert sorted(affected) == ["acme", "globex"]
    assert view.resolve("acme") == (GOLD, TOKYO)
    assert view.resolve("globex") == (SlaPolicy.default(), directory.calendars[1])


def test_a_client_waits_for_its_policy_and_a_policy_change_affects_its_clients() -> None:
    view = DirectoryView()
    assert view.apply(b"acme", encode(client("acme"))) == ["acme"]
    assert view.apply(b"zeta", encode(client("zeta", calendar="default"))) == ["zeta"]
    assert view.resolve("acme") is None  # gold and tokyo not known yet
    assert view.apply(b"policy:gold", encode(GOLD)) == ["acme", "zeta"]
    assert view.resolve("zeta") == (GOLD, BusinessCalendar(calendar_id="default", timezone="UTC"))
    assert view.apply(b"calendar:tokyo", encode(TOKYO)) == ["acme"]
    assert view.resolve("acme") == (GOLD, TOKYO)


def test_staff_tombstones_and_bad_records() -> None:
    view = DirectoryView()
    assert view.apply(b"_staff", b"{}") == []
    assert view.apply(b"acme", b'{"client_id": 5}') == []  # invalid: ignored
    assert view.apply(b"acme", encode(client("other"))) == []  # key differs from client_id
    view.apply(b"acme", encode(client("acme")))
    assert view.apply(b"acme", None) == []
    assert view.resolve("acme") is None
    assert view.apply(None, b"x") == []


def test_change_ids_are_stable_and_chained() -> None:
    a, digest_a = change_event("acme", GOLD, TOKYO, None, AT)
    again, _ = change_event("acme", GOLD, TOKYO, None, AT)
    assert a.event_id == again.event_id  # a re-send after a crash is a duplicate
    assert digest_a == pair_digest(GOLD, TOKYO)
    gold2 = GOLD.model_copy(update={"version": 2})
    b, digest_b = change_event("acme", gold2, TOKYO, digest_a, AT)
    back, _ = change_event("acme", GOLD, TOKYO, digest_b, AT)
    assert len({a.event_id, b.event_id, back.event_id}) == 3  # A -> B -> A is three events
    assert a.event_id.startswith("policy:acme:")
    assert (a.occurred_at, a.recorded_at, a.policy, a.calendar) == (BEGINNING, AT, GOLD, TOKYO)


def test_a_change_takes_effect_when_its_record_was_published_never_at_the_worker_start() -> None:
    _, digest_a = change_event("acme", GOLD, TOKYO, None, AT)
    published = AT - timedelta(days=3)  # the worker was down when the directory changed
    gold2 = GOLD.model_copy(update={"version": 2})
    b, _ = change_event("acme", gold2, TOKYO, digest_a, AT, published)
    assert (b.occurred_at, b.recorded_at) == (published, AT)
    c, _ = change_event("acme", gold2, TOKYO, digest_a, AT)  # no record time: the clock
    assert c.occurred_at == AT
    # A record stamped in the future (a producer's skewed clock) takes effect now, not later.
    d, _ = change_event("acme", gold2, TOKYO, digest_a, AT, AT + timedelta(hours=1))
    assert d.occurred_at == AT


def test_record_time_reads_the_kafka_timestamp() -> None:
    class Message:
        timestamp = 1_700_000_000.5

    assert record_time(Message()) == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    Message.timestamp = 0
    assert record_time(Message()) is None
    assert record_time(object()) is None


def test_a_pair_no_deadline_can_be_computed_on_is_not_announced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each record is valid alone; the pair is not (a year of business time at one hour a
    week): the client is skipped with its reason, the others still resolve."""
    hour = BusinessCalendar(
        calendar_id="hour",
        timezone="UTC",
        weekly_hours={0: (TimeInterval(start=time(9), end=time(10)),)},
    )
    slow = SlaPolicy(policy_id="slow", first_response=BusinessDuration(minutes=525_600))
    view = DirectoryView()
    for key, value in [
        (b"policy:slow", encode(slow)),
        (b"calendar:hour", encode(hour)),
        (b"policy:gold", encode(GOLD)),
        (b"calendar:tokyo", encode(TOKYO)),
        (b"bad", encode(client("bad", "slow", "hour"))),
        (b"acme", encode(client("acme"))),
    ]:
        view.apply(key, value)
    with caplog.at_level(logging.WARNING, logger="streams.directory_feed"):
        assert view.resolve("bad") is None
    assert "client bad: policy 'slow' on calendar 'hour' not announced" in caplog.text
    assert view.resolve("acme") == (GOLD, TOKYO)
