"""A dashboard that forwards to another process's dashboard (``shinrai dashboard`` beside a worker).

Embedded chdb lets one process open the data directory; when a worker holds it, ``shinrai
dashboard`` serves this instead: every GET/POST is passed on to the worker's endpoint (with
the worker's login), and the answer is passed back. This side has its own access policy for
the address it binds (``dashboard.auth``), so it can, e.g., publish a loopback-only worker's
dashboard on another address behind a login.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from dashboard.auth import AccessPolicy, AuthMiddleware

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

_PASSED_ON = ("content-type", "accept", "accept-language")
_PASSED_BACK = ("content-type", "cache-control", "www-authenticate", "location")


def build_proxy_app(
    upstream: str, upstream_headers: dict[str, str], policy: AccessPolicy, *, timeout_s: float = 65
) -> Starlette:
    """An app forwarding every request to ``upstream`` (``http://host:port``)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import Response
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream, timeout=timeout_s)

    async def forward(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k in _PASSED_ON}
        headers.update(upstream_headers)
        try:
            answer = await client.request(
                request.method,
                request.url.path,
                params=request.url.query,
                content=await request.body(),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            return Response(
                f'{{"error": "the worker does not answer: {type(exc).__name__}"}}',
                status_code=502,
                media_type="application/json",
            )
        passed = {k: v for k, v in answer.headers.items() if k in _PASSED_BACK}
        return Response(answer.content, status_code=answer.status_code, headers=passed)

    app = Starlette(
        routes=[Route("/{path:path}", forward, methods=["GET", "POST", "HEAD"])],
        middleware=[Middleware(AuthMiddleware, policy=policy)],
    )
    app.state.close = client.aclose
    return app
