"""``shinrai produce --dry-run`` over the real third-party files in ../shared/data, per format.

Counts are checked as invariants (every record is produced, a duplicate or rejected; the run
never aborts) plus facts of the data that must hold whatever the parsers' details: the three
archivers' copies of one month collapse to one event per message, vendor examples that are not
Call resources are rejected with their reason.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from shinrai.cli import main
from tests.shared_data import shared_path

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def data(folder: str) -> Path:
    """A folder of the shared data; fail in CI when it is missing, skip (naming it) elsewhere."""
    return shared_path(folder)


def dry_run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["produce", *args, "--dry-run", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = orjson.loads(result.stdout)
    assert summary["dry_run"] is True
    assert summary["read"] == summary["produced"] + summary["duplicates"] + summary["rejected"]
    assert summary["distinct_event_ids"] == summary["produced"]
    assert sum(summary["rejected_by_reason"].values()) == summary["rejected"]
    assert sum(summary["by_kind"].values()) == summary["produced"]
    return summary


def test_mbox_three_archivers_collapse_to_one_event_per_message(tmp_path: Path) -> None:
    folder = data("email/apache-ponymail")
    # lists.a.o, mail-archives.a.o and mbox-vm exports of one month
    copies = [
        folder / f"maven-dev-2017-11-{name}.mbox"
        for name in ("listsao", "mailarchivesao", "mboxvm")
    ]
    single = dry_run(str(copies[0]), "--format", "mbox")
    merged = tmp_path / "three-archivers.mbox"
    merged.write_bytes(b"".join(p.read_bytes() for p in copies))
    summary = dry_run(str(merged), "--format", "mbox")
    assert summary["read"] >= 3 * single["produced"] - 10
    assert summary["duplicates"] >= 2 * single["produced"] - 10
    assert abs(summary["produced"] - single["produced"]) <= 5


def test_eml_folder(tmp_path: Path) -> None:
    archive = data("email/usrp-users") / "usrp-users-2021Q1.raw-eml.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    summary = dry_run(str(tmp_path), "--format", "eml")
    assert summary["read"] == 600
    assert summary["by_kind"] == {"message": summary["produced"]}
    # No directory given: nobody is a known client, so every event is keyed _unknown.
    assert summary["unknown_client"] == summary["produced"]


def test_asterisk_master_csv() -> None:
    folder = data("phone/asterisk-cdr")
    summary = dry_run(str(folder), "--format", "asterisk", "--tz", "Europe/Moscow")
    assert summary["produced"] > 100
    assert set(summary["by_kind"]) == {"call"}
    # Parallel ring legs of one call share its event id: they are counted once.
    assert summary["duplicates"] > 0


def test_cdr_csv_callcenter_with_builtin_mapping() -> None:
    folder = data("phone/callcenter-1999")
    summary = dry_run(str(folder), "--format", "cdr-csv", "--mapping", "callcenter-1999")
    assert summary["read"] == 9007
    assert summary["produced"] > 8000
    # The source's PHANTOM calls are rejected with the mapping's reason, not silently dropped.
    assert any("virtual call" in reason for reason in summary["rejected_by_reason"])
    # customer_id resolves many callers to clients (anonbank-<id>).
    assert summary["unknown_client"] < summary["produced"]


def test_twilio_examples() -> None:
    summary = dry_run(str(data("phone/twilio-examples")), "--format", "twilio")
    assert summary["produced"] >= 1
    assert summary["by_kind"] == {"call": summary["produced"]}
    # Conference and other non-Call examples are rejected, each with its reason.
    assert summary["rejected"] >= 1


def test_ics_recurring_fixtures_in_a_window() -> None:
    summary = dry_run(
        str(data("meetings/recurring-ical-events")),
        *("--format", "ics", "--window-start", "2019-01-01", "--window-end", "2021-01-01"),
    )
    assert summary["produced"] > 100
    assert set(summary["by_kind"]) == {"meeting"}


def test_ics_needs_a_window() -> None:
    folder = data("meetings/recurring-ical-events")
    result = CliRunner().invoke(main, ["produce", str(folder), "--format", "ics", "--dry-run"])
    assert result.exit_code != 0
    assert "--window-start and --window-end" in result.output


def test_zoom_capture() -> None:
    summary = dry_run(str(data("meetings/zoom-capture")), "--format", "zoom")
    # Four webhook payloads of one meeting become one meeting event.
    assert summary["produced"] == 1
    assert summary["by_kind"] == {"meeting": 1}


def test_graph_examples() -> None:
    summary = dry_run(str(data("meetings/msgraph-examples")), "--format", "graph")
    assert summary["produced"] >= 1
    assert summary["rejected"] >= 1
