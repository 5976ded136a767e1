"""Reaching the ClickHouse data a running worker holds: through its dashboard endpoint.

With embedded chdb only one process can open the data directory. When a worker holds it,
``shinrai db query`` and ``shinrai dashboard`` find the worker's endpoint in the directory
(``shinrai.dashboard_endpoint``) and ask it over HTTP; when a process holds it without
recording one, they say so in one line instead of failing on chdb's lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from shinrai.dashboard_endpoint import Endpoint
    from shinrai.settings import ClickHouseSettings, DashboardSettings

TIMEOUT_S = 65.0  # above the SQL endpoint's own default limit (30 s)


def running_endpoint(settings: ClickHouseSettings) -> Endpoint | None:
    """The endpoint of the live process holding this chdb directory; None if nobody holds it.

    Raises ClickException when the directory is held by a process that serves no endpoint,
    or when the serving worker uses another database than the one asked for.
    """
    from shinrai.dashboard_endpoint import holder_pid, read_endpoint
    from sinks.clickhouse.client import parse_url

    target = parse_url(settings.url)
    if target.kind != "chdb":
        return None
    directory = Path(target.path)
    endpoint = read_endpoint(directory)
    if endpoint is not None:
        if endpoint.database != settings.database:
            raise click.ClickException(
                f"the worker (pid {endpoint.pid}) holding chdb://{directory} serves database "
                f"{endpoint.database}, not {settings.database}; add --database {endpoint.database}"
            )
        return endpoint
    holder = holder_pid(directory)
    if holder is not None:
        raise click.ClickException(
            f"chdb://{directory} is locked by process {holder} (a running `shinrai worker`?) "
            "that serves no dashboard endpoint (SHINRAI_DASHBOARD__IN_WORKER off, or its port "
            "taken): stop it, or restart it serving one"
        )
    return None


def auth_headers(endpoint: Endpoint, dashboard: DashboardSettings) -> dict[str, str]:
    """The Authorization header for ``endpoint`` (the first configured bearer token)."""
    if not endpoint.login:
        return {}
    if not dashboard.bearer_tokens:
        raise click.ClickException(
            f"the worker's dashboard at {endpoint.url} needs a login: set "
            "SHINRAI_DASHBOARD__BEARER_TOKENS to include one of its tokens"
        )
    return {"Authorization": f"Bearer {dashboard.bearer_tokens[0].get_secret_value()}"}


def _answer(response: Any, endpoint: Endpoint) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and body is not None:
        return body
    message = body.get("error") if isinstance(body, dict) else None
    if response.status_code == 401:
        message = "login refused (check SHINRAI_DASHBOARD__BEARER_TOKENS)"
    raise click.ClickException(
        f"{message or f'HTTP {response.status_code}'} (worker pid {endpoint.pid}, {endpoint.url})"
    )


def post_sql(endpoint: Endpoint, headers: dict[str, str], sql: str) -> dict[str, Any]:
    """``POST /api/sql`` on the worker; its JSON answer, or ClickException with its one line."""
    import httpx

    try:
        response = httpx.post(
            f"{endpoint.url}/api/sql", json={"sql": sql}, headers=headers, timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"the worker (pid {endpoint.pid}) does not answer at {endpoint.url}: {exc}"
        ) from None
    answer: dict[str, Any] = _answer(response, endpoint)
    return answer


def get_named(
    endpoint: Endpoint, headers: dict[str, str], name: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    """``GET /api/<name>`` on the worker: the named query's rows."""
    import httpx

    try:
        response = httpx.get(
            f"{endpoint.url}/api/{name}", params=params, headers=headers, timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"the worker (pid {endpoint.pid}) does not answer at {endpoint.url}: {exc}"
        ) from None
    rows: list[dict[str, Any]] = _answer(response, endpoint)["rows"]
    return rows
