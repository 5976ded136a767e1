"""Kafka record values handed to ClickHouse as one JSONEachRow batch (no per-row Python decode).

The runner buffers each record's value bytes as they came off Kafka. At flush the values are
joined, one per line, each with its Kafka position spliced in front of its first field
(``{"_t":topic,"_p":partition,"_o":offset,`` + the value after its ``{``), written to a
temporary file, and ClickHouse parses the batch itself:
``SELECT … FROM file('<path>', JSONEachRow, '<structure>')``. (Embedded chdb only: the same
batch as a SQL string literal for ``format()`` costs more in the SQL lexer than the parse.)

The structure and the checks are generated from the same field specs as
``sinks.clickhouse.records`` (types, enum values, lengths, required fields, identifiers in the
form the model stores, RFC 3339 instants with an offset, the call rules, the v2 conversation
ids), so a value ClickHouse takes is one the row checks take. Unknown fields, a wrong JSON
type, an unknown enum value or an impossible date are parse errors; the other checks raise
through ``throwIf``. Any of these fails the whole statement: the sink then decodes that batch
record by record in Python (``records``) to isolate the bad ones and dead-letter them.

Differences from the row checks, both on the strict side or noted: identifiers that are not
printable ASCII are checked with ClickHouse's NFKC normalisation and a regular expression for
the refused Unicode categories; re2 has no class for unassigned code points (``Cn``), so such a
character in an identifier is not refused here (the processor refused it at the edge).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.events import MAX_PARENT_KEYS, Flag
from sinks.clickhouse.records import (
    _BOOL,
    _FACT,
    _IDENTIFIERS,
    _INT,
    _INTERACTION,
    _NON_NEGATIVE,
    _NUM,
    _STR,
    _TS,
    _Spec,
)
from sinks.clickhouse.rows import FACT_FIELDS

# Read strictly: a JSON value of the wrong type is an error, never coerced.
JSON_SETTINGS = {
    "input_format_skip_unknown_fields": 0,
    "input_format_json_read_numbers_as_strings": 0,
    "input_format_json_read_bools_as_numbers": 0,
    "input_format_json_read_bools_as_strings": 0,
    "input_format_json_read_objects_as_strings": 0,
    "input_format_json_read_arrays_as_strings": 0,
    "input_format_json_try_infer_numbers_from_strings": 0,
    "input_format_allow_errors_num": 0,
    "input_format_parallel_parsing": 0,
}
_RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$"
_ASCII_ID = r"^[!-~]([ -~]*[!-~])?$"
_REFUSED_ID = r"[\p{Cc}\p{Cf}\p{Co}\p{Zl}\p{Zp}]|^\s|\s$"
_HASH = r"^[0-9a-f]{32}$"
_DEFAULTS = {"schema_version": "1", "source": "'unknown'", "type": "'interaction'"}


def quote(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _enum(values: frozenset[str]) -> str:
    return "Enum16(" + ", ".join(f"{quote(v)} = {i}" for i, v in enumerate(sorted(values), 1)) + ")"


def _field(name: str, spec: _Spec) -> tuple[str, list[str]]:
    """(structure type, problems: SQL conditions true for a bad value) of one field."""
    check, nullable, limit, _ = spec
    x = f"`{name}`"
    problems: list[str] = []
    if not nullable and name not in _DEFAULTS:
        problems.append(f"isNull({x})")
    if check == _STR and isinstance(limit, frozenset):
        kind = _enum(limit)
    elif check == _STR:
        kind = "String"
        if isinstance(limit, int):
            problems.append(f"ifNull(lengthUTF8({x}) > {limit}, false)")
        if name in _IDENTIFIERS:
            problems.append(
                f"ifNull({x} = '' OR NOT (match({x}, {quote(_ASCII_ID)}) OR "
                f"(normalizeUTF8NFKC({x}) = {x} AND NOT match({x}, {quote(_REFUSED_ID)}))), false)"
            )
    elif check == _TS:
        kind = "String"
        problems.append(f"ifNull(NOT match({x}, {quote(_RFC3339)}), false)")
    elif check == _NUM:
        kind = "Float64"
        if name in _NON_NEGATIVE:
            problems.append(f"ifNull({x} < 0, false)")
    elif check == _INT:
        kind = "Int64"
        if name == "schema_version":
            versions = limit if isinstance(limit, frozenset) else frozenset({"1"})
            problems.append(f"ifNull({x} NOT IN ({', '.join(sorted(versions))}), false)")
        else:
            problems.append(f"ifNull({x} < 0 OR {x} >= 4294967296, false)")
    else:
        assert check == _BOOL
        kind = "Bool"
    return f"Nullable({kind})", problems


def _output(name: str, spec: _Spec) -> str:
    """The expression that stores one field the way ``rows`` stores it."""
    check, nullable, limit, _ = spec
    x = f"`{name}`"
    if name in _DEFAULTS:
        x = f"ifNull({x}, {_DEFAULTS[name]})"
    elif not nullable:
        x = f"assumeNotNull({x})"
    if check == _STR and isinstance(limit, frozenset):
        return f"CAST({x}, 'Nullable(String)')" if nullable else f"CAST({x}, 'String')"
    if check == _TS:
        parsed = f"parseDateTime64BestEffort(ifNull({x}, ''), 6, 'UTC')"
        return f"if(isNull({x}), NULL, {parsed})" if nullable else parsed
    if name == "schema_version":
        return f"toUInt16({x})"
    if check == _INT:
        return f"toUInt32({x})" if not nullable else f"CAST({x}, 'Nullable(UInt32)')"
    return x


_POSITION = ["`_t` Nullable(String)", "`_p` Nullable(Int32)", "`_o` Nullable(Int64)"]
_POSITION_PROBLEMS = ["isNull(`_t`) OR isNull(`_p`) OR isNull(`_o`)"]
_POSITION_OUT = ["assumeNotNull(`_t`) AS topic", "assumeNotNull(`_p`) AS partition",
                 "assumeNotNull(`_o`) AS offset"]  # fmt: skip


class Shape:
    """A table's JSON structure, row checks and stored columns, as SQL fragments."""

    def __init__(
        self,
        specs: dict[str, _Spec],
        outputs: list[tuple[str, str]],
        extra_fields: list[str],
        extra_problems: list[str],
    ) -> None:
        """``outputs``: (table column, expression) in table order; extras are list fields."""
        fields, problems = list(_POSITION), list(_POSITION_PROBLEMS)
        for name, spec in specs.items():
            kind, bad = _field(name, spec)
            fields.append(f"`{name}` {kind}")
            problems.extend(bad)
        fields.extend(extra_fields)
        problems.extend(extra_problems)
        self.structure = ", ".join(fields)
        self.columns = [column for column, _ in outputs] + ["topic", "partition", "offset"]
        self.select = ", ".join([f"{expr} AS `{col}`" for col, expr in outputs] + _POSITION_OUT)
        self.problem = " OR ".join(f"({p})" for p in problems)

    def query(self, path: str) -> str:
        """``SELECT`` of the stored columns from the JSONEachRow file at ``path``, checks applied.

        ``throwIf`` runs in the inner WHERE on every row (on the JSON values, not the stored
        columns, whose aliases would shadow them) before anything is selected, so a batch with
        one bad row fails as a whole; its message says a row check failed (the Python decode of
        the batch then names the record, field and reason). Every declared field is read by
        the checks or the output: ``file()`` reads only the columns a query uses and would
        otherwise call the others unknown.
        """
        return (
            f"SELECT {self.select} FROM (SELECT * FROM "
            f"file({quote(path)}, JSONEachRow, {quote(self.structure)}) "
            f"WHERE throwIf({self.problem}, 'a record failed the row checks') = 0)"
        )


_FACT_RETRACTED_NONE = [
    ("retracted_kind", "''"),
    ("retracted_at", "CAST(NULL, 'Nullable(DateTime64(6, \\'UTC\\'))')"),
    ("retracted_channel", "CAST(NULL, 'Nullable(String)')"),
    ("retracted_outcome", "CAST(NULL, 'Nullable(String)')"),
    ("retracted_within", "CAST(NULL, 'Nullable(Bool)')"),
]

FACTS = Shape(
    _FACT,
    [(name, _output(name, _FACT[name])) for name, _ in FACT_FIELDS] + _FACT_RETRACTED_NONE,
    [],
    [],
)
"""sla_facts from fact values; the batch must hold no RETRACTED fact (the caller checks)."""

_INTERACTION_COLUMNS = (
    "event_id", "channel", "kind", "direction", "occurred_at", "recorded_at", "client_id",
    "thread_key", "counterpart", "staff", "flags", "call_outcome", "duration_seconds",
    "wait_seconds", "source", "subject", "schema_version",
)  # fmt: skip


def _interaction_output(name: str) -> str:
    if name == "flags":
        return "arraySort(arrayDistinct(CAST(`flags`, 'Array(String)')))"
    if name == "client_id":
        return "ifNull(`client_id`, '')"
    return _output(name, _INTERACTION[name])


INTERACTIONS = Shape(
    _INTERACTION,
    [(name, _interaction_output(name)) for name in _INTERACTION_COLUMNS],
    [
        f"`flags` Array({_enum(frozenset(f.value for f in Flag))})",
        "`parent_keys` Array(String)",
    ],
    [
        f"ifNull(NOT match(`message_key`, {quote(_HASH)}), false)",
        "ifNull(`type` != 'interaction', false)",
        f"length(`parent_keys`) > {MAX_PARENT_KEYS}",
        f"NOT arrayAll(k -> match(k, {quote(_HASH)}), `parent_keys`)",
        "ifNull(`schema_version`, 1) = 1 AND (isNotNull(`message_key`) OR notEmpty(`parent_keys`))",
        "`kind` = 'call' AND ifNull(`channel` != 'phone', true)",
        "isNotNull(`call_outcome`) AND ifNull(`kind` != 'call', true)",
    ],
)
"""interactions from interaction values (``type`` may only be ``interaction``)."""


def lines(values: Sequence[bytes], positions: Sequence[tuple[str, int, int]]) -> bytes:
    """The batch as JSONEachRow lines, each value with its position spliced in front."""
    return b"\n".join(
        [
            b'{"_t":"%s","_p":%d,"_o":%d,%s' % (t.encode(), p, o, v[1:])
            for v, (t, p, o) in zip(values, positions, strict=True)
        ]
    )
