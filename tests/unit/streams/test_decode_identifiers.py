"""The worker's edge (streams.dlq.decode_input) applies the identifier rule: no new client for a
look-alike, a dead letter naming the field for a control or bidi character."""

from __future__ import annotations

import orjson
import pytest

from schemas.base import encode
from schemas.events import InteractionEvent
from streams.dlq import Rejected, decode_input
from tests.builders import numbered_event

pytestmark = pytest.mark.unit


def _raw(**change: object) -> bytes:
    return orjson.dumps({**orjson.loads(encode(numbered_event(1, "c01"))), **change})


@pytest.mark.parametrize(
    ("client_id", "named"),
    [
        ("c\x0001", "U+0000"),
        ("c01\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("c\u200d01", "U+200D ZERO WIDTH JOINER"),
    ],
)
def test_control_and_bidi_client_ids_are_dead_lettered_with_the_field(
    client_id: str, named: str
) -> None:
    decoded = decode_input(_raw(client_id=client_id))
    assert isinstance(decoded, Rejected)
    assert decoded.reason.startswith("interaction.client_id: ")  # the union member, then the field
    assert named in decoded.reason


def test_full_width_client_id_is_the_existing_client() -> None:
    decoded = decode_input(_raw(client_id="ｃ０１"))
    assert isinstance(decoded, InteractionEvent)
    assert decoded.client_id == "c01"
    assert decoded == decode_input(_raw())
