"""``shinrai replay`` end to end on a generated file (CliRunner, no services)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from engine.replay import RejectedLine, read_events_jsonl
from schemas.base import decode, encode
from schemas.facts import Fact, FactKind
from shinrai.cli import main
from shinrai.commands.replay import parse_duration
from tests.unit.engine.builders import IN, OUT, at, email

pytestmark = pytest.mark.unit


def _write_log(path: Path, clients: int) -> None:
    lines: list[bytes] = []
    start = at("2026-03-03T10:00")
    for c in range(clients):
        t = start + timedelta(minutes=c)
        lines.append(encode(email(f"in{c}", t, IN, client=f"c{c}")))
        if c % 2 == 0:  # every other client gets an answer 20 minutes later
            lines.append(encode(email(f"out{c}", t + timedelta(minutes=20), OUT, client=f"c{c}")))
    lines.insert(3, b'{"type": "interaction", "event_id": "broken"')  # line 4: not JSON
    bad_direction = orjson.loads(encode(email("bad", start, IN)))
    bad_direction["direction"] = "sideways"
    lines.insert(6, orjson.dumps(bad_direction))  # line 7: one bad field
    lines.append(encode(email("anon", start, IN, client=None)))
    lines.append(b"")  # blank lines are not errors
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_replay_command_writes_facts_and_reports_bad_lines(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    out = tmp_path / "facts.jsonl"
    _write_log(log, clients=10)
    result = CliRunner().invoke(
        main, ["replay", str(log), "-o", str(out), "--until", "2026-03-03T23:00:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert re.search(r"line 4: rejected: .*json", err, re.IGNORECASE)
    assert re.search(r"line 7: rejected: interaction\.direction: ", err)
    assert "line 2 column" not in err  # the JSON error points into the line itself
    assert re.search(r"events\s+16\b", err)  # 10 inbound + 5 replies + 1 without client
    assert re.search(r"without client \(kept, no effect\)\s+1\b", err)
    assert re.search(r"rejected lines\s+2\b", err)
    assert re.search(r"obligation_opened\s+10\b", err)
    assert re.search(r"fulfilled\s+5\b", err)
    assert re.search(r"breached\s+5\b", err)
    assert "events/s" in err
    facts = [decode(Fact, line) for line in out.read_bytes().splitlines()]
    assert sum(f.kind is FactKind.OBLIGATION_OPENED for f in facts) == 10
    assert {f.client_id for f in facts if f.kind is FactKind.BREACHED} == {
        "c1",
        "c3",
        "c5",
        "c7",
        "c9",
    }
    assert all(f.business_seconds == 1200 for f in facts if f.kind is FactKind.FULFILLED)
    # Same log, stdout this time: byte-identical facts.
    again = CliRunner().invoke(main, ["replay", str(log), "--until", "2026-03-03T23:00:00+00:00"])
    assert again.exit_code == 0
    assert again.stdout.encode() == out.read_bytes()


def test_strict_exits_non_zero_on_rejected_lines(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    _write_log(log, clients=2)
    result = CliRunner().invoke(main, ["replay", str(log), "--strict", "--show-rejected", "0"])
    assert result.exit_code == 1
    assert "line 4" not in result.stderr  # counted, not printed
    assert re.search(r"rejected lines\s+2\b", result.stderr)


def test_bad_options_are_explained(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"")
    naive = CliRunner().invoke(main, ["replay", str(log), "--until", "2026-03-03T10:00"])
    assert naive.exit_code == 2
    assert "needs a UTC offset" in naive.stderr
    late = CliRunner().invoke(main, ["replay", str(log), "--lateness", "soon"])
    assert late.exit_code == 2
    assert "not a duration" in late.stderr


def test_parse_duration_units() -> None:
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    assert parse_duration("0") == timedelta(0)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("-5m")


def test_read_events_jsonl_names_line_and_field() -> None:
    good = encode(email("ok", "2026-03-03T10:00", IN))
    items = list(read_events_jsonl([good, b"  \n", b'{"type": "policy_changed"}', b"[]"]))
    assert not isinstance(items[0], RejectedLine)
    assert [
        (r.line_no, "client_id" in r.reason) for r in items[1:] if isinstance(r, RejectedLine)
    ] == [
        (3, True),
        (4, False),
    ]
