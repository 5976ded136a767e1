"""obligations_owed (migration 0004) follows every status change of the obligations rows.

The rows are written as the sink writes them (one row per changed obligation per flush, version =
the offset of the fact that produced it, several flushes = several parts), and open_obligations
must list exactly the obligations whose newest row is open or breached, before and after the
CLEANUP merge that physically removes the answered ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
from sinks.clickhouse.queries import run_query

pytestmark = pytest.mark.integration

T = datetime(2025, 3, 31, 9, tzinfo=UTC)  # o6 opens the next day, in April: two partitions
NOW = datetime(2025, 4, 2, 12, tzinfo=UTC)
COLUMNS = ["obligation_id", "client_id", "kind", "opened_at", "deadline", "status", "policy_id",
           "policy_version", "opened_fact_id", "status_fact_id", "updated_at", "version"]  # fmt: skip


def _row(oid: str, opened: datetime, deadline: datetime, status: str, version: int) -> list[Any]:
    return [oid, "c1", "first_response", opened, deadline, status, "default", 1, f"f-{oid}",
            f"f-{oid}-{version}", opened, version]  # fmt: skip


def _deadline(hours: int) -> datetime:
    return T + timedelta(hours=hours)


# Flushes in stream order. o1: open, breached, answered late. o2: deadline moved (policy change).
# o3: answered, then the answer retracted (open again). o4: waived. o5: opened after `now`.
# o6: breached, still owed. o7: opened and answered in one flush's later row.
FLUSHES: list[list[list[Any]]] = [
    [
        _row("o1", T, _deadline(4), "open", 1),
        _row("o2", T + timedelta(minutes=1), _deadline(5), "open", 2),
        _row("o3", T + timedelta(minutes=2), _deadline(6), "open", 3),
        _row("o4", T + timedelta(minutes=3), _deadline(7), "open", 4),
    ],
    [
        _row("o1", T, _deadline(4), "breached", 5),
        _row("o2", T + timedelta(minutes=1), _deadline(30), "open", 6),
        _row("o3", T + timedelta(minutes=2), _deadline(6), "met", 7),
        _row("o5", NOW + timedelta(hours=1), NOW + timedelta(hours=5), "open", 8),
        _row("o6", T + timedelta(days=1), _deadline(26), "open", 9),
        _row("o7", T + timedelta(minutes=4), _deadline(8), "open", 10),
    ],
    [
        _row("o1", T, _deadline(4), "met_late", 11),
        _row("o3", T + timedelta(minutes=2), _deadline(6), "open", 12),
        _row("o4", T + timedelta(minutes=3), _deadline(7), "waived", 13),
        _row("o6", T + timedelta(days=1), _deadline(26), "breached", 14),
        _row("o7", T + timedelta(minutes=4), _deadline(8), "met", 15),
    ],
]
OWED = [("o3", "open", _deadline(6)), ("o6", "breached", _deadline(26)),
        ("o2", "open", _deadline(30))]  # fmt: skip


def _listed(client: Any) -> list[tuple[str, str, datetime]]:
    rows = run_query(client, "open_obligations", now=NOW)
    for row in rows:
        assert row["seconds_left"] == pytest.approx((row["deadline"] - NOW).total_seconds())
    return [(r["obligation_id"], r["status"], r["deadline"]) for r in rows]


def test_open_obligations_follow_every_status_change(
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    settings = ch_settings()
    client = connect(settings)
    try:
        migrate.migrate(client, settings.database)
        client.command("SYSTEM STOP MERGES obligations_owed")  # each flush stays its own part
        settings_ = {"insert_deduplication_token": "", "async_insert": 0}
        for i, rows in enumerate(FLUSHES):
            token = {**settings_, "insert_deduplication_token": f"flush-{i}"}
            client.insert("obligations", rows, column_names=COLUMNS, settings=token)
        # A flush re-sent after a lost acknowledgement: dropped in obligations_owed too.
        retry = {**settings_, "insert_deduplication_token": "flush-1",
                 "deduplicate_blocks_in_dependent_materialized_views": 1}  # fmt: skip
        client.insert("obligations", FLUSHES[1], column_names=COLUMNS, settings=retry)

        assert _listed(client) == OWED
        raw = client.query("SELECT count(), sum(is_deleted) FROM obligations_owed").result_rows
        # Every row copied once (the re-sent flush's 6 rows were dropped); deleted: o3 met (v7),
        # o1 met_late, o4 waived, o7 met.
        assert raw == [(15, 4)]

        client.command("SYSTEM START MERGES obligations_owed")
        client.command("OPTIMIZE TABLE obligations_owed FINAL CLEANUP")
        assert _listed(client) == OWED
        kept = client.query(
            "SELECT obligation_id, status, version FROM obligations_owed ORDER BY obligation_id"
        ).result_rows
        # Only each owed obligation's newest row is left (o5 too: owed, but opened after now).
        assert kept == [("o2", "open", 6), ("o3", "open", 12), ("o5", "open", 8),
                        ("o6", "breached", 14)]  # fmt: skip

        # o2 answered after the cleanup: it disappears; o3's answer retracted again stays owed.
        client.insert(
            "obligations",
            [_row("o2", T + timedelta(minutes=1), _deadline(30), "met", 16)],
            column_names=COLUMNS,
            settings={"async_insert": 0},
        )
        assert _listed(client) == OWED[:2]
    finally:
        client.close()
