"""Which deliveries are finished, durably: the guard against sending a key twice.

The deliverer asks the store before sending and marks a key once the target acknowledged it (or
once it was dead-lettered), so a restarted deliverer fed the same alerts (a replay, uncommitted
Kafka offsets) skips every finished key. The one window left is a crash between a 2xx and the
mark; the receiver then sees the same ``Idempotency-Key`` again, which is what the key is for.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sinks.alerts.errors import DeliveredStoreError
from sinks.alerts.records import Outcome


class DeliveredStore(Protocol):
    """Finished delivery keys and how they finished. ``open``/``close`` bracket its use."""

    def open(self) -> None:
        """Acquire resources (idempotent); the deliverer calls it in ``setup()``."""
        ...

    def close(self) -> None:
        """Release resources (idempotent); the deliverer calls it in ``close()``."""
        ...

    def status(self, key: str) -> Outcome | None:
        """``delivered``, ``failed`` or ``dead_letter`` if ``key`` is finished, else None."""
        ...

    def mark(self, key: str, *, alert_id: str, target: str, outcome: Outcome, at: datetime) -> None:
        """Record that ``key`` finished; a ``delivered`` mark is never overwritten."""
        ...

    def forget(self, key: str) -> bool:
        """Drop ``key`` so it can be sent again (operator resend of a dead letter)."""
        ...


class InMemoryDeliveredStore:
    """A store that lasts as long as the process (tests, one-off sends)."""

    def __init__(self) -> None:
        self._done: dict[str, Outcome] = {}

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close; the keys survive so a "restarted" deliverer can reuse the store."""

    def status(self, key: str) -> Outcome | None:
        """See :meth:`DeliveredStore.status`."""
        return self._done.get(key)

    def mark(self, key: str, *, alert_id: str, target: str, outcome: Outcome, at: datetime) -> None:
        """See :meth:`DeliveredStore.mark`."""
        if self._done.get(key) != "delivered":
            self._done[key] = outcome

    def forget(self, key: str) -> bool:
        """See :meth:`DeliveredStore.forget`."""
        return self._done.pop(key, None) is not None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS finished_deliveries (
    key TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL
)
"""


class SqliteDeliveredStore:
    """A durable store in one SQLite file (WAL, fsync on commit). One deliverer per file.

    ``open()`` does the I/O (the constructor does none); ``close()`` releases the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create or open the file and its table."""
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a mark is on disk before we move on, so a power cut cannot resurrect a key.
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise DeliveredStoreError(f"cannot open delivered store {self.path}: {exc}") from exc
        self._db = db

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise DeliveredStoreError(f"delivered store {self.path} is not open; call open()")
        return self._db

    def status(self, key: str) -> Outcome | None:
        """See :meth:`DeliveredStore.status`."""
        try:
            row = (
                self._conn()
                .execute("SELECT outcome FROM finished_deliveries WHERE key = ?", (key,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise DeliveredStoreError(f"delivered store {self.path}: {exc}") from exc
        if row is None:
            return None
        outcome: Outcome = row[0]
        return outcome

    def mark(self, key: str, *, alert_id: str, target: str, outcome: Outcome, at: datetime) -> None:
        """See :meth:`DeliveredStore.mark`."""
        try:
            self._conn().execute(
                "INSERT INTO finished_deliveries (key, alert_id, target, outcome, at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET outcome = excluded.outcome, at = excluded.at"
                " WHERE finished_deliveries.outcome != 'delivered'",
                (key, alert_id, target, outcome, at.isoformat()),
            )
        except sqlite3.Error as exc:
            raise DeliveredStoreError(f"delivered store {self.path}: {exc}") from exc

    def forget(self, key: str) -> bool:
        """See :meth:`DeliveredStore.forget`."""
        try:
            cursor = self._conn().execute("DELETE FROM finished_deliveries WHERE key = ?", (key,))
        except sqlite3.Error as exc:
            raise DeliveredStoreError(f"delivered store {self.path}: {exc}") from exc
        return cursor.rowcount > 0

    def counts(self) -> dict[str, int]:
        """Finished keys per outcome (for the CLI and tests)."""
        try:
            rows = (
                self._conn()
                .execute("SELECT outcome, count(*) FROM finished_deliveries GROUP BY outcome")
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise DeliveredStoreError(f"delivered store {self.path}: {exc}") from exc
        return {str(outcome): int(n) for outcome, n in rows}
