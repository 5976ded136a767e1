"""Raw Kafka values to sink rows: the cheap checks accept what the models accept and no more."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.base import encode
from schemas.events import CallOutcome, Channel, Direction, Flag, InteractionEvent, Kind
from schemas.facts import Fact, FactKind, ObligationKind, Outcome, TrustLevel
from sinks.clickhouse.records import RecordInvalid, fact_row, interaction_row
from sinks.clickhouse.rows import Position, facts_table, interactions_table

pytestmark = pytest.mark.unit

T = datetime(2025, 3, 3, 9, 30, 15, 123_456, tzinfo=UTC)
JST = timezone(timedelta(hours=9))


def facts() -> list[Fact]:
    base: dict[str, Any] = {"client_id": "c1", "policy_id": "p", "policy_version": 3}
    return [
        Fact(fact_id="f1", kind=FactKind.OBLIGATION_OPENED, at=T, obligation_id="o1",
             obligation_kind=ObligationKind.FIRST_RESPONSE, channel=Channel.EMAIL,
             opened_at=T, deadline=T + timedelta(hours=4), thread_key="t", **base),
        Fact(fact_id="f2", kind=FactKind.FULFILLED, at=T.astimezone(JST), obligation_id="o1",
             outcome=Outcome.MET_LATE, business_seconds=10, calendar_seconds=12.5,
             fulfilled_at=T + timedelta(hours=5), fulfilled_by_channel=Channel.PHONE, **base),
        Fact(fact_id="f3", kind=FactKind.SPEED_OF_ANSWER, at=T, channel=Channel.PHONE,
             call_outcome=CallOutcome.ABANDONED, wait_seconds=0.0,
             answered_within_target=False, **base),
        Fact(fact_id="f4", kind=FactKind.TRUST_CHANGED, at=T, trust_from=TrustLevel.ASSURED,
             trust_to=TrustLevel.ANXIOUS, reason="理由", **base),
        Fact(fact_id="f5", kind=FactKind.RETRACTED, at=T, retracts="f2", obligation_id="o1",
             **base),
    ]  # fmt: skip


def events() -> list[InteractionEvent]:
    return [
        InteractionEvent(event_id="e1", channel=Channel.PHONE, kind=Kind.CALL,
                         direction=Direction.INBOUND, occurred_at=T.astimezone(JST),
                         recorded_at=T, client_id="c1", call_outcome=CallOutcome.MISSED,
                         wait_seconds=3, duration_seconds=0.5),
        InteractionEvent(event_id="e2", channel=Channel.EMAIL, kind=Kind.MESSAGE,
                         direction=Direction.OUTBOUND, occurred_at=T, recorded_at=T,
                         flags=frozenset({Flag.MAILING_LIST, Flag.AUTO_REPLY}), subject="件名"),
    ]  # fmt: skip


def test_rows_carry_the_models_json_with_defaults_filled() -> None:
    for f in facts():
        assert fact_row(encode(f)) == orjson.loads(encode(f))
    minimal = {"fact_id": "x", "kind": "silence", "client_id": "c", "at": "2025-01-01T00:00:00Z",
               "policy_id": "p", "policy_version": 1}  # fmt: skip
    assert fact_row(orjson.dumps(minimal))["schema_version"] == 1
    e = events()[1]
    row = interaction_row(encode(e))
    assert row["flags"] == ["auto_reply", "mailing_list"]  # sorted like the model path
    bare = {"event_id": "e", "channel": "email", "kind": "message", "direction": "inbound",
            "occurred_at": "2025-01-01T00:00:00+09:00", "recorded_at": "2025-01-01T00:00:00Z"}  # fmt: skip
    row = interaction_row(orjson.dumps(bare))
    assert (row["flags"], row["source"], row["schema_version"]) == ([], "unknown", 1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "exploded"}, "kind"),
        ({"at": "2025-02-30T00:00:00Z"}, "at"),
        ({"at": "2025-02-03T00:00:00"}, "at"),  # naive
        ({"policy_version": "1"}, "policy_version"),
        ({"policy_version": True}, "policy_version"),
        ({"fact_id": ""}, "fact_id"),
        ({"fact_id": None}, "fact_id"),
        ({"surprise": 1}, "surprise"),
        ({"business_seconds": "12"}, "business_seconds"),
        ({"answered_within_target": 1}, "answered_within_target"),
        ({"reason": "x" * 2049}, "reason"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_a_bad_fact_names_the_field(change: dict[str, Any], field: str) -> None:
    data = {**orjson.loads(encode(facts()[0])), **change}
    with pytest.raises(RecordInvalid) as caught:
        fact_row(orjson.dumps(data))
    assert caught.value.field == field
    with pytest.raises(ValidationError):  # the model refuses it too
        Fact.model_validate_json(orjson.dumps(data))


def test_a_bad_interaction_names_the_field() -> None:
    good = orjson.loads(encode(events()[0]))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": "email"}, "kind"),  # a call must be on the phone
        ({"kind": "message", "call_outcome": "missed"}, "call_outcome"),
        ({"wait_seconds": -1}, "wait_seconds"),
        ({"flags": ["loud"]}, "flags"),
        ({"client_id": ""}, "client_id"),
        ({"type": "policy_changed"}, "type"),
    ]
    for change, field in cases:
        with pytest.raises(RecordInvalid) as caught:
            interaction_row(orjson.dumps({**good, **change}))
        assert caught.value.field == field, change
    for raw in (b'{"event_id": "x", "direction": "sideways"', b"[1]", b"null"):
        with pytest.raises(RecordInvalid) as caught:
            interaction_row(raw)
        assert caught.value.field == "<root>"


_ODD_VALUES: list[Any] = [
    None, "", "x", "email", "call", "phone", "met", "open", 0, -1, 1, 2, 1.5, -0.5, True, [],
    ["auto_reply"], ["auto_reply", "auto_reply"], {}, "2025-01-01T00:00:00Z",
    "2025-01-01T00:00:00+09:00", "2025-01-01 00:00:00Z", "2025-13-01T00:00:00Z",
    "2025-01-01T00:00:00", "x" * 513, "interaction", "policy_changed", 2**40,
]  # fmt: skip


def _mutants(record: dict[str, Any], rng: random.Random, n: int) -> list[dict[str, Any]]:
    keys = [*record, "extra"]
    out = []
    for _ in range(n):
        data = dict(record)
        for _ in range(rng.randint(1, 2)):
            key = rng.choice(keys)
            if rng.random() < 0.15:
                data.pop(key, None)
            else:
                data[key] = rng.choice(_ODD_VALUES)
        out.append(data)
    return out


@pytest.mark.parametrize("kind", ["fact", "interaction"])
def test_never_more_permissive_than_the_model(kind: str) -> None:
    """Random mutations of valid records: whatever the row checks accept, the model accepts,
    and the row then equals the model's own JSON (so nothing is reinterpreted)."""
    rng = random.Random(11)
    decode = fact_row if kind == "fact" else interaction_row
    model: Any = Fact if kind == "fact" else InteractionEvent
    originals = facts() if kind == "fact" else events()
    accepted = refused = 0
    for original in originals:
        for data in _mutants(orjson.loads(encode(original)), rng, 400):
            raw = orjson.dumps(data)
            try:
                row = decode(raw)
            except RecordInvalid:
                refused += 1
                continue
            accepted += 1
            parsed = model.model_validate_json(raw)  # raises if the checks let too much through
            expected = orjson.loads(encode(parsed))
            if kind == "interaction":
                expected["flags"] = sorted(expected["flags"])
            assert _same_fields(row, expected), (row, expected)
    assert accepted > 50
    assert refused > 50


_TIMES = {"at", "opened_at", "deadline", "fulfilled_at", "occurred_at", "recorded_at"}


def _same_fields(row: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Absent means None; timestamps may be spelled differently (offset vs Z) and still be the
    same instant."""
    if set(row) - set(expected):
        return False
    for key, value in expected.items():
        got = row.get(key, "interaction" if key == "type" else None)  # "type" is not stored
        if key in _TIMES and value is not None:
            if datetime.fromisoformat(str(got)) != datetime.fromisoformat(value):
                return False
        elif got != value:
            return False
    return True


def test_arrow_tables_from_rows_equal_those_from_models() -> None:
    fs, es = facts(), events()
    positions = [Position("t", 0, i) for i in range(len(fs))]
    from_models = facts_table(fs, positions, {})
    from_rows = facts_table([fact_row(encode(f)) for f in fs], positions, {}, iso_times=True)
    assert from_rows.equals(from_models)
    positions = positions[: len(es)]
    from_models = interactions_table(es, positions)
    from_rows = interactions_table(
        [interaction_row(encode(e)) for e in es], positions, iso_times=True
    )
    assert from_rows.equals(from_models)


def test_the_checks_cover_exactly_the_models_fields() -> None:
    """A field added to Fact or InteractionEvent must get a check here (until then such
    records take the slower model path: refused as an unknown field, then accepted by pydantic)."""
    from sinks.clickhouse import records

    assert set(records._FACT) == set(Fact.model_fields)
    assert set(records._INTERACTION) | {"flags", "parent_keys"} == set(
        InteractionEvent.model_fields
    )


def test_v2_conversation_ids_are_validated_not_stored() -> None:
    """Schema v2 interactions carry hashed message ids; the sink checks them like the model."""
    base = {
        "event_id": "email:1",
        "channel": "email",
        "kind": "message",
        "direction": "inbound",
        "occurred_at": "2025-03-04T10:00:00Z",
        "recorded_at": "2025-03-04T10:00:00Z",
    }
    good = {**base, "schema_version": 2, "message_key": "a" * 32, "parent_keys": ["b" * 32]}
    row = interaction_row(orjson.dumps(good))
    assert row["schema_version"] == 2
    InteractionEvent.model_validate_json(orjson.dumps(good))  # the model agrees
    for bad, name in (
        ({**good, "schema_version": 1}, "schema_version"),  # ids need version 2
        ({**good, "message_key": "raw-id@example.org"}, "message_key"),  # never a raw id
        ({**good, "parent_keys": ["b" * 31]}, "parent_keys"),
        ({**good, "parent_keys": ["b" * 32] * 65}, "parent_keys"),
        ({**good, "schema_version": 3}, "schema_version"),
    ):
        with pytest.raises(RecordInvalid) as caught:
            interaction_row(orjson.dumps(bad))
        assert caught.value.field == name
    assert interaction_row(orjson.dumps(base))["parent_keys"] == []
