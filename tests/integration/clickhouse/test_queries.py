"""Every named dashboard query on seeded data, against numbers computed in plain Python.

The expectations are derived from the generator's records and ground truth (never from the
sink, the rollups or SQL), using the definitions documented in each query file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from schemas.events import Direction
from schemas.facts import FactKind
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
from sinks.clickhouse.queries import names, run_query
from sinks.clickhouse.sink import ClickHouseSink
from tests.integration.clickhouse.expected import linear_quantile, tally
from tests.integration.clickhouse.seed import NOW, OWNERS, T0, Scenario, directory, scenario

pytestmark = pytest.mark.integration

SINCE, UNTIL = (T0 + timedelta(days=2)).date(), (T0 + timedelta(days=11)).date()


@pytest.fixture
def seeded(sink_factory: Callable[..., ClickHouseSink]) -> tuple[ClickHouseSink, Scenario]:
    data = scenario(seed=11)
    sink = sink_factory()
    sink.upsert_clients(directory(), version=1)
    for i, (f, pos) in enumerate(data.facts):
        sink.add_fact(f, pos)
        if i % 50 == 49:  # several flushes, so retractions also resolve from stored facts
            sink.flush()
    for e, pos in data.events:
        sink.add_interaction(e, pos)
    sink.flush()
    return sink, data


def _in_window(at: datetime, since: date, until: date) -> bool:
    return since <= at.date() < until


def test_the_issue_queries_exist() -> None:
    # Other dashboards add their own files (dashboard_*); these six are this module's.
    assert set(names()) >= set(
        [
            "breaches_by_owner",
            "channel_mix",
            "client_attainment",
            "open_obligations",
            "silence_list",
            "trust_history",
        ]
    )


def _expected_attainment(data: Scenario) -> dict[str, dict[str, object]]:
    facts = [
        f
        for f, _ in data.facts
        if _in_window(f.at, SINCE, UNTIL) and f.fact_id not in data.truth.retracted
    ]
    assert all(f.business_seconds is not None for f in facts if f.kind is FactKind.FULFILLED)
    counts, samples = tally(facts, lambda f: f.client_id)
    out: dict[str, dict[str, object]] = {}
    for cid, c in counts.items():
        due = c["met"] + c["breached"]
        s = samples.get(cid)
        out[cid] = {
            "opened": c["opened"],
            "met": c["met"],
            "met_late": c["met_late"],
            "breached": c["breached"],
            "waived": c["waived"],
            "attainment": c["met"] / due if due else None,
            "p50_business_seconds": linear_quantile(s, 0.5) if s else None,
            "p90_business_seconds": linear_quantile(s, 0.9) if s else None,
        }
    return out


def test_client_attainment(seeded: tuple[ClickHouseSink, Scenario]) -> None:
    sink, data = seeded
    rows = run_query(sink.client, "client_attainment", since=SINCE, until=UNTIL)
    expected = _expected_attainment(data)
    assert [r["client_id"] for r in rows] == sorted(expected)
    for row in rows:
        want = expected[row["client_id"]]
        for key in ("opened", "met", "met_late", "breached", "waived"):
            assert row[key] == want[key], (row["client_id"], key)
        for key in ("attainment", "p50_business_seconds", "p90_business_seconds"):
            assert row[key] == pytest.approx(want[key], rel=1e-9), (row["client_id"], key)
    # The seed must exercise retractions inside the window, or this test proves less.
    assert any(
        _in_window(f.at, SINCE, UNTIL) for f, _ in data.facts if f.kind is FactKind.RETRACTED
    )


def test_open_obligations(seeded: tuple[ClickHouseSink, Scenario]) -> None:
    sink, data = seeded
    rows = run_query(sink.client, "open_obligations", now=NOW)
    t = data.truth
    owed = [o for o, s in t.final_status.items() if s in ("open", "breached")]
    owed.sort(key=lambda o: (t.deadline[o], o))
    assert [r["obligation_id"] for r in rows] == owed
    for row in rows:
        oid = row["obligation_id"]
        assert row["status"] == t.final_status[oid]
        assert row["deadline"] == t.deadline[oid]
        assert row["seconds_left"] == pytest.approx((t.deadline[oid] - NOW).total_seconds())
        assert row["owner"] == OWNERS.get(t.client_of[oid], "")
    assert {r["status"] for r in rows} == {"open", "breached"}


def test_breaches_by_owner(seeded: tuple[ClickHouseSink, Scenario]) -> None:
    sink, data = seeded
    rows = run_query(sink.client, "breaches_by_owner", since=SINCE, until=UNTIL)
    per_client = _expected_attainment(data)
    agg: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cid, c in per_client.items():
        owner = OWNERS.get(cid, "")
        agg[owner]["breaches"] += int(c["breached"])  # type: ignore[call-overload]
        agg[owner]["met"] += int(c["met"])  # type: ignore[call-overload]
        agg[owner]["clients_breached"] += int(c["breached"] > 0)  # type: ignore[operator]
    order = sorted(agg, key=lambda o: (-agg[o]["breaches"], o))
    assert [r["owner"] for r in rows] == order
    for row in rows:
        want = agg[row["owner"]]
        assert row["breaches"] == want["breaches"]
        assert row["clients_breached"] == want["clients_breached"]
        assert row["met"] == want["met"]
        due = want["met"] + want["breaches"]
        assert row["attainment"] == pytest.approx(want["met"] / due if due else None)


def test_trust_history(seeded: tuple[ClickHouseSink, Scenario]) -> None:
    sink, data = seeded
    since, until = T0 + timedelta(days=1), T0 + timedelta(days=13)
    for cid in ("c1", "c3"):
        rows = run_query(sink.client, "trust_history", client_id=cid, since=since, until=until)
        want = sorted(
            (f.at, f.fact_id, f.trust_from, f.trust_to, f.reason)
            for f, _ in data.facts
            if f.kind is FactKind.TRUST_CHANGED and f.client_id == cid and since <= f.at < until
        )
        got = [(r["at"], r["fact_id"], r["trust_from"], r["trust_to"], r["reason"]) for r in rows]
        assert got == want


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (SINCE, UNTIL),  # inside one month: days only
        (date(2025, 3, 1), date(2025, 4, 1)),  # exactly one calendar month: the monthly rollup
        (date(2025, 2, 20), date(2025, 4, 1)),  # partial February (days) + all of March
        (date(2025, 3, 1), (T0 + timedelta(days=9)).date()),  # starts on a month, ends inside
    ],
)
def test_channel_mix(seeded: tuple[ClickHouseSink, Scenario], since: date, until: date) -> None:
    sink, data = seeded
    rows = run_query(sink.client, "channel_mix", since=since, until=until)
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e, _ in data.events:
        if e.client_id and _in_window(e.occurred_at, since, until):
            cell = cells[(e.client_id, e.channel.value)]
            cell["total"] += 1
            cell[e.direction.value] += 1
    totals: dict[str, int] = defaultdict(int)
    for (cid, _), cell in cells.items():
        totals[cid] += cell["total"]
    assert [(r["client_id"], r["channel"]) for r in rows] == sorted(cells)
    for row in rows:
        cell = cells[(row["client_id"], row["channel"])]
        assert row["inbound"] == cell["inbound"]
        assert row["outbound"] == cell["outbound"]
        assert row["total"] == cell["total"]
        assert row["share"] == pytest.approx(cell["total"] / totals[row["client_id"]])


def test_silence_list(seeded: tuple[ClickHouseSink, Scenario]) -> None:
    sink, data = seeded
    rows = run_query(sink.client, "silence_list", now=NOW)
    last_silence = {
        f.client_id: f.at for f, _ in data.facts if f.kind is FactKind.SILENCE and f.at <= NOW
    }
    last_out: dict[str, datetime] = {}
    for e, _ in data.events:
        if e.client_id and e.direction is Direction.OUTBOUND and e.occurred_at <= NOW:
            last_out[e.client_id] = max(last_out.get(e.client_id, e.occurred_at), e.occurred_at)
    silent = [c for c, at in last_silence.items() if c not in last_out or last_out[c] < at]
    silent.sort(key=lambda c: (c in last_out, last_out.get(c, T0), c))
    assert [r["client_id"] for r in rows] == silent
    assert set(silent) == {"c2", "c4", "c5"}  # the seed's design; c3 was answered afterwards
    for row in rows:
        cid = row["client_id"]
        assert row["last_silence_at"] == last_silence[cid]
        assert row["last_outbound_at"] == last_out.get(cid)
        if cid in last_out:
            days = (NOW - last_out[cid]).total_seconds() / 86400
            assert row["days_since_outbound"] == pytest.approx(days)
        else:
            assert row["days_since_outbound"] is None


_SPREAD = """
INSERT INTO interactions (event_id, channel, kind, direction, occurred_at, recorded_at, client_id,
    flags, source, schema_version, topic, partition, offset)
SELECT concat('e', toString(number)), ['email', 'phone', 'meeting'][number % 3 + 1],
    ['message', 'call', 'meeting'][number % 3 + 1],
    ['inbound', 'outbound', 'internal'][intHash32(number) % 3 + 1],
    toDateTime64('2025-01-01 00:00:00', 6, 'UTC') + toIntervalSecond(intHash64(number) % 15552000),
    toDateTime64('2025-01-01 00:00:00', 6, 'UTC'), concat('k', toString(number % 7)),
    [], 'test', 1, 'interactions.v1', 0, toInt64(number)
FROM numbers({start:UInt64}, 10000)
"""


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (date(2025, 1, 15), date(2025, 4, 10)),  # days, two whole months, days
        (date(2025, 2, 1), date(2025, 2, 28)),  # a month minus its last day
        (date(2024, 12, 1), date(2025, 1, 2)),  # a month without data, then one day
        (date(2025, 3, 31), date(2025, 5, 1)),  # one day, then a whole month
        (date(2025, 1, 15), date(2025, 2, 10)),  # two partial months, no whole one between
        (date(2025, 5, 1), date(2025, 7, 1)),  # whole months only: no day from the daily side
    ],
)
def test_channel_mix_months_and_days_count_each_day_once(
    ch_settings: Callable[..., ClickHouseSettings], since: date, until: date
) -> None:
    """Six months of interactions in three inserts: channel_mix (whole months from the monthly
    rollup, the rest from the daily one) equals a count over the raw rows."""
    settings = ch_settings()
    client = connect(settings)
    try:
        migrate.migrate(client, settings.database)
        for start in (0, 10_000, 20_000):
            client.command(_SPREAD, parameters={"start": start}, settings={"async_insert": 0})
        got = run_query(client, "channel_mix", since=since, until=until)
        raw = client.query(
            "SELECT client_id, channel, countIf(direction = 'inbound'), "
            "countIf(direction = 'outbound'), count() FROM interactions "
            "WHERE toDate(occurred_at) >= {since:Date} AND toDate(occurred_at) < {until:Date} "
            "GROUP BY client_id, channel ORDER BY client_id, channel",
            parameters={"since": since, "until": until},
        ).result_rows
        assert [
            (r["client_id"], r["channel"], r["inbound"], r["outbound"], r["total"]) for r in got
        ] == [tuple(r) for r in raw]
    finally:
        client.close()
