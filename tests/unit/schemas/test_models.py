"""Canonical models: JSON round trips, strictness, clear errors naming the field and the reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    BusinessCalendar,
    CallOutcome,
    Channel,
    Client,
    ClientDirectory,
    ClientPolicyChanged,
    Direction,
    Flag,
    InteractionEvent,
    Kind,
    SlaPolicy,
    TimeInterval,
    decode,
    encode,
)
from schemas.identifiers import identifier_problem
from schemas.policies import BusinessDuration, SameDayOrNextMorning
from shinrai.errors import ValidationFailed

pytestmark = pytest.mark.unit

T0 = datetime(2026, 9, 18, 16, 0, tzinfo=timezone(timedelta(hours=9)))


def event(**overrides: object) -> InteractionEvent:
    fields: dict[str, object] = {
        "event_id": "msg-1",
        "channel": Channel.EMAIL,
        "kind": Kind.MESSAGE,
        "direction": Direction.INBOUND,
        "occurred_at": T0,
        "recorded_at": T0 + timedelta(seconds=5),
        "client_id": "acme",
        "thread_key": "thread-1",
        "flags": frozenset({Flag.MAILING_LIST}),
    }
    fields.update(overrides)
    return InteractionEvent(**fields)  # type: ignore[arg-type]


def test_event_round_trips_through_json_with_offset_preserved() -> None:
    original = event()
    decoded = decode(InteractionEvent, encode(original))
    assert decoded == original
    assert decoded.occurred_at.utcoffset() == timedelta(hours=9)


def test_call_event_round_trips() -> None:
    call = event(
        event_id="call-1",
        channel=Channel.PHONE,
        kind=Kind.CALL,
        call_outcome=CallOutcome.ABANDONED,
        wait_seconds=42.5,
        duration_seconds=0.0,
        flags=frozenset(),
    )
    assert decode(InteractionEvent, encode(call)) == call


def test_events_are_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        event().event_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("patch", "field", "reason"),
    [
        ({"channel": "fax"}, "channel", "Input should be"),
        ({"occurred_at": "2026-09-18T16:00:00"}, "occurred_at", "timezone"),
        ({"occurred_at": "yesterday"}, "occurred_at", "datetime"),
        ({"event_id": ""}, "event_id", "at least 1 character"),
        ({"wait_seconds": -1}, "wait_seconds", "greater than or equal to 0"),
        ({"duration_seconds": "12"}, "duration_seconds", "valid number"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_invalid_event_names_field_and_reason(
    patch: dict[str, object], field: str, reason: str
) -> None:
    import orjson

    payload = orjson.loads(encode(event()))
    payload.update(patch)
    raw = orjson.dumps(payload)
    with pytest.raises(ValidationFailed) as info:
        decode(InteractionEvent, raw)
    fields = [f for f, _ in info.value.errors]
    assert field in fields
    assert any(reason in why for f, why in info.value.errors if f == field)
    assert field in str(info.value)
    assert info.value.raw == raw  # the original bytes ride along for the dead-letter topic


def test_undecodable_bytes_are_a_validation_error_not_a_crash() -> None:
    raw = b"\xff\xfe not json"
    with pytest.raises(ValidationFailed) as info:
        decode(InteractionEvent, raw)
    assert info.value.raw == raw
    assert "json" in info.value.reason.lower()


def test_call_kind_requires_phone_channel() -> None:
    with pytest.raises(ValueError, match="requires channel 'phone'"):
        event(kind=Kind.CALL)


def test_calendar_validates_zone_and_overlaps() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        BusinessCalendar(calendar_id="x", timezone="Mars/Olympus")
    lunch_split = (
        TimeInterval(start=time(9), end=time(12)),
        TimeInterval(start=time(11), end=time(18)),
    )
    with pytest.raises(ValueError, match="overlap"):
        BusinessCalendar(calendar_id="x", timezone="Asia/Tokyo", weekly_hours={0: lunch_split})


def test_calendar_round_trips_with_split_shift_and_holidays() -> None:
    cal = BusinessCalendar(
        calendar_id="jp",
        timezone="Asia/Tokyo",
        holiday_country="JP",
        weekly_hours={
            0: (
                TimeInterval(start=time(9), end=time(12)),
                TimeInterval(start=time(13), end=time(18)),
            ),
            5: (TimeInterval(start=time(22)),),
        },
        extra_holidays=frozenset({date(2026, 12, 29)}),
    )
    assert decode(BusinessCalendar, encode(cal)) == cal


def test_default_policy_is_the_seed_rule() -> None:
    policy = SlaPolicy.default()
    assert isinstance(policy.first_response, SameDayOrNextMorning)
    assert policy.first_response.cutoff == time(15)
    assert policy.first_response.next_day_by == time(10)
    assert policy.warning_fractions == (0.5, 0.75, 0.9)
    assert decode(SlaPolicy, encode(policy)) == policy


def test_policy_rejects_bad_fractions_and_decodes_rules_by_discriminator() -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        SlaPolicy(policy_id="p", warning_fractions=(0.5, 1.0))
    raw = b'{"policy_id": "p", "first_response": {"rule": "business", "minutes": 240}}'
    policy = decode(SlaPolicy, raw)
    assert policy.first_response == BusinessDuration(minutes=240)


def test_directory_checks_references_and_formats() -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        Client(client_id="a", name="A", owner="o@x.com", phone_numbers=("03-1234-5678",))
    with pytest.raises(ValueError, match="unknown policy_id"):
        ClientDirectory(
            clients=(Client(client_id="a", name="A", owner="o@x.com", policy_id="vip"),)
        )
    directory = ClientDirectory(
        clients=(
            Client(
                client_id="acme",
                name="ACME",
                owner="owner@us.example",
                domains=("acme.co.jp",),
                phone_numbers=("+81312345678",),
            ),
        )
    )
    assert decode(ClientDirectory, encode(directory)) == directory


def test_policy_change_event_round_trips() -> None:
    change = ClientPolicyChanged(
        event_id="pc-1",
        client_id="acme",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        policy=SlaPolicy(policy_id="vip", version=3, first_response=BusinessDuration(minutes=120)),
        calendar=BusinessCalendar(calendar_id="jp", timezone="Asia/Tokyo", holiday_country="JP"),
    )
    assert decode(ClientPolicyChanged, encode(change)) == change


@given(
    # Any identifier the rule accepts (schemas.identifiers); refused ones have their own tests.
    event_id=st.text(min_size=1, max_size=40).filter(lambda s: identifier_problem(s) is None),
    offset_minutes=st.integers(min_value=-12 * 60, max_value=14 * 60),
    wait=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    flags=st.frozensets(st.sampled_from(list(Flag))),
)
def test_any_valid_event_round_trips(
    event_id: str, offset_minutes: int, wait: float | None, flags: frozenset[Flag]
) -> None:
    tz = timezone(timedelta(minutes=offset_minutes))
    original = event(
        event_id=event_id,
        occurred_at=T0.astimezone(tz),
        wait_seconds=wait,
        flags=flags,
    )
    assert decode(InteractionEvent, encode(original)) == original
