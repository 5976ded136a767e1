"""A real webhook receiver on 127.0.0.1 and the deliverer harness used by the alert-hook tests.

The receiver is a small HTTP/1.1 server on ``asyncio.start_server`` (an ephemeral port, one
request per connection). A *plan* decides each answer from the request and how many requests
with the same Idempotency-Key came before: respond with a status (and headers, e.g.
Retry-After), stall past the client's timeout, or drop the connection. It verifies every
signature with ``verify_signature`` and dedups nothing: it counts what it received per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sinks.alerts.delivery import AlertDeliverer
from sinks.alerts.errors import SignatureInvalid
from sinks.alerts.records import InMemoryDeadLetters, InMemoryDeliveryLog
from sinks.alerts.retry import DeliveryOptions
from sinks.alerts.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from sinks.alerts.store import DeliveredStore

SECRET = "whsec_integration_only"

_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 408:
            "Request Timeout", 410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}  # fmt: skip


@dataclass(frozen=True)
class Respond:
    """Answer with ``status`` (and extra headers)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Stall:
    """Read the request, then say nothing for ``seconds`` (longer than the client waits)."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


Action = Respond | Stall | Drop


@dataclass
class Received:
    """One request as the receiver saw it."""

    key: str
    body: bytes
    headers: dict[str, str]
    arrived: float  # time.monotonic() when the request was fully read
    signature_error: str | None  # None: the signature verified
    status: int | None = None  # what was answered; None for stall/drop


Plan = Callable[[Received, int], Action]  # (request, earlier requests with this key) -> action


def always_ok(_req: Received, _seen: int) -> Action:
    """Acknowledge every request."""
    return Respond(200)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that follows a plan and records everything."""

    def __init__(self, plan: Plan, secret: str) -> None:
        self.plan = plan
        self.secret = secret
        self.requests: list[Received] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL; any path is accepted."""
        return f"http://127.0.0.1:{self.port}"

    def acked(self) -> Counter[str]:
        """2xx answers per Idempotency-Key."""
        return Counter(r.key for r in self.requests if r.status is not None and r.status < 300)

    def received(self) -> Counter[str]:
        """Requests per Idempotency-Key, whatever the answer."""
        return Counter(r.key for r in self.requests)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up (its timeout) or dropped: part of the scenario
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            verify_signature(
                self.secret,
                headers.get(TIMESTAMP_HEADER.lower(), ""),
                body,
                headers.get(SIGNATURE_HEADER.lower(), ""),
            )
            error = None
        except SignatureInvalid as exc:
            error = exc.reason
        key = headers.get(IDEMPOTENCY_HEADER.lower(), "")
        request = Received(key, body, headers, time.monotonic(), error)
        seen = sum(1 for r in self.requests if r.key == key)
        self.requests.append(request)
        action: Action = Respond(401) if error else self.plan(request, seen)
        if isinstance(action, Drop):
            return
        if isinstance(action, Stall):
            await asyncio.sleep(action.seconds)
            action = Respond(503)  # if the client is still there, it never gets a 2xx
        request.status = action.status
        extra = "".join(f"{k}: {v}\r\n" for k, v in action.headers.items())
        reason = _REASONS.get(action.status, "Status")
        writer.write(
            f"HTTP/1.1 {action.status} {reason}\r\nContent-Length: {len(action.body)}\r\n"
            f"Connection: close\r\n{extra}\r\n".encode("latin-1")
            + action.body
        )
        await writer.drain()


@dataclass
class Harness:
    """A deliverer plus the log, dead letters and store it writes to."""

    deliverer: AlertDeliverer
    log: InMemoryDeliveryLog
    dead: InMemoryDeadLetters
    store: DeliveredStore


FAST = DeliveryOptions(
    attempt_timeout_s=0.4, base_delay_s=0.05, max_delay_s=0.2, max_concurrency=8,
    per_target_concurrency=2,
)  # fmt: skip
