"""E-mail conversations in the engine (issue 13 item 1): message id → root memory per client."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import Engine
from engine.state import ClientState
from engine.threads import link_chain, root_of
from schemas.events import Direction, InteractionEvent
from schemas.facts import Fact, FactKind
from tests.unit.engine.builders import IN, OUT, at, email, live, of_kind, only, run

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)  # a Tuesday, in business hours


def key(name: str) -> str:
    """A hashed message id, like the parser's."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def mail(
    name: str,
    minutes: float,
    direction: Direction,
    parents: tuple[str, ...] = (),
    *,
    client: str = "c1",
    thread: str | None = None,
) -> InteractionEvent:
    """An e-mail event of schema v2: own id ``name``, ancestors ``parents`` (root first)."""
    return email(
        f"email:{key(name)}",
        T0 + timedelta(minutes=minutes),
        direction,
        client=client,
        # What a naive producer keys on: the first ancestor, else the message itself.
        thread=thread or f"email:{key(parents[0] if parents else name)}",
        schema_version=2,
        message_key=key(name),
        parent_keys=tuple(key(p) for p in parents),
    )


# -- the memory ----------------------------------------------------------------------------------


def _tree(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, ...]]]:
    """A random reply tree (parent[i] < i, message 0 the root) and what each message's headers
    name: its full ancestry, its direct parent only (bare In-Reply-To), or a broken chain."""
    size = draw(st.integers(min_value=1, max_value=14))
    parent = [-1] + [draw(st.integers(min_value=0, max_value=i - 1)) for i in range(1, size)]
    chains: list[tuple[int, ...]] = []
    for i in range(size):
        path: list[int] = []
        node = parent[i]
        while node >= 0:
            path.append(node)
            node = parent[node]
        path.reverse()
        style = draw(st.sampled_from(["full", "in-reply-to", "tail"]))
        if style == "in-reply-to":
            path = path[-1:]
        elif style == "tail" and path:
            path = path[draw(st.integers(min_value=0, max_value=len(path) - 1)) :]
        chains.append(tuple(path))
    return parent, chains


trees = st.composite(_tree)()


@given(trees, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_any_arrival_order_gives_the_same_roots(
    tree: tuple[list[int], list[tuple[int, ...]]], rng: random.Random
) -> None:
    parent, chains = tree
    ids = [f"m{i}" for i in range(len(parent))]

    def roots(order: list[int]) -> dict[str, str]:
        links: dict[str, tuple[str, datetime]] = {}
        for i in order:
            link_chain(links, [*(ids[a] for a in chains[i]), ids[i]], T0)
        return {m: root_of(links, m) for m in ids}

    in_order = roots(list(range(len(ids))))
    shuffled = list(range(len(ids)))
    rng.shuffle(shuffled)
    assert roots(shuffled) == in_order
    # Every message names at least its direct parent: one conversation, rooted at the root.
    assert set(in_order.values()) == {"m0"}


def test_a_loop_in_the_headers_is_ignored() -> None:
    links: dict[str, tuple[str, datetime]] = {}
    link_chain(links, ["a", "b"], T0)
    assert link_chain(links, ["b", "a"], T0) == []  # would make a its own ancestor
    assert root_of(links, "a") == root_of(links, "b") == "a"


# -- the engine ----------------------------------------------------------------------------------


def test_bare_in_reply_to_chain_is_one_obligation_answered_once() -> None:
    """A web-archive post names only its direct parent; staff answers deep in the thread."""
    events = [
        mail("q", 0, IN),
        mail("q2", 10, IN, ("q",)),  # the client adds a detail, bare In-Reply-To
        mail("q3", 20, IN, ("q2",)),  # and another, bare In-Reply-To to the previous
        mail("a", 60, OUT, ("q3",)),  # staff replies to the last one only
    ]
    facts = run(events, until="2025-03-20T00:00:00+00:00")
    opened = only(facts, FactKind.OBLIGATION_OPENED)
    fulfilled = only(facts, FactKind.FULFILLED)
    assert fulfilled.obligation_id == opened.obligation_id
    assert fulfilled.calendar_seconds == 3600.0
    assert not of_kind(facts, FactKind.BREACHED)
    assert fulfilled.thread_key == f"email:{key('q')}"


def test_a_reply_dated_before_its_parent_still_joins() -> None:
    """Clock skew: the client's follow-up is dated before the message it replies to."""
    events = [
        mail("q2", 5, IN, ("q",)),  # arrives (and is dated) first, naming q
        mail("q", 10, IN),
        mail("a", 30, OUT, ("q",)),
    ]
    facts = run(events, until="2025-03-20T00:00:00+00:00")
    assert len(of_kind(facts, FactKind.OBLIGATION_OPENED)) == 1
    assert only(facts, FactKind.FULFILLED).calendar_seconds == 25 * 60.0


def test_late_link_merges_two_conversations_keeping_the_earlier_obligation() -> None:
    """Two posts whose link is learnt only later: one obligation per conversation remains."""
    events = [
        mail("x", 0, IN),
        mail("y", 5, IN, ("w",)),  # replies to w, which we have not seen: its own root w
        mail("w", 7, IN, ("x",)),  # w turns out to answer x: y's conversation joins x's
        mail("a", 30, OUT, ("x", "w", "y")),
    ]
    facts = run(events, until="2025-03-20T00:00:00+00:00")
    opened = of_kind(facts, FactKind.OBLIGATION_OPENED)
    assert len(opened) == 2
    waived = only(facts, FactKind.WAIVED)
    assert waived.obligation_id == opened[1].obligation_id  # the later one (from y)
    assert "merged" in (waived.reason or "")
    fulfilled = only(facts, FactKind.FULFILLED)
    assert fulfilled.obligation_id == opened[0].obligation_id
    assert fulfilled.thread_key == f"email:{key('x')}"


def test_live_arrival_in_any_order_agrees_with_the_replay() -> None:
    events = [
        mail("q", 0, IN),
        mail("q2", 10, IN, ("q",)),
        mail("a", 60, OUT, ("q2",)),
        mail("r", 90, IN, ("q", "q2", "a")),  # the client thanks: a follow-up
        mail("b", 200, OUT, ("r",)),
    ]
    end = at("2025-03-20T00:00:00+00:00")
    engine = Engine(allowed_lateness=timedelta(hours=6))
    expected = run(events, engine, until=end)
    for seed in range(6):
        arrivals = list(events)
        random.Random(seed).shuffle(arrivals)
        got = live(arrivals, engine, end, roundtrip=True)["c1"]
        assert sorted(f.fact_id for f in got) == sorted(f.fact_id for f in expected)


def test_links_survive_the_state_bytes_and_are_swept_with_the_thread_memory() -> None:
    engine = Engine(allowed_lateness=timedelta(0), thread_memory=timedelta(days=30))
    st, _ = engine.apply_in_order(None, mail("q2", 0, IN, ("q",)))
    assert root_of(st.links, key("q2")) == key("q")
    again = ClientState.from_bytes(st.to_bytes())
    assert again.links == st.links
    # A v1 state body (before threading) loads with an empty memory.
    old = ClientState(client_id="c1")
    raw = old.to_bytes().replace(b'"links":{},', b"").replace(b'"v":2', b'"v":1')
    assert b"links" not in raw
    assert ClientState.from_bytes(raw).links == {}
    # Forty days of silence later the conversation is forgotten (bounded memory).
    later = T0 + timedelta(days=40)
    engine.settle(again, later + engine.duplicate_window)
    assert again.links == {}


def test_v1_events_still_thread_on_their_thread_key() -> None:
    facts: list[Fact] = run(
        [email("e1", "2025-03-04T09:00:00+00:00"), email("e2", "2025-03-04T09:30:00+00:00", OUT)],
        until="2025-03-20T00:00:00+00:00",
    )
    assert only(facts, FactKind.FULFILLED).thread_key == "t1"


def test_merge_keeps_the_earlier_obligation_when_it_sat_under_the_joining_root() -> None:
    events = [
        mail("y", 0, IN, ("w",)),  # the earliest post, replying to an unseen w
        mail("x", 5, IN),  # a new conversation, it seems
        mail("w", 7, IN, ("x",)),  # w answers x: y's conversation is x's
        mail("a", 30, OUT, ("x",)),
    ]
    facts = run(events, until="2025-03-20T00:00:00+00:00")
    opened = of_kind(facts, FactKind.OBLIGATION_OPENED)
    assert [f.source_event_id for f in opened] == [f"email:{key('y')}", f"email:{key('x')}"]
    assert only(facts, FactKind.WAIVED).obligation_id == opened[1].obligation_id
    fulfilled = only(facts, FactKind.FULFILLED)
    assert fulfilled.obligation_id == opened[0].obligation_id
    assert fulfilled.calendar_seconds == 30 * 60.0
