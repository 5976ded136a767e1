"""Login off loopback, open on loopback: the served dashboard over real HTTP.

The off-loopback case binds a real non-loopback address of this machine (the one the default
route leaves from, e.g. eth0's), not a simulation: a request without a login gets 401, a bearer
token or an HTTP Basic user (scrypt hash from settings) gets 200. Loopback stays open unless
``require_auth``. The app reads a real embedded ClickHouse (this process's chdb directory).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from dashboard.auth import hash_password
from dashboard.server import DashboardServer, build_web_app
from shinrai.settings import ClickHouseSettings, DashboardSettings
from sinks.clickhouse.client import connect

pytestmark = pytest.mark.integration

TOKEN = "t0ken-for-the-test"
PASSWORD = "correct horse battery staple"


def _outside_address() -> str | None:
    """A non-loopback IPv4 address of this host (the default route's source; no packet sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: UDP connect only picks a route
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture(scope="module")
def clickhouse(chdb_dir: Path) -> Iterator[ClickHouseSettings]:
    settings = ClickHouseSettings(url=f"chdb://{chdb_dir}", database=f"a_{uuid.uuid4().hex[:12]}")
    connect(settings).close()  # creates the (empty) database
    return settings


async def _serve(
    clickhouse: ClickHouseSettings, dashboard: DashboardSettings, host: str
) -> DashboardServer:
    server = DashboardServer(build_web_app(clickhouse, dashboard, host=host), host, 0)
    await server.start()
    return server


@pytest.fixture
async def outside(clickhouse: ClickHouseSettings) -> AsyncIterator[str]:
    host = _outside_address()
    if host is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no non-loopback IPv4 address on this host to bind the dashboard to")
        pytest.skip("no non-loopback IPv4 address on this host")
    dashboard = DashboardSettings(
        host=host,
        bearer_tokens=(SecretStr(TOKEN),),
        users={"aiko": SecretStr(hash_password(PASSWORD))},
    )
    server = await _serve(clickhouse, dashboard, host)
    try:
        yield server.url
    finally:
        await server.stop()


async def test_off_loopback_needs_a_login(outside: str) -> None:
    async with httpx.AsyncClient(base_url=outside, timeout=30) as http:
        for method, path in (("GET", "/"), ("GET", "/api"), ("POST", "/api/sql")):
            anonymous = await http.request(method, path, json={"sql": "SELECT 1"})
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            assert "Bearer" in anonymous.headers["www-authenticate"]
            assert "Basic" in anonymous.headers["www-authenticate"]
        wrong = await http.get("/api", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        bad_password = await http.get("/api", auth=("aiko", "wrong"))
        assert bad_password.status_code == 401
        unknown_user = await http.get("/api", auth=("nobody", PASSWORD))
        assert unknown_user.status_code == 401

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/api", headers=bearer)).status_code == 200
        answer = await http.post("/api/sql", json={"sql": "SELECT 41 + 1 AS n"}, headers=bearer)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == [[42]]
        basic = await http.post("/api/sql", json={"sql": "SELECT 7 AS n"}, auth=("aiko", PASSWORD))
        assert basic.status_code == 200, basic.text
        assert basic.json()["rows"] == [[7]]
        # A health probe needs no login and shows nothing.
        assert (await http.get("/healthz")).status_code == 200


async def test_loopback_is_open_unless_required(clickhouse: ClickHouseSettings) -> None:
    open_server = await _serve(clickhouse, DashboardSettings(), "127.0.0.1")
    try:
        async with httpx.AsyncClient(base_url=open_server.url, timeout=30) as http:
            assert (await http.get("/api")).status_code == 200
    finally:
        await open_server.stop()
    required = DashboardSettings(require_auth=True, bearer_tokens=(SecretStr(TOKEN),))
    guarded = await _serve(clickhouse, required, "127.0.0.1")
    try:
        async with httpx.AsyncClient(base_url=guarded.url, timeout=30) as http:
            assert (await http.get("/api")).status_code == 401
            ok = await http.get("/api", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
    finally:
        await guarded.stop()
