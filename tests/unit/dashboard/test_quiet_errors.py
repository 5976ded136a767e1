"""An unhandled error in the served dashboard answers 500 without echoing (or re-raising) it."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from dashboard.server import QuietErrors

pytestmark = pytest.mark.unit

SECRET = "SELECT * FROM clients WHERE client_id = 'secret-client'"


async def boom(request: Request) -> Response:
    raise RuntimeError(SECRET)


@pytest.mark.parametrize("mounted", [False, True])
async def test_an_escaping_error_is_a_quiet_500(mounted: bool) -> None:
    inner: Starlette | None = Starlette(routes=[Route("/boom", boom)]) if mounted else None
    routes = [Mount("/", app=inner)] if inner is not None else [Route("/boom", boom)]
    app = Starlette(routes=routes, middleware=[Middleware(QuietErrors)])
    # raise_app_exceptions: the test fails if the error escapes to the server.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/boom", params={"client_id": "secret-client"})
    assert answer.status_code == 500
    assert "secret-client" not in answer.text
