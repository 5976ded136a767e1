"""The headers of one message, read from its raw header block as ``email`` would read them.

``HeaderReader(...).read(raw)`` answers ``get(name)`` and ``get_all(name)`` with the same texts as a
message parsed by ``email.parser.BytesParser(policy=email.policy.default, headersonly=True)``:
``str(header)`` of each header object, and the header object itself where the caller needs more
than the text (address headers: ``.addresses``). It is a cheaper way to the same answers: the
stdlib splits every line of the block through a generic feed parser and builds a header object
for every header read, though most values are returned unchanged by it.

How each answer is made (each step is what the stdlib does, or provably gives its result):

- Lines and fields: the stdlib's header section ends at the first line that is neither
  ``name:...``, a continuation (leading space or tab) nor a ``From `` line; a field is its name
  line and the continuation lines after it, its value the rest of the name line without leading
  blanks plus the continuation lines, every CR and LF removed (``policy.header_source_parse`` and
  ``header_fetch_parse``). Here two regular expressions over the bytes do the same.
- Unstructured headers (Subject, References, List-Id, ...) without ``=?``: the stdlib's text is
  the value itself (its tokens are the value's runs of blanks and non-blanks, concatenated back),
  with undecodable bytes read as UTF-8 with U+FFFD (``email.utils._sanitize``).
- Date: ``format_datetime(parsedate_to_datetime(value))``, the value itself when it does not
  parse (``email.headerregistry.DateHeader``).
- Message-ID of the usual form ``<dot-atom@dot-atom>``, blanks around: the value itself.
- Everything else (encoded words ``=?``, address headers, odd Message-IDs, any other structured
  header) goes to the policy's own header factory: the same object the stdlib would build.

A block the two expressions cannot read exactly as the stdlib does (a lone CR, a ``From `` line
or a line starting with ``:`` among the headers, a first line that is a continuation) is parsed
by the stdlib parser itself. ``tests/unit/email/test_email_header_block.py`` compares every
answer with the stdlib's on every shared sample message and on generated blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from email.headerregistry import (
    DateHeader,
    HeaderRegistry,
    MessageIDHeader,
    UnstructuredHeader,
)
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

# The stdlib's header section (email.feedparser): the lines from the start that match its
# headerRE; the first line that does not (an empty line, a body line) ends the section. Here:
# the longest run of fields (a name line and its continuation lines) from the start. A line
# where the run stops that still matches headerRE is one the stdlib treats specially (an
# envelope From_ line, a colon with no name before it, a continuation with no field to
# continue): the stdlib parser reads such a block.
_SECTION = re.compile(rb"(?:[\041-\071\073-\176]+:[^\n]*(?:\n|\Z)(?:[ \t][^\n]*(?:\n|\Z))*)*")
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[ \t]")
# A field of a section: its name, and its value with the continuation lines.
_VALUE = rb"([^\n]*(?:\n[ \t][^\n]*)*)"
_FIELD = re.compile(rb"^([\041-\071\073-\176]+):" + _VALUE, re.MULTILINE)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
# A Message-ID whose text the stdlib's msg-id parser gives back unchanged.
_PLAIN_MESSAGE_ID = re.compile(rf"[ \t]*<{_DOT_ATOM}@{_DOT_ATOM}>[ \t]*")

_UNSTRUCTURED = 0
_DATE = 1
_MESSAGE_ID = 2
_FACTORY = 3


class HeaderReader:
    """Reads header blocks for one policy: its header registry and its stdlib parser.

    ``registry`` is the policy's ``header_factory``; ``parse`` the stdlib parse of a block this
    reader leaves to the stdlib (``BytesParser(..., policy=...).parsebytes`` with
    ``headersonly=True``) under the same policy. ``often``: the names read from (nearly) every
    message; one expression finds those fields only, the others are indexed when first asked.
    """

    def __init__(
        self,
        registry: HeaderRegistry,
        parse: Callable[[bytes], Message],
        often: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        self.parse = parse
        self.often = frozenset(name.lower() for name in often)
        names = rb"(" + b"|".join(re.escape(n.encode("ascii")) for n in sorted(self.often)) + rb"):"
        # A literal LF first lets the regex engine skip to line starts (``^`` with MULTILINE
        # tries every position: three times slower); the first line is matched on its own.
        self._first_field = re.compile(names + _VALUE, re.I)
        self._next_fields = re.compile(rb"\n" + names + _VALUE, re.I)
        self._kinds: dict[str, int] = {}

    def read(self, raw: bytes) -> HeaderBlock:
        """The headers of ``raw`` (a message's header block, or the whole message)."""
        return HeaderBlock(self, raw)

    def often_fields(self, raw: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
        """(name, raw value) of the ``often`` fields of the section ``raw[start:end]``."""
        first = self._first_field.match(raw, start, end)
        found: list[tuple[bytes, bytes]] = self._next_fields.findall(raw, start, end)
        if first is not None:
            found.insert(0, (first[1], first[2]))
        return found

    def kind(self, key: str) -> int:
        """How the registry builds headers named ``key`` (lower-cased)."""
        kind = self._kinds.get(key)
        if kind is None:
            cls = self.registry[key]
            if issubclass(cls, UnstructuredHeader):
                kind = _UNSTRUCTURED
            elif issubclass(cls, DateHeader):
                kind = _DATE
            elif issubclass(cls, MessageIDHeader):
                kind = _MESSAGE_ID
            else:
                kind = _FACTORY
            self._kinds[key] = kind
        return kind


_Fields = dict[str, list[tuple[str, bytes]]]


class HeaderBlock:
    """The headers of one message (made by ``HeaderReader.read``)."""

    __slots__ = ("_all_fields", "_message", "_often", "_raw", "_read", "_reader", "_section")

    def __init__(self, reader: HeaderReader, raw: bytes) -> None:
        self._reader = reader
        self._raw = raw
        self._read: dict[str, list[str] | Exception] = {}
        self._section = _section(raw)
        self._message: Message | None = None
        self._often: _Fields = {}
        self._all_fields: _Fields | None = None
        if self._section is None:
            self._message = reader.parse(raw)
        else:
            self._often = _index(reader.often_fields(raw, *self._section))

    @property
    def read_by_stdlib(self) -> bool:
        """True when the block was left to the stdlib parser (an odd block, see module)."""
        return self._message is not None

    def get(self, name: str, failobj: Any = None) -> Any:
        """The first ``name`` header (``str``, or the stdlib's header object), or ``failobj``."""
        found = self._read.get(name) or self._headers(name)
        if isinstance(found, Exception):
            raise found
        return found[0] if found else failobj

    def get_all(self, name: str, failobj: Any = None) -> Any:
        """Every ``name`` header in message order, or ``failobj`` when there is none.

        Raises what the stdlib raises building any one of them, as ``Message.get_all`` does.
        """
        found = self._read.get(name) or self._headers(name)
        if isinstance(found, Exception):
            raise found
        return list(found) if found else failobj

    def _headers(self, name: str) -> list[str] | Exception:
        key = name.lower()
        done = self._read.get(key)
        if done is None:
            try:
                done = self._build(key)
            except Exception as exc:  # remembered: asked again, it raises again
                done = exc
            self._read[key] = done
        self._read[name] = done
        return done

    def _build(self, key: str) -> list[str]:
        if self._message is not None:
            return list(self._message.get_all(key) or [])
        if key in self._reader.often:
            fields = self._often
        else:
            if self._all_fields is None:
                assert self._section is not None
                self._all_fields = _index(_FIELD.findall(self._raw, *self._section))
            fields = self._all_fields
        return [self._header(name, key, value) for name, value in fields.get(key, ())]

    def _header(self, name: str, key: str, raw: bytes) -> str:
        # header_source_parse strips blanks at the start of the first line; header_fetch_parse
        # removes every CR and LF.
        raw = raw.lstrip(b" \t").replace(b"\r", b"").replace(b"\n", b"")
        value = raw.decode("ascii", "surrogateescape")
        kind = self._reader.kind(key)
        if kind == _UNSTRUCTURED and "=?" not in value:
            return value if raw.isascii() else raw.decode("utf-8", "replace")
        if kind == _DATE:
            return _date_text(value)
        if kind == _MESSAGE_ID and _PLAIN_MESSAGE_ID.fullmatch(value):
            return value
        header: str = self._reader.registry(name, value)
        return header


def _section(raw: bytes) -> tuple[int, int] | None:
    """Where the stdlib's header section lies in ``raw`` (without an envelope line first), or
    None for an odd block (see module)."""
    start = 0
    if raw.startswith(b"From "):  # an envelope line first: the stdlib sets it aside
        newline = raw.find(b"\n")
        start = len(raw) if newline < 0 else newline + 1
        cr = raw.find(b"\r", 0, start)
        if cr >= 0 and cr != newline - 1:
            return None  # a lone CR ends the line earlier
    match = _SECTION.match(raw, start)
    end = match.end() if match else start
    if _HEADER_LINE.match(raw, end):
        return None
    # A CR not followed by LF ends a line for the stdlib (its lines end at CRLF, CR or LF).
    cr = raw.count(b"\r", start, end)
    if cr and cr != raw.count(b"\r\n", start, end):
        return None
    return start, end


def _index(found: list[tuple[bytes, bytes]]) -> _Fields:
    """Lower-cased name → (name, raw value) of each field found, in order."""
    fields: _Fields = {}
    for name_bytes, value in found:
        name = name_bytes.decode("ascii")
        fields.setdefault(name.lower(), []).append((name, value))
    return fields


def _date_text(value: str) -> str:
    """What ``DateHeader`` makes of ``value``: the date re-formatted, else the value itself."""
    if not value:
        return ""
    try:
        when: datetime = parsedate_to_datetime(value)
    except ValueError:
        return _sanitized(value)
    return format_datetime(when)


def _sanitized(value: str) -> str:
    """``value`` with surrogate-escaped bytes read as UTF-8 (U+FFFD where invalid)."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
