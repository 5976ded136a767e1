"""The dashboard in real headless Chromium (Debian's package): numbers on the page = SQL rows.

Chromium loads the page from the loopback server and dumps the DOM after scripts ran; the test
reads the ``data-metric``/``data-value`` attributes and compares them with the named queries run
directly. A screenshot is saved to .artifacts/screenshots/dashboard.png for CI. Without chromium the test
fails in CI (CI=true) and skips elsewhere, naming the install script.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from sinks.clickhouse.queries import run_query
from tests.integration.dashboard.browser import dump, parse, screenshot
from tests.integration.dashboard.conftest import DAYS, NOW, Seeded

pytestmark = pytest.mark.integration

SINCE = NOW.date() - timedelta(days=DAYS - 1)
UNTIL = NOW.date() + timedelta(days=1)
PAGE = f"/?now={NOW.isoformat().replace('+00:00', 'Z')}&days={DAYS}"


def _num(text: str) -> float | None:
    return None if text == "" else float(text)


def test_page_in_chromium_shows_the_sql_numbers(seeded: Seeded, tmp_path: Path) -> None:
    dom = dump(seeded.url + PAGE, tmp_path / "a")
    assert "Shinrai" in dom
    assert "桜精機株式会社" in dom
    page = parse(dom)
    assert page.external == []  # offline: nothing loaded from elsewhere
    values = page.values

    since = SINCE
    attainment = run_query(seeded.client, "client_attainment", since=since, until=UNTIL)
    assert attainment
    for row in attainment:
        cid = row["client_id"]
        assert _num(values[("attainment", cid)][0]) == row["attainment"]
        assert _num(values[("p50", cid)][0]) == row["p50_business_seconds"]
        assert _num(values[("p90", cid)][0]) == row["p90_business_seconds"]
        for key in ("opened", "met", "met_late", "breached"):
            assert int(values[(key, cid)][0]) == row[key], (cid, key)

    trust = {
        r["client_id"]: r["trust_level"]
        for r in run_query(seeded.client, "dashboard_trust_levels", now=NOW)
    }
    for client in seeded.demo.directory.clients:
        shown = values[("trust_level", client.client_id)][0]
        assert shown == trust.get(client.client_id, "assured")

    open_rows = run_query(seeded.client, "open_obligations", now=NOW)
    per_client: dict[str, int] = defaultdict(int)
    for r in open_rows:
        per_client[r["client_id"]] += 1
    for client in seeded.demo.directory.clients:
        assert int(values[("open_now", client.client_id)][0]) == per_client[client.client_id]
    shown_left = sorted(float(v) for v in values[("seconds_left", None)])
    assert shown_left == sorted(float(r["seconds_left"]) for r in open_rows)
    assert any(r["seconds_left"] > 0 for r in open_rows)  # live time left on the page

    phone = run_query(seeded.client, "dashboard_phone", since=since, until=UNTIL)
    for r in phone:
        assert _num(values[("phone_answer_rate", r["client_id"])][0]) == r["answer_rate"]
        assert int(values[("phone_calls", r["client_id"])][0]) == r["calls"]

    owners = run_query(seeded.client, "breaches_by_owner", since=since, until=UNTIL)
    for r in owners:
        assert int(values[("owner_breaches", r["owner"])][0]) == r["breaches"]

    assert dom.count("<svg") >= 2  # the trend chart and the channel mix
    screenshot(seeded.url + PAGE, "dashboard", tmp_path / "b", height=2200)


def test_api_rows_equal_run_query(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        listing = http.get("/api").json()["queries"]
        assert "client_attainment" in listing
        assert listing["open_obligations"] == {"now": "DateTime64(6, 'UTC')"}
        got = http.get("/api/open_obligations", params={"now": NOW.isoformat()}).json()
        want = run_query(seeded.client, "open_obligations", now=NOW)
        assert [r["obligation_id"] for r in got["rows"]] == [r["obligation_id"] for r in want]
        assert [r["seconds_left"] for r in got["rows"]] == [r["seconds_left"] for r in want]
        att = http.get("/api/client_attainment", params={"now": NOW.isoformat(), "days": DAYS})
        assert att.json()["rows"] == [
            dict(r) for r in run_query(seeded.client, "client_attainment", since=SINCE, until=UNTIL)
        ]
        assert http.get("/api/nope").status_code == 404
        bad = http.get("/api/open_obligations", params={"now": NOW.isoformat(), "x": "1"})
        assert bad.status_code == 400
        assert "no parameter 'x'" in bad.json()["error"]
        assert http.get("/", params={"days": "0"}).status_code == 400
