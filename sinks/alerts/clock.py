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
