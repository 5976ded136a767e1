"""Edge decoding of engine input and the DLQ record shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.base import encode
from schemas.calendars import BusinessCalendar
from schemas.deadletter import ORIGIN, REASON, REJECTED_AT, SOURCE
from schemas.events import Channel, ClientPolicyChanged, Direction, InteractionEvent, Kind
from schemas.policies import SlaPolicy
from streams.dlq import Rejected, dead_letter, decode_input

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EVENT = InteractionEvent(
    event_id="e1",
    channel=Channel.EMAIL,
    kind=Kind.MESSAGE,
    direction=Direction.INBOUND,
    occurred_at=AT,
    recorded_at=AT,
    client_id="acme",
)


def test_both_input_types_decode_by_type() -> None:
    assert decode_input(encode(EVENT)) == EVENT
    change = ClientPolicyChanged(
        event_id="p1",
        client_id="acme",
        occurred_at=AT,
        recorded_at=AT,
        policy=SlaPolicy.default(),
        calendar=BusinessCalendar(calendar_id="default", timezone="UTC"),
    )
    assert decode_input(encode(change)) == change


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (None, "<root>: empty"),
        (b"", "<root>: empty"),
        (b"\xff\xfe\x00", "<root>: Invalid JSON"),
        (b"[1, 2]", "<root>"),
        (b'{"type": "nope"}', "<root>"),
        (encode(EVENT).replace(b'"inbound"', b'"sideways"'), "interaction.direction"),
        (
            encode(EVENT).replace(b'"occurred_at":"2026-03-02T09:00:00Z"', b'"occurred_at":1'),
            "interaction.occurred_at",
        ),
    ],
)
def test_invalid_input_names_the_field(raw: bytes | None, field: str) -> None:
    result = decode_input(raw)
    assert isinstance(result, Rejected)
    assert field in result.reason


def test_dead_letter_keeps_original_key_and_bytes() -> None:
    key, value, headers = dead_letter(
        b"\xff raw", b"acme", "x: bad", topic="interactions.v1", partition=2, offset=17, now=AT
    )
    assert key == b"acme"
    assert value == b"\xff raw"
    h = dict(headers)
    assert h[REASON] == b"x: bad"
    assert h[SOURCE] == b"worker"
    assert h[ORIGIN] == b"interactions.v1/2/17"
    assert h[REJECTED_AT] == AT.isoformat().encode()
