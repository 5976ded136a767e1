"""Asterisk Master.csv parser: real files, ring-leg collapse, direction, rejects."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers.parsers import asterisk
from producers.parsers.base import Parsed, Rejected
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory
from schemas.events import CallOutcome, Direction
from tests.builders import client, directory
from tests.unit.phone._data import data_dir

pytestmark = pytest.mark.unit

EMPTY = Resolver(ClientDirectory())


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return [row for row in csv.reader(handle) if row]


def _call_key(row: list[str]) -> str:
    """The call a row belongs to: linkedid (Asterisk 12+, column 20) else uniqueid (17)."""
    return row[19] if len(row) > 19 and row[19] else row[16]


def _cdr_files() -> list[Path]:
    return sorted(data_dir("phone/asterisk-cdr").rglob("*.csv"))


def test_every_real_file_gives_one_event_per_call() -> None:
    files = _cdr_files()
    assert len(files) == 4  # PROVENANCE.md: 3 fafeitsch files + 1 mineevburyat file
    for path in files:
        results = list(asterisk.parse(path, EMPTY, tz="UTC"))
        rows = _rows(path)
        expected_calls = len({_call_key(row) for row in rows})
        parsed = [r for r in results if isinstance(r, Parsed)]
        assert [r for r in results if isinstance(r, Rejected)] == [], path.name
        assert len(parsed) == expected_calls, path.name
        assert len({r.event.event_id for r in parsed}) == expected_calls
        assert len(parsed) < len(rows) or "wo_parallel" in path.name


def test_row_counts_match_provenance() -> None:
    folder = data_dir("phone/asterisk-cdr")
    counts = {p.name: len(_rows(p)) for p in folder.rglob("*.csv")}
    assert counts["cdr.csv"] == 218
    assert counts["smallcdr.csv"] == 45
    assert counts["smallcdr_wo_parallelcalls.csv"] == 34
    assert counts["Master.pseudonymized.csv"] == 84


def test_parallel_legs_collapse_into_one_answered_call() -> None:
    path = data_dir("phone/asterisk-cdr") / "fafeitsch_cdrcsv-report-generator" / "cdr.csv"
    legs = [row for row in _rows(path) if row[16] == "1497952162.0"]
    assert sorted(row[14] for row in legs) == ["ANSWERED", "NO ANSWER"]
    answered = next(row for row in legs if row[14] == "ANSWERED")
    fmt = "%Y-%m-%d %H:%M:%S"
    expected_wait = (
        datetime.strptime(answered[10], fmt) - datetime.strptime(answered[9], fmt)
    ).total_seconds()
    events = [
        r.event
        for r in asterisk.parse(path, EMPTY, tz="UTC")
        if isinstance(r, Parsed) and r.event.event_id == "asterisk:1497952162.0"
    ]
    assert len(events) == 1
    assert events[0].call_outcome is CallOutcome.ANSWERED
    assert events[0].wait_seconds == expected_wait
    assert events[0].duration_seconds == float(answered[13])


def test_ring_group_that_timed_out_is_missed_despite_dialplan_answer() -> None:
    # linkedid 1706369600.6: two Dial legs NO ANSWER for 60 s, then the caller's own channel
    # (no dstchannel, lastapp Hangup) is marked ANSWERED by the PBX. Nobody picked up.
    path = data_dir("phone/asterisk-cdr") / "mineevburyat_dj-asterisk-cdr"
    legs = [row for row in _rows(path / "Master.pseudonymized.csv") if row[19] == "1706369600.6"]
    assert {row[14] for row in legs if row[6]} == {"NO ANSWER"}
    assert {row[14] for row in legs if not row[6]} == {"ANSWERED"}
    events = [
        r.event
        for r in asterisk.parse(path, EMPTY, tz="Europe/Moscow", region="RU")
        if isinstance(r, Parsed) and r.event.event_id == "asterisk:1706369600.6"
    ]
    assert len(events) == 1
    assert events[0].call_outcome is CallOutcome.MISSED
    assert events[0].wait_seconds == max(float(row[12]) for row in legs if row[6])
    assert events[0].occurred_at == datetime(2024, 1, 27, 12, 33, 20, tzinfo=UTC)  # MSK = UTC+3


def test_every_inbound_call_has_a_speed_of_answer() -> None:
    path = data_dir("phone/asterisk-cdr") / "fafeitsch_cdrcsv-report-generator" / "cdr.csv"
    rows = _rows(path)
    callers = sorted({row[1] for row in rows})
    clients = tuple(
        Client(
            client_id=f"c{i}",
            name=f"caller {i}",
            owner="owner@example.com",
            phone_numbers=(EMPTY.normalise_phone(number) or "",),
        )
        for i, number in enumerate(callers)
        if EMPTY.normalise_phone(number)
    )
    resolver = Resolver(ClientDirectory(clients=clients))
    events = [r.event for r in asterisk.parse(path, resolver) if isinstance(r, Parsed)]
    inbound = [e for e in events if e.direction is Direction.INBOUND]
    assert len(inbound) == len({_call_key(row) for row in rows if row[1] in callers})
    assert all(e.wait_seconds is not None and e.client_id for e in inbound)
    missed = [e for e in inbound if e.call_outcome is CallOutcome.MISSED]
    assert missed
    assert all(e.duration_seconds == 0 for e in missed)


SYNTHETIC = (
    b'"","+14155550100","200","from-pstn","<+14155550100>","SIP/t-1","SIP/201-1","Dial",'
    b'"SIP/201&SIP/202","2024-03-01 09:00:00","","2024-03-01 09:00:20",20,0,"NO ANSWER",'
    b'"DOCUMENTATION","1709283600.1",""\n'
    b'"","+14155550100","200","from-pstn","<+14155550100>","SIP/t-1","SIP/202-2","Dial",'
    b'"SIP/201&SIP/202","2024-03-01 09:00:00","2024-03-01 09:00:07","2024-03-01 09:03:07",187,'
    b'180,"ANSWERED","DOCUMENTATION","1709283600.1",""\n'
    b'"","201","+14155550100","internal","<201>","SIP/201-3","SIP/t-4","Dial","SIP/t",'
    b'"2024-03-01 10:00:00","","2024-03-01 10:00:30",30,0,"BUSY","DOCUMENTATION",'
    b'"1709287200.2",""\n'
    b'"","201","202","internal","<201>","SIP/201-5","SIP/202-6","Dial","SIP/202",'
    b'"yesterday","","2024-03-01 11:00:30",30,0,"NO ANSWER","DOCUMENTATION","1709290800.3",""\n'
)


def _synthetic(tmp_path: Path) -> list[Parsed | Rejected]:
    acme = client("acme", name="Acme", owner="owner@example.com", phone_numbers=("+14155550100",))
    ours = directory(acme, staff_phones=("+14155550199",))
    path = tmp_path / "Master.csv"
    path.write_bytes(SYNTHETIC)
    return list(asterisk.parse(path, Resolver(ours), tz="America/New_York"))


def test_synthetic_directions_outcomes_and_tz(tmp_path: Path) -> None:
    results = _synthetic(tmp_path)
    parsed = [r.event for r in results if isinstance(r, Parsed)]
    assert len(parsed) == 2
    inbound, outbound = parsed
    assert inbound.direction is Direction.INBOUND
    assert inbound.client_id == "acme"
    assert inbound.counterpart == "+14155550100"
    assert inbound.call_outcome is CallOutcome.ANSWERED
    assert inbound.wait_seconds == 7.0
    assert inbound.duration_seconds == 180.0
    assert inbound.occurred_at == datetime(2024, 3, 1, 14, 0, tzinfo=UTC)  # EST = UTC-5
    assert outbound.direction is Direction.OUTBOUND
    assert outbound.staff == "201"
    assert outbound.call_outcome is CallOutcome.BUSY


def test_bad_row_is_rejected_with_its_bytes_and_field(tmp_path: Path) -> None:
    rejected = [r for r in _synthetic(tmp_path) if isinstance(r, Rejected)]
    assert len(rejected) == 1
    assert rejected[0].reason.startswith("start:")
    assert rejected[0].raw == SYNTHETIC.splitlines(keepends=True)[3]
    assert rejected[0].origin.endswith("line 4")


def test_unknown_tz_is_a_configuration_error(tmp_path: Path) -> None:
    from shinrai.errors import ConfigError

    path = tmp_path / "Master.csv"
    path.write_bytes(SYNTHETIC)
    with pytest.raises(ConfigError, match="tz"):
        list(asterisk.parse(path, EMPTY, tz="Mars/Olympus"))
