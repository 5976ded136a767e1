"""What one dashboard page shows: the named queries run for one window, and their parameters.

Every figure comes from ``sinks/clickhouse/sql/queries`` via ``run_query``; this module only picks
the window (``now`` and a number of UTC days ending with ``now``'s day) and binds parameters by
the types the SQL declares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shinrai.errors import ConfigError
from sinks.clickhouse.queries import load, run_query

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

Row = dict[str, Any]
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([^}]+)\}")

PAGE_QUERIES = (
    "dashboard_clients",
    "client_attainment",
    "open_obligations",
    "dashboard_trust_levels",
    "dashboard_phone",
    "channel_mix",
    "breaches_by_owner",
    "dashboard_daily_trend",
    "dashboard_recent_alerts",
    "silence_list",
)
"""The queries the HTML page is built from, in the order they run."""


@dataclass(frozen=True)
class Window:
    """The instant the page is 'as of' and the UTC days it summarises: [since, until)."""

    now: datetime
    days: int

    @property
    def since(self) -> date:
        return self.now.date() - timedelta(days=self.days - 1)

    @property
    def until(self) -> date:
        return self.now.date() + timedelta(days=1)

    @property
    def since_instant(self) -> datetime:
        return datetime.combine(self.since, datetime.min.time(), tzinfo=UTC)


def param_types(name: str) -> dict[str, str]:
    """Parameter name → ClickHouse type, as query ``name`` declares them."""
    return {key: kind.strip() for key, kind in _PARAM.findall(load(name))}


def defaults(name: str, window: Window) -> dict[str, Any]:
    """The window's values for every parameter of ``name`` it knows (since, until, now)."""
    out: dict[str, Any] = {}
    for key, kind in param_types(name).items():
        if key == "now":
            out[key] = window.now
        elif key == "since":
            out[key] = window.since if kind == "Date" else window.since_instant
        elif key == "until":
            out[key] = window.until if kind == "Date" else window.now
    return out


def convert(name: str, given: dict[str, str]) -> dict[str, Any]:
    """Query-string values converted to the types ``name`` declares; unknown keys rejected."""
    types = param_types(name)
    out: dict[str, Any] = {}
    for key, raw in given.items():
        kind = types.get(key)
        if kind is None:
            raise ConfigError(f"query {name} has no parameter {key!r}; it takes {sorted(types)}")
        try:
            if kind == "Date":
                out[key] = date.fromisoformat(raw)
            elif kind.startswith("DateTime"):
                out[key] = instant(raw)
            else:
                out[key] = raw
        except ValueError as exc:
            raise ConfigError(f"parameter {key}: {raw!r} is not a valid {kind}") from exc
    return out


def instant(raw: str) -> datetime:
    """An ISO-8601 instant in UTC; without an offset it is taken as UTC."""
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def run_page(client: Client, window: Window) -> dict[str, list[Row]]:
    """Rows of every page query for ``window``."""
    return {name: run_query(client, name, **defaults(name, window)) for name in PAGE_QUERIES}
