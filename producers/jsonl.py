"""The ``jsonl`` format: canonical engine inputs, one JSON object per line.

Each line is validated with ``schemas.base.decode`` against ``InteractionEvent`` (or against
``ClientPolicyChanged`` when its ``type`` says ``policy_changed``), so a bad line is rejected with
every failing field and the reason, and its original bytes, while the rest of the file goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from producers.parsers.base import Parsed, Rejected
from schemas.base import decode
from schemas.events import ClientPolicyChanged, InteractionEvent
from shinrai.errors import ShinraiError, ValidationFailed


@dataclass(frozen=True, slots=True)
class ParsedPolicy:
    """A policy change read from a jsonl file (the parser contract's ``Parsed`` holds interactions).

    Kept here rather than widening ``Parsed.event`` so parsers' consumers keep a precise type.
    """

    event: ClientPolicyChanged
    origin: str


def decode_engine_input(raw: bytes) -> InteractionEvent | ClientPolicyChanged:
    """Decode one canonical JSON object; raise ValidationFailed naming the field and the reason."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"invalid JSON: {exc}", errors=[("<json>", f"not valid JSON ({exc})")], raw=raw
        ) from exc
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValidationFailed(
            "not a JSON object", errors=[("<root>", f"expected a JSON object, got {kind}")], raw=raw
        )
    if data.get("type") == "policy_changed":
        return decode(ClientPolicyChanged, raw)
    return decode(InteractionEvent, raw)


def parse_jsonl(
    path: Path, resolver: object = None, /
) -> Iterator[Parsed | ParsedPolicy | Rejected]:
    """Yield one result per non-blank line of ``path`` (``resolver`` is unused: ids are given)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ShinraiError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            origin = f"{path.name}:{number}"
            try:
                event = decode_engine_input(raw)
            except ValidationFailed as exc:
                yield Rejected(reason=exc.reason, origin=origin, raw=raw)
                continue
            if isinstance(event, ClientPolicyChanged):
                yield ParsedPolicy(event=event, origin=origin)
            else:
                yield Parsed(event=event, origin=origin)
