"""Identifiers of the wire contract: one rule, applied where the value is read.

An identifier (client id, event id, thread key, staff or counterpart address, policy id, ...) is
a key: it names a Kafka partition key, a state entry, a thread or a join. Two spellings of one
key make two clients, two threads, two obligations. So every identifier field is read through
:data:`Identifier` (or its 128-character and client-id variants), which

1. applies Unicode NFKC normalisation (full-width ``ｃ０１`` and ``c01`` are one key; ligatures,
   superscripts and other compatibility forms fold to their plain letters), then
2. refuses any character that is invisible, ambiguous or not text: controls (``Cc``: NUL, tab,
   newline, ...), format characters (``Cf``: bidi overrides and isolates such as U+202E,
   zero-width space/joiner, BOM, soft hyphen), surrogates (``Cs``), private use (``Co``),
   unassigned code points (``Cn``) and the line/paragraph separators (``Zl``, ``Zp``), and
3. refuses leading or trailing whitespace (a key that differs from another by a trailing space
   is a mistake, never a different key).

Normalisation runs before the length and pattern constraints, so those apply to the key as it
is stored. The error names the character (code point and Unicode name) and its position; pydantic
adds the field, so a reject reads ``client_id: Value error, contains U+202E RIGHT-TO-LEFT
OVERRIDE (a format character: bidi control or invisible) at position 3``.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = [
    "ClientId",
    "Identifier",
    "ShortIdentifier",
    "identifier_problem",
    "normalise_identifier",
]

_REFUSED = {
    "Cc": "a control character",
    "Cf": "a format character: bidi control or invisible",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}

# The same rule for producers in other languages (ECMA-262 with the ``u`` flag, as JSON Schema
# 2020-12 validators use): no refused category anywhere, no whitespace at either end.
JSON_PATTERN = r"^(?!\s)[^\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]*(?<!\s)$"


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def normalise_identifier(value: str) -> str:
    """``value`` in NFKC; raise ValueError naming the first refused character and why."""
    if value.isascii() and value.isprintable():
        text = value  # printable ASCII is already NFKC and holds no refused character
    else:
        for position, char in enumerate(value):
            # Surrogates are checked before normalising: NFKC would keep them, but an encoder
            # downstream would fail on them, so they are named here like any other.
            if unicodedata.category(char) == "Cs":
                raise ValueError(
                    f"contains {_describe(char)} ({_REFUSED['Cs']}) at position {position}"
                )
        text = unicodedata.normalize("NFKC", value)
        for position, char in enumerate(text):
            category = unicodedata.category(char)
            if category in _REFUSED:
                raise ValueError(
                    f"contains {_describe(char)} ({_REFUSED[category]}) at position {position}"
                )
    if text != text.strip():
        raise ValueError("has leading or trailing whitespace")
    return text


def identifier_problem(value: str) -> str | None:
    """Why ``value`` is not a valid identifier, or None when it is (for parsers' own checks)."""
    try:
        normalise_identifier(value)
    except ValueError as exc:
        return str(exc)
    return None


def _before(value: Any) -> Any:
    # Non-strings pass through unchanged: the strict ``str`` schema rejects them with its own
    # message ("Input should be a valid string").
    if not isinstance(value, str):
        return value
    # The usual id, inline (this runs for every id of every event the worker decodes): printable
    # ASCII with no space at either end is already valid and in NFKC.
    if value.isascii() and value.isprintable() and value[:1] != " " and value[-1:] != " ":
        return value
    return normalise_identifier(value)


class _JsonPattern:
    """Publishes the rule in the JSON Schema as a ``pattern`` (pydantic checks it in Python)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("pattern", JSON_PATTERN)
        return schema


Identifier = Annotated[
    str, Field(min_length=1, max_length=512), _JsonPattern(), BeforeValidator(_before)
]
"""An identifier: NFKC, no control/format/bidi/unassigned characters, 1..512 characters.

The constraints come before the validator on purpose: pydantic applies annotations inside out,
so the length checks sit on the ``str`` schema and see the text the normalising validator
hands them (NFKC can lengthen a string: U+FDFA becomes 18 characters).
"""

ShortIdentifier = Annotated[
    str, Field(min_length=1, max_length=128), _JsonPattern(), BeforeValidator(_before)
]
"""An :data:`Identifier` of at most 128 characters (policy, calendar, fact and alert ids)."""

CLIENT_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"

ClientId = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=CLIENT_ID_PATTERN),
    BeforeValidator(_before),
]
"""A directory client id: NFKC first, then ASCII letters, digits and ``._:-`` (so a full-width
``ｃ０１`` in a directory file is ``c01``). Its JSON pattern is the stricter ASCII one."""
