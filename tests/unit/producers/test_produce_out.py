"""``shinrai produce --out``: the canonical events as JSON lines, replayable like the live log."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from engine.core import Engine
from engine.replay import replay
from producers.directory_io import load_directory
from producers.jsonl import EventsFile
from producers.parsers.base import Parsed, Rejected
from producers.parsers.email import parse_mbox
from producers.produce import run
from producers.resolution import Resolver
from schemas.base import decode, encode
from schemas.events import InteractionEvent
from shinrai.cli import main
from shinrai.errors import KafkaUnavailable
from tests.builders import numbered_event
from tests.unit.producers.test_runner import MemorySink

pytestmark = pytest.mark.unit

DIRECTORY_CSV = """kind,client_id,name,domains,addresses,phone_numbers,owner
staff,,Support,example.com,,,
staff,,Hana Sato,,hana.sato@gmail.com,,
group,,users list,,users@lists.example.com,,
,acme,ACME,acme.com,,,owner@example.com
,Alice@Gmail.com,,,,,owner@example.com
"""


def _message(
    when: str, sender: str, to: str, msg_id: str, subject: str, parent: str | None = None
) -> str:
    """One mbox entry (From_ line, headers, a short body)."""
    lines = [
        f"From {sender} {when}",
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {when} +0000",
        f"Message-ID: <{msg_id}>",
    ]
    if parent is not None:
        lines += [f"In-Reply-To: <{parent}>", f"References: <{parent}>"]
    return "\n".join([*lines, "", "body", "", ""])


def _archive(tmp_path: Path) -> Path:
    """A small mbox, NOT in time order, with one message that cannot become an event."""
    entries = [
        # The staff answer (a staff member on a free-mail address, from the kind=staff row)
        # comes first in the file, before the question it answers.
        _message(
            "Tue, 4 Mar 2025 11:00:00",
            "hana.sato@gmail.com",
            "alice@gmail.com",
            "a2@gmail.com",
            "Re: login",
            parent="a1@gmail.com",
        ),
        _message(
            "Tue, 4 Mar 2025 10:00:00",
            "alice@gmail.com",
            "support@example.com",
            "a1@gmail.com",
            "login",
        ),
        _message(
            "Tue, 4 Mar 2025 10:05:00",
            "bob@acme.com",
            "support@example.com",
            "b1@acme.com",
            "invoice",
        ),
        # No From: header, so no sender: rejected (and still written to --rejects).
        "From nobody Tue Mar  4 12:00:00 2025\nTo: support@example.com\nSubject: x\n"
        "Date: Tue, 4 Mar 2025 12:00:00 +0000\nMessage-ID: <x1@nowhere.example>\n\nbody\n\n",
    ]
    box = tmp_path / "list.mbox"
    box.write_text("".join(entries))
    return box


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "clients.csv"
    path.write_text(DIRECTORY_CSV)
    return path


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_dry_run_out_replays_to_the_same_facts_as_the_parsed_events(tmp_path: Path) -> None:
    box, directory = _archive(tmp_path), _directory(tmp_path)
    out, rejects = tmp_path / "events.jsonl", tmp_path / "rejects.jsonl"
    code, stdout, stderr = _invoke(
        *("produce", str(box), "--format", "mbox", "--directory", str(directory)),
        *("--dry-run", "--no-progress", "--out", str(out), "--rejects", str(rejects)),
    )
    assert code == 0, stderr
    summary = orjson.loads(stdout)
    assert summary["produced"] == summary["written"] == 3
    assert summary["rejected"] == 1

    # The file holds the canonical events, in event-time order, attributed by the CSV directory.
    written = [decode(InteractionEvent, line) for line in out.read_bytes().splitlines()]
    assert [e.occurred_at for e in written] == sorted(e.occurred_at for e in written)
    assert [(e.client_id, e.direction.value) for e in written] == [
        ("alice_at_gmail.com", "inbound"),
        ("acme", "inbound"),
        ("alice_at_gmail.com", "outbound"),
    ]

    # The rejected message still goes to the rejects file, with its original bytes.
    reject = orjson.loads(rejects.read_bytes().splitlines()[0])
    assert b"x1@nowhere.example" in base64.b64decode(reject["raw_base64"])
    assert reject["reason"].startswith("From:")

    # Replaying the file gives exactly the facts of replaying the parsed events directly.
    resolver = Resolver(load_directory(directory))
    direct = [r.event for r in parse_mbox(box, resolver) if isinstance(r, Parsed)]
    expected = [encode(f) for f in replay(direct, Engine(allowed_lateness=timedelta(minutes=5)))]
    facts = tmp_path / "facts.jsonl"
    code, _, stderr = _invoke("replay", str(out), "-o", str(facts), "--strict")
    assert code == 0, stderr
    assert facts.read_bytes().splitlines() == expected
    # The comparison is about real facts (Alice answered by staff, ACME still open), not two
    # empty lists.
    kinds = {orjson.loads(line)["kind"] for line in expected}
    assert {"obligation_opened", "fulfilled"} <= kinds


def test_out_file_is_the_sent_events_in_the_sent_order(tmp_path: Path) -> None:
    events = [numbered_event(n, "acme") for n in (4, 1, 3)]
    sink, out = MemorySink(), EventsFile(tmp_path / "out.jsonl")
    try:
        summary = run(
            [Parsed(e, f"f:{i}") for i, e in enumerate([*events, events[0]])],
            source="t",
            topic="interactions.v1",
            sink=sink,
            out=out,
        )
    finally:
        out.close()
    sent = [value for _, _, value, _ in sink.records]
    assert (tmp_path / "out.jsonl").read_bytes().splitlines() == sent
    assert summary.written == summary.produced == 3
    assert not list(tmp_path.glob(".*partial"))


def test_out_file_is_whole_even_when_the_broker_fails(tmp_path: Path) -> None:
    out = EventsFile(tmp_path / "out.jsonl")
    with pytest.raises(KafkaUnavailable):
        run(
            [Parsed(numbered_event(n, "acme"), "f") for n in range(3)],
            source="t",
            topic="t",
            sink=MemorySink(fail_flush=True),
            out=out,
        )
    out.close()
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 3


def test_an_interrupted_run_leaves_the_old_file_and_no_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")

    def broken() -> Iterator[Parsed | Rejected]:
        yield Parsed(numbered_event(1, "acme"), "f:1")
        raise OSError("disk went away")  # the archive stops being readable half-way

    out = EventsFile(target)
    with pytest.raises(OSError, match="disk went away"):
        run(broken(), source="t", topic="t", sink=None, out=out)
    out.close()
    assert target.read_bytes() == b"old\n"
    assert list(tmp_path.iterdir()) == [target]


def test_bad_arguments_create_no_out_or_rejects_file(tmp_path: Path) -> None:
    box = _archive(tmp_path)
    out, rejects = tmp_path / "events.jsonl", tmp_path / "rejects.jsonl"
    code, _, stderr = _invoke(
        *("produce", str(box), "--format", "mbox", "--tz", "UTC", "--dry-run"),
        *("--out", str(out), "--rejects", str(rejects)),
    )
    assert code == 1
    assert stderr.strip().splitlines() == ["Error: format 'mbox' does not use --tz"]
    assert not out.exists()
    assert not rejects.exists()
