"""Time as an injectable dependency, so retry and Retry-After behaviour is testable exactly."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time (for signatures, ages and log rows), monotonic time and sleeping."""

    def time(self) -> float:
        """Unix epoch seconds (wall clock)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards (for latencies, gaps)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (real or simulated)."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        """Unix epoch seconds from the system clock."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(max(0.0, seconds))


def utc_from_timestamp(seconds: float) -> datetime:
    """An aware UTC datetime from epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC)


class SimulatedClock:
    """A clock whose ``sleep`` advances simulated time instantly (tests, dry runs).

    Crude on purpose: every sleep adds its full duration, so concurrent sleepers make time jump
    by the sum. Use it where one delivery at a time is being timed. ``sleeps`` lists every sleep.
    """

    def __init__(self, start: float, *, monotonic_start: float = 1_000.0) -> None:
        self._offset = monotonic_start - start
        self._now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        """Simulated Unix seconds."""
        return self._now

    def monotonic(self) -> float:
        """Simulated monotonic seconds (moves with ``time``)."""
        return self._now + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward without sleeping."""
        self._now += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, advance time, and yield to the event loop once."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)
