"""Backoff with full jitter, Retry-After parsing, and which statuses are retried."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinks.alerts.retry import (
    DeliveryOptions,
    backoff_delay,
    is_retryable_status,
    parse_retry_after,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC).timestamp()


@given(
    retry=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.001, max_value=600),
    seed=st.integers(),
)
def test_full_jitter_stays_within_the_exponential_ceiling(
    retry: int, base: float, cap: float, seed: int
) -> None:
    options = DeliveryOptions(base_delay_s=base, max_delay_s=cap)
    delay = backoff_delay(retry, options, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2.0 ** min(retry - 1, 62))


def test_backoff_is_reproducible_with_a_seed_and_actually_jittered() -> None:
    options = DeliveryOptions(base_delay_s=1.0, max_delay_s=1000.0)
    first = [backoff_delay(n, options, random.Random(7)) for n in range(1, 8)]
    again = [backoff_delay(n, options, random.Random(7)) for n in range(1, 8)]
    assert first == again
    draws = {round(backoff_delay(5, options, random.Random(seed)), 6) for seed in range(50)}
    assert len(draws) > 40  # full jitter: spread over [0, 16], not a fixed schedule
    assert max(draws) > 8.0


def test_backoff_ceiling_grows_then_caps() -> None:
    options = DeliveryOptions(base_delay_s=0.5, max_delay_s=4.0)

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [backoff_delay(n, options, Top()) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("1", 1.0), (" 120 ", 120.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_http_date() -> None:
    later = datetime.fromtimestamp(NOW + 90, tz=UTC)
    assert parse_retry_after(format_datetime(later, usegmt=True), now=NOW) == pytest.approx(90)
    # RFC 850 and asctime forms are obsolete but still valid HTTP-dates.
    assert parse_retry_after("Mon, 02 Mar 2026 06:01:30 -0000", now=NOW) == pytest.approx(90)
    earlier = datetime.fromtimestamp(NOW - 90, tz=UTC)
    assert parse_retry_after(format_datetime(earlier, usegmt=True), now=NOW) == 0.0


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True), (502, True), (503, True), (504, True), (408, True), (429, True),
        (400, False), (401, False), (403, False), (404, False), (410, False), (422, False),
        (301, False), (302, False),
    ],
)  # fmt: skip
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable
