"""Where the processor's batches are cut does not change the facts: one partition's log read in
one batch, one record per batch or any cut in between gives the same facts and dead letters.

What once made them differ: at the end of a batch every client of it is advanced to the
partition's watermark, on a backlog the event time of the whole batch's reads, which holds
other clients' records read after the client's last input. A client whose next input came
later in the partition, behind another client's records far ahead, found it late (a breach
fired, then retracted; past the duplicate window, a dead letter) when the batch ended between
the two, and in time when they shared a batch, or when each record was a batch of its own.

The rule now (``streams.step``): whether an input is late depends on the partition's order
alone. Before it is applied, its client is advanced to the partition's event time read before
it, where a batch cut just before it would have left the client. Within the allowed lateness
that is the in-order truth of ``engine.replay`` in every cut (the property below); an input read
after its partition's event time passed it by more than the allowed lateness is late by
definition (DESIGN §3 "Time": the engine corrects), in every cut alike.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.engine import START, generate_realistic
from engine.core import Engine
from engine.replay import replay
from engine.state import ClientState, Event
from schemas.base import encode
from schemas.events import Direction
from schemas.facts import Fact, FactKind, Outcome
from streams.step import InRecord, ProcessorStep, ProcessorTopics
from streams.watermark import PartitionWatermarks
from tests.builders import email, policy_event
from tests.unit.engine.builders import arrivals_within

pytestmark = pytest.mark.unit

TOPICS = ProcessorTopics.default("-cut")
LATENESS = timedelta(hours=1)
T0 = datetime(2024, 4, 1, 9, 0, tzinfo=START.tzinfo)

Facts = dict[str, list[Fact]]
Dead = dict[bytes | None, list[bytes]]
"""Dead letters per key, in order (a batch groups its inputs per client: a topic keeps the
order per key, the order across clients is the batches')."""


def kinds(facts: Sequence[Fact]) -> list[FactKind]:
    return [f.kind for f in facts]


def outcomes(facts: Sequence[Fact]) -> list[Outcome | None]:
    return [f.outcome for f in facts if f.kind is FactKind.FULFILLED]


def records(log: Sequence[Event]) -> list[InRecord]:
    """The log as one partition's single records; the log end far behind them (a backlog)."""
    return [
        InRecord(
            TOPICS.interactions, 0, n, (ev.client_id or "_unknown").encode(), encode(ev), 10**6
        )
        for n, ev in enumerate(log)
    ]


def processed(
    log: Sequence[Event],
    cuts: Sequence[int],
    *,
    now: datetime,
    end: datetime,
    history_gap: timedelta,
    duplicate_window: timedelta = timedelta(days=7),
) -> tuple[Facts, Dead]:
    """The facts per client and dead letters of a worker reading ``log`` in processor batches of
    the sizes ``cuts`` (then one per record), every stored state then settled to ``end`` as the
    replay settles its clients (the tail the clock would fire later, the same in every cut)."""
    engine = Engine(allowed_lateness=LATENESS, duplicate_window=duplicate_window)
    step = ProcessorStep(
        engine,
        TOPICS,
        watermarks=PartitionWatermarks(timedelta(seconds=10)),
        history_gap=history_gap,
    )
    table: dict[bytes, bytes] = {}
    facts: Facts = {}
    dead: Dead = {}

    def load(anchor: InRecord) -> ClientState | None:
        raw = table.get(anchor.key or b"")
        return ClientState.from_bytes(raw) if raw else None

    rest, sizes, n = records(log), list(cuts), 0
    while rest:
        size = sizes.pop(0) if sizes else 1
        batch, rest = rest[:size], rest[size:]
        result = step.run(batch, load, now + timedelta(seconds=n))
        n += 1
        for out in result.produce:
            if out.topic == TOPICS.facts:
                fact = Fact.model_validate_json(out.value)
                facts.setdefault(fact.client_id, []).append(fact)
            elif out.topic == TOPICS.dlq:
                dead.setdefault(out.key, []).append(out.value)
        for update in result.updates:  # stored once produced (the crash-safety order)
            if update.state is not None:
                table[update.key] = update.state.to_bytes()
    for raw in table.values():
        for fact in engine.settle(ClientState.from_bytes(raw), end)[1]:
            facts.setdefault(fact.client_id, []).append(fact)
    return facts, dead


def replayed(log: Sequence[Event]) -> Facts:
    """The facts per client of ``engine.replay`` of the log (what the oracle calls the truth)."""
    out: Facts = {}
    for fact in replay(log, Engine(allowed_lateness=LATENESS)):
        out.setdefault(fact.client_id, []).append(fact)
    return out


# -- the smallest log --------------------------------------------------------------------------


def late_reply_log() -> list[Event]:
    """Client a is asked at T0 (one minute to answer) and answers 30 s later, but the answer
    is read after client b's events three hours on: beyond the allowed lateness (an hour) of
    its partition's event time (the second largest time read: b's two events)."""
    return [
        policy_event("a", T0 - timedelta(hours=1), event_id="pol-a"),
        email("ask", T0, Direction.INBOUND, client="a", thread="ta"),
        email("b1", T0 + timedelta(hours=3), Direction.INBOUND, client="b", thread="tb"),
        email("b2", T0 + timedelta(hours=3, seconds=1), Direction.INBOUND, client="b", thread="tb"),
        email("reply", T0 + timedelta(seconds=30), Direction.OUTBOUND, client="a", thread="ta"),
    ]


@pytest.mark.parametrize(
    "history_gap",
    [timedelta(days=30), timedelta(hours=1)],
    ids=["backlog", "history-held"],  # a worker that was down; an import of history (held)
)
@pytest.mark.parametrize("cuts", [[5], [1], [2, 3], [3, 2], [4, 1]])
def test_a_reply_read_beyond_the_lateness_is_late_in_every_cut(
    cuts: list[int], history_gap: timedelta
) -> None:
    # Before: [4, 1] (a's question and b's events in one batch, a's reply in the next) found
    # the reply late; [5], [1], [2, 3], [3, 2] took it in time. It is read when its partition's
    # event time is 3 h past it, more than the allowed hour: late in every cut now.
    log = late_reply_log()
    end = T0 + timedelta(hours=3, seconds=1)
    now = T0 + timedelta(days=2)
    got = processed(log, cuts, now=now, end=end, history_gap=history_gap)
    assert got == processed(log, [1] * len(log), now=now, end=end, history_gap=history_gap)
    facts, dead = got
    assert dead == {}
    truth = replayed(log)
    assert facts["b"] == truth["b"]  # b's facts never depended on a's
    # The replay sorts the log: answered in time, nothing breached. Read where it was, the
    # reply is late: the breach fired, then the correction retracted it; both end met.
    assert FactKind.BREACHED not in kinds(truth["a"])
    breach = next(f for f in facts["a"] if f.kind is FactKind.BREACHED)
    assert breach.fact_id in [f.retracts for f in facts["a"] if f.kind is FactKind.RETRACTED]
    assert outcomes(facts["a"]) == outcomes(truth["a"]) == [Outcome.MET]


@pytest.mark.parametrize("cuts", [[5], [1], [3, 2], [4, 1]])
def test_an_input_past_the_duplicate_window_is_dead_lettered_in_every_cut(
    cuts: list[int],
) -> None:
    # A duplicate window of an hour: the reply, read 3 h behind its partition's event time,
    # cannot be told from a duplicate. Before, only the [4, 1] cut dead-lettered it.
    log = late_reply_log()
    end = T0 + timedelta(hours=3, seconds=1)
    now = T0 + timedelta(days=2)
    window = timedelta(hours=1)
    gap = timedelta(days=30)
    got = processed(log, cuts, now=now, end=end, history_gap=gap, duplicate_window=window)
    one_each = processed(log, [1] * 5, now=now, end=end, history_gap=gap, duplicate_window=window)
    assert got == one_each
    assert got[1] == {b"a": [encode(log[-1])]}


@pytest.mark.parametrize("cuts", [[5], [1], [3, 2], [4, 1]])
def test_a_reply_read_within_the_lateness_gives_the_replays_facts_in_every_cut(
    cuts: list[int],
) -> None:
    # b's events 40 min on: the reply is read within the allowed hour of its partition's time.
    log = late_reply_log()
    for n in (2, 3):
        log[n] = log[n].model_copy(
            update={"occurred_at": log[n].occurred_at - timedelta(hours=2, minutes=20)}
        )
    end = T0 + timedelta(minutes=41)
    got = processed(log, cuts, now=T0 + timedelta(days=2), end=end, history_gap=timedelta(days=30))
    assert got == (replayed(log), {})
    assert FactKind.BREACHED not in kinds(got[0]["a"])


# -- a realistic log, cut anywhere -------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    history=st.booleans(),
    data=st.data(),
)
def test_any_cut_of_a_realistic_log_within_the_lateness_gives_the_replays_facts(
    seed: int, history: bool, data: st.DataObject
) -> None:
    events = sorted(
        generate_realistic(90, clients=3, days=3, seed=seed), key=lambda e: e.occurred_at
    )
    log = arrivals_within(data, events, LATENESS)  # one partition, read as it arrived
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
    end = events[-1].occurred_at
    # A worker back from an outage (a backlog), or history imported into it (held clients).
    now, gap = (
        (end + timedelta(days=30), timedelta(hours=1))
        if history
        else (
            end + timedelta(minutes=1),
            timedelta(days=30),
        )
    )
    got = processed(log, cuts, now=now, end=end, history_gap=gap)
    assert got == processed(log, [1] * len(log), now=now, end=end, history_gap=gap)
    assert got == processed(log, [len(log)], now=now, end=end, history_gap=gap)
    assert got == (replayed(events), {})


def test_the_realistic_log_is_a_real_one() -> None:
    """The property above runs on logs with several clients, breaches and answers."""
    events = generate_realistic(90, clients=3, days=3, seed=random.Random(1).randrange(10_000))
    truth = replayed(events)
    assert len(truth) == 3
    every = [f for facts in truth.values() for f in facts]
    assert FactKind.BREACHED in kinds(every)
    assert Outcome.MET in outcomes(every)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=10_000), data=st.data())
def test_any_cut_of_a_log_with_arrivals_beyond_the_lateness_gives_one_record_per_batchs_facts(
    seed: int, data: st.DataObject
) -> None:
    # Some events read hours after their partition's time passed them: late by definition,
    # corrected (or, past the duplicate window, dead-lettered) the same way in every cut.
    events = sorted(
        generate_realistic(90, clients=3, days=3, seed=seed), key=lambda e: e.occurred_at
    )
    delays = data.draw(st.lists(st.sampled_from([0, 5, 20, 50, 90, 150, 240]), min_size=90))
    log = [
        ev
        for _, _, ev in sorted(
            (ev.occurred_at + timedelta(minutes=delays[n % len(delays)]), n, ev)
            for n, ev in enumerate(events)
        )
    ]
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
    end = events[-1].occurred_at
    kw = {"now": end + timedelta(minutes=1), "end": end, "history_gap": timedelta(days=30)}
    window = timedelta(hours=2)  # some of the latest past it: dead letters too
    got = processed(log, cuts, duplicate_window=window, **kw)  # type: ignore[arg-type]
    assert got == processed(log, [1] * len(log), duplicate_window=window, **kw)  # type: ignore[arg-type]
    assert got == processed(log, [len(log)], duplicate_window=window, **kw)  # type: ignore[arg-type]
