"""Named dashboard queries: ``sinks/clickhouse/sql/queries/<name>.sql``, run with bound parameters.

Every dashboard we ship (Grafana, the built-in page, the CLI) runs these files, so a number
means the same thing everywhere. Parameters use ClickHouse server-side binding
(``{name:Type}`` in the SQL), never string formatting. Table names are unqualified: the client's
database (``connect(..., database=...)``) decides which database is read. The files are package
data (``importlib.resources``): an installed wheel has them too.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

from shinrai.errors import ConfigError
from sinks.clickhouse.client import translate
from sinks.clickhouse.rows import utc

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

QUERIES_DIR: Traversable = files("sinks.clickhouse") / "sql" / "queries"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):")


def names(directory: Traversable = QUERIES_DIR) -> list[str]:
    """The available query names, sorted."""
    if not directory.is_dir():
        raise ConfigError(f"no queries folder {directory} (package data missing from the install?)")
    return sorted(
        p.name.removesuffix(".sql")
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(".sql")
    )


@cache
def load(name: str, directory: Traversable = QUERIES_DIR) -> str:
    """The SQL text of query ``name`` (comments kept: they document the parameters)."""
    path = directory / f"{name}.sql"
    if not _NAME.match(name) or not path.is_file():
        raise ConfigError(f"unknown query {name!r}; known: {', '.join(names(directory))}")
    return path.read_text(encoding="utf-8")


def parameters(name: str) -> list[str]:
    """Names of the parameters query ``name`` binds, in first-use order."""
    return list(dict.fromkeys(_PARAM.findall(load(name))))


def run_query(client: Client, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run query ``name`` with ``params``; rows as dicts, datetimes aware (UTC).

    A missing or unexpected parameter is a ConfigError (ClickHouse would otherwise complain
    about an unbound substitution with a less helpful message).
    """
    sql = load(name)
    expected = set(parameters(name))
    if set(params) != expected:
        raise ConfigError(f"query {name} takes parameters {sorted(expected)}, got {sorted(params)}")
    try:
        result = client.query(sql, parameters=params)
    except Exception as exc:
        raise translate(exc, f"query {name}") from exc
    names = result.column_names
    rows = [dict(zip(names, row, strict=True)) for row in result.result_rows]
    # Only the datetime columns need a time zone (one pass per such column, not a type check
    # per value: a 6000-row result spent more time here than in ClickHouse).
    for column, kind in zip(names, result.column_types, strict=True):
        if kind.python_type is datetime:
            for row in rows:
                row[column] = utc(row[column])
    return rows
