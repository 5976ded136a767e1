"""Runtime files come from the package, data goes outside the source tree (no wheel needed).

The slow, real check is ``tests/integration/packaging/test_wheel.py``; these catch the same
mistakes in milliseconds: a default that points into the checkout, a module that finds its files
through ``__file__``, a shipped file that is not where the code reads it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from shinrai.errors import ConfigError
from shinrai.local_kafka import SHIPPED, LocalKafka, pinned_version
from shinrai.settings import LocalKafkaSettings, Settings
from sinks.clickhouse import migrate, queries
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.unit

PACKAGES = ["shinrai", "schemas", "engine", "streams", "sinks", "producers", "dashboard"]


def test_data_directories_default_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name in (
        "SHINRAI_CLICKHOUSE__URL",
        "SHINRAI_WORKER__DATA_DIR",
        "SHINRAI_LOCAL_KAFKA__DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    monkeypatch.chdir(REPO_ROOT)  # resolved when loaded: a later chdir does not move them
    assert settings.clickhouse.url == f"chdb://{tmp_path / '.data' / 'chdb'}"
    assert settings.worker.data_dir == tmp_path / ".data" / "worker"
    assert settings.local_kafka.data_dir == tmp_path / "xdg" / "shinrai" / "kafka"


def test_local_kafka_writes_only_under_its_data_dir(tmp_path: Path) -> None:
    broker = LocalKafka(LocalKafkaSettings(port=29092, data_dir=tmp_path))
    assert broker.libs_dir == tmp_path / "cache" / f"kafka-{pinned_version()}" / "libs"
    assert broker.run_dir == tmp_path / "run" / "29092"
    assert broker.log_file.is_relative_to(tmp_path)
    broker.run_dir.mkdir(parents=True)  # format() makes it before rendering
    config = broker._render_config()
    assert "listeners=PLAINTEXT://127.0.0.1:29092," in config.read_text()
    assert (broker.run_dir / "log4j2.yaml").read_text() == (SHIPPED / "log4j2.yaml").read_text()
    assert f"-Dlog4j2.configurationFile={broker.run_dir / 'log4j2.yaml'}" in broker._log_opts()


def test_sql_is_read_from_the_package() -> None:
    folder = REPO_ROOT / "sinks" / "clickhouse" / "sql"
    on_disk = sorted(p.name for p in (folder / "migrations").glob("*.sql"))
    assert [f"{m.version:04d}_{m.name}.sql" for m in migrate.load()] == on_disk
    assert queries.names() == sorted(p.stem for p in (folder / "queries").glob("*.sql"))
    assert not (REPO_ROOT / "deploy" / "clickhouse" / "migrations").exists()  # one copy only
    assert not (REPO_ROOT / "deploy" / "clickhouse" / "queries").exists()


def test_every_shipped_file_is_declared_package_data() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]
    declared = {
        p.relative_to(REPO_ROOT)
        for package, patterns in globs.items()
        for pattern in patterns
        for p in (REPO_ROOT / package.replace(".", "/")).glob(pattern)
    }
    data = {
        p.relative_to(REPO_ROOT)
        for package in PACKAGES
        for p in (REPO_ROOT / package).rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    }
    assert data == declared


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_locates_files_through_its_own_path(package: str) -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Name) and node.id == "__file__"
    ]
    assert offenders == [], "read shipped files with importlib.resources, not __file__"


def test_a_missing_sql_folder_is_named_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no migrations folder .*package data"):
        migrate.load(tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"no queries folder .*package data"):
        queries.names(tmp_path / "absent")
