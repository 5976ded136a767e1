"""The local rejects file: one JSON line per rejected record, with its original bytes in base64.

It mirrors what goes to the DLQ topic so an operator can inspect or fix a run's rejects without a
Kafka consumer, and re-produce them once fixed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import IO

import orjson

from schemas.deadletter import DeadLetter
from shinrai.errors import ShinraiError


def reject_record(letter: DeadLetter) -> dict[str, str]:
    """The JSON object written for one rejected record."""
    return {
        "reason": letter.reason,
        "origin": letter.origin,
        "source": letter.source,
        "raw_base64": base64.b64encode(letter.raw).decode("ascii"),
    }


class RejectsFile:
    """Writes rejected records to a JSONL file (opened on first use, created empty on close)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self._closed = False
        self.written = 0

    def _open(self) -> IO[bytes]:
        if self._closed:
            raise ShinraiError(f"rejects file {self.path} is already closed")
        if self._handle is None:
            try:
                self._handle = self.path.open("wb")
            except OSError as exc:
                raise ShinraiError(f"cannot write rejects to {self.path}: {exc.strerror}") from exc
        return self._handle

    def write(self, letter: DeadLetter) -> None:
        """Write one line and flush it, so a crashed run still leaves its rejects behind."""
        handle = self._open()
        handle.write(orjson.dumps(reject_record(letter)) + b"\n")
        handle.flush()
        self.written += 1

    def close(self) -> None:
        """Close the file; a clean run leaves an empty file (so "no rejects" is visible)."""
        if not self._closed:
            self._open().close()
            self._handle = None
            self._closed = True
