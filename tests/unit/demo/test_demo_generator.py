"""The demo generator: deterministic, consistent with its directory, and it tells its stories.

The stories are checked by replaying the generated log through the real engine and reading the
facts, never by trusting the generator's own intent.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.core import Engine
from engine.replay import read_events_jsonl, replay
from producers.demo import (
    DEFAULT_SEED,
    build_directory,
    directory_yaml,
    events_jsonl,
    generate,
    generate_live,
    split_due,
)
from producers.directory_io import parse_directory_yaml
from producers.resolution import Resolver
from schemas.events import ClientPolicyChanged, Direction, InteractionEvent
from schemas.facts import Fact, FactKind, Outcome
from schemas.policies import CalendarDuration, SameDayOrNextMorning
from shinrai.cli import main

pytestmark = pytest.mark.unit


def _facts(seed: int) -> list[Fact]:
    return list(replay(generate(seed).events, Engine()))


def _stories(facts: list[Fact]) -> dict[str, int]:
    """Count each story the demo must show, straight from the facts."""
    opened_channel = {
        f.obligation_id: f.channel for f in facts if f.kind is FactKind.OBLIGATION_OPENED
    }
    fulfilled = [f for f in facts if f.kind is FactKind.FULFILLED]
    trust = [f for f in facts if f.kind is FactKind.TRUST_CHANGED]
    assert all(f.trust_from is not None and f.trust_to is not None for f in trust)
    return {
        "breach": sum(f.kind is FactKind.BREACHED for f in facts),
        "met_late": sum(f.outcome is Outcome.MET_LATE for f in fulfilled),
        "cross_channel": sum(
            f.fulfilled_by_channel != opened_channel[f.obligation_id] for f in fulfilled
        ),
        "silence": sum(f.kind is FactKind.SILENCE for f in facts),
        "trust_up": sum(f.trust_to.rank > f.trust_from.rank for f in trust),  # type: ignore[union-attr]
        "trust_down": sum(f.trust_to.rank < f.trust_from.rank for f in trust),  # type: ignore[union-attr]
    }


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 0, 1, 2, 3])
def test_replaying_the_demo_tells_every_story(seed: int) -> None:
    stories = _stories(_facts(seed))
    missing = [name for name, count in stories.items() if count < 1]
    assert not missing, f"seed {seed}: no {missing} in {stories}"


def test_cross_channel_answers_are_a_call_and_a_meeting() -> None:
    facts = _facts(DEFAULT_SEED)
    opened = {f.obligation_id: f for f in facts if f.kind is FactKind.OBLIGATION_OPENED}
    sakura = {
        f.fulfilled_by_channel.value  # type: ignore[union-attr]
        for f in facts
        if f.kind is FactKind.FULFILLED
        and f.client_id == "sakura-seiki"
        and opened[f.obligation_id].channel is not None
        and opened[f.obligation_id].channel.value == "email"  # type: ignore[union-attr]
    }
    assert {"phone", "meeting", "email"} <= sakura


def test_the_silent_client_is_aozora_and_the_reply_ends_it() -> None:
    facts = _facts(DEFAULT_SEED)
    # 富士見建設 may fall silent too (its traffic starts in week 3); aozora always does.
    silences = [f for f in facts if f.kind is FactKind.SILENCE and f.client_id == "aozora-design"]
    events = generate(DEFAULT_SEED).events
    first = silences[0].at
    # Nothing outbound to aozora between its kick-off meeting and the silence.
    touches = [
        e
        for e in events
        if isinstance(e, InteractionEvent)
        and e.client_id == "aozora-design"
        and e.direction is Direction.OUTBOUND
    ]
    assert touches[0].channel.value == "meeting"
    assert touches[0].occurred_at < first < touches[1].occurred_at
    # Ten JP business days after 2026-01-05 (Mon) skipping 成人の日 (Mon 12 Jan): Tue 20 Jan.
    assert first == datetime(2026, 1, 20, 6, 0, tzinfo=UTC)  # 15:00 JST, the meeting's time


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = events_jsonl(generate(DEFAULT_SEED).events)
    assert a == events_jsonl(generate(DEFAULT_SEED).events)
    assert a != events_jsonl(generate(DEFAULT_SEED + 1).events)
    facts_a = [f.model_dump_json() for f in _facts(DEFAULT_SEED)]
    assert facts_a == [f.model_dump_json() for f in _facts(DEFAULT_SEED)]


def test_policies_come_first_and_change_once_midway() -> None:
    events = generate(DEFAULT_SEED).events
    changes = [e for e in events if isinstance(e, ClientPolicyChanged)]
    first_interaction = min(e.occurred_at for e in events if isinstance(e, InteractionEvent))
    initial = [c for c in changes if c.occurred_at < first_interaction]
    directory = build_directory()
    assert sorted(c.client_id for c in initial) == sorted(c.client_id for c in directory.clients)
    by_id = {p.policy_id: p for p in directory.policies}
    for change in initial:
        client = next(c for c in directory.clients if c.client_id == change.client_id)
        assert change.policy == by_id[client.policy_id]
        assert change.calendar.calendar_id == client.calendar_id
    later = [c for c in changes if c.occurred_at > first_interaction]
    assert [(c.client_id, c.policy.version) for c in later] == [("minato-shoji", 2)]
    kinds = {p.policy_id: type(p.first_response) for p in directory.policies}
    assert kinds["jp-default"] is SameDayOrNextMorning
    assert kinds["logistics-24x7"] is CalendarDuration
    facts = _facts(DEFAULT_SEED)
    moved = [f for f in facts if f.kind is FactKind.DEADLINE_CHANGED and f.policy_version == 2]
    assert moved
    assert all(f.client_id == "minato-shoji" for f in moved)


def test_directory_resolves_every_counterpart_and_round_trips_as_yaml() -> None:
    directory = build_directory()
    assert parse_directory_yaml(directory_yaml(directory), default_region="JP") == directory
    resolver = Resolver(directory, default_region="JP")
    checked = Counter[str]()
    for event in generate(DEFAULT_SEED).events:
        if not isinstance(event, InteractionEvent) or event.counterpart is None:
            continue
        if "@" in event.counterpart:
            assert resolver.client_for_email(event.counterpart) == event.client_id
            assert event.staff is not None
            assert resolver.is_staff_email(event.staff)
        else:
            assert resolver.client_for_phone(event.counterpart) == event.client_id
        checked[event.channel.value] += 1
    assert checked["email"] > 100
    assert checked["phone"] > 50
    free = next(c for c in directory.clients if c.client_id == "aozora-design")
    assert free.domains == ()
    assert all(resolver.is_free_mail(a.split("@")[1]) for a in free.addresses)


def test_live_mode_has_work_in_flight_and_breaches_during_the_demo() -> None:
    now = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)  # 08:30 JST: before the office opens
    data = generate_live(now)
    past, future = split_due(data.events, now)
    assert past
    assert future
    assert all(e.occurred_at > now for e in future)
    assert max(e.occurred_at for e in future) <= now + timedelta(minutes=15)
    at_now = list(replay(past, Engine(), watermark_end=now))
    opened = {f.obligation_id: f for f in at_now if f.kind is FactKind.OBLIGATION_OPENED}
    closed = {
        f.obligation_id
        for f in at_now
        if f.kind in (FactKind.FULFILLED, FactKind.WAIVED, FactKind.BREACHED)
    }
    open_ahead = [o for oid, o in opened.items() if oid not in closed and o.deadline > now]  # type: ignore[operator]
    assert len(open_ahead) >= 3
    later = list(replay(data.events, Engine(), watermark_end=now + timedelta(minutes=15)))
    during = [f for f in later if now < f.at <= now + timedelta(minutes=15)]
    kinds = Counter(f.kind for f in during)
    assert kinds[FactKind.BREACHED] >= 2
    assert kinds[FactKind.WARNING] >= 1
    outcomes = Counter(f.outcome for f in during if f.kind is FactKind.FULFILLED)
    assert outcomes[Outcome.MET] >= 1
    assert outcomes[Outcome.MET_LATE] >= 1
    again = generate_live(now)
    assert events_jsonl(again.events) == events_jsonl(data.events)


def test_demodata_command_writes_what_replay_reads(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demodata", "--out", str(tmp_path), "--seed", "3"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    decoded = list(read_events_jsonl(lines))
    assert len(decoded) == len(generate(3).events)
    assert all(not hasattr(d, "line_no") for d in decoded)
    text = (tmp_path / "clients.yaml").read_text("utf-8")
    assert "桜精機株式会社" in text
    assert parse_directory_yaml(text) == build_directory()
    live = CliRunner().invoke(
        main,
        ["demodata", "--out", str(tmp_path / "live"), "--live-now", "2026-03-04T10:00:00+09:00"],
    )
    assert live.exit_code == 0, live.output
    assert (tmp_path / "live" / "scheduled.jsonl").read_bytes().count(b"\n") == 5
