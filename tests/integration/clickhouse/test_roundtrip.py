"""Facts and interaction events survive the trip into ClickHouse and back, field for field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import CallOutcome, Channel, Direction, Flag, InteractionEvent, Kind
from schemas.facts import Fact, FactKind, ObligationKind, Outcome, TrustLevel
from sinks.clickhouse.rows import Position, fact_from_row, utc
from sinks.clickhouse.sink import ClickHouseSink

pytestmark = pytest.mark.integration

AT = datetime(2025, 3, 4, 9, 15, 30, 123_456, tzinfo=UTC)


def _full_fact() -> Fact:
    """Every optional field set, with values that would expose lossy types."""
    return Fact(
        fact_id="f-full-日本",
        kind=FactKind.FULFILLED,
        client_id="acme",
        at=AT,
        policy_id="gold",
        policy_version=7,
        obligation_id="o-1",
        obligation_kind=ObligationKind.FOLLOW_UP,
        thread_key="<thread@acme.example>",
        channel=Channel.EMAIL,
        source_event_id="e-9",
        opened_at=AT - timedelta(hours=5, microseconds=7),
        deadline=AT - timedelta(hours=1),
        fulfilled_at=AT - timedelta(seconds=1),
        fulfilled_by_channel=Channel.PHONE,
        outcome=Outcome.MET_LATE,
        warning_fraction=0.75,
        business_seconds=12_345.678_9,
        calendar_seconds=17_999.000_001,
        target_business_seconds=14_400.0,
        overage_business_seconds=0.1,
        overage_calendar_seconds=3599.999,
        call_outcome=CallOutcome.ABANDONED,
        wait_seconds=42.5,
        answered_within_target=False,
        trust_from=TrustLevel.CREDIBLE,
        trust_to=TrustLevel.ANXIOUS,
        reason="breach 3 of 5 — 不安",
        retracts="f-old",
    )


def test_fact_rows_round_trip(sink_factory: Callable[..., ClickHouseSink]) -> None:
    sparse = Fact(
        fact_id="f-sparse", kind=FactKind.SILENCE, client_id="acme", at=AT,
        policy_id="default", policy_version=1,
    )  # fmt: skip
    within = _full_fact().model_copy(update={"fact_id": "f-true", "answered_within_target": True})
    facts = [_full_fact(), sparse, within]
    sink = sink_factory()
    for i, f in enumerate(facts):
        sink.add_fact(f, Position("sla-facts.v1", 2, 100 + i))
    assert sink.flush() == 3
    rows = list(sink.client.query("SELECT * FROM sla_facts ORDER BY offset").named_results())
    assert [fact_from_row(r) for r in rows] == facts
    assert [(r["topic"], r["partition"], r["offset"]) for r in rows] == [
        ("sla-facts.v1", 2, 100), ("sla-facts.v1", 2, 101), ("sla-facts.v1", 2, 102)
    ]  # fmt: skip


def test_interaction_rows_round_trip(sink_factory: Callable[..., ClickHouseSink]) -> None:
    events = [
        InteractionEvent(
            event_id="e1", channel=Channel.PHONE, kind=Kind.CALL, direction=Direction.INBOUND,
            occurred_at=AT, recorded_at=AT + timedelta(seconds=3, microseconds=1),
            client_id="acme", thread_key="cb-1", counterpart="+81312345678", staff="ext-12",
            flags=frozenset({Flag.HELD, Flag.CLIENT_ATTENDEE}), call_outcome=CallOutcome.MISSED,
            duration_seconds=0.0, wait_seconds=17.25, source="pbx", subject="折り返し",
        ),
        InteractionEvent(
            event_id="e2", channel=Channel.EMAIL, kind=Kind.MESSAGE, direction=Direction.UNKNOWN,
            occurred_at=AT, recorded_at=AT,
        ),
    ]  # fmt: skip
    sink = sink_factory()
    for i, e in enumerate(events):
        sink.add_interaction(e, Position("interactions.v1", 0, i))
    sink.flush()
    rows = list(sink.client.query("SELECT * FROM interactions ORDER BY offset").named_results())
    # The table keeps no message-id hashes (threading is the engine's memory, not a column).
    unstored = ("type", "message_key", "parent_keys")
    back = [
        InteractionEvent.model_validate(
            {
                **{k: r[k] for k in InteractionEvent.model_fields if k not in unstored},
                "occurred_at": utc(r["occurred_at"]),
                "recorded_at": utc(r["recorded_at"]),
                "client_id": r["client_id"] or None,
                "flags": frozenset(r["flags"]),
            },
            strict=False,
        )
        for r in rows
    ]
    assert back == events
