"""Generic CDR CSV parser with the callcenter-1999 mapping (real TSV) and synthetic files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers.parsers import cdr_csv
from producers.parsers.base import Parsed, Rejected
from producers.resolution import Resolver
from schemas.directory import ClientDirectory
from schemas.events import CallOutcome, Direction
from tests.unit.phone._data import data_dir

pytestmark = pytest.mark.unit

EMPTY = Resolver(ClientDirectory())
NULL = "0:00:00"


def _tsv() -> Path:
    return data_dir("phone/callcenter-1999") / "anonymous-bank-1999-02-01_07.tsv"


@pytest.fixture(scope="module")
def callcenter() -> tuple[list[dict[str, str]], list[Parsed | Rejected]]:
    with _tsv().open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    results = list(cdr_csv.parse(_tsv(), EMPTY, mapping=cdr_csv.CALLCENTER_1999))
    return rows, results


def test_every_record_is_accounted_for(
    callcenter: tuple[list[dict[str, str]], list[Parsed | Rejected]],
) -> None:
    rows, results = callcenter
    assert len(rows) == 9007  # PROVENANCE.md: header + 9,007 call records
    assert len(results) == len(rows)
    served = sum(r["outcome"] == "AGENT" for r in rows)
    abandoned = sum(r["outcome"] == "HANG" and r["q_start"] != NULL for r in rows)
    parsed = [r.event for r in results if isinstance(r, Parsed)]
    assert len(parsed) == served + abandoned
    assert sum(e.call_outcome is CallOutcome.ANSWERED for e in parsed) == served
    assert sum(e.call_outcome is CallOutcome.ABANDONED for e in parsed) == abandoned
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert all(r.reason.startswith("outcome: skipped by mapping") for r in rejected)
    assert len({e.event_id for e in parsed}) == len(parsed)


def test_abandoned_calls_carry_their_queue_wait(
    callcenter: tuple[list[dict[str, str]], list[Parsed | Rejected]],
) -> None:
    rows, results = callcenter
    expected = sorted(
        float(r["q_time"]) for r in rows if r["outcome"] == "HANG" and r["q_start"] != NULL
    )
    waits = sorted(
        r.event.wait_seconds or 0.0
        for r in results
        if isinstance(r, Parsed) and r.event.call_outcome is CallOutcome.ABANDONED
    )
    assert waits == expected
    assert all(r.event.wait_seconds is not None for r in results if isinstance(r, Parsed))


def test_identified_customers_are_inbound_clients(
    callcenter: tuple[list[dict[str, str]], list[Parsed | Rejected]],
) -> None:
    rows, results = callcenter
    kept = [
        r
        for r in rows
        if r["outcome"] == "AGENT" or (r["outcome"] == "HANG" and r["q_start"] != NULL)
    ]
    identified = sum(r["customer_id"] != "0" for r in kept)
    inbound = [
        r.event for r in results if isinstance(r, Parsed) and r.event.direction is Direction.INBOUND
    ]
    assert len(inbound) == identified
    assert all(e.client_id and e.client_id.startswith("anonbank-") for e in inbound)


def test_first_record_times_in_israel(
    callcenter: tuple[list[dict[str, str]], list[Parsed | Rejected]],
) -> None:
    rows, results = callcenter
    first = results[0]
    assert isinstance(first, Parsed)
    # 1999-02-01 07:02:47 in Israel (winter, UTC+2) is 05:02:47 UTC.
    assert rows[0]["vru_entry"] == "7:02:47"
    assert first.event.occurred_at == datetime(1999, 2, 1, 5, 2, 47, tzinfo=UTC)
    assert first.event.duration_seconds == float(rows[0]["ser_time"])


HEADER = (
    "\t".join(
        [
            "vru+line",
            "call_id",
            "customer_id",
            "priority",
            "type",
            "date",
            "vru_entry",
            "vru_exit",
            "vru_time",
            "q_start",
            "q_exit",
            "q_time",
            "outcome",
            "ser_start",
            "ser_exit",
            "ser_time",
            "server",
        ]
    )
    + "\n"
)


def test_midnight_crossing_and_bad_records(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "AA01\t1\t42\t0\tPS\t990201\t23:58:00\t23:58:10\t10\t23:58:10\t0:00:40\t150\tAGENT\t0:00:39\t0:02:00\t81\tDANA\n",
        "AA01\t2\t42\t0\tPS\t990201\t12:00:00\t12:00:05\t5\t12:00:05\t12:00:35\t30\tGONE\t0:00:00\t0:00:00\t0\tNO_SERVER\n",
        "AA01\t3\t42\t0\tPS\t990201\t25:00:00\t12:00:05\t5\t12:00:05\t12:00:35\t30\tHANG\t0:00:00\t0:00:00\t0\tNO_SERVER\n",
        "AA01\t4\t42\n",
    ]
    path = tmp_path / "week.tsv"
    path.write_text("".join(lines))
    results = list(cdr_csv.parse(path, EMPTY, mapping=cdr_csv.CALLCENTER_1999))
    assert [type(r) for r in results] == [Parsed, Rejected, Rejected, Rejected]
    event = results[0].event  # type: ignore[union-attr]
    assert event.occurred_at == datetime(1999, 2, 1, 21, 58, tzinfo=UTC)
    assert event.recorded_at == datetime(1999, 2, 1, 22, 2, tzinfo=UTC)  # next day, local
    assert event.wait_seconds == 150.0
    reasons = [r.reason for r in results[1:] if isinstance(r, Rejected)]
    assert reasons[0].startswith("outcome: unmapped value 'GONE'")
    assert reasons[1].startswith("vru_entry: unparseable time")
    assert reasons[2].startswith("record:")
    assert [r.raw for r in results[1:] if isinstance(r, Rejected)] == [
        line.encode() for line in lines[2:]
    ]


def test_mapping_round_trips_as_json() -> None:
    mapping = cdr_csv.CALLCENTER_1999
    assert cdr_csv.CdrMapping.model_validate_json(mapping.model_dump_json()) == mapping
