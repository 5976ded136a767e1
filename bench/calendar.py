"""Micro-benchmark of engine.calendar: add_business / business_seconds_between calls per second.

Run: ``.venv/bin/python -m bench.calendar`` (prints one line per measurement). Rates use process
CPU time, so other load on a shared machine does not distort them.
"""

from __future__ import annotations

import random
import time as wall
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

from engine.calendar import clock_for
from engine.deadlines import deadline_for
from schemas.calendars import BusinessCalendar, TimeInterval
from schemas.policies import SlaPolicy


def _calendars() -> dict[str, BusinessCalendar]:
    split = (TimeInterval(start=time(9), end=time(12)), TimeInterval(start=time(13), end=time(18)))
    return {
        "tokyo 9-18 JP holidays": BusinessCalendar(
            calendar_id="tokyo", timezone="Asia/Tokyo", holiday_country="JP"
        ),
        "new-york split shift US/NY": BusinessCalendar(
            calendar_id="ny",
            timezone="America/New_York",
            weekly_hours={d: split for d in range(5)},
            holiday_country="US",
            holiday_subdivision="NY",
        ),
    }


def _measure(label: str, call: Callable[[datetime, Any], object], args: Sequence[Any]) -> None:
    started = wall.process_time()
    for a, b in args:
        call(a, b)
    spent = wall.process_time() - started
    print(f"{label:<60} {len(args) / spent:>12,.0f} calls/s")


def main(n: int = 200_000) -> None:
    """Measure warm-cache throughput on random instants over one year and 1 min..3 day spans."""
    rng = random.Random(42)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [base + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(n)]
    spans = [rng.uniform(60, 3 * 9 * 3600) for _ in range(n)]
    ends = [s + timedelta(seconds=rng.uniform(60, 14 * 86400)) for s in starts]
    policy = SlaPolicy.default()
    for name, cal in _calendars().items():
        clock = clock_for(cal)
        for s in starts[:2000]:  # warm the per-day cache (a live worker has it warm too)
            clock.add_business(s, 3 * 86400)
        _measure(f"{name}: add_business", clock.add_business, list(zip(starts, spans, strict=True)))
        _measure(
            f"{name}: business_seconds_between (<=14 d)",
            clock.business_seconds_between,
            list(zip(starts, ends, strict=True)),
        )
        rule = policy.first_response
        started = wall.process_time()
        for s in starts[: n // 4]:
            deadline_for(rule, s, clock)
        spent = wall.process_time() - started
        print(f"{name + ': deadline_for(default rule)':<60} {n // 4 / spent:>12,.0f} calls/s")


if __name__ == "__main__":
    main()
