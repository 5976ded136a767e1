"""Decode engine input at the edge of the worker, and shape what goes to the dead-letter topic.

A message that does not decode keeps its ORIGINAL bytes and key on the DLQ; the reason (naming
each failing field) and the origin (``topic/partition/offset``, and for one item of a batch record its
index) travel in headers (``schemas.deadletter``), so an operator can fix and re-produce it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError

from engine.state import Event
from schemas.base import validation_reason
from schemas.deadletter import DeadLetter
from schemas.events import EngineInput

__all__ = ["Rejected", "dead_letter", "decode_input"]

_INPUT: TypeAdapter[Event] = TypeAdapter(EngineInput)
SOURCE = "worker"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message is not a valid engine input ("field: why; field: why")."""

    reason: str


def decode_input(raw: bytes | None) -> Event | Rejected:
    """An InteractionEvent or ClientPolicyChanged (by ``type``), or the reason it is neither.

    Never raises for bad input: undecodable bytes, invalid JSON and schema errors all become a
    ``Rejected`` whose reason names the field (``<root>`` when the whole payload is wrong).
    """
    if not raw:
        return Rejected("<root>: empty message (no value)")
    try:
        return _INPUT.validate_json(raw)
    except ValidationError as exc:
        reason = validation_reason(exc)
        return Rejected(reason or str(exc))


def dead_letter(
    raw: bytes | None,
    key: bytes | None,
    reason: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    now: datetime,
    item: int | None = None,
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """``(key, value, headers)`` for the DLQ: the original key and bytes (cut to the record limit,
    said in headers), the reason in headers. ``item``: the index of the rejected item in the
    batch record at ``offset`` (``schemas.batches``; its own header, the origin unchanged)."""
    letter = DeadLetter(
        raw=raw or b"",
        reason=reason,
        source=SOURCE,
        origin=f"{topic}/{partition}/{offset}",
        key=key,
        item=item,
    )
    return letter.record(now)
