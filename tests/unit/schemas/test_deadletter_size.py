"""A dead letter never exceeds the producers' record limit, and says when it was cut."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.deadletter import MAX_RECORD_BYTES, SHA256, TRUNCATED, DeadLetter

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers)


def test_a_small_original_travels_unchanged() -> None:
    letter = DeadLetter(raw=b'{"x": 1}', reason="x: bad", source="worker", key=b"acme")
    key, value, headers = letter.record(NOW)
    assert (key, value) == (b"acme", b'{"x": 1}')
    assert headers == letter.headers(NOW)
    assert TRUNCATED not in dict(headers)


def test_an_oversized_original_is_cut_and_the_headers_say_so() -> None:
    raw = b"x" * 1_200_000
    letter = DeadLetter(raw=raw, reason="<root>: bad " * 1000, source="worker", key=b"acme")
    key, value, headers = letter.record(NOW)
    found = dict(headers)
    assert size(key, value, headers) + 512 <= MAX_RECORD_BYTES
    assert raw.startswith(value)
    assert len(value) > 900_000
    assert found[TRUNCATED] == b"1200000"
    assert found[SHA256] == hashlib.sha256(raw).hexdigest().encode()


@given(
    raw=st.integers(min_value=0, max_value=2_000_000),
    key=st.integers(min_value=0, max_value=600_000),
    limit=st.integers(min_value=10_000, max_value=MAX_RECORD_BYTES),
)
def test_no_dead_letter_exceeds_the_limit(raw: int, key: int, limit: int) -> None:
    letter = DeadLetter(raw=b"r" * raw, reason="why", source="s", key=b"k" * key)
    out_key, value, headers = letter.record(NOW, max_bytes=limit)
    assert size(out_key, value, headers) <= limit
    assert (TRUNCATED in dict(headers)) == (len(value) < raw)
