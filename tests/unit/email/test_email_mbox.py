"""The fast mbox path gives exactly what the stdlib path gave, on the shared real archives.

The reference here is the way mbox files were read before: the stdlib's ``mailbox.mbox`` for the
records, the whole message (body and MIME parts included) parsed by
``email.message_from_bytes(policy=default)``, one process. The project's path reads records as a
stream (``email_mbox``), reads the header block only (``email_header_block``), and spreads chunks
over worker processes. Events, ids, rejects (reason and bytes), origins and order must be
identical.
"""

from __future__ import annotations

import email
import hashlib
import mailbox
import re
import tarfile
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path

import pytest

import producers.parsers.email as email_parser
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.parsers.email import _parse_stored, _Stored, message_event, parse_mbox
from producers.parsers.email_mbox import chunk_bounds, mbox_records
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory, StaffDirectory
from tests.shared_data import shared_path

pytestmark = pytest.mark.unit

ADDRESS = re.compile(r"[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)+")
STAFF = ("apache.org", "ettus.com", "ni.com", "emerson.com")  # the PROVENANCE.md vendors


def stdlib_records(path: Path) -> list[bytes]:
    """The records as ``mailbox.mbox`` reads them (with their From_ lines)."""
    box = mailbox.mbox(path, create=False)
    try:
        return [box.get_bytes(key, from_=True) for key in box.iterkeys()]
    finally:
        box.close()


def concatenated(tmp_path: Path) -> Path:
    """Every shared sample in one mbox: the Apache archives, then the usrp-users messages."""
    out = tmp_path / "samples.mbox"
    with out.open("wb") as dst:
        for box in sorted(shared_path("email/apache-ponymail").glob("*.mbox")):
            data = box.read_bytes()
            dst.write(data if data.endswith(b"\n") else data + b"\n")
            dst.write(b"\n")
        tar = shared_path("email/usrp-users/usrp-users-2021Q1.raw-eml.tar.gz")
        with tarfile.open(tar) as archive:
            for member in sorted(archive.getmembers(), key=lambda m: m.name):
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is None:
                    continue
                data = re.sub(rb"(?m)^(>*From )", rb">\1", handle.read())  # mboxrd quoting
                dst.write(b"From usrp-users@lists.ettus.com Fri Jan  1 00:00:00 2021\n")
                dst.write(data if data.endswith(b"\n") else data + b"\n")
                dst.write(b"\n")
    return out


def directory_for(path: Path) -> ClientDirectory:
    """Every From address outside the vendors' domains is a client (its own line scan)."""
    posters: set[str] = set()
    for line in path.read_bytes().splitlines():
        if line[:5].lower() != b"from:":
            continue
        _, addr = parseaddr(line[5:].decode("latin-1"))
        addr = addr.lower()
        if ADDRESS.fullmatch(addr) and not addr.endswith(tuple("@" + d for d in STAFF)):
            posters.add(addr)
    clients = tuple(
        Client(
            client_id="c" + hashlib.sha256(a.encode()).hexdigest()[:16],
            name=a,
            addresses=(a,),
            owner="owner@example.org",
        )
        for a in sorted(posters)
    )
    return ClientDirectory(clients=clients, staff=StaffDirectory(domains=STAFF))


def whole_message(raw: bytes) -> EmailMessage:
    """The parse before the change: the whole message, body and parts included, by the stdlib."""
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    return msg


def reference(path: Path, resolver: Resolver, monkeypatch: pytest.MonkeyPatch) -> list[ParseResult]:
    """The old mbox path: stdlib records, whole-message parse, one process."""

    def stored() -> Iterator[_Stored | Rejected]:
        for number, raw in enumerate(stdlib_records(path), start=1):
            first, _, message = raw.partition(b"\n")
            assert first.startswith(b"From ")
            yield _Stored(f"{path.name}#{number}", raw, message, first.decode("latin-1"))

    with monkeypatch.context() as patch:
        patch.setattr(email_parser, "_read_headers", whole_message)
        return list(
            _parse_stored(
                stored(),
                resolver,
                source="email:mbox",
                recorded_at=None,
                list_bulk_is_auto_reply=False,
            )
        )


def comparable(results: list[ParseResult]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for result in results:
        if isinstance(result, Parsed):
            out.append(("parsed", result.origin, result.event.model_dump(mode="json")))
        else:
            out.append(("rejected", result.origin, result.reason, result.raw))
    return out


EDGE_CASES = {
    "preamble and no final newline": b"junk before\n\nFrom a\nX: 1\n\nbody\nFrom b\nY: 2",
    "blank lines between": b"From a\nX: 1\n\n\n\nFrom b\n\nFrom c\n\n",
    "no blank line before From": b"From a\nX: 1\nbody\nFrom b\nX: 2\n\nb\n\n",
    "crlf records": b"From a\r\nX: 1\r\n\r\nbody\r\n\r\nFrom b\r\nX: 2\r\n\r\n",
    "only From lines": b"From a\nFrom b\n\nFrom c",
    "no From line": b"X: 1\n\nbody\n",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_records_match_the_stdlib_on_edge_cases(tmp_path: Path, name: str) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(EDGE_CASES[name])
    expected = stdlib_records(path)
    for size in (1, 3, 7, 16, 1 << 20):
        got = [r for start, end in chunk_bounds(path, size) for r in mbox_records(path, start, end)]
        assert got == expected, f"{name}, chunks of {size} bytes"


def test_records_match_the_stdlib_on_every_shared_archive(tmp_path: Path) -> None:
    boxes = [*sorted(shared_path("email/apache-ponymail").glob("*.mbox")), concatenated(tmp_path)]
    for box in boxes:
        expected = stdlib_records(box)
        for size in (65_536,) if box.name == "samples.mbox" else (8192,):
            bounds = chunk_bounds(box, size)
            assert bounds[0][0] == 0
            assert bounds[-1][1] == box.stat().st_size
            got = [r for start, end in bounds for r in mbox_records(box, start, end)]
            assert got == expected, f"{box.name}, chunks of {size} bytes"


def test_parse_mbox_is_identical_to_the_stdlib_whole_message_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = concatenated(tmp_path)
    resolver = Resolver(directory_for(box))
    expected = comparable(reference(box, resolver, monkeypatch))
    kinds = {row[0] for row in expected}
    assert kinds == {"parsed", "rejected"}  # the samples hold both: both are compared
    assert len(expected) > len(stdlib_records(box))  # staff messages fanned out to clients
    pooled = comparable(list(parse_mbox(box, resolver, workers=2, chunk_bytes=256 << 10)))
    assert pooled == expected


def test_one_process_reads_the_same_as_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    box = shared_path("email/apache-ponymail/maven-dev-2017-12-mboxvm.mbox")
    resolver = Resolver(directory_for(box))
    expected = comparable(reference(box, resolver, monkeypatch))
    assert comparable(list(parse_mbox(box, resolver, workers=1, chunk_bytes=64 << 10))) == expected


def test_message_event_keeps_its_behaviour_on_whole_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``message_event`` (live IMAP mail) gives what the whole-message parse gave."""
    resolver = Resolver(ClientDirectory(staff=StaffDirectory(domains=STAFF)))
    records = stdlib_records(shared_path("email/apache-ponymail/maven-dev-2017-11-listsao.mbox"))
    for raw in records:
        message = raw.partition(b"\n")[2]
        got = message_event(message, resolver, origin="imap", source="email:imap")
        with monkeypatch.context() as patch:
            patch.setattr(email_parser, "_read_headers", whole_message)
            want = message_event(message, resolver, origin="imap", source="email:imap")
        assert comparable([got]) == comparable([want])
    assert isinstance(email.message_from_bytes(records[0], policy=default_policy), EmailMessage)
