"""What the deliverer writes down: one row per attempt, and the alerts it gave up on.

``DeliveryRecord`` has exactly the columns of the ClickHouse ``alert_deliveries`` table, so a
ClickHouse recorder only has to implement :class:`DeliveryLog`. The in-memory and JSONL
implementations here serve tests, the CLI and deployments without ClickHouse.

Outcomes (one row per HTTP attempt; ``attempt`` counts from 1 per (alert, target)):

- ``delivered``: the target answered 2xx. Terminal.
- ``retry``: a retryable failure (timeout, connection error, 5xx, 408, 429); another attempt
  follows.
- ``failed``: a permanent failure (other 4xx, 3xx, an unusable URL). Terminal, dead-lettered.
- ``dead_letter``: a retryable failure, but the next attempt would come after the alert's maximum
  age (``AlertSettings.max_age_s`` from ``Alert.at``). Terminal, dead-lettered. A ``dead_letter``
  row with ``status_code`` null, ``latency_ms`` 0 and error starting "expired" made no request:
  the alert was already too old when its turn came (a replay of old alerts, or a long
  Retry-After); it still takes the next attempt number, so (alert, target, attempt) is unique.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Literal, Protocol

from pydantic import AwareDatetime, field_validator

from schemas.base import Frozen
from schemas.deadletter import DeadLetter

Outcome = Literal["delivered", "retry", "failed", "dead_letter"]
FinalOutcome = Literal["delivered", "failed", "dead_letter"]


class DeliveryRecord(Frozen):
    """One delivery attempt (the ``alert_deliveries`` row)."""

    alert_id: str
    attempt: int
    at: AwareDatetime
    target: str
    status_code: int | None
    outcome: Outcome
    error: str
    latency_ms: float

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.utcoffset() != timedelta(0):
            raise ValueError("at must be in UTC")
        return value.astimezone(UTC)


class DeliveryLog(Protocol):
    """Receives every attempt record (ClickHouse, JSONL, memory, ...)."""

    def record(self, record: DeliveryRecord) -> None:
        """Store one attempt; must not raise for transient storage trouble it can buffer."""
        ...


class DeadLetterSink(Protocol):
    """Receives deliveries the deliverer gave up on (the body is kept for a manual resend)."""

    def dead_letter(self, letter: DeadLetter) -> None:
        """Store one dead letter."""
        ...


class InMemoryDeliveryLog:
    """Keeps records in a list (tests, ``shinrai alerts send-test``)."""

    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []

    def record(self, record: DeliveryRecord) -> None:
        """Append ``record``."""
        self.records.append(record)

    def __iter__(self) -> Iterator[DeliveryRecord]:
        return iter(self.records)


class InMemoryDeadLetters:
    """Keeps dead letters in a list."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def dead_letter(self, letter: DeadLetter) -> None:
        """Append ``letter``."""
        self.letters.append(letter)


class _JsonlFile:
    """An append-only JSON-lines file, opened on first write (constructors do no I/O)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def write(self, line: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(line + "\n")
        # Flushed per line: a crash loses at most the line being written, never earlier ones.
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class JsonlDeliveryLog:
    """Appends each record as one JSON line (same field names as the ClickHouse table)."""

    def __init__(self, path: Path) -> None:
        self._file = _JsonlFile(path)

    def record(self, record: DeliveryRecord) -> None:
        """Append ``record`` as a JSON line."""
        self._file.write(record.model_dump_json())

    def close(self) -> None:
        """Close the file (a later record reopens it)."""
        self._file.close()

    @staticmethod
    def read(path: Path) -> list[DeliveryRecord]:
        """Every record in a JSONL file written by this class."""
        with path.open(encoding="utf-8") as fh:
            return [DeliveryRecord.model_validate_json(line) for line in fh if line.strip()]


class JsonlDeadLetters:
    """Appends each dead letter as a JSON line; ``raw`` is the UTF-8 body that was not delivered."""

    def __init__(self, path: Path) -> None:
        self._file = _JsonlFile(path)

    def dead_letter(self, letter: DeadLetter) -> None:
        """Append ``letter`` with its reason headers flattened into fields."""
        headers = {name: value.decode() for name, value in letter.headers()}
        line = {
            "raw": letter.raw.decode("utf-8", errors="replace"),
            "key": None if letter.key is None else letter.key.decode(),
            **headers,
        }
        self._file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")))

    def close(self) -> None:
        """Close the file."""
        self._file.close()
