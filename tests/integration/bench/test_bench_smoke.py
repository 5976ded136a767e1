"""Smoke test of the benchmark harness: ``bench.run --quick`` runs and reports every figure.

It asserts nothing about speed (speed lives in bench/ and docs/benchmarks.md): only that every
section ran against the real broker and embedded ClickHouse and produced a positive number for
every metric of the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import METRICS, SECTIONS
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration


def test_quick_run_reports_every_metric(kafka_bootstrap: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--results", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "SHINRAI_KAFKA__BOOTSTRAP": kafka_bootstrap},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = tmp_path.glob("run-*.json")
    record = json.loads(path.read_text())
    metrics = record["metrics"]
    missing = [m.key for m in METRICS if m.key not in metrics]
    assert not missing, missing
    not_positive = {m.key: metrics[m.key] for m in METRICS if not metrics[m.key] > 0}
    assert not not_positive, not_positive
    assert record["versions"]["python"]
    assert set(record["sections"]) == set(SECTIONS)
