"""The client page's observed standard (issue 19 item 2): the line and the evidence equal SQL
written here against ``sla_facts`` (independent of migration 0006 and the named queries)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dashboard.browser import dump, parse
from tests.integration.dashboard.conftest import DAYS, NOW, Seeded

pytestmark = pytest.mark.integration

LATER = NOW + timedelta(hours=2)

_STANDING = (
    "FROM sla_facts FINAL WHERE kind = 'chased' AND at <= {now:DateTime64(6, 'UTC')} "
    "AND fact_id NOT IN (SELECT retracts FROM sla_facts WHERE kind = 'retracted' "
    "AND retracts IS NOT NULL)"
)


def _sql(seeded: Seeded, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = seeded.client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _url(seeded: Seeded, cid: str) -> str:
    now = LATER.isoformat().replace("+00:00", "Z")
    return f"{seeded.url}/clients/{cid}?now={now}&days={DAYS}"


def test_observed_standard_line_and_evidence_equal_sql(seeded: Seeded, tmp_path: Path) -> None:
    per_client = _sql(
        seeded,
        "SELECT client_id, count() AS n, countIf(overage_calendar_seconds IS NULL) AS early, "
        "arraySort(groupArray(calendar_seconds)) AS waits, "
        "arraySort(groupArray(target_business_seconds)) AS targets "
        f"{_STANDING} GROUP BY client_id ORDER BY n DESC, client_id",
        now=LATER,
    )
    assert per_client, "the demo's clients chase us (write again in conversations we owe)"
    busiest = per_client[0]
    cid = str(busiest["client_id"])
    page = parse(dump(_url(seeded, cid), tmp_path / "c"))
    values = {k[0]: v[0] for k, v in page.values.items()}
    waits: list[float] = busiest["waits"]
    targets: list[float] = busiest["targets"]
    assert int(values["chases"]) == busiest["n"] > 0
    # quantileExact: the element at floor(level * n) of the sorted values.
    assert float(values["chase_median_wait_seconds"]) == waits[int(0.5 * len(waits))]
    assert float(values["chase_p10_wait_seconds"]) == waits[int(0.1 * len(waits))]
    assert float(values["chase_target_business_seconds"]) == targets[int(0.5 * len(targets))]
    # The evidence: one row per standing chase (at most 50), each naming its obligation.
    rows = [a for t, a in page.elements if t == "tr" and "data-chase" in a]
    assert len(rows) == min(50, busiest["n"])
    chased = {
        r["obligation_id"]
        for r in _sql(
            seeded,
            f"SELECT DISTINCT obligation_id {_STANDING} AND client_id = {{c:String}}",
            now=LATER,
            c=cid,
        )
    }
    assert {a["data-obligation"] for a in rows} <= chased


def test_a_client_that_never_chased_says_so(seeded: Seeded, tmp_path: Path) -> None:
    chasing = {
        r["client_id"] for r in _sql(seeded, f"SELECT DISTINCT client_id {_STANDING}", now=LATER)
    }
    quiet = sorted(c.client_id for c in seeded.demo.directory.clients if c.client_id not in chasing)
    if not quiet:
        pytest.fail("every demo client chased: this test needs one that did not")
    dom = dump(_url(seeded, quiet[0]), tmp_path / "q")
    assert 'id="observed-standard"' in dom
    assert "no chase yet" in dom


def test_the_suggested_target_line_equals_the_latest_suggestion(
    seeded: Seeded, tmp_path: Path
) -> None:
    latest = _sql(
        seeded,
        "SELECT client_id, argMax(target_business_seconds, (at, fact_id)) AS s, "
        "argMax(reason, (at, fact_id)) AS reason FROM sla_facts FINAL "
        "WHERE kind = 'target_suggested' AND at <= {now:DateTime64(6, 'UTC')} "
        "GROUP BY client_id ORDER BY client_id",
        now=LATER,
    )
    assert latest, "the demo's impatient clients get a suggested target"
    row = latest[0]
    dom = dump(_url(seeded, str(row["client_id"])), tmp_path / "s")
    values = {k[0]: v[0] for k, v in parse(dom).values.items()}
    assert float(values["suggested_target_business_seconds"]) == row["s"]
    assert 'id="target-suggestion"' in dom
