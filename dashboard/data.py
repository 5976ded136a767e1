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
from zoneinfo import ZoneInfo

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
    "dashboard_due_trend",
    "dashboard_recent_alerts",
    "silence_list",
    "dashboard_freshness",
)
"""The queries the HTML page is built from, in the order they run (plus ``breaches_week``:
``client_attainment`` over the last 7 UTC days)."""

CLIENT_QUERIES = (
    "dashboard_clients",
    "dashboard_trust_levels",
    "client_attainment",
    "client_obligations",
    "client_response_times",
    "trust_history",
    "dashboard_due_trend",
    "client_timeline",
    "dashboard_freshness",
    "client_chase_standard",
    "client_chases",
    "client_target_suggestion",
)
"""The queries of one client's page."""

WEEK_DAYS = 7


@dataclass(frozen=True)
class Window:
    """The instant the page is 'as of' and the UTC days it summarises: [since, until)."""

    now: datetime
    days: int
    tz: str = "UTC"

    @property
    def since(self) -> date:
        return self.now.date() - timedelta(days=self.days - 1)

    @property
    def until(self) -> date:
        return self.now.date() + timedelta(days=1)

    @property
    def since_instant(self) -> datetime:
        return datetime.combine(self.since, datetime.min.time(), tzinfo=UTC)

    @property
    def local_since(self) -> datetime:
        """The start (UTC) of the first day of the window in the team's zone ``tz``."""
        zone = ZoneInfo(self.tz)
        first = self.now.astimezone(zone).date() - timedelta(days=self.days - 1)
        return datetime.combine(first, datetime.min.time(), tzinfo=zone).astimezone(UTC)

    def local_days(self) -> list[date]:
        """Every day of the window in the team's zone, oldest first."""
        last = self.now.astimezone(ZoneInfo(self.tz)).date()
        return [last - timedelta(days=n) for n in range(self.days - 1, -1, -1)]


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
        elif key == "tz":
            out[key] = window.tz
        elif key in ("owner", "client_id"):
            out[key] = ""  # every owner / client unless the caller names one
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


def run_page(client: Client, window: Window, owner: str = "") -> dict[str, list[Row]]:
    """Rows of every page query for ``window`` (the due-day trend narrowed to ``owner``)."""
    rows: dict[str, list[Row]] = {}
    for name in PAGE_QUERIES:
        params = defaults(name, window)
        if name == "dashboard_due_trend":
            params.update(since=window.local_since, owner=owner)
        rows[name] = run_query(client, name, **params)
    rows["breaches_week"] = run_query(
        client,
        "client_attainment",
        since=window.now.date() - timedelta(days=WEEK_DAYS - 1),
        until=window.until,
    )
    return rows


def run_client(client: Client, window: Window, client_id: str) -> dict[str, list[Row]]:
    """Rows of every query of ``client_id``'s page for ``window``."""
    rows: dict[str, list[Row]] = {}
    for name in CLIENT_QUERIES:
        params = defaults(name, window)
        if "client_id" in params:
            params["client_id"] = client_id
        if name in (
            "dashboard_due_trend",
            "client_timeline",
            "client_obligations",
            "client_response_times",
        ):
            params["since"] = window.local_since
        if name == "client_chases":
            # The evidence of the observed standard, which is read over the whole history.
            params["since"] = datetime(1970, 1, 1, tzinfo=UTC)
        if name == "trust_history":
            # The whole history up to now: the reason of the level shown is often older.
            # (until is exclusive; the level shown counts changes at `now` too).
            params.update(
                since=datetime(1970, 1, 1, tzinfo=UTC),
                until=window.now + timedelta(microseconds=1),
            )
        rows[name] = run_query(client, name, **params)
    return rows
