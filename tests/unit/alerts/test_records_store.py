"""Delivery records, the JSONL/in-memory recorders and the delivered-keys stores."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.deadletter import DeadLetter
from sinks.alerts.errors import DeliveredStoreError
from sinks.alerts.records import (
    DeliveryRecord,
    InMemoryDeliveryLog,
    JsonlDeadLetters,
    JsonlDeliveryLog,
)
from sinks.alerts.store import InMemoryDeliveredStore, SqliteDeliveredStore

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _record(attempt: int = 1, **kwargs: object) -> DeliveryRecord:
    data: dict[str, object] = {
        "alert_id": "a1",
        "attempt": attempt,
        "at": AT,
        "target": "https://hooks.example.com/x",
        "status_code": 503,
        "outcome": "retry",
        "error": "HTTP 503",
        "latency_ms": 12.5,
    }
    data.update(kwargs)
    return DeliveryRecord.model_validate(data)


def test_record_has_exactly_the_table_columns() -> None:
    assert list(DeliveryRecord.model_fields) == [
        "alert_id", "attempt", "at", "target", "status_code", "outcome", "error", "latency_ms",
    ]  # fmt: skip


def test_record_rejects_non_utc_and_unknown_outcomes() -> None:
    with pytest.raises(ValidationError):
        _record(at=AT.astimezone(timezone(timedelta(hours=9))))
    with pytest.raises(ValidationError):
        _record(outcome="maybe")
    with pytest.raises(ValidationError):
        _record(at=AT.replace(tzinfo=None))


def test_jsonl_log_round_trips_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "deliveries.jsonl"
    log = JsonlDeliveryLog(path)
    assert not path.exists()  # no I/O before the first record
    records = [_record(1), _record(2, status_code=None, outcome="delivered", error="")]
    for rec in records:
        log.record(rec)
    log.close()
    reopened = JsonlDeliveryLog(path)
    reopened.record(_record(3, outcome="dead_letter"))
    reopened.close()
    assert JsonlDeliveryLog.read(path) == [*records, _record(3, outcome="dead_letter")]
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first["at"] == "2026-03-02T06:00:00Z"


def test_in_memory_log_keeps_order() -> None:
    log = InMemoryDeliveryLog()
    log.record(_record(1))
    log.record(_record(2))
    assert [r.attempt for r in log] == [1, 2]


def test_jsonl_dead_letters_keep_the_body(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    sink = JsonlDeadLetters(path)
    sink.dead_letter(
        DeadLetter(raw=b'{"alert_id":"a1"}', reason="HTTP 400", source="alerts:failed", key=b"a1")
    )
    sink.close()
    line = json.loads(path.read_text(encoding="utf-8"))
    assert line["raw"] == '{"alert_id":"a1"}'
    assert line["key"] == "a1"
    assert line["x-shinrai-reason"] == "HTTP 400"
    assert line["x-shinrai-source"] == "alerts:failed"


def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "delivered.sqlite"
    store = SqliteDeliveredStore(path)
    assert not path.exists()  # constructor does no I/O
    store.open()
    assert store.status("k1") is None
    store.mark("k1", alert_id="a1", target="t", outcome="delivered", at=AT)
    store.mark("k2", alert_id="a2", target="t", outcome="dead_letter", at=AT)
    store.close()

    again = SqliteDeliveredStore(path)
    again.open()
    assert again.status("k1") == "delivered"
    assert again.status("k2") == "dead_letter"
    assert again.counts() == {"delivered": 1, "dead_letter": 1}
    again.close()


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "delivered.sqlite"
    store = SqliteDeliveredStore(path)
    store.open()
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_delivered_is_never_downgraded_and_forget_reopens(tmp_path: Path, store_kind: str) -> None:
    store = (
        InMemoryDeliveredStore()
        if store_kind == "memory"
        else SqliteDeliveredStore(tmp_path / "d.sqlite")
    )
    store.open()
    store.mark("k", alert_id="a", target="t", outcome="delivered", at=AT)
    store.mark("k", alert_id="a", target="t", outcome="dead_letter", at=AT)
    assert store.status("k") == "delivered"
    store.mark("d", alert_id="a", target="t", outcome="dead_letter", at=AT)
    store.mark("d", alert_id="a", target="t", outcome="delivered", at=AT)
    assert store.status("d") == "delivered"  # a resend that succeeded supersedes the dead letter
    assert store.forget("k") is True
    assert store.forget("k") is False
    assert store.status("k") is None
    store.close()


def test_sqlite_store_errors_are_shinrai_errors(tmp_path: Path) -> None:
    store = SqliteDeliveredStore(tmp_path / "d.sqlite")
    with pytest.raises(DeliveredStoreError, match="not open"):
        store.status("k")
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(DeliveredStoreError, match="cannot open"):
        SqliteDeliveredStore(blocker / "d.sqlite").open()
