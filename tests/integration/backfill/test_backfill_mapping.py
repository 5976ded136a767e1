"""``shinrai backfill --mapping NAME`` into embedded ClickHouse: built-in names work, bad ones
create nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from shinrai.cli import main
from shinrai.settings import ClickHouseSettings
from tests.unit.cli.test_mapping_args import CALLCENTER_TSV

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client as ChClient

pytestmark = pytest.mark.integration


def _backfill(tsv: Path, target: ClickHouseSettings, mapping: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        [
            *("backfill", str(tsv), "--format", "cdr-csv", "--mapping", mapping),
            *("--clickhouse", target.url, "--database", target.database, "--no-progress"),
        ],
    )
    return result.exit_code, result.output


def test_built_in_mapping_backfills_and_an_unknown_one_creates_no_database(
    tmp_path: Path,
    ch_target: ClickHouseSettings,
    ch_client: Callable[[ClickHouseSettings], ChClient],
) -> None:
    tsv = tmp_path / "calls.tsv"
    tsv.write_text(CALLCENTER_TSV)
    missing = ch_target.model_copy(update={"database": ch_target.database + "_never"})
    code, output = _backfill(tsv, missing, "callcenter-2099")
    assert code == 1
    assert "callcenter-1999" in output

    code, output = _backfill(tsv, ch_target, "callcenter-1999")
    assert code == 0, output
    client = ch_client(ch_target)
    rows = client.query(
        "SELECT client_id FROM interactions FINAL WHERE kind = 'call' ORDER BY client_id"
    ).result_rows
    assert [r[0] for r in rows] == ["anonbank-42", "anonbank-43"]
    databases = {r[0] for r in client.query("SHOW DATABASES").result_rows}
    assert ch_target.database in databases
    assert missing.database not in databases
