"""The team's pages in headless Chromium: times in Asia/Tokyo, risk order, owner filter, a client
page, the due-day trend, Japanese labels, "catching up" and "starting".

Every expected number comes from SQL written here against the base tables (independent of the
named queries the pages run); screenshots go to ``.artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from dashboard import create_app
from dashboard.progress import WorkerProgress
from shinrai.settings import ClickHouseSettings, DashboardSettings
from sinks.clickhouse.client import connect
from tests.integration.dashboard.browser import dump, parse, screenshot
from tests.integration.dashboard.conftest import DAYS, NOW, Seeded, serve

pytestmark = pytest.mark.integration

TOKYO = ZoneInfo("Asia/Tokyo")
LATER = NOW + timedelta(hours=2)  # some of the demo's open obligations are overdue by then


def _q(now: datetime, **extra: str) -> str:
    params = {"now": now.isoformat().replace("+00:00", "Z"), "days": str(DAYS), **extra}
    return "?" + "&".join(f"{k}={v}" for k, v in params.items())


def _sql(seeded: Seeded, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = seeded.client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _owed(seeded: Seeded, now: datetime) -> list[dict[str, Any]]:
    return _sql(
        seeded,
        "SELECT o.obligation_id AS id, o.client_id AS client_id, o.deadline AS deadline, "
        "c.owner AS owner FROM (SELECT * FROM obligations FINAL WHERE status IN ('open', "
        "'breached') AND opened_at <= {now:DateTime64(6, 'UTC')}) AS o "
        "LEFT JOIN (SELECT client_id, owner FROM clients FINAL) AS c ON c.client_id = o.client_id",
        now=now,
    )


def _local(at: datetime) -> str:
    return at.replace(tzinfo=at.tzinfo or UTC).astimezone(TOKYO).strftime("%m-%d %H:%M")


def _rows_by_obligation(dom: str) -> dict[str, str]:
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r'<tr data-obligation="([^"]+)">(.*?)</tr>', dom, re.S)
    }


def test_times_are_tokyo_and_overdue_reads_overdue(seeded: Seeded, tmp_path: Path) -> None:
    dom = dump(seeded.url + "/" + _q(LATER), tmp_path / "p")
    # The zone is named, and the page's instant is NOW in Tokyo (14:30 + 2 h).
    assert re.search(r'id="zone">Asia/Tokyo \(JST\)<', dom)
    assert "2026-03-04 16:30:00 JST" in dom
    owed = _owed(seeded, LATER)
    assert owed, "the demo has open obligations at NOW"
    rows = _rows_by_obligation(dom)
    assert set(rows) == {r["id"] for r in owed}
    overdue = 0
    for r in owed:
        row = rows[r["id"]]
        shown = re.search(r"<time [^>]*>([^<]+)</time>", row)
        assert shown is not None
        assert shown.group(1) == _local(r["deadline"]), r
        left = (r["deadline"].replace(tzinfo=UTC) - LATER).total_seconds()
        text = re.search(r"<span [^>]*data-deadline=[^>]*>([^<]+)</span>", row)
        assert text is not None
        if left < 0:
            overdue += 1
            assert re.fullmatch(r"overdue (\d+d \d+h|\d+h \d\dm|\d+m \d\ds)", text.group(1)), row
        else:
            assert text.group(1).startswith("in "), row
        assert "-" not in text.group(1)
    assert overdue > 0
    screenshot(seeded.url + "/" + _q(LATER), "dashboard-overdue", tmp_path / "s", height=2200)


def test_clients_are_ordered_by_risk(seeded: Seeded, tmp_path: Path) -> None:
    dom = dump(seeded.url + "/" + _q(LATER), tmp_path / "p")
    shown = re.findall(r'<tr data-client="([^"]+)" data-rank="(\d+)">', dom)
    owed = _owed(seeded, LATER)
    trust = {
        r["client_id"]: r["level"]
        for r in _sql(
            seeded,
            "SELECT client_id, argMax(trust_to, (at, fact_id)) AS level FROM trust_changes FINAL "
            "WHERE retracted = 0 AND at <= {now:DateTime64(6, 'UTC')} GROUP BY client_id",
            now=LATER,
        )
    }
    week = {
        r["client_id"]: r["b"]
        for r in _sql(
            seeded,
            "SELECT client_id, sum(breached) AS b FROM sla_daily WHERE day >= {s:Date} "
            "AND day <= {u:Date} GROUP BY client_id",
            s=LATER.date() - timedelta(days=6),
            u=LATER.date(),
        )
    }
    ladder = ["distrust", "anxious", "assured", "credible", "trusted"]
    names = {c.client_id: c.name for c in seeded.demo.directory.clients}

    def key(cid: str) -> tuple[Any, ...]:
        mine = [r["deadline"].replace(tzinfo=UTC) for r in owed if r["client_id"] == cid]
        late = sum(1 for d in mine if d < LATER)
        nxt = (min(mine) - LATER).total_seconds() if mine else None
        return (
            -late,
            nxt is None,
            nxt or 0.0,
            ladder.index(trust.get(cid, "assured")),
            -week.get(cid, 0),
            names[cid],
        )

    want = sorted(names, key=key)
    assert [cid for cid, _ in shown] == want
    assert [int(rank) for _, rank in shown] == list(range(1, len(want) + 1))
    # The riskiest client has an overdue obligation at LATER, and its next deadline shows it.
    assert key(want[0])[0] < 0
    page = parse(dom)
    assert float(page.values[("next_deadline", want[0])][0]) < 0


def test_owner_filter_shows_only_that_owners_clients(seeded: Seeded, tmp_path: Path) -> None:
    owners = _sql(
        seeded,
        "SELECT owner, groupArray(client_id) AS ids FROM clients FINAL "
        "GROUP BY owner ORDER BY owner",
    )
    assert len(owners) >= 2
    home = dump(seeded.url + "/" + _q(LATER), tmp_path / "home")
    links = re.findall(r'<a href="([^"]+)" data-owner="([^"]*)"', home)
    assert {o for _, o in links} == {"", *(r["owner"] for r in owners)}
    # Owners by name (the directory's staff), their address kept as the filter value.
    for member in seeded.demo.directory.staff.members:
        if member.email in {r["owner"] for r in owners}:
            assert f'title="{member.email}">{member.name}</span>' in home
    owed = _owed(seeded, LATER)
    for r in owners:
        owner, ids = r["owner"], set(r["ids"])
        href = next(h for h, o in links if o == owner)
        dom = dump(seeded.url + href.replace("&amp;", "&"), tmp_path / f"o-{len(ids)}-{owner[:5]}")
        assert set(re.findall(r'<tr data-client="([^"]+)" data-rank', dom)) == ids, owner
        assert set(_rows_by_obligation(dom)) == {o["id"] for o in owed if o["owner"] == owner}
        assert re.search(rf'data-owner="{re.escape(owner)}" class="sel"', dom)
    busiest = max(owners, key=lambda r: sum(1 for o in owed if o["owner"] == r["owner"]))
    href = next(h for h, o in links if o == busiest["owner"]).replace("&amp;", "&")
    screenshot(seeded.url + href, "dashboard-owner", tmp_path / "s", height=1400)


def _client_with_most_answers(seeded: Seeded) -> str:
    rows = _sql(
        seeded,
        "SELECT client_id, count() AS n FROM sla_facts WHERE kind = 'fulfilled' "
        "GROUP BY client_id ORDER BY n DESC, client_id LIMIT 1",
    )
    return str(rows[0]["client_id"])


def test_client_page_numbers_equal_sql(seeded: Seeded, tmp_path: Path) -> None:
    cid = _client_with_most_answers(seeded)
    url = f"{seeded.url}/clients/{cid}{_q(LATER)}"
    dom = dump(url, tmp_path / "c")
    page = parse(dom)
    name = next(c.name for c in seeded.demo.directory.clients if c.client_id == cid)
    assert f">{name}</h1>" in dom
    assert "2026-03-04 16:30:00 JST" in dom

    # Open items: the client's obligations still owed at LATER, each with its Tokyo deadline.
    owed = [r for r in _owed(seeded, LATER) if r["client_id"] == cid]
    assert owed
    rows = _rows_by_obligation(dom)
    assert set(rows) == {r["id"] for r in owed}
    for r in owed:
        assert f">{_local(r['deadline'])}</time>" in rows[r["id"]]

    # Trust history: every standing change, with its reason, newest first, times in Tokyo.
    changes = _sql(
        seeded,
        "SELECT at, trust_to, reason FROM trust_changes FINAL WHERE client_id = {c:String} "
        "AND retracted = 0 AND at <= {now:DateTime64(6, 'UTC')} ORDER BY at DESC",
        c=cid,
        now=LATER,
    )
    assert changes, "the busiest demo client's trust moved"
    assert [
        v
        for _, a in page.elements
        if a.get("data-metric") == "trust_change"
        for v in [a.get("data-value")]
    ] == [r["trust_to"] for r in changes]
    for r in changes:
        assert r["reason"]
        assert r["reason"] in dom.replace("&gt;", ">")
        stamp = r["at"].replace(tzinfo=UTC).astimezone(TOKYO).strftime("%Y-%m-%d %H:%M JST")
        assert stamp in dom

    # Response times against the client's own target, bucketed by the SQL here.
    want = _sql(
        seeded,
        "SELECT multiIf(r <= 0.25, '≤ 25%', r <= 0.5, '≤ 50%', r <= 0.75, '≤ 75%', "
        "r <= 1, '≤ 100%', r <= 1.5, '≤ 150%', r <= 2, '≤ 200%', '> 200%') AS b, count() AS n "
        "FROM (SELECT business_seconds / target_business_seconds AS r FROM sla_facts FINAL "
        "WHERE client_id = {c:String} AND kind = 'fulfilled' AND business_seconds IS NOT NULL "
        "AND target_business_seconds > 0 AND at >= {s:DateTime64(6, 'UTC')} "
        "AND at <= {now:DateTime64(6, 'UTC')}) GROUP BY b",
        c=cid,
        s=_local_window_start(LATER),
        now=LATER,
    )
    got = {k[1]: int(v[0]) for k, v in page.values.items() if k[0] == "response_bucket"}
    assert {b: n for b, n in got.items() if n} == {r["b"]: r["n"] for r in want}
    assert sum(got.values()) == int(page.values[("answers", None)][0]) > 0

    # The timeline holds the client's interactions and facts (newest 300).
    kinds = Counter(
        a.get("data-source") for t, a in page.elements if t == "tr" and "data-source" in a
    )
    assert kinds["interaction"] > 0
    assert kinds["fact"] > 0
    assert sum(kinds.values()) <= 300
    screenshot(url, "client-page", tmp_path / "s", height=2600)

    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        missing = http.get("/clients/no-such-client" + _q(LATER))
        assert missing.status_code == 404
        assert "No such client" in missing.text


def _local_window_start(now: datetime) -> datetime:
    first = now.astimezone(TOKYO).date() - timedelta(days=DAYS - 1)
    return datetime.combine(first, datetime.min.time(), tzinfo=TOKYO).astimezone(UTC)


def test_trend_is_by_due_day_and_marks_thin_days(seeded: Seeded, tmp_path: Path) -> None:
    dom = dump(seeded.url + "/" + _q(NOW), tmp_path / "t")
    page = parse(dom)
    want = _sql(
        seeded,
        "SELECT toString(toDate(deadline, 'Asia/Tokyo')) AS day, count() AS due, "
        "countIf(status = 'met') AS met, countIf(status = 'met_late') AS met_late, "
        "countIf(status IN ('open', 'breached')) AS breached, countIf(status = 'waived') AS w "
        "FROM obligations FINAL WHERE deadline >= {s:DateTime64(6, 'UTC')} "
        "AND deadline <= {now:DateTime64(6, 'UTC')} AND status != 'retracted' GROUP BY day",
        s=_local_window_start(NOW),
        now=NOW,
    )
    assert want
    for r in want:
        for key in ("due", "met", "met_late", "breached"):
            assert int(page.values[(f"due_{key}", r["day"])][0]) == r[key], (r["day"], key)
    # A day with fewer than 5 graded obligations has no attainment point; it is marked.
    thin = {r["day"] for r in want if 0 < r["due"] - r["w"] < 5}
    marked = {a.get("data-marked") for _, a in page.elements if "data-marked" in a}
    assert thin
    assert marked == thin
    for day in thin:
        row = re.search(rf'<tr data-day="{day}">(.*?)</tr>', dom, re.S)
        assert row is not None
        assert "too few obligations" in row.group(1)


def test_japanese_labels_follow_accept_language(seeded: Seeded, tmp_path: Path) -> None:
    ja = dump(seeded.url + "/" + _q(LATER), tmp_path / "ja", lang="ja")
    en = dump(seeded.url + "/" + _q(LATER), tmp_path / "en", lang="en-US")
    assert "<h2>顧客（リスク順）</h2>" in ja
    assert "Clients (riskiest first)" not in ja
    assert "<h2>Clients (riskiest first)</h2>" in en
    assert "初回返信" in ja  # obligation kinds in words
    assert "first response" in en
    assert re.search(
        r'data-value="(assured|credible|trusted|anxious|distrust)">[不安信頼用心]+<', ja
    )
    screenshot(seeded.url + "/" + _q(LATER), "dashboard-ja", tmp_path / "s", lang="ja")


def test_catching_up_says_how_far_behind(seeded: Seeded, tmp_path: Path) -> None:
    newest = _sql(
        seeded,
        "SELECT max(occurred_at) AS m FROM interactions FINAL "
        "WHERE occurred_at <= {now:DateTime64(6, 'UTC')}",
        now=LATER,
    )[0]["m"]
    app = create_app(
        lambda: connect(seeded.settings, create=False),
        clock=lambda: LATER,
        default_days=DAYS,
        display=DashboardSettings(time_zone="Asia/Tokyo"),
        progress=lambda: WorkerProgress(partitions_catching_up=3, records_behind=1234),
    )
    try:
        with serve(app) as url:
            dom = dump(url + "/", tmp_path / "cu")
            page = parse(dom)
            assert 'id="catching-up"' in dom
            assert "Catching up" in dom
            behind = float(page.values[("behind_seconds", None)][0])
            assert behind == (LATER - newest.replace(tzinfo=UTC)).total_seconds()
            assert page.values[("records_behind", None)] == ["1234"]
            screenshot(url + "/", "catching-up", tmp_path / "s", height=900, min_bytes=5_000)
    finally:
        app.state.close_clients()


def test_before_the_database_exists_the_page_says_starting(seeded: Seeded, tmp_path: Path) -> None:
    missing = ClickHouseSettings(url=seeded.settings.url, database="not_created_yet")
    # A database created but not migrated yet (the worker's migrations still running).
    bare = ClickHouseSettings(url=seeded.settings.url, database="created_not_migrated")
    seeded.client.command("CREATE DATABASE IF NOT EXISTS created_not_migrated")
    app = create_app(
        lambda: connect(missing, create=False),
        clock=lambda: NOW,
        display=DashboardSettings(time_zone="Asia/Tokyo"),
    )
    unmigrated = create_app(
        lambda: connect(bare, create=False),
        clock=lambda: NOW,
        display=DashboardSettings(time_zone="Asia/Tokyo"),
    )
    try:
        with serve(unmigrated) as url, httpx.Client(base_url=url, timeout=30) as http:
            got = http.get("/")
            assert got.status_code == 503
            assert re.search(r"id=.starting.", got.text), got.text[:500]
        with serve(app) as url:
            with httpx.Client(base_url=url, timeout=30) as http:
                for path in ("/", "/clients/x"):
                    got = http.get(path)
                    assert got.status_code == 503
                    assert got.headers["retry-after"] == "5"
                    assert re.search(r"id=.starting.", got.text), got.text[:500]
                    assert "Traceback" not in got.text
            dom = dump(url + "/", tmp_path / "st", lang="ja")
            assert "起動中" in dom
            screenshot(url + "/", "starting", tmp_path / "s", height=600, min_bytes=2_000)
    finally:
        app.state.close_clients()
        unmigrated.state.close_clients()


def test_without_setting_or_directory_the_page_says_utc_and_how_to_change_it(
    seeded: Seeded,
) -> None:
    app = create_app(
        lambda: connect(seeded.settings, create=False),
        clock=lambda: NOW,
        default_days=DAYS,
        display=DashboardSettings(),
    )
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            page = http.get("/").text
            assert "<b id='zone'>UTC</b> (set SHINRAI_DASHBOARD__TIME_ZONE to change it)" in page
            assert "2026-03-04 05:30:00 UTC" in page
    finally:
        app.state.close_clients()
