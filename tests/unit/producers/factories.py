"""Factories of canonical events for producer tests (synthetic data written for this project)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.base import encode
from schemas.events import Channel, Direction, InteractionEvent, Kind

BASE = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)


def make_event(n: int, client_id: str | None, **overrides: Any) -> InteractionEvent:
    """Event number ``n`` of ``client_id``: inbound e-mails, every third an outbound call."""
    is_call = n % 3 == 2
    fields: dict[str, Any] = {
        "event_id": f"test:{client_id or 'nobody'}:{n}",
        "channel": Channel.PHONE if is_call else Channel.EMAIL,
        "kind": Kind.CALL if is_call else Kind.MESSAGE,
        "direction": Direction.OUTBOUND if is_call else Direction.INBOUND,
        "occurred_at": BASE + timedelta(minutes=n),
        "recorded_at": BASE + timedelta(minutes=n, seconds=5),
        "client_id": client_id,
        "thread_key": f"thread-{client_id}-{n // 4}",
        "source": "test",
    }
    fields.update(overrides)
    return InteractionEvent(**fields)


def jsonl(events: list[InteractionEvent]) -> bytes:
    """Canonical JSON lines."""
    return b"".join(encode(e) + b"\n" for e in events)
