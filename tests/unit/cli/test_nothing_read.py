"""A file that yields no record for its --format is an error naming the file and the format
(real ``shinrai`` subprocesses; nothing reaches Kafka or ClickHouse: the first would be a free
port here, and the error must come before it is asked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import jsonl, numbered_event
from tests.unit.cli.test_busy_ports import free_port
from tests.unit.cli.test_cli_errors import run_shinrai

pytestmark = pytest.mark.unit


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "x.jsonl"
    path.write_bytes(jsonl(numbered_event(n, "c1") for n in range(3)))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SHINRAI_KAFKA__BOOTSTRAP": f"127.0.0.1:{free_port()}"}


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_produce_of_a_jsonl_file_as_mbox_is_an_error(
    extra: list[str], events: Path, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["produce", str(events), "--format", "mbox", "--out", str(out), *extra]
    result = run_shinrai(argv, env, tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: {events}: read as --format mbox, this file holds no record (nothing produced): "
        "is --format right for it?"
    ]
    assert result.stdout == ""  # no summary of zeros
    assert not out.exists()


def test_an_empty_file_is_an_error_too(env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = run_shinrai(["produce", str(empty), "--format", "jsonl"], env, tmp_path)
    assert result.returncode == 1
    assert f"{empty}: read as --format jsonl" in result.stderr


def test_the_same_file_in_its_own_format_is_read(
    events: Path, env: dict[str, str], tmp_path: Path
) -> None:
    result = run_shinrai(["produce", str(events), "--format", "jsonl", "--dry-run"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"read": 3' in result.stdout


def test_backfill_of_nothing_is_an_error(events: Path, tmp_path: Path) -> None:
    store = f"chdb://{tmp_path / 'chdb'}"
    argv = ["backfill", str(events), "--format", "mbox", "--clickhouse", store]
    result = run_shinrai(argv, {}, tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"Error: {events}: read as --format mbox, no record found (nothing backfilled): "
        "is --format right for it?"
    )
    assert "Traceback" not in result.stderr
