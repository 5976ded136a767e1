"""sla_daily, every row and column the dashboards read, against the seeded facts counted in plain
Python (never from the sink, the views or SQL): the counters per (day, client, channel) with the
retracted breaches taken out, and each quantile column's p50/p90/p99 over its samples."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from schemas.events import CallOutcome
from schemas.facts import Fact, FactKind, Outcome
from sinks.clickhouse.sink import ClickHouseSink
from tests.integration.clickhouse.expected import linear_quantile
from tests.integration.clickhouse.seed import directory, scenario
from tests.integration.clickhouse.snapshots import rollups

pytestmark = pytest.mark.integration

_COUNTERS = ("opened", "met", "met_late", "breached", "waived", "warnings", "calls", "answered",
             "answered_within_target", "abandoned", "missed", "silences")  # fmt: skip
_SAMPLES = ("response_business", "response_calendar", "answer_wait", "abandon_wait")
_LEVELS = (0.5, 0.9, 0.99)


def _counted(f: Fact) -> list[str]:
    """The counters one standing fact adds one to."""
    kind = f.kind
    if kind is FactKind.OBLIGATION_OPENED:
        return ["opened"]
    if kind is FactKind.FULFILLED:
        return ["met" if f.outcome is Outcome.MET else "met_late"]
    if kind is FactKind.SPEED_OF_ANSWER:
        out = ["calls"]
        if f.call_outcome is not None:
            out.append(f.call_outcome.value)
        if f.answered_within_target:
            out.append("answered_within_target")
        return out
    names = {FactKind.BREACHED: "breached", FactKind.WAIVED: "waived",
             FactKind.WARNING: "warnings", FactKind.SILENCE: "silences"}  # fmt: skip
    return [names[kind]] if kind in names else []


def _sampled(f: Fact) -> dict[str, float]:
    """The samples one fact adds to the quantile columns (retractions do not take them out)."""
    if f.kind is FactKind.FULFILLED:
        found = {"response_business": f.business_seconds, "response_calendar": f.calendar_seconds}
    elif f.kind is FactKind.SPEED_OF_ANSWER and f.call_outcome is CallOutcome.ANSWERED:
        found = {"answer_wait": f.wait_seconds}
    elif f.kind is FactKind.SPEED_OF_ANSWER and f.call_outcome is CallOutcome.ABANDONED:
        found = {"abandon_wait": f.wait_seconds}
    else:
        found = {}
    return {k: v for k, v in found.items() if v is not None}


def _expected(facts: list[Fact], retracted: set[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows: dict[tuple[str, date, str], dict[str, Any]] = defaultdict(
        lambda: {"counts": defaultdict(int), "samples": defaultdict(list)}
    )
    for f in facts:
        if f.kind is FactKind.RETRACTED:
            continue  # its retracted fact is left out of the counters below, in its own row
        row = rows[(f.client_id, f.at.date(), f.channel.value if f.channel else "")]
        if f.fact_id not in retracted:
            for name in _counted(f):
                row["counts"][name] += 1
        for name, value in _sampled(f).items():
            row["samples"][name].append(value)
    return rows


def test_sla_daily_equals_the_facts_counted_in_python(
    sink_factory: Callable[..., ClickHouseSink],
) -> None:
    data = scenario(seed=17)
    sink = sink_factory()
    sink.upsert_clients(directory(), version=1)
    for i, (f, pos) in enumerate(data.facts, start=1):
        sink.add_fact(f, pos)
        if i % 37 == 0:  # several inserts: rows of one key in several parts, merged on read
            sink.flush()
    sink.flush()
    facts = [f for f, _ in data.facts]
    want = _expected(facts, data.truth.retracted)
    assert data.truth.retracted
    assert any(f.kind is FactKind.SPEED_OF_ANSWER for f in facts)
    got = rollups(sink.client, ("sla_daily",))["sla_daily"]
    assert sorted((r[0], r[1], r[2]) for r in got) == sorted(want)
    seen: set[str] = set()
    for row in got:
        expected = want[(row[0], row[1], row[2])]
        counters = dict(zip(_COUNTERS, row[3:15], strict=True))
        assert counters == {n: expected["counts"][n] for n in _COUNTERS}, row[:3]
        for name, quantiles in zip(_SAMPLES, row[16:20], strict=True):
            samples = expected["samples"][name]
            if not samples:
                assert quantiles == [None, None, None], (row[:3], name)
                continue
            seen.add(name)
            assert quantiles == pytest.approx(
                [linear_quantile(samples, q) for q in _LEVELS], rel=1e-12
            ), (row[:3], name)
    assert seen == set(_SAMPLES)  # every quantile column was compared on real samples
