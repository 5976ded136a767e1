"""Raw Kafka values (JSON bytes) to the row dicts the sink buffers, checked without pydantic.

The facts topic is written by our processor and the interactions topic by our producers, both
from pydantic models (``schemas.base.encode``), so a value is decoded with ``orjson`` and checked
field by field against the same contract as ``Fact`` / ``InteractionEvent`` (types, enum values,
lengths, required fields, no unknown fields, the call consistency rules, aware ISO timestamps).
That costs a fraction of building a model, and the dict goes straight into the Arrow columns.

A value that fails a check raises :class:`RecordInvalid` naming the field and the reason; the
caller then asks pydantic for the authoritative verdict (``model_fallback``), so this module can
only make a record slower, never let through one the model would refuse: every check here is at
least as strict as the model's.

Rows keep timestamps as the ISO strings of the JSON (Arrow parses them in bulk at flush); rows
built from models (``vars(model)``) hold datetimes. Both shapes are accepted by ``rows`` and
``obligations``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from schemas.events import MAX_PARENT_KEYS, CallOutcome, Channel, Direction, Flag, Kind
from schemas.facts import FactKind, ObligationKind, Outcome, TrustLevel
from schemas.identifiers import identifier_problem, normalise_identifier

Row = dict[str, Any]
"""One decoded record: field name to JSON value (timestamps as ISO strings)."""


class RecordInvalid(ValueError):
    """A value that does not decode into a row; ``field`` and ``reason`` say why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _values(enum: Any) -> frozenset[str]:
    return frozenset(member.value for member in enum)


_STR = 1
_NUM = 2
_TS = 3
_INT = 4
_BOOL = 5

# field -> (check, nullable, max length or enum values, required)
_Spec = tuple[int, bool, "int | frozenset[str] | None", bool]

_FACT: dict[str, _Spec] = {
    "schema_version": (_INT, False, None, False),
    "fact_id": (_STR, False, 128, True),
    "kind": (_STR, False, _values(FactKind), True),
    "client_id": (_STR, False, 512, True),
    "at": (_TS, False, None, True),
    "policy_id": (_STR, False, 128, True),
    "policy_version": (_INT, False, None, True),
    "obligation_id": (_STR, True, 512, False),
    "obligation_kind": (_STR, True, _values(ObligationKind), False),
    "thread_key": (_STR, True, 512, False),
    "channel": (_STR, True, _values(Channel), False),
    "source_event_id": (_STR, True, 512, False),
    "opened_at": (_TS, True, None, False),
    "deadline": (_TS, True, None, False),
    "fulfilled_at": (_TS, True, None, False),
    "fulfilled_by_channel": (_STR, True, _values(Channel), False),
    "outcome": (_STR, True, _values(Outcome), False),
    "warning_fraction": (_NUM, True, None, False),
    "business_seconds": (_NUM, True, None, False),
    "calendar_seconds": (_NUM, True, None, False),
    "target_business_seconds": (_NUM, True, None, False),
    "overage_business_seconds": (_NUM, True, None, False),
    "overage_calendar_seconds": (_NUM, True, None, False),
    "call_outcome": (_STR, True, _values(CallOutcome), False),
    "wait_seconds": (_NUM, True, None, False),
    "answered_within_target": (_BOOL, True, None, False),
    "trust_from": (_STR, True, _values(TrustLevel), False),
    "trust_to": (_STR, True, _values(TrustLevel), False),
    "reason": (_STR, True, 2048, False),
    "retracts": (_STR, True, 128, False),
}

_INTERACTION: dict[str, _Spec] = {
    # versions as strings (the spec's enum slot); 2 added message_key and parent_keys
    "schema_version": (_INT, False, frozenset({"1", "2"}), False),
    "type": (_STR, False, frozenset({"interaction"}), False),
    "event_id": (_STR, False, 512, True),
    "channel": (_STR, False, _values(Channel), True),
    "kind": (_STR, False, _values(Kind), True),
    "direction": (_STR, False, _values(Direction), True),
    "occurred_at": (_TS, False, None, True),
    "recorded_at": (_TS, False, None, True),
    "client_id": (_STR, True, 512, False),
    "thread_key": (_STR, True, 512, False),
    "counterpart": (_STR, True, 512, False),
    "staff": (_STR, True, 512, False),
    "call_outcome": (_STR, True, _values(CallOutcome), False),
    "duration_seconds": (_NUM, True, None, False),
    "wait_seconds": (_NUM, True, None, False),
    "source": (_STR, False, 128, False),
    "subject": (_STR, True, 1024, False),
    # v2 conversation ids (hashes): validated here, not stored (the engine threads on them)
    "message_key": (_STR, True, 32, False),
    # "flags" and "parent_keys" are checked on their own (lists)
}
# Fields of the identifier rule (schemas.identifiers): non-empty, and already in the form the
# model stores (NFKC, no control/format characters, no outer whitespace). A value the model would
# normalise is refused here, so the runner hands it to the model, which normalises it.
_IDENTIFIERS = frozenset(
    {
        "fact_id",
        "event_id",
        "client_id",
        "policy_id",
        "obligation_id",
        "thread_key",
        "source_event_id",
        "retracts",
        "counterpart",
        "staff",
    }
)
_NON_NEGATIVE = frozenset({"duration_seconds", "wait_seconds"})
_FACT_REQUIRED = frozenset(k for k, spec in _FACT.items() if spec[3])
_INTERACTION_REQUIRED = frozenset(k for k, spec in _INTERACTION.items() if spec[3])
_INTERACTION_KEYS = frozenset({*_INTERACTION, "flags", "parent_keys"})
_FACT_KEYS = frozenset(_FACT)
_FLAGS = _values(Flag)
_fromisoformat = datetime.fromisoformat
# RFC 3339 as pydantic writes it (and Arrow's string->timestamp cast reads it): 'T', seconds,
# at most microseconds, 'Z' or an explicit offset. fromisoformat then rejects impossible dates.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")
_is_rfc3339 = _RFC3339.match


def _load(raw: bytes) -> Row:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RecordInvalid("<root>", f"not JSON: {exc}") from None
    if type(data) is not dict:
        raise RecordInvalid("<root>", "not a JSON object")
    return data


def _instant_ok(value: str) -> bool:
    if _is_rfc3339(value) is None:
        return False
    try:
        _fromisoformat(value)
    except ValueError:
        return False
    return True


def _identifier_ok(value: str) -> bool:
    """True when ``value`` is a valid identifier exactly as the model would store it."""
    try:
        return normalise_identifier(value) == value
    except ValueError:
        return False


def _condition(name: str, spec: _Spec) -> str:
    """One field's check as a Python expression over ``get`` (the row's ``dict.get``)."""
    check, nullable, limit, _ = spec
    v = f"get({name!r})"
    default = {"schema_version": "1", "source": "'unknown'"}.get(name)
    if default is not None:
        v = f"get({name!r}, {default})"
    if check == _STR and isinstance(limit, frozenset):
        values = set(limit) | ({None} if nullable else set())
        return f"{v} in {values!r}"  # a set literal: LOAD_CONST of a frozenset
    if check == _STR:
        test = "type(v) is str"
        if limit is not None:
            test += f" and len(v) <= {limit}"
        if name in _IDENTIFIERS:
            # Printable ASCII without outer spaces is a valid identifier as it stands (inline:
            # no call for the usual case); anything else asks the rule.
            test += (
                " and v != '' and ((v.isascii() and v.isprintable() and v[0] != ' '"
                " and v[-1] != ' ') or identifier_ok(v))"
            )
    elif check == _TS:
        test = "type(v) is str and instant_ok(v)"
    elif check == _NUM:
        test = "(type(v) is float or type(v) is int)"
        if name in _NON_NEGATIVE:
            test += " and v >= 0"
    elif check == _INT:
        versions = limit if isinstance(limit, frozenset) else frozenset({"1"})
        test = (
            f"type(v) is int and str(v) in {set(versions)!r}"
            if name == "schema_version"
            else ("type(v) is int and 0 <= v < 4294967296")
        )
    else:
        test = "type(v) is bool"
    if nullable:
        return f"((v := {v}) is None or ({test}))"
    return f"((v := {v}) is not None and {test})"


def _compile(specs: dict[str, _Spec], name: str) -> Callable[[Row], bool]:
    """A function that is True when every field of a row passes its spec.

    Generated once at import as one boolean expression per field (no loop, no spec lookups):
    this runs for every Kafka record, and the generic loop of :func:`_check` cost several
    times more. It only answers yes or no; on no (or a TypeError from an unhashable value)
    :func:`_check` names the field. It is never more permissive than ``_check``
    (tests/unit/clickhouse/test_records.py compares them).
    """
    body = " and\n        ".join(_condition(n, spec) for n, spec in specs.items())
    source = f"def {name}(row):\n    get = row.get\n    return (\n        {body}\n    )\n"
    namespace: dict[str, Any] = {"instant_ok": _instant_ok, "identifier_ok": _identifier_ok}
    exec(compile(source, f"<records.{name}>", "exec"), namespace)
    fn: Callable[[Row], bool] = namespace[name]
    return fn


def _passes(fast: Callable[[Row], bool], row: Row) -> bool:
    try:
        return fast(row)
    except TypeError:  # e.g. a list where an enum string belongs: unhashable
        return False


def _check(row: Row, specs: dict[str, _Spec]) -> None:
    """Every present field against its spec, raising RecordInvalid for the first bad one."""
    for name, value in row.items():
        spec = specs.get(name)
        if spec is None:
            continue  # unknown keys are rejected by the caller's key-set check
        check, nullable, limit, _ = spec
        if value is None:
            if not nullable:
                raise RecordInvalid(name, "must not be null")
            continue
        if check == _STR:
            if type(value) is not str:
                raise RecordInvalid(name, "must be a string")
            if isinstance(limit, frozenset):
                if value not in limit:
                    raise RecordInvalid(name, f"unknown value {value[:64]!r}")
            elif limit is not None and len(value) > limit:
                raise RecordInvalid(name, f"longer than {limit} characters")
            if name in _IDENTIFIERS:
                if not value:
                    raise RecordInvalid(name, "must not be empty")
                problem = identifier_problem(value)
                if problem is not None:
                    raise RecordInvalid(name, problem)
                if not _identifier_ok(value):
                    raise RecordInvalid(name, "not in NFKC form")
        elif check == _TS:
            if type(value) is not str or _is_rfc3339(value) is None:
                raise RecordInvalid(name, "must be an RFC 3339 timestamp with an offset")
            try:
                _fromisoformat(value)
            except ValueError:
                raise RecordInvalid(name, f"not a valid instant: {value[:40]!r}") from None
        elif check == _NUM:
            if type(value) is not float and type(value) is not int:
                raise RecordInvalid(name, "must be a number")
            if value < 0 and name in _NON_NEGATIVE:
                raise RecordInvalid(name, "must be >= 0")
        elif check == _INT:
            if type(value) is not int:
                raise RecordInvalid(name, "must be an integer")
            versions = limit if isinstance(limit, frozenset) else frozenset({"1"})
            if name == "schema_version" and str(value) not in versions:
                raise RecordInvalid(name, f"unsupported schema version {value}")
            if not 0 <= value < 2**32:
                raise RecordInvalid(name, "out of range")
        elif type(value) is not bool:  # _BOOL
            raise RecordInvalid(name, "must be true or false")


def fact_row(raw: bytes) -> Row:
    """Decode one ``sla-facts`` value into a row; raise RecordInvalid naming the bad field."""
    row = _load(raw)
    keys = row.keys()
    if not _FACT_KEYS.issuperset(row):  # cheaper than comparing key views
        raise RecordInvalid(sorted(keys - _FACT_KEYS)[0], "unknown field")
    if not keys >= _FACT_REQUIRED:
        raise RecordInvalid(sorted(_FACT_REQUIRED - keys)[0], "missing")
    if not _passes(_fact_ok, row):
        _check(row, _FACT)
    if "schema_version" not in row:
        row["schema_version"] = 1
    return row


_ID_HASH = re.compile(r"[0-9a-f]{32}\Z")


def _check_conversation_ids(row: Row) -> None:
    """The v2 conversation ids: hashes (never raw ids), at most MAX_PARENT_KEYS ancestors."""
    key = row.get("message_key")
    if key is not None and (type(key) is not str or _ID_HASH.match(key) is None):
        raise RecordInvalid("message_key", "must be a 32-hex id hash")
    parents = row.get("parent_keys", [])
    if (
        type(parents) is not list
        or len(parents) > MAX_PARENT_KEYS
        or not all(type(k) is str and _ID_HASH.match(k) for k in parents)
    ):
        raise RecordInvalid("parent_keys", "must be a list of 32-hex id hashes")
    if row["schema_version"] == 1 and (key is not None or parents):
        raise RecordInvalid("schema_version", "message_key and parent_keys need version 2")


def interaction_row(raw: bytes) -> Row:
    """Decode one ``interactions`` value into a row; raise RecordInvalid naming the bad field.

    Defaults of the model are filled in (``source``, ``flags``), flags are stored sorted and
    de-duplicated like the model's frozenset, and a ``policy_changed`` event is refused as
    ``type: not an interaction``.
    """
    row = _load(raw)
    keys = row.keys()
    kind = row.get("type", "interaction")
    if kind != "interaction":
        raise RecordInvalid("type", f"not an interaction ({str(kind)[:32]!r})")
    if not _INTERACTION_KEYS.issuperset(row):
        raise RecordInvalid(sorted(keys - _INTERACTION_KEYS)[0], "unknown field")
    if not keys >= _INTERACTION_REQUIRED:
        raise RecordInvalid(sorted(_INTERACTION_REQUIRED - keys)[0], "missing")
    if not _passes(_interaction_ok, row):
        _check(row, _INTERACTION)
    if "flags" in row:
        flags = row["flags"]
        if type(flags) is not list or not all(type(f) is str and f in _FLAGS for f in flags):
            raise RecordInvalid("flags", "must be a list of known flag values")
        if len(flags) > 1:
            row["flags"] = sorted(set(flags))
    else:
        row["flags"] = []
    if "source" not in row:
        row["source"] = "unknown"
    if "schema_version" not in row:
        row["schema_version"] = 1
    if "message_key" in row or "parent_keys" in row:
        _check_conversation_ids(row)
    if "parent_keys" not in row:
        row["parent_keys"] = []  # the model's default, like flags
    event_kind = row["kind"]
    if event_kind == "call" and row["channel"] != "phone":
        raise RecordInvalid("kind", "kind 'call' requires channel 'phone'")
    if row.get("call_outcome") is not None and event_kind != "call":
        raise RecordInvalid("call_outcome", "only valid for kind 'call'")
    return row


_fact_ok = _compile(_FACT, "fact_ok")
_interaction_ok = _compile(_INTERACTION, "interaction_ok")


def _model_verdict(model: Any, raw: bytes, refused: RecordInvalid) -> Row:
    """The model's field dict for a value the row checks refused, or its reason as RecordInvalid.

    The row checks are stricter than the model in places (e.g. an identifier not yet in NFKC
    form, which the model normalises), so the model has the last word.
    """
    from pydantic import ValidationError

    from schemas.base import validation_errors

    try:
        return dict(vars(model.model_validate_json(raw)))
    except ValidationError as exc:
        errors = validation_errors(exc) or [(refused.field, refused.reason)]
        raise RecordInvalid(errors[0][0], errors[0][1]) from None


def decode_fact(raw: bytes) -> tuple[Row, bool]:
    """(row, True) from :func:`fact_row`, else (the model's field dict, False).

    Raises RecordInvalid with the model's field and reason when neither takes the value.
    """
    try:
        return fact_row(raw), True
    except RecordInvalid as refused:
        from schemas.facts import Fact

        return _model_verdict(Fact, raw, refused), False


def decode_interaction(raw: bytes) -> tuple[Row, bool]:
    """(row, True) from :func:`interaction_row`, else (the model's field dict, False).

    A policy change (``type``) is refused as it is: it is not an interaction, whatever the model.
    """
    try:
        return interaction_row(raw), True
    except RecordInvalid as refused:
        if refused.field == "type":
            raise
        from schemas.events import InteractionEvent

        return _model_verdict(InteractionEvent, raw, refused), False
