"""Latency of the named dashboard queries on the embedded engine (chdb).

Run: ``.venv/bin/python -m bench.queries [--quick]``. Prints p50/p95 per query and writes
``bench/results/queries-<timestamp>.json``. Goal: p95 <= 50 ms on the rollups over 10M
interaction rows (``--quick``: 100k).

Data is generated inside ClickHouse (``INSERT ... SELECT FROM numbers()``) straight into the
base tables, so the materialized views build the rollups exactly as they do for sink inserts:
N interactions, N/4 facts (opened/fulfilled/breached/speed-of-answer/trust/silence), N/20
obligation rows (one row each, a quarter of them owed), 2000 clients over 180 days.

The rollups are OPTIMIZEd as background merges would leave them. ``obligations_owed`` (migration
0004) is timed twice: as its view wrote it (the 375k answered obligations still there as deleted
rows: the state of a partition that is still receiving rows, and the worst case) and after
``OPTIMIZE ... FINAL CLEANUP`` (what its age-based cleanup merges do to a partition quiet for an
hour; they do not re-merge a partition already merged into ONE part, see the 0004 header). The
second is the ``open_obligations`` line; the first is printed and stored apart.

Before/after (issue: p95 <= 50 ms), ``.venv/bin/python -m bench.queries --runs 20`` at 10M
interactions, run back to back from a copy of fea71f2 ("before") and from 51c680e ("after"),
same machine, both times under other engineers' load. Wall times are dominated by that load
(2 cores, load average 4-7); CPU p50 (chdb's threads included) is the figure to compare.

Run 1 (21:26-21:31 UTC, load 4.4 -> 4.6):

| query | before p50 / p95 / CPU p50 ms | after p50 / p95 / CPU p50 ms |
|---|---|---|
| breaches_by_owner | 23.3 / 34.6 / 12.4 | 39.4 / 221.2 / 17.5 |
| channel_mix | 34.5 / 126.1 / 29.2 | 33.4 / 150.6 / 27.1 |
| client_attainment | 71.9 / 106.1 / 33.6 | 41.5 / 96.6 / 34.9 |
| open_obligations | 285.9 / 395.2 / 114.5 | 34.9 / 65.7 / 27.9 |
| open_obligations, owed not cleaned | | 149.7 / 183.5 / 78.7 |
| silence_list | 46.5 / 120.8 / 26.9 | 44.5 / 122.3 / 28.4 |
| trust_history | 16.2 / 34.9 / 9.8 | 10.7 / 12.4 / 10.1 |

Run 2 (21:34-21:38 UTC, load 6.0 -> 6.4):

| query | before p50 / p95 / CPU p50 ms | after p50 / p95 / CPU p50 ms |
|---|---|---|
| breaches_by_owner | 13.4 / 17.2 / 13.3 | 46.9 / 226.6 / 20.5 |
| channel_mix | 39.4 / 87.6 / 38.0 | 42.2 / 233.0 / 40.0 |
| client_attainment | 60.7 / 174.3 / 41.0 | 71.2 / 222.1 / 38.5 |
| open_obligations | 247.3 / 427.0 / 141.6 | 54.2 / 330.5 / 37.1 |
| open_obligations, owed not cleaned | | 257.5 / 423.4 / 96.6 |
| silence_list | 41.9 / 77.1 / 36.5 | 103.3 / 271.2 / 35.2 |
| trust_history | 12.5 / 23.8 / 11.7 | 27.4 / 33.5 / 12.2 |

Only open_obligations changed materially: CPU ~4x less once cleaned, ~1.5x less before the
cleanup. channel_mix's days side no longer reads the whole months (66 granules -> 0 by
``EXPLAIN indexes=1``) but those were cheap to discard; its cost is the 18k-row monthly read,
the GROUP BY and the share window (~20 ms of engine CPU here) plus ~6 ms of Python for 6000
rows. client_attainment is ~30 ms CPU, half of it merging the exact quantile states of 31 days.
The p95 <= 50 ms goal is not shown met on this machine: every query's CPU p50 is now <= 40 ms,
but wall p95 under load 4-7 on 2 cores is 2-6x the CPU time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
from sinks.clickhouse.queries import names, run_query

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

CLIENTS = 2000
DAYS = 180
START = "2025-01-01 00:00:00"

_INTERACTIONS = f"""
INSERT INTO interactions (event_id, channel, kind, direction, occurred_at, recorded_at, client_id,
    flags, source, schema_version, topic, partition, offset)
SELECT concat('e', toString(number)),
    ['email', 'phone', 'meeting'][number % 3 + 1],
    ['message', 'call', 'meeting'][number % 3 + 1],
    ['inbound', 'outbound', 'internal'][intHash32(number) % 3 + 1],
    toDateTime64('{START}', 6, 'UTC') + toIntervalSecond(intHash64(number) % ({DAYS} * 86400)),
    toDateTime64('{START}', 6, 'UTC') + toIntervalSecond(intHash64(number) % ({DAYS} * 86400)),
    concat('client-', toString(intHash32(number + 1000000007) % {CLIENTS})),
    [], 'bench', 1, 'interactions.v1', toInt32(number % 6), toInt64(number)
FROM numbers({{n:UInt64}})
SETTINGS max_insert_block_size = 1000000, optimize_on_insert = 0
"""

_FACTS = f"""
INSERT INTO sla_facts (fact_id, kind, client_id, at, policy_id, policy_version, obligation_id,
    channel, outcome, business_seconds, calendar_seconds, call_outcome, wait_seconds,
    answered_within_target, trust_from, trust_to, reason, schema_version, topic, partition, offset)
SELECT concat('f', toString(number)) AS fid,
    ['obligation_opened', 'fulfilled', 'fulfilled', 'breached', 'speed_of_answer',
     'trust_changed', 'silence', 'warning'][number % 8 + 1] AS k,
    concat('client-', toString(intHash32(number + 2000000007) % {CLIENTS})),
    toDateTime64('{START}', 6, 'UTC') + toIntervalSecond(intHash64(number) % ({DAYS} * 86400)),
    'default', 1, concat('o', toString(intDiv(number, 8))),
    if(k = 'speed_of_answer', 'phone', ['email', 'phone'][number % 2 + 1]),
    if(k = 'fulfilled', if(intHash32(number) % 5 = 0, 'met_late', 'met'), NULL),
    if(k = 'fulfilled', toFloat64(intHash32(number + 3000000007) % 28800), NULL),
    if(k = 'fulfilled', toFloat64(intHash32(number + 3000000007) % 28800) * 1.3, NULL),
    if(k = 'speed_of_answer', ['answered', 'answered', 'abandoned', 'missed'][number % 4 + 1], NULL),
    if(k = 'speed_of_answer', toFloat64(intHash32(number + 4000000007) % 120), NULL),
    if(k = 'speed_of_answer', intHash32(number + 4000000007) % 120 < 20, NULL),
    if(k = 'trust_changed', 'assured', NULL), if(k = 'trust_changed', 'credible', NULL),
    if(k = 'trust_changed', 'bench', NULL), 1, 'sla-facts.v1', toInt32(number % 6), toInt64(number)
FROM numbers({{n:UInt64}})
SETTINGS max_insert_block_size = 1000000, optimize_on_insert = 0
"""

_OBLIGATIONS = f"""
INSERT INTO obligations (obligation_id, client_id, kind, channel, opened_at, deadline, status,
    policy_id, policy_version, opened_fact_id, status_fact_id, updated_at, version)
SELECT concat('o', toString(number)), concat('client-', toString(intHash32(number + 5000000007) % {CLIENTS})),
    'first_response', 'email',
    toDateTime64('{START}', 6, 'UTC') + toIntervalSecond(intHash64(number) % ({DAYS} * 86400)) AS o,
    o + toIntervalHour(4),
    ['open', 'met', 'met', 'met', 'met_late', 'breached', 'waived', 'met'][number % 8 + 1],
    'default', 1, '', '', o, number
FROM numbers({{n:UInt64}})
SETTINGS optimize_on_insert = 0
"""

_CLIENTS = f"""
INSERT INTO clients SELECT concat('client-', toString(number)), concat('Client ', toString(number)),
    concat('owner', toString(number % 40), '@us.example'), NULL, 'default', 'default', 1
FROM numbers({CLIENTS})
"""


def _params() -> dict[str, dict[str, Any]]:
    now = datetime(2025, 6, 30, 12, tzinfo=UTC)
    window = {"since": date(2025, 5, 1), "until": date(2025, 6, 1)}
    return {
        "client_attainment": window,
        "breaches_by_owner": window,
        "channel_mix": window,
        "open_obligations": {"now": now},
        "silence_list": {"now": now},
        "trust_history": {
            "client_id": "client-7",
            "since": datetime(2025, 1, 1, tzinfo=UTC),
            "until": now,
        },
    }


def _time(client: Client, name: str, params: dict[str, Any], runs: int) -> dict[str, float]:
    """Run query ``name`` once to warm up, then ``runs`` times: rows, p50/p95 wall, CPU p50."""
    run_query(client, name, **params)
    took, cpu = [], []
    rows: list[dict[str, Any]] = []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        rows = run_query(client, name, **params)
        took.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    took.sort()
    return {
        "rows": len(rows),
        "p50_ms": statistics.median(took),
        "p95_ms": took[int(0.95 * (len(took) - 1))],
        # chdb runs in this process: CPU time of all its threads, robust to a busy machine
        "cpu_p50_ms": statistics.median(cpu),
    }


def main() -> None:
    """Seed, then time each named query."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k interaction rows")
    parser.add_argument("--rows", type=int, default=None, help="interaction rows")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    n = args.rows or (100_000 if args.quick else 10_000_000)
    root = Path(tempfile.mkdtemp(prefix="bench-queries-"))
    settings = ClickHouseSettings(url=f"chdb://{root}", database="bench_queries")
    client = connect(settings)
    migrate.migrate(client, settings.database)
    started = time.perf_counter()
    client.command(_INTERACTIONS, parameters={"n": n})
    client.command(_FACTS, parameters={"n": n // 4})
    client.command(_OBLIGATIONS, parameters={"n": n // 20})
    client.command(_CLIENTS)
    for rollup in ("sla_daily", "interactions_daily", "interactions_monthly", "client_activity"):
        client.command(f"OPTIMIZE TABLE {rollup} FINAL")
    seeded = time.perf_counter() - started
    params = _params()
    # obligations_owed as the view wrote it (closed obligations still there as deleted rows),
    # then as a CLEANUP merge leaves it (what its background merges do to a partition whose
    # parts are all older than an hour, see migration 0004).
    uncleaned = _time(client, "open_obligations", params["open_obligations"], args.runs)
    client.command("OPTIMIZE TABLE obligations_owed FINAL CLEANUP")
    sizes = {
        t: client.query(f"SELECT count() FROM {t}").result_rows[0][0]
        for t in (
            "interactions",
            "sla_facts",
            "obligations",
            "sla_daily",
            "interactions_daily",
            "interactions_monthly",
            "client_activity",
            "obligations_owed",
        )
    }
    print(f"seeded in {seeded:.1f}s: {sizes}")
    results: dict[str, dict[str, float]] = {}
    for name in [n for n in names() if n in params]:  # dashboard_* files have their own bench
        results[name] = _time(client, name, params[name], args.runs)
    client.close()
    # Kept out of "queries" (bench.run takes the slowest of those): printed and stored apart.
    results_shown = {**results, "open_obligations, owed not cleaned": uncleaned}
    print(f"\n{'query':<36} {'rows':>8} {'p50 ms':>9} {'p95 ms':>9} {'CPU p50 ms':>11}")
    for name, r in results_shown.items():
        print(
            f"{name:<36} {r['rows']:>8.0f} {r['p50_ms']:>9.1f} {r['p95_ms']:>9.1f}"
            f" {r['cpu_p50_ms']:>11.1f}"
        )
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"queries-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(
        json.dumps(
            {
                "interactions": n,
                "sizes": sizes,
                "queries": results,
                "open_obligations_owed_not_cleaned": uncleaned,
            },
            indent=2,
        )
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
