"""Durable connector checkpoints: where each source stopped reading, and what it already sent.

Where: one SQLite file, ``<state_dir>/checkpoints.sqlite3`` (``state_dir`` of the connect
configuration, ``.data/connect`` by default). Why SQLite: a commit is atomic and durable (WAL
journal, ``synchronous=FULL``: the commit is fsync'd before it returns), so a crash or ``kill -9``
leaves either the old checkpoint or the new one, never a torn file; and several connectors (IMAP
threads, the CalDAV task) share one file safely.

What is kept:

- ``get(source, key)`` / ``put(source, key, value)``: small strings per source. The IMAP connector
  keeps ``<folder>:uidvalidity`` and ``<folder>:uid`` (the highest UID whose events the broker
  acknowledged); the CalDAV connector keeps its sync token or ctag the same way.
- ``commit(source, values, published=event_ids)``: the checkpoint values AND the event ids just
  acknowledged by the broker, in one transaction. ``published(ids)`` then says which of a batch
  were sent before, so a resynchronisation (UIDVALIDITY changed, a folder recreated) or the same
  message in two folders or mailboxes is not produced twice, however old it is. Only ids (hashes
  of Message-IDs) are stored, never headers or bodies.

The ordering rule every connector follows: publish, wait for the broker's acknowledgement, THEN
commit. A crash after the commit loses nothing and repeats nothing. A crash between the
acknowledgement and the commit would re-send that batch: the IMAP connector closes that window
with a *pending* entry written before it publishes (the batch's event ids and the topic's end
offsets at that moment); after a restart it reads the topic from those offsets and marks what
arrived as published, so only what never reached the broker is sent (``imap.py``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from shinrai.errors import ConfigError

FILE_NAME = "checkpoints.sqlite3"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS checkpoint ("
    " source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (source, key))",
    "CREATE TABLE IF NOT EXISTS published (event_id TEXT PRIMARY KEY, source TEXT NOT NULL)"
    " WITHOUT ROWID",
)
_LOOKUP_CHUNK = 500  # SQLite's default limit on bound parameters is 999


class Checkpoints:
    """The checkpoint store of one ``shinrai connect`` process (thread-safe)."""

    def __init__(self, state_dir: Path) -> None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.path = state_dir / FILE_NAME
            # check_same_thread=False: IMAP followers run in threads; the lock serialises them.
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"state_dir {state_dir}: cannot open the checkpoint store: {exc}"
            ) from None
        self._lock = threading.Lock()

    def get(self, source: str, key: str) -> str | None:
        """The value stored for ``source``/``key``, or None when there is none yet."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM checkpoint WHERE source = ? AND key = ?", (source, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def put(self, source: str, key: str, value: str) -> None:
        """Store one value durably (the call returns after the commit reached the disk)."""
        self.commit(source, {key: value})

    def commit(
        self,
        source: str,
        values: Mapping[str, str],
        *,
        published: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> None:
        """Store ``values``, record ``published`` event ids and delete the ``remove`` keys,
        atomically and durably."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO checkpoint (source, key, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (source, key) DO UPDATE SET value = excluded.value",
                    [(source, key, value) for key, value in values.items()],
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO published (event_id, source) VALUES (?, ?)",
                    [(event_id, source) for event_id in published],
                )
                self._db.executemany(
                    "DELETE FROM checkpoint WHERE source = ? AND key = ?",
                    [(source, key) for key in remove],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def delete(self, source: str, key: str) -> None:
        """Forget one value (e.g. a sync token the server no longer accepts)."""
        with self._lock:
            self._db.execute("DELETE FROM checkpoint WHERE source = ? AND key = ?", (source, key))

    def published(self, event_ids: Iterable[str]) -> set[str]:
        """Which of ``event_ids`` some connector already had acknowledged by the broker."""
        ids = list(dict.fromkeys(event_ids))
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = ids[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT event_id FROM published WHERE event_id IN ({marks})", chunk
                )
                found.update(str(row[0]) for row in rows)
        return found

    def close(self) -> None:
        """Close the file (a WAL checkpoint folds the journal back into the database)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
