"""Whole-database snapshots for "identical contents" assertions."""

from __future__ import annotations

import math
from typing import Any

from clickhouse_connect.driver.client import Client

BASE_TABLES = ("interactions", "sla_facts", "alert_deliveries", "trust_history", "clients")
ROLLUP_SQL = {
    "sla_daily": """
        SELECT client_id, day, channel, sum(opened), sum(met), sum(met_late), sum(breached),
               sum(waived), sum(warnings), sum(calls), sum(answered), sum(answered_within_target),
               sum(abandoned), sum(missed), sum(silences), max(last_silence_at),
               {q}(response_business_q),
               {q}(response_calendar_q),
               {q}(answer_wait_q),
               {q}(abandon_wait_q)
        FROM sla_daily GROUP BY client_id, day, channel ORDER BY client_id, day, channel""",
    "interactions_daily": """
        SELECT client_id, day, channel, direction, sum(events), max(last_at)
        FROM interactions_daily GROUP BY ALL ORDER BY ALL""",
    "interactions_monthly": """
        SELECT client_id, month, channel, direction, sum(events)
        FROM interactions_monthly GROUP BY ALL ORDER BY ALL""",
    "client_activity": """
        SELECT client_id, day, sum(silences), max(last_silence_at), max(last_outbound_at)
        FROM client_activity GROUP BY ALL ORDER BY ALL""",
}
ROLLUPS = tuple(ROLLUP_SQL)


def _no_nan(value: Any) -> Any:
    """NaN (an empty quantile state) never equals itself; None does."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple):
        return type(value)(_no_nan(v) for v in value)
    return value


def stop_merges(client: Client) -> None:
    """Freeze background merges, so a duplicate row cannot be merged away before we count it."""
    for table in (*BASE_TABLES, "obligations", "obligations_owed", *ROLLUPS):
        client.command(f"SYSTEM STOP MERGES {table}")


def snapshot(client: Client) -> dict[str, Any]:
    """Every base table's raw rows (no FINAL: duplicates show), obligations' latest state, the
    owed obligations (latest rows not deleted) and each rollup's finalized aggregates."""
    out: dict[str, Any] = {}
    for table in BASE_TABLES:
        rows = client.query(f"SELECT * FROM {table}").result_rows
        out[table] = sorted(rows, key=repr)
    out["obligations"] = client.query("SELECT * FROM obligations FINAL ORDER BY ALL").result_rows
    out["obligations_owed"] = owed(client)
    out.update(rollups(client))
    return out


def rollups(client: Client, names: tuple[str, ...] = ROLLUPS) -> dict[str, Any]:
    """Each named rollup's finalized aggregates (sla_daily's quantiles read from samples kept
    as arrays since migration 0007, from quantile states before it: the same numbers)."""
    kind = client.query(
        "SELECT type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'sla_daily' AND name = 'response_business_q'"
    ).result_rows
    merge = bool(kind) and str(kind[0][0]).startswith("AggregateFunction")
    q = "quantilesExactInclusive" + ("Merge" if merge else "Array") + "(0.5, 0.9, 0.99)"
    return {
        name: [_no_nan(row) for row in client.query(ROLLUP_SQL[name].format(q=q)).result_rows]
        for name in names
    }


def owed(client: Client) -> list[Any]:
    """obligations_owed as its readers see it: each owed obligation's latest row."""
    return list(client.query("SELECT * FROM obligations_owed FINAL ORDER BY ALL").result_rows)
