"""The header reader answers exactly what the stdlib's ``email`` parse (policy=default) answers.

Reference: the stdlib's parse of the whole message's bytes, ``BytesParser(policy=default)`` with
``headersonly=True`` (its headers are those of a full parse; ``test_email_mbox`` compares the
events with a full parse), plain default policy (no shared header objects). Compared, for every header name the e-mail parser reads: the
number of headers, each one's text, each address header's mailboxes, and whether building them
raises (and what). On every shared sample message (the
Apache archives' records, the usrp-users files) and on generated header blocks.
"""

from __future__ import annotations

import mailbox
import tarfile
from collections import Counter
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from producers.parsers.email import _READER
from producers.parsers.email_header_block import HeaderBlock
from tests.shared_data import shared_path

pytestmark = pytest.mark.unit

STDLIB = BytesParser(policy=default_policy)
READ = (
    "Date",
    "Message-ID",
    "References",
    "In-Reply-To",
    "Subject",
    "From",
    "Reply-To",
    "To",
    "Cc",
    "List-Id",
    "List-Post",
    "Mailing-List",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "Precedence",
    "Received",
)
"""Every header ``producers.parsers.email`` reads."""


def answers(msg: EmailMessage | HeaderBlock, name: str) -> tuple[object, list[object]]:
    """What a reader says of ``name``: (what it raises or None, each header's text and mailboxes).

    Also returns the headers themselves (for the tally), as the second item's source.
    """
    try:
        found = msg.get_all(name) or []
        first = msg.get(name)
    except Exception as exc:
        return ("raises", type(exc).__name__, str(exc)), []
    out: list[object] = []
    for header in found:
        if isinstance(header, AddressHeader):
            out.append((str(header), [(a.display_name, a.addr_spec) for a in header.addresses]))
        else:
            out.append(str(header))
    return (None if first is None else str(first), out), found


def differences(raw: bytes, tally: Counter[str]) -> list[str]:
    """Every name whose answers differ between the stdlib and the reader (``tally`` counts what
    the message held that could trip the reader)."""
    stdlib = STDLIB.parsebytes(raw, headersonly=True)
    assert isinstance(stdlib, EmailMessage)
    block = _READER.read(raw)
    tally["left to the stdlib" if block.read_by_stdlib else "read here"] += 1
    out: list[str] = []
    for name in READ:
        (want, headers), (got, _) = answers(stdlib, name), answers(block, name)
        if want != got:
            out.append(f"{name}: stdlib {want!r}, reader {got!r}")
        if want[0] == "raises":
            tally["header the stdlib cannot build"] += 1
        if name == "Date":
            tally["no date"] += not headers
            tally["unparseable date"] += any(h.datetime is None for h in headers)  # type: ignore[attr-defined]
        tally["header defects"] += any(h.defects for h in headers)  # type: ignore[attr-defined]
    head = raw.partition(b"\n\n")[0]
    tally["encoded words"] += b"=?" in head
    tally["8-bit bytes"] += not head.isascii()
    tally["CRLF"] += b"\r\n" in head
    return out


def shared_messages() -> list[tuple[str, bytes]]:
    """Every shared sample message: the Apache records (without From_ line), the usrp files."""
    out: list[tuple[str, bytes]] = []
    for path in sorted(shared_path("email/apache-ponymail").glob("*.mbox")):
        box = mailbox.mbox(path, create=False)
        try:
            for key in box.iterkeys():
                out.append((f"{path.name}#{key}", box.get_bytes(key)))
        finally:
            box.close()
    tar = shared_path("email/usrp-users/usrp-users-2021Q1.raw-eml.tar.gz")
    files: list[tuple[str, bytes]] = []
    with tarfile.open(tar) as archive:  # in archive order: a gzip stream seeks backwards slowly
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                files.append((member.name, handle.read()))
    return out + sorted(files)


def test_every_header_of_every_shared_message_reads_as_the_stdlib_reads_it() -> None:
    messages = shared_messages()
    assert len(messages) > 2000
    tally: Counter[str] = Counter()
    found: dict[str, list[str]] = {}
    for origin, raw in messages:
        diff = differences(raw, tally)
        if diff:
            found[origin] = diff
    assert not found, "\n".join(f"{o}: {d}" for o, d in list(found.items())[:20])
    # The samples exercise the reader's own path. They hold encoded words and undated messages
    # but no 8-bit header bytes, CRLF, unparseable date or header defect: the generated blocks
    # below bring those.
    assert tally["read here"] > 0.99 * len(messages), tally
    assert tally["encoded words"] > 100, tally
    assert tally["no date"] > 100, tally


HEADER_NAMES = st.sampled_from(
    [*READ, "DATE", "message-id", "Content-Type", "X-Mailer", "Resent-Date", "Sender", "Bcc"]
)
VALUE_PIECES = st.sampled_from(
    [
        "",
        " ",
        "\t",
        "  ",
        "plain text",
        "<a.b@c.d>",
        "<a@b>",
        " <x..y@z>",
        "<no-right>",
        "<a@b> trailing",
        "<a@[1.2.3.4]>",
        "(comment) <a@b>",
        "a@b",
        "=?utf-8?q?caf=C3=A9?=",
        "=?utf-8?b?w6k=?=",
        "=?iso-8859-1?q?=E9t=E9?=",
        "=?unknown-8bit?q?x?=",
        "=?utf-8?q?broken",
        "=??=",
        "Mon, 2 Jan 2006 15:04:05 -0700",
        "2 Jan 06 15:04 GMT",
        "Tue, 31 Feb 2021 10:00:00 +0000",
        "Wed, 1 Jan 0050 00:00:00 -0000",
        "Thu, 1 Jan 2020 23:59:60 +2500",
        "Name <a@b.c>",
        '"Doe, John" <j@d.e>',
        "a@b, c@d",
        "Group: a@b, c@d;",
        "Name via List <list@l.org>",
        "<mailto:list@l.org>",
        "bulk",
        "auto-replied",
        "\xe9",
        "\xff\xfe",
        "\xc3\xa9",
        ";",
        ":",
        "\x00",
        "\x0b",
    ]
)
VALUES = st.lists(VALUE_PIECES, max_size=4).map("".join)
LINE_ENDS = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r\n", "\r"])


@st.composite
def header_blocks(draw: st.DrawFn) -> bytes:
    """Header blocks with what real archives get wrong: folding, odd lines, bytes, line ends."""
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append("From someone@example.org Mon Jan  1 00:00:00 2024")
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 19)) == 0:
            lines.append(draw(st.sampled_from(["From x@y", ":no name", " lead", "not a header"])))
        else:
            value = draw(VALUES)
            name = draw(HEADER_NAMES)
            lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{value}")
            for _ in range(draw(st.integers(0, 2))):
                lines.append(draw(st.sampled_from([" ", "\t"])) + draw(VALUES))
    end = draw(LINE_ENDS)
    text = end.join(lines)
    if draw(st.booleans()):
        text += end + end + "body" + end
    return text.encode("latin-1")


@settings(max_examples=1000, deadline=None)
@given(header_blocks())
def test_generated_header_blocks_read_as_the_stdlib_reads_them(raw: bytes) -> None:
    tally: Counter[str] = Counter()
    assert differences(raw, tally) == []
    for kind in (
        "8-bit bytes",
        "CRLF",
        "unparseable date",
        "header defects",
        "header the stdlib cannot build",
        "read here",
    ):
        event(f"{kind}: {bool(tally[kind])}")


def test_odd_blocks_are_left_to_the_stdlib() -> None:
    """Blocks the two expressions cannot read exactly go to the stdlib parser, whole."""
    for raw in (
        b"Subject: a\rb\nFrom: x@y\n\n",  # a lone CR ends a line
        b"Subject: a\nFrom x@y\nTo: b@c\n\n",  # an envelope line among the headers
        b"Subject: a\n:no name\n to@x\n\n",  # no name before the colon
        b" folded first\nSubject: a\n\n",  # a continuation with no field
    ):
        block = _READER.read(raw)
        assert block.read_by_stdlib
        assert differences(raw, Counter()) == []
    assert not _READER.read(b"From x Mon\nSubject: a\r\n\r\nbody\rmore\n").read_by_stdlib
