"""The step compares event times with its bounds (the plausible range, the history gap, the
clock a client is advanced to) in the tzinfo decoded events share, once per run: the outcome at
each bound is the instant's, whatever offset the event was written in and whatever tzinfo the
caller's clock has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from schemas.deadletter import REASON
from streams.step import ProcessorStep
from tests.unit.streams.test_step import (
    NOW,
    TOPICS,
    Log,
    Table,
    facts,
    inbound,
    new_step,
    opening,
    run_and_commit,
)

pytestmark = pytest.mark.unit

TOKYO = timezone(timedelta(hours=9))
SKEW = timedelta(minutes=15)  # the step's default max_future_skew
AGE = timedelta(days=3660)  # and max_event_age


def _causes(step: ProcessorStep) -> dict[str, int]:
    return dict(step.stats.dead_letters)


@pytest.mark.parametrize("clock", [NOW, NOW.astimezone(TOKYO)], ids=["utc-clock", "tokyo-clock"])
@pytest.mark.parametrize("zone", [UTC, TOKYO], ids=["utc-event", "tokyo-event"])
def test_an_event_exactly_at_a_bound_is_plausible_and_one_microsecond_past_it_is_not(
    clock: datetime, zone: timezone
) -> None:
    step, table, log = new_step(), Table(), Log(highwater=1000)
    tick = timedelta(microseconds=1)
    batch = [
        *opening(log, "acme", NOW - timedelta(days=1)),
        log.record(b"acme", inbound("acme", (NOW + SKEW).astimezone(zone), "at-skew")),
        log.record(b"acme", inbound("acme", (NOW + SKEW + tick).astimezone(zone), "past-skew")),
        log.record(b"acme", inbound("acme", (NOW - AGE).astimezone(zone), "at-age")),
        log.record(b"acme", inbound("acme", (NOW - AGE - tick).astimezone(zone), "past-age")),
    ]
    result = step.run(batch, table.load, clock)
    reasons = {
        orjson.loads(r.value)["event_id"]: dict(r.headers or [])[REASON].decode()
        for r in result.on(TOPICS.dlq)
    }
    assert "worker.max_future_skew_s" in reasons.pop("past-skew-acme")
    assert "worker.max_event_age_days" in reasons.pop("past-age-acme")
    # The event ten years old at the bound is plausible: the engine refuses it (older than its
    # duplicate window), not the plausibility check; the one at the skew is taken.
    assert list(reasons) == ["at-age-acme"]
    assert reasons["at-age-acme"].startswith("<engine>:")
    assert _causes(step) == {"future": 1, "beyond_horizon": 1, "too_old": 1}


@pytest.mark.parametrize("zone", [UTC, TOKYO], ids=["utc-event", "tokyo-event"])
async def test_a_live_client_is_advanced_to_the_clock_never_to_event_times_ahead_of_it(
    zone: timezone,
) -> None:
    # A live partition (caught up): its watermark is the clock. Two inputs dated minutes ahead
    # of the clock (within the skew) make the partition's event time run ahead of it; the
    # client still goes no further than the clock: the warnings and the breach of its open
    # obligation due after the clock are not emitted yet.
    step, table, log = new_step(), Table(), Log()
    t0 = NOW - timedelta(seconds=30)  # one-minute policy: warnings at 30, 45, 54 s, breach 60 s
    first = facts(await run_and_commit(step, table, opening(log, "acme", t0.astimezone(zone)), NOW))
    assert [(f.kind.value, f.at) for f in first] == [
        ("obligation_opened", t0),
        ("warning", t0 + timedelta(seconds=30)),
    ]
    clock = NOW + timedelta(seconds=20)
    ahead = [
        log.record(b"acme", inbound("acme", (NOW + timedelta(minutes=m)).astimezone(zone), n))
        for m, n in ((4, "ahead-1"), (5, "ahead-2"))
    ]
    got = facts(await run_and_commit(step, table, ahead, clock))
    assert max(f.at for f in got) <= clock
    assert ("warning", t0 + timedelta(seconds=45)) in [(f.kind.value, f.at) for f in got]
    assert not [f for f in got if f.kind.value == "breached"]
    assert _causes(step) == {}
