"""The engine stays pure: no Kafka/Faust/ClickHouse/HTTP imports and no wall-clock reads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ENGINE = Path(__file__).resolve().parents[3] / "engine"
FORBIDDEN = ("faust", "aiokafka", "kafka", "clickhouse_connect", "chdb", "httpx")
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
}


def _modules() -> list[Path]:
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) >= 8, files  # the scan must actually see the engine
    return files


def _top(name: str) -> str:
    return name.split(".")[0]


def _violations(source: str, name: str) -> list[str]:
    """Forbidden imports and wall-clock calls found in ``source``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        line = getattr(node, "lineno", 0)
        found += [f"{name}:{line} imports {n}" for n in names if _top(n) in FORBIDDEN]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (owner_name, node.func.attr) in CLOCK_CALLS:
                found.append(f"{name}:{line} calls {owner_name}.{node.func.attr}")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_forbidden_import_or_clock_call(path: Path) -> None:
    assert _violations(path.read_text(), path.name) == []


def test_the_scan_catches_what_it_looks_for() -> None:
    bad = (
        "import aiokafka\nfrom clickhouse_connect.driver import x\nimport datetime as dt\n"
        "a = dt.datetime.now()\nb = time.time()\n"
    )
    assert len(_violations(bad, "bad.py")) == 4


def test_importing_the_engine_loads_no_vendor_client() -> None:
    code = (
        "import sys\n"
        "import engine, engine.core, engine.replay, engine.alerts, engine.state, engine.trust\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
        "assert 'engine.core' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ENGINE.parent,
        timeout=120,
    )
    assert done.stdout.strip() == ""
