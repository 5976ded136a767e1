"""One way to reach ClickHouse: ``chdb:///path`` (embedded) or ``https://host:8443`` (server).

Both go through clickhouse-connect, so the rest of the code sees one ``Client`` type. Vendor
errors are translated here into ``SinkUnavailable`` (cannot reach or use the target) and
``SinkError`` (the target answered with an error), so callers never import clickhouse_connect.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from shinrai.errors import ConfigError, SinkError, SinkUnavailable
from shinrai.settings import ClickHouseSettings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# ClickHouse error codes worth retrying: the server is overloaded or a network hop failed,
# and the same insert (same dedup token) can safely be re-sent.
TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        252,  # TOO_MANY_PARTS
        425,  # SYSTEM_ERROR
    }
)


@dataclass(frozen=True)
class Target:
    """A parsed ClickHouse URL; ``path`` for chdb, ``host``/``port``/``secure`` for a server."""

    kind: str  # "chdb" or "http"
    path: str = ""
    host: str = ""
    port: int = 0
    secure: bool = True

    def describe(self) -> str:
        """Where we connect, with no credentials (safe to log)."""
        if self.kind == "chdb":
            return f"chdb://{self.path}"
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"


def parse_url(url: str) -> Target:
    """Parse ``chdb:///abs/path``, ``https://host[:8443]`` or ``http://host[:8123]``."""
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        path = parsed.path if not parsed.netloc else f"/{parsed.netloc}{parsed.path}"
        if not path or path == "/":
            raise ConfigError(f"chdb URL needs a data directory path: {url!r}")
        return Target(kind="chdb", path=path)
    if parsed.scheme in ("https", "http"):
        secure = parsed.scheme == "https"
        if not parsed.hostname:
            raise ConfigError(f"ClickHouse URL needs a host: {url!r}")
        if parsed.username or parsed.password:
            # Credentials in URLs end up in logs and shell history; settings carry them.
            raise ConfigError(
                "put ClickHouse credentials in settings (username/password), not the URL"
            )
        port = parsed.port or (8443 if secure else 8123)
        return Target(kind="http", host=parsed.hostname, port=port, secure=secure)
    raise ConfigError(f"unsupported ClickHouse URL scheme {parsed.scheme!r} (chdb, https, http)")


def check_identifier(name: str) -> str:
    """A database name is interpolated into DDL, so only plain identifiers are accepted."""
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"invalid ClickHouse database name {name!r}")
    return name


def translate(exc: Exception, what: str) -> SinkError:
    """Map a clickhouse-connect exception onto the Shinrai tree (the caller raises ``from exc``)."""
    from clickhouse_connect.driver.exceptions import OperationalError, ProgrammingError

    if isinstance(exc, OperationalError):
        return SinkUnavailable(f"{what}: ClickHouse unreachable: {exc}")
    if isinstance(exc, ProgrammingError) and "closed" in str(exc).lower():
        return SinkUnavailable(f"{what}: ClickHouse client is closed")
    return SinkError(f"{what}: {exc}")


def is_transient(exc: BaseException) -> bool:
    """True for errors where re-sending the same request may succeed."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    if isinstance(exc, OperationalError):
        return True
    code = getattr(exc, "code", None)
    return isinstance(exc, DatabaseError) and code in TRANSIENT_CODES


def _quiet_driver_logs() -> None:
    """The driver logs a warning for every failed HTTP attempt; we raise a typed error instead,
    and the sink runner logs once per change of state (down, back), not per retry."""
    for name in ("urllib3.connectionpool", "clickhouse_connect.driver._backend.http_sync"):
        logging.getLogger(name).setLevel(logging.ERROR)


def connect(
    settings: ClickHouseSettings, *, database: str | None = None, create: bool = True
) -> Client:
    """Open a client on ``settings.url`` using ``database`` (default ``settings.database``).

    With ``create`` the database is created if missing. Raises SinkUnavailable when the target
    cannot be reached, ConfigError for a malformed URL or database name.
    """
    import clickhouse_connect

    _quiet_driver_logs()
    target = parse_url(settings.url)
    db = check_identifier(database or settings.database)
    kwargs: dict[str, Any]
    if target.kind == "chdb":
        kwargs = {"interface": "chdb", "path": target.path}
    else:
        kwargs = {
            "interface": "https" if target.secure else "http",
            "host": target.host,
            "port": target.port,
            "username": settings.username,
            "password": settings.password.get_secret_value(),
            "connect_timeout": 5,
            "send_receive_timeout": 60,
            # Retries are ours (sink backoff); the driver must fail fast, not hang.
            "query_retries": 0,
        }
    try:
        client = clickhouse_connect.get_client(**kwargs)
    except Exception as exc:
        raise translate(exc, f"connect {target.describe()}") from exc
    missing: SinkError | None = None
    try:
        if create:
            client.command(f"CREATE DATABASE IF NOT EXISTS `{db}`")
        elif not client.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}", parameters={"db": db}
        ).result_rows[0][0]:
            missing = SinkError(f"database {db} does not exist; run `shinrai db migrate`")
        client.database = db
    except Exception as exc:
        client.close()
        raise translate(exc, f"use database {db} on {target.describe()}") from exc
    if missing is not None:
        client.close()
        raise missing
    return client
