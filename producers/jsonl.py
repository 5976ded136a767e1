"""The ``jsonl`` format: canonical engine inputs, one JSON object per line (read and written).

Each line is validated with ``schemas.base.decode`` against ``InteractionEvent`` (or against
``ClientPolicyChanged`` when its ``type`` says ``policy_changed``), so a bad line is rejected with
every failing field and the reason, and its original bytes, while the rest of the file goes on.

:class:`EventsFile` writes the same format (``shinrai produce --out``), so any archive's events can
be inspected, replayed (``shinrai replay``) or produced again (``--format jsonl``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from producers.parsers.base import Parsed, Rejected
from schemas.base import decode, encode
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


class EventsFile:
    """Writes canonical events as JSON lines to ``path``, whole or not at all.

    Lines go to a temporary file next to ``path``; :meth:`finish` moves it into place. A run that
    stops before (a parser error, Ctrl-C) leaves no half file that would look like a whole
    archive: :meth:`close` then removes the temporary file and any older ``path`` stays as it was.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}.partial")
        try:
            self._handle = self._partial.open("wb")
        except OSError as exc:
            raise ShinraiError(f"cannot write events to {path}: {exc.strerror or exc}") from exc
        self.written = 0
        self.finished = False

    def write(self, event: InteractionEvent | ClientPolicyChanged) -> None:
        """Append one event as its canonical JSON (what Kafka would carry as the value)."""
        self._handle.write(encode(event) + b"\n")
        self.written += 1

    def finish(self) -> None:
        """Flush, and move the complete file to ``path`` (replacing an older one)."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._partial.replace(self.path)
        except OSError as exc:
            raise ShinraiError(
                f"cannot write events to {self.path}: {exc.strerror or exc}"
            ) from exc
        self.finished = True

    def close(self) -> None:
        """Release the file; an unfinished file is removed (idempotent)."""
        if not self._handle.closed:
            self._handle.close()
        if not self.finished:
            self._partial.unlink(missing_ok=True)
