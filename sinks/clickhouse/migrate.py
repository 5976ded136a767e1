"""Versioned SQL migrations: ``sinks/clickhouse/sql/migrations/NNNN_name.sql``, applied in order.

The files are package data (read through ``importlib.resources``), so an installed wheel migrates
exactly like a source checkout; ``deploy/clickhouse/README.md`` documents them.

Each file's statements run one at a time (clickhouse-connect sends one statement per request);
``{db}`` is the only placeholder. Applied versions are recorded with the file's SHA-256 in
``schema_migrations``, so a second run applies nothing and an edited, already-applied file is an
error rather than silent drift. Statements are ``IF NOT EXISTS``, so a run interrupted half-way
through a file is finished by the next run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

from shinrai.errors import ConfigError
from sinks.clickhouse.client import check_identifier, translate

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

MIGRATIONS_DIR: Traversable = files("sinks.clickhouse") / "sql" / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# A statement ends with ';' at the end of a line; no migration puts ';' inside a literal.
_END = re.compile(r";[ \t]*(?:\n|$)")

_LEDGER = """CREATE TABLE IF NOT EXISTS `{db}`.schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version
SETTINGS non_replicated_deduplication_window = 100"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file text: detects edits after a migration was applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        """The file's statements with comments dropped and ``{db}`` filled in."""
        lines = [ln for ln in self.sql.splitlines() if not ln.lstrip().startswith("--")]
        body = "\n".join(lines)
        out = [s.strip() for s in _END.split(body)]
        return [s.replace("{db}", f"`{database}`") for s in out if s]


def load(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    """All migrations in ``directory``, ordered by version; versions must be unique."""
    if not directory.is_dir():
        raise ConfigError(
            f"no migrations folder {directory} (package data missing from the install?)"
        )
    found: list[Migration] = []
    sql_files = (p for p in directory.iterdir() if p.is_file() and p.name.endswith(".sql"))
    for path in sorted(sql_files, key=lambda p: p.name):
        match = _FILE.match(path.name)
        if not match:
            raise ConfigError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(
            Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8"))
        )
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise ConfigError(f"duplicate migration versions in {directory}")
    return found


def applied(client: Client, database: str) -> dict[int, str]:
    """version -> checksum of the migrations already applied to ``database`` (creates nothing)."""
    db = check_identifier(database)
    try:
        exists = client.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} "
            "AND name = 'schema_migrations'",
            parameters={"db": db},
        ).result_rows[0][0]
        if not exists:
            return {}
        rows = client.query(
            f"SELECT version, argMax(checksum, applied_at) FROM `{db}`.schema_migrations "
            "GROUP BY version"
        ).result_rows
    except Exception as exc:
        raise translate(exc, "read schema_migrations") from exc
    return {int(v): str(c) for v, c in rows}


def pending(client: Client, database: str, migrations: list[Migration]) -> list[Migration]:
    """Migrations not yet applied; ConfigError if an applied one was edited since."""
    done = applied(client, database)
    for migration in migrations:
        recorded = done.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise ConfigError(
                f"migration {migration.version:04d}_{migration.name} changed after it was applied "
                "(add a new migration instead of editing an applied one)"
            )
    return [m for m in migrations if m.version not in done]


def migrate(
    client: Client, database: str, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply pending migrations in order; return the ones applied (empty when up to date)."""
    db = check_identifier(database)
    todo = pending(client, db, load() if migrations is None else migrations)
    if todo:
        try:
            client.command(_LEDGER.format(db=db))
        except Exception as exc:
            raise translate(exc, "create schema_migrations") from exc
    for migration in todo:
        for statement in migration.statements(db):
            try:
                client.command(statement)
            except Exception as exc:
                raise translate(exc, f"migration {migration.version:04d}") from exc
        try:
            client.insert(
                f"`{db}`.schema_migrations",
                [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
                column_names=["version", "name", "checksum", "applied_at"],
            )
        except Exception as exc:
            raise translate(exc, f"record migration {migration.version:04d}") from exc
    return todo
