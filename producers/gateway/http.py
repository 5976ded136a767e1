"""What every gateway endpoint shares: bounded body reading, JSON errors, producing, dead-lettering.

Kafka calls block (kafka-python is synchronous), so they run in the thread pool: the event loop
keeps serving other requests while one waits for its acknowledgement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from producers.gateway.settings import GatewaySettings
from producers.kafka_producer import Record, event_key
from producers.resolution import Resolver
from schemas.base import encode
from schemas.deadletter import DeadLetter
from schemas.events import ClientPolicyChanged, InteractionEvent
from shinrai.logging import get_logger

log = get_logger("producers.gateway")

# A dead letter carries the request body; with the reason headers it must stay under the
# producer's request limit (kafka-python's max_request_size, 1 MiB), or the rejection itself
# fails as "Kafka unavailable" (503) and the sender retries a malformed body forever.
MAX_DEAD_LETTER_BYTES = 900_000


class Publisher(Protocol):
    """The part of the Kafka producer the gateway uses (durable before the HTTP answer)."""

    def send_many_and_wait(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Send and block until every record is acknowledged."""


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit."""


@dataclass
class Gateway:
    """The state the endpoints share (built once by the app's lifespan)."""

    settings: GatewaySettings
    publisher: Publisher
    resolver: Resolver

    async def publish(self, events: Sequence[InteractionEvent | ClientPolicyChanged]) -> None:
        """Produce ``events`` keyed by client id and wait for every acknowledgement.

        The records are ``batchable``: a request with many events of one partition goes out as
        ``event_batch`` records (``SHINRAI_KAFKA__BATCH_EVENTS``), one event as its own record.
        The Kafka producer refuses the whole batch with ``RecordTooLarge`` (nothing sent) when
        one event exceeds the topic's record limit; the app answers 413 and dead-letters it.
        """
        records = [
            Record(
                self.settings.topic,
                event_key(e),
                encode(e),
                label=f"event {e.event_id}",
                batchable=True,
            )
            for e in events
        ]
        if records:
            await run_in_threadpool(self.publisher.send_many_and_wait, records)

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Dead-letter one rejected payload (its original bytes) and wait for the ack.

        A body over ``MAX_DEAD_LETTER_BYTES`` keeps its first bytes, and the reason says so.
        """
        size = len(letter.raw)
        if size > MAX_DEAD_LETTER_BYTES:
            letter = replace(
                letter,
                raw=letter.raw[:MAX_DEAD_LETTER_BYTES],
                reason=f"{letter.reason} (body truncated to {MAX_DEAD_LETTER_BYTES} of {size} bytes)",
            )
        record = Record(self.settings.dlq_topic, *letter.record())
        await run_in_threadpool(self.publisher.send_many_and_wait, [record])


def request_id(request: Request) -> str:
    """A per-request id for logs, responses and dead-letter origins."""
    rid = getattr(request.state, "request_id", None)
    if not isinstance(rid, str):
        rid = uuid.uuid4().hex
        request.state.request_id = rid
    return rid


def origin(request: Request) -> str:
    """The dead-letter origin of a request: method, path and request id."""
    return f"{request.method} {request.url.path} request {request_id(request)}"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes without reading them all into memory.

    Content-Length is checked first; a chunked body is counted as it streams in.
    """
    declared = request.headers.get("content-length")
    # isascii too: "²".isdigit() is True and int("²") raises.
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def error(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error: a stable code, a human detail, and each failing field with its reason."""
    body: dict[str, Any] = {"error": code, "detail": detail, "request_id": request_id(request)}
    if errors:
        body["errors"] = [{"field": f, "reason": r} for f, r in errors]
    return JSONResponse(body, status_code=status, headers=headers)


def too_large(request: Request, limit: int) -> JSONResponse:
    """413 with the limit named."""
    return error(request, 413, "body_too_large", f"request body exceeds {limit} bytes")


def not_configured(request: Request, what: str) -> JSONResponse:
    """503: the endpoint's secret is not set, so nothing can be authenticated."""
    return error(request, 503, "not_configured", f"{what} is not configured on this gateway")
