"""The identifier rule (schemas.identifiers): NFKC, then no control, format or bidi characters."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import Alert, Client, ClientPolicyChanged, Fact, InteractionEvent, SlaPolicy
from schemas.alerts import AlertLevel
from schemas.base import decode, encode
from schemas.calendars import BusinessCalendar
from schemas.facts import FactKind
from schemas.identifiers import JSON_PATTERN, identifier_problem, normalise_identifier
from shinrai.errors import ValidationFailed

pytestmark = pytest.mark.unit

T = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _event(**fields: Any) -> InteractionEvent:
    base: dict[str, Any] = {
        "event_id": "e1",
        "channel": "email",
        "kind": "message",
        "direction": "inbound",
        "occurred_at": T,
        "recorded_at": T,
        "client_id": "c01",
    }
    return InteractionEvent.model_validate({**base, **fields}, strict=False)


def _errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in exc.errors()}


def test_full_width_look_alikes_are_the_same_client() -> None:
    assert _event(client_id="ｃ０１").client_id == "c01"
    assert _event(client_id="ｃ０１").key == _event(client_id="c01").key == b"c01"
    # Compatibility forms fold too: ligature, superscript, ideographic space inside.
    assert normalise_identifier("ﬁle²") == "file2"
    assert normalise_identifier("a\u3000b") == "a b"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("c\x0001", "U+0000"),
        ("c01\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("c\u200d01", "U+200D ZERO WIDTH JOINER"),
        ("\u2066c01\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("\ufeffc01", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("c01\n", "U+000A"),
        ("c\u202801", "U+2028 LINE SEPARATOR"),
        ("c\ue00001", "U+E000"),
        ("c\U000e0001", "U+E0001 LANGUAGE TAG"),
    ],
)
def test_control_and_bidi_characters_are_refused_naming_field_and_character(
    value: str, named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _event(client_id=value)
    reason = _errors(caught.value)["client_id"]
    assert named in reason
    assert "position" in reason


def test_surrogates_unassigned_and_outer_whitespace_are_refused() -> None:
    assert "surrogate" in (identifier_problem("c\ud80001") or "")
    unassigned = next(
        chr(c) for c in range(0x0378, 0x10000) if unicodedata.category(chr(c)) == "Cn"
    )
    assert "unassigned" in (identifier_problem("c" + unassigned) or "")
    assert (
        identifier_problem(" c01")
        == identifier_problem("c01 ")
        == ("has leading or trailing whitespace")
    )
    # Full-width space is whitespace after NFKC: refused at the ends, kept inside.
    assert identifier_problem("c01\u3000") == "has leading or trailing whitespace"
    assert identifier_problem("a b") is None


def test_every_identifier_field_of_the_event_follows_the_rule() -> None:
    fields = ("event_id", "client_id", "thread_key", "counterpart", "staff")
    with pytest.raises(ValidationError) as caught:
        _event(**dict.fromkeys(fields, "x\x00"))
    assert set(_errors(caught.value)) == set(fields)
    normalised = _event(**dict.fromkeys(fields, "ｘ"))
    assert {getattr(normalised, f) for f in fields} == {"x"}
    # Subject is prose, not a key: kept as written.
    assert _event(subject="Ｒｅ: ｈｉ").subject == "Ｒｅ: ｈｉ"


def test_policy_change_directory_fact_and_alert_ids_follow_the_rule() -> None:
    change = ClientPolicyChanged(
        event_id="p1",
        client_id="ｃ０１",
        occurred_at=T,
        recorded_at=T,
        policy=SlaPolicy(policy_id="ｇｏｌｄ"),
        calendar=BusinessCalendar(calendar_id="default", timezone="UTC"),
    )
    assert (change.client_id, change.policy.policy_id) == ("c01", "gold")
    assert Client(client_id="ｃ０１", name="C", owner="o@x.example").client_id == "c01"
    with pytest.raises(ValidationError, match="client_id"):
        Client(client_id="c\u202e01", name="C", owner="o@x.example")
    with pytest.raises(ValidationError, match="U\\+0000"):
        Fact(fact_id="f", kind=FactKind.SILENCE, client_id="c\x00", at=T, policy_id="p",
             policy_version=1)  # fmt: skip
    with pytest.raises(ValidationError, match="U\\+200B"):
        Alert(alert_id="a", level=AlertLevel.BREACH, client_id="c\u200b1", at=T, fact_id="f",
              summary="s")  # fmt: skip


def test_wire_decoding_names_the_field_and_normalises() -> None:
    raw = encode(_event()).replace(b'"c01"', b'"c\\u202e01"')
    with pytest.raises(ValidationFailed) as caught:
        decode(InteractionEvent, raw)
    assert caught.value.errors[0][0] == "client_id"
    assert "RIGHT-TO-LEFT OVERRIDE" in caught.value.reason
    wide = encode(_event()).replace(b'"c01"', '"ｃ０１"'.encode())
    assert decode(InteractionEvent, wide).client_id == "c01"


def test_nfkc_expansion_is_measured_after_normalising() -> None:
    # U+FDFA is one character that NFKC turns into 18: the length limit sees the stored form.
    with pytest.raises(ValidationError, match="at most 512"):
        _event(event_id="x" * 500 + "\ufdfa")


@given(st.text(max_size=30))
def test_the_rule_is_idempotent_and_what_it_accepts_is_clean(value: str) -> None:
    problem = identifier_problem(value)
    if problem is not None:
        return
    text = normalise_identifier(value)
    assert normalise_identifier(text) == text
    assert text == unicodedata.normalize("NFKC", text) == text.strip()
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in text)


def test_published_json_pattern_is_in_the_schema() -> None:
    schema = InteractionEvent.model_json_schema()
    assert schema["properties"]["event_id"]["pattern"] == JSON_PATTERN
    # Python's re has no \p{..}: check the pattern's shape rather than run it.
    assert re.search(r"\\p\{Cf\}", JSON_PATTERN)
