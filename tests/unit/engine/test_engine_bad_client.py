"""One bad client never stops the others: policies and calendars are checked where they enter,
and an input the engine still cannot compute is rejected with its client and reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from pydantic import ValidationError

from engine.core import Engine
from engine.replay import replay
from schemas.base import decode, encode
from schemas.calendars import BusinessCalendar, TimeInterval
from schemas.directory import Client, ClientDirectory
from schemas.facts import Fact, FactKind
from schemas.policies import BusinessDuration, SlaPolicy, schedule_problems
from shinrai.cli import main
from shinrai.errors import InputRejected
from tests.unit.engine.builders import IN, OUT, Event, at, email, of_kind, policy_change
from tests.unit.engine.test_engine_properties import SETTINGS, logs

pytestmark = pytest.mark.unit

ONE_HOUR_A_WEEK = BusinessCalendar(
    calendar_id="mondays",
    timezone="UTC",
    weekly_hours={0: (TimeInterval(start=time(9), end=time(10)),)},
)


def _every_monday_a_holiday() -> BusinessCalendar:
    """Open one hour on Mondays, but every Monday for eleven years is a holiday: passes the
    model (it has hours, no business-duration rule is infeasible on paper), yet no deadline
    exists within the engine's ten-year scan."""
    first = date(2025, 12, 29)  # a Monday
    mondays = frozenset(first + timedelta(weeks=w) for w in range(11 * 53))
    return ONE_HOUR_A_WEEK.model_copy(
        update={"calendar_id": "all-mondays-off", "extra_holidays": mondays}
    )


BLOCKED = _every_monday_a_holiday()
SLOW = SlaPolicy(policy_id="slow", first_response=BusinessDuration(minutes=60 * 24 * 365))


# -- the edge ---------------------------------------------------------------------------------


def test_a_business_duration_that_cannot_end_in_ten_years_is_named_with_policy_and_calendar() -> (
    None
):
    problems = schedule_problems(SLOW, ONE_HOUR_A_WEEK)
    assert len(problems) == 1
    assert "'slow' first_response" in problems[0]
    assert "'mondays'" in problems[0]
    assert "60 business minutes a week" in problems[0]
    # The same target fits a 24x7 calendar, and a short one fits an hour a week.
    always = BusinessCalendar(calendar_id="24x7", timezone="UTC", always_open=True)
    assert schedule_problems(SLOW, always) == []
    assert schedule_problems(SlaPolicy.default(), ONE_HOUR_A_WEEK) == []


def test_policy_change_events_and_the_directory_refuse_an_infeasible_pair() -> None:
    with pytest.raises(ValidationError, match=r"client acme: policy 'slow' first_response"):
        policy_change("p1", "2026-03-02T09:00", SLOW, ONE_HOUR_A_WEEK, client="acme")
    client = Client(
        client_id="acme", name="Acme", owner="o", policy_id="slow", calendar_id="mondays"
    )
    with pytest.raises(ValidationError, match=r"client acme: policy 'slow'"):
        ClientDirectory(clients=(client,), policies=(SLOW,), calendars=(ONE_HOUR_A_WEEK,))


def test_rule_lengths_and_silence_cadence_are_bounded() -> None:
    with pytest.raises(ValidationError, match="less than or equal"):
        BusinessDuration(minutes=3650 * 24 * 60 + 1)
    with pytest.raises(ValidationError, match="less than or equal"):
        SlaPolicy(policy_id="p", silence_business_days=2501)


# -- the engine -------------------------------------------------------------------------------


def test_an_inbound_without_a_computable_deadline_is_rejected_and_the_client_goes_on() -> None:
    engine = Engine(allowed_lateness=timedelta(0))
    st, _ = engine.apply_in_order(
        None, policy_change("p", "2026-03-02T08:00", SlaPolicy.default(), BLOCKED)
    )
    with pytest.raises(InputRejected) as caught:
        engine.apply_in_order(st, email("m1", "2026-03-02T10:00", IN))
    exc = caught.value
    assert (exc.client_id, exc.event_id) == ("c1", "m1")
    assert "no business day within 3660 days" in exc.reason
    assert "client c1, event m1" in str(exc)
    assert st.open == {}  # nothing half-opened
    st, out = engine.apply_in_order(st, email("m2", "2026-03-02T11:00", OUT))
    assert out == []
    assert "m1" in st.seen  # a re-delivery of the rejected input is a duplicate


def test_a_rejected_policy_change_leaves_the_policy_in_force() -> None:
    engine = Engine(allowed_lateness=timedelta(0))
    st, opened = engine.apply_in_order(None, email("m1", "2026-03-03T10:00", IN))
    assert len(opened) == 1
    with pytest.raises(InputRejected, match="event p1"):
        engine.apply_in_order(
            st, policy_change("p1", "2026-03-03T11:00", SlaPolicy.default(), BLOCKED)
        )
    assert st.policy is None
    assert st.calendar is None
    ob = next(iter(st.open.values()))
    assert ob.deadline == at("2026-03-03T18:00")  # not re-evaluated


# -- replay -----------------------------------------------------------------------------------


def _broken_client(start: datetime) -> list[Event]:
    """A client whose calendar blocks every deadline, with inbounds, a reply and a silence."""
    return [
        policy_change("bad-p", start.isoformat(), SlaPolicy.default(), BLOCKED, client="bad"),
        email("bad-1", start + timedelta(minutes=5), IN, client="bad", thread="x"),
        email("bad-2", start + timedelta(hours=30), IN, client="bad", thread="y"),
        email("bad-3", start + timedelta(hours=31), OUT, client="bad", thread="y"),
    ]


def _by_client(facts: list[Fact]) -> dict[str, list[Fact]]:
    out: dict[str, list[Fact]] = {}
    for f in facts:
        out.setdefault(f.client_id, []).append(f)
    return out


@SETTINGS
@given(events=logs())
def test_replay_gives_the_other_clients_exactly_their_facts_without_the_broken_one(
    events: list[Event],
) -> None:
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    end = max(ev.occurred_at for ev in events) + timedelta(days=20)
    alone = list(replay(events, Engine(allowed_lateness=timedelta(minutes=10)), watermark_end=end))
    rejected: list[tuple[str | None, str]] = []
    mixed = list(
        replay(
            [*events, *_broken_client(start)],
            Engine(allowed_lateness=timedelta(minutes=10)),
            watermark_end=end,
            on_reject=lambda ev, exc: rejected.append((exc.event_id, exc.client_id)),
        )
    )
    with_bad = _by_client(mixed)
    assert {k: v for k, v in with_bad.items() if k != "bad"} == _by_client(alone)
    # Both inbounds of the bad client are rejected by name; its silence timer too (no event).
    assert ("bad-1", "bad") in rejected
    assert ("bad-2", "bad") in rejected
    assert {client for _, client in rejected} == {"bad"}
    assert of_kind(with_bad.get("bad", []), FactKind.OBLIGATION_OPENED) == []


def test_replay_without_a_reject_handler_still_raises() -> None:
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    with pytest.raises(InputRejected):
        list(replay(_broken_client(start), Engine()))


def test_replay_command_writes_rejects_with_line_event_client_and_reason(tmp_path: Path) -> None:
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    good = [
        email("g-in", start + timedelta(hours=2), IN, client="good"),
        email("g-out", start + timedelta(hours=3), OUT, client="good"),
    ]
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"\n".join(encode(e) for e in [*_broken_client(start), *good]) + b"\n")
    facts_out, rejects = tmp_path / "facts.jsonl", tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(log),
            "-o",
            str(facts_out),
            "--rejects",
            str(rejects),
            "--until",
            "2026-03-05T00:00:00+00:00",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "line 2: event bad-1 of client bad: rejected: " in result.stderr
    records = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    by_event = {r["event_id"]: r for r in records}
    assert by_event["bad-1"]["line"] == 2
    assert by_event["bad-2"]["line"] == 3
    assert all(r["client_id"] == "bad" for r in records)
    assert "no business day within 3660 days" in by_event["bad-1"]["reason"]
    facts = [decode(Fact, line) for line in facts_out.read_bytes().splitlines()]
    good_facts = [f for f in facts if f.client_id == "good"]
    assert [f.kind for f in good_facts if f.kind is FactKind.FULFILLED] == [FactKind.FULFILLED]
    strict = CliRunner().invoke(main, ["replay", str(log), "--strict", "--show-rejected", "0"])
    assert strict.exit_code == 1


def test_replay_rejects_a_calendar_without_hours_at_its_line_and_goes_on(tmp_path: Path) -> None:
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    change = orjson.loads(encode(policy_change("closed-p", start.isoformat(), SlaPolicy.default())))
    change["client_id"] = "closed"
    change["calendar"]["weekly_hours"] = {}
    lines = [
        orjson.dumps(change),
        encode(email("c-in", start + timedelta(hours=1), IN, client="closed")),
        encode(email("g-in", start + timedelta(hours=2), IN, client="good")),
        encode(email("g-out", start + timedelta(hours=3), OUT, client="good")),
    ]
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(
        main,
        ["replay", str(log), "--rejects", str(rejects), "--until", "2026-03-04T00:00:00+00:00"],
    )
    assert result.exit_code == 0, result.output
    (record,) = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert record["line"] == 1
    assert "has no business hours" in record["reason"]
    facts = [decode(Fact, line) for line in result.stdout.splitlines()]
    # The refused line changes nothing: the client runs under the policy it had (here the
    # default) and the other client is answered as usual.
    assert {f.client_id for f in facts if f.kind is FactKind.FULFILLED} == {"good"}
    assert {f.client_id for f in facts if f.kind is FactKind.OBLIGATION_OPENED} == {
        "closed",
        "good",
    }
