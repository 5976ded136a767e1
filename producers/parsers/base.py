"""The contract every source-format parser follows.

A parser is a function ``parse(path, resolver, **options) -> Iterator[ParseResult]``. It reads
one file or folder, yields one ``Parsed`` per canonical event and one ``Rejected`` per record it
cannot turn into an event (with the reason and the record's original bytes), and never raises for
a bad record. It raises ``ShinraiError`` only when the input as a whole cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from schemas.events import InteractionEvent


@dataclass(frozen=True, slots=True)
class Parsed:
    """A record that became a canonical event."""

    event: InteractionEvent
    origin: str  # where it came from: "file.mbox#12", "Master.csv:line 7", ...


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that could not become an event: why, where, and its original bytes."""

    reason: str  # names the field and the reason, e.g. "Date: unparseable 'Foo 99'"
    origin: str
    raw: bytes


ParseResult = Parsed | Rejected


class Parser(Protocol):
    """Signature shared by every format parser."""

    def __call__(self, path: Path, resolver: object, /) -> Iterator[ParseResult]: ...
