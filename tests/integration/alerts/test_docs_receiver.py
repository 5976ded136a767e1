"""The Starlette receiver from docs/alerts.md, served by uvicorn on 127.0.0.1, gets real alerts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from schemas.alerts import AlertLevel
from sinks.alerts.routing import RoutingConfig, WebhookTarget
from sinks.alerts.samples import sample_alert
from tests.shared_data import REPO_ROOT

from .harness import SECRET

pytestmark = pytest.mark.integration


def _example_namespace() -> dict[str, Any]:
    text = (REPO_ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    (snippet,) = [
        b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "Starlette" in b
    ]
    namespace: dict[str, Any] = {}
    exec(
        compile(snippet.replace('SECRET = "..."', f"SECRET = {SECRET!r}"), "docs", "exec"),
        namespace,
    )
    return namespace


@pytest.fixture
async def docs_receiver() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The documented app under uvicorn on an ephemeral port: (base url, its namespace)."""
    namespace = _example_namespace()
    config = uvicorn.Config(
        namespace["app"], host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(5):
        # uvicorn exposes readiness only as a flag; a startup failure ends the task early.
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", namespace
    server.should_exit = True
    await task


async def test_documented_receiver_accepts_signed_alerts(
    docs_receiver: tuple[str, dict[str, Any]], make_deliverer: Any
) -> None:
    url, namespace = docs_receiver
    routing = RoutingConfig(default=WebhookTarget(url=f"{url}/hooks/shinrai"))
    h = await make_deliverer(routing)
    alerts = [sample_alert(f"o{i}", level=AlertLevel.BREACH) for i in range(3)]
    for alert in alerts:
        await h.deliverer.add(alert)
    results = await h.deliverer.flush()
    assert [(r.outcome, r.status_code) for r in results] == [("delivered", 204)] * 3
    assert namespace["seen"] == {r.key for r in results}


async def test_documented_receiver_rejects_a_wrong_secret_permanently(
    docs_receiver: tuple[str, dict[str, Any]], make_deliverer: Any
) -> None:
    url, namespace = docs_receiver
    routing = RoutingConfig(default=WebhookTarget(url=f"{url}/hooks/shinrai"))
    h = await make_deliverer(routing, secret="not-the-shared-secret")
    await h.deliverer.add(sample_alert())
    (result,) = await h.deliverer.flush()
    assert (result.outcome, result.status_code, result.attempts) == ("failed", 401, 1)
    assert result.error == "HTTP 401: signature mismatch"
    assert namespace["seen"] == set()
