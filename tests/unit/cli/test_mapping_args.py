"""``--mapping`` on ``produce`` and ``backfill``: the same built-in names, checked before a store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from producers.formats import BUILTIN_CDR_MAPPINGS
from shinrai.cli import main
from tests.unit.jobs.test_backfill import FakeSink

pytestmark = pytest.mark.unit

# Two records of the 1999 call-centre export layout (tab-separated, local times).
CALLCENTER_TSV = (
    "vru+line\tcall_id\tcustomer_id\tpriority\ttype\tdate\tvru_entry\tvru_exit\tvru_time\t"
    "q_start\tq_exit\tq_time\toutcome\tser_start\tser_exit\tser_time\tserver\n"
    "AA01\t1\t42\t0\tPS\t990201\t10:58:00\t10:58:10\t10\t10:58:10\t11:00:40\t150\tAGENT\t"
    "11:00:39\t11:02:00\t81\tDANA\n"
    "AA01\t2\t43\t0\tPS\t990201\t12:00:00\t12:00:05\t5\t12:00:05\t12:00:35\t30\tAGENT\t"
    "12:00:35\t12:03:00\t145\tDANA\n"
)


def _tsv(tmp_path: Path) -> Path:
    path = tmp_path / "calls.tsv"
    path.write_text(CALLCENTER_TSV)
    return path


def _backfill(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    store = tmp_path / "store"
    result = CliRunner().invoke(
        main,
        [
            *("backfill", str(_tsv(tmp_path)), "--clickhouse", f"chdb://{store}"),
            *("--no-progress", *args),
        ],
    )
    return result.exit_code, result.stderr, store


def test_unknown_mapping_name_lists_the_built_ins_and_creates_no_store(tmp_path: Path) -> None:
    code, stderr, store = _backfill(tmp_path, "--format", "cdr-csv", "--mapping", "callcenter")
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: --mapping callcenter: neither a built-in mapping")
    for name in BUILTIN_CDR_MAPPINGS:
        assert name in lines[0]
    assert not store.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "cdr-csv"), "format 'cdr-csv' needs --mapping FILE"),
        (("--format", "mbox", "--mapping", "callcenter-1999"), "does not use --mapping"),
        (("--format", "cdr-csv", "--mapping", "callcenter-1999", "--tz", "Mars/Olympus"), "tz"),
    ],
)
def test_any_bad_argument_is_one_error_line_and_no_store(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, stderr, store = _backfill(tmp_path, *args)
    assert code == 1, stderr
    assert stderr.startswith("Error: ")
    assert message in stderr
    assert not store.exists()


def test_bad_mapping_file_is_named_and_creates_no_store(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("source: x\ndelimiter: 7\n")
    code, stderr, store = _backfill(tmp_path, "--format", "cdr-csv", "--mapping", str(mapping))
    assert code == 1
    assert stderr.startswith(f"Error: --mapping {mapping}: ")
    assert not store.exists()


def test_backfill_accepts_a_built_in_mapping_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sinks: list[Any] = []

    class Sink(FakeSink):
        def __init__(self, settings: object) -> None:
            super().__init__()
            sinks.append(self)

        def setup(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr("sinks.clickhouse.sink.ClickHouseSink", Sink)
    code, stderr, _ = _backfill(tmp_path, "--format", "cdr-csv", "--mapping", "callcenter-1999")
    assert code == 0, stderr
    written = [r for batch in sinks[0].batches for r in batch]
    calls = [r for r in written if getattr(r, "kind", None) is not None and r.kind.value == "call"]
    assert sorted(c.client_id for c in calls) == ["anonbank-42", "anonbank-43"]


@pytest.mark.parametrize("command", ["produce", "backfill"])
def test_help_names_every_built_in_mapping(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    text = re.sub(r"\s+", " ", result.output)
    for name in BUILTIN_CDR_MAPPINGS:
        assert name in text


def test_produce_unknown_mapping_is_the_same_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["produce", str(_tsv(tmp_path)), "--format", "cdr-csv", "--mapping", "nope", "--dry-run"],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --mapping nope: neither a built-in mapping")
