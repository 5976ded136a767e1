"""Retry policy: what is worth retrying, how long to wait, and what Retry-After asks for.

Backoff is exponential with *full jitter* (a uniform draw in ``[0, min(cap, base * 2**n)]``):
after an outage, many pending deliveries spread out instead of hitting the recovering receiver
in lockstep. The random source is injected so tests can seed it.
"""

from __future__ import annotations

import random
from datetime import UTC
from email.utils import parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field

# 408 (request timeout) and 429 (rate limited) are the only 4xx that say "try again later".
RETRYABLE_4XX = frozenset({408, 429})
# Only these statuses carry a Retry-After we honour (RFC 9110 §10.2.3, RFC 6585 §4).
RETRY_AFTER_STATUSES = frozenset({429, 503})


class DeliveryOptions(BaseModel):
    """Tuning for the deliverer; the defaults suit a production webhook, tests shrink them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempt_timeout_s: float = Field(default=10.0, gt=0, description="Hard cap on one attempt")
    base_delay_s: float = Field(default=1.0, gt=0, description="Backoff ceiling of the 1st retry")
    max_delay_s: float = Field(default=300.0, gt=0, description="Backoff ceiling, any retry")
    max_retry_after_s: float = Field(
        default=3600.0, gt=0, description="Longest Retry-After honoured (longer ones are capped)"
    )
    max_concurrency: int = Field(default=16, ge=1, description="Requests in flight, all targets")
    per_target_concurrency: int = Field(
        default=4, ge=1, description="Requests in flight per target; keep below max_concurrency"
    )
    max_pending: int = Field(
        default=10_000, ge=1, description="Unfinished deliveries before add() waits (backpressure)"
    )
    results_limit: int = Field(
        default=100_000, ge=1, description="Finished results kept until flush()/drain_results()"
    )
    user_agent: str = "shinrai-alerts/1"


def is_retryable_status(status_code: int) -> bool:
    """5xx, 408 and 429 are worth retrying; every other non-2xx is permanent."""
    return status_code >= 500 or status_code in RETRYABLE_4XX


def backoff_delay(retry_number: int, options: DeliveryOptions, rng: random.Random) -> float:
    """Full-jitter delay before retry ``retry_number`` (1 for the first retry)."""
    exponent = min(retry_number - 1, 62)  # 2**62 is far past any cap; avoids huge floats
    ceiling = min(options.max_delay_s, options.base_delay_s * 2.0**exponent)
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad.

    ``now`` is the current Unix time, used to turn an HTTP-date into a delay. A date in the past
    means "now" (0 s).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # parsedate_to_datetime leaves "-0000" naive; HTTP-dates are always UTC (RFC 9110 §5.6.7).
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
