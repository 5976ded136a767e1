"""POST /v1/zoom: Zoom meeting webhooks (signed), folded into one meeting event per meeting.

Zoom sends started / participant_joined / participant_left / ended as separate requests, in no
guaranteed order. The gateway keeps each running meeting's payloads in a bounded in-memory
buffer and, when ``meeting.ended`` arrives, folds them with the same code as the file importer
(``producers.parsers.zoom.from_webhooks``) and produces the meeting event before answering 200.

Limits, said plainly: the buffer is per process and not persisted. After a restart a meeting
that ends is still produced (its ended payload carries start and end), but participants seen
before the restart are missing, so the client-attendee flag can be lost. A participant payload
arriving after its meeting was produced is acknowledged and not re-produced (same event id).

Requests are authenticated before anything is parsed; unauthenticated bodies are never
dead-lettered (anyone could fill the DLQ). Event types we do not use are acknowledged (200,
``ignored``) so Zoom does not retry them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from producers.gateway.http import (
    BodyTooLarge,
    Gateway,
    error,
    log,
    not_configured,
    origin,
    read_body,
    too_large,
)
from producers.gateway.signatures import zoom_problem, zoom_url_validation
from producers.parsers.base import Parsed, Rejected
from producers.parsers.zoom import from_webhooks
from schemas.deadletter import DeadLetter
from schemas.events import InteractionEvent

SOURCE = "gateway:zoom"
MEETING_EVENTS = frozenset(
    {
        "meeting.started",
        "meeting.ended",
        "meeting.participant_joined",
        "meeting.participant_left",
    }
)
MAX_PAYLOADS_PER_MEETING = 2_000


class MeetingBuffer:
    """Payloads of running meetings by uuid (LRU-bounded), and uuids already produced."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._running: OrderedDict[str, list[bytes]] = OrderedDict()
        self._done: OrderedDict[str, None] = OrderedDict()

    def produced(self, uuid: str) -> bool:
        """True when this meeting's event was already produced by this process."""
        return uuid in self._done

    def add(self, uuid: str, payload: bytes) -> list[bytes]:
        """Remember ``payload``; return every payload of the meeting so far (this one last)."""
        payloads = self._running.pop(uuid, [])
        payloads = [*payloads[-(MAX_PAYLOADS_PER_MEETING - 1) :], payload]
        self._running[uuid] = payloads
        while len(self._running) > self.capacity:
            self._running.popitem(last=False)  # the longest-idle meeting goes first
        return payloads

    def finish(self, uuid: str) -> None:
        """The meeting's event is durable: drop its payloads, remember its uuid."""
        self._running.pop(uuid, None)
        self._done[uuid] = None
        while len(self._done) > self.capacity:
            self._done.popitem(last=False)


def _uuid(doc: Mapping[str, Any]) -> str | None:
    payload = doc.get("payload")
    obj = payload.get("object") if isinstance(payload, dict) else None
    uuid = obj.get("uuid") if isinstance(obj, dict) else None
    return uuid if isinstance(uuid, str) and uuid else None


async def _refuse(request: Request, gateway: Gateway, body: bytes, reason: str) -> Response:
    """Dead-letter ``body`` and answer 422 naming the field (the reason's first part)."""
    await gateway.dead_letter(DeadLetter(body, reason, SOURCE, origin(request)))
    field, _, why = reason.partition(": ")
    return error(request, 422, "invalid_payload", reason, errors=[(field, why or field)])


async def receive_zoom(request: Request) -> Response:
    """Verify, answer URL validation, buffer lifecycle payloads and produce ended meetings."""
    gateway: Gateway = request.app.state.gateway
    settings = gateway.settings
    if settings.zoom_secret_token is None:
        return not_configured(request, "POST /v1/zoom (no Zoom secret token)")
    secret = settings.zoom_secret_token.get_secret_value()
    try:
        body = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        return too_large(request, settings.max_body_bytes)
    problem = zoom_problem(
        secret,
        signature=request.headers.get("x-zm-signature"),
        timestamp=request.headers.get("x-zm-request-timestamp"),
        body=body,
        now=time.time(),
        max_skew_s=settings.zoom_max_skew_s,
    )
    if problem is not None:
        return error(request, 401, "invalid_signature", problem)

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        await gateway.dead_letter(
            DeadLetter(body, f"<json>: not valid JSON ({exc})", SOURCE, origin(request))
        )
        return error(request, 400, "invalid_json", f"body is not valid JSON: {exc}")
    if not isinstance(doc, dict):
        await gateway.dead_letter(
            DeadLetter(body, "<root>: expected a JSON object", SOURCE, origin(request))
        )
        return error(request, 422, "invalid_payload", "expected a JSON object")

    kind = doc.get("event")
    if not isinstance(kind, str):
        # A signed body whose "event" is {} or [] (unhashable) or a number: malformed, not ours.
        reason = "event: expected a string"
        await gateway.dead_letter(DeadLetter(body, reason, SOURCE, origin(request)))
        return error(
            request, 422, "invalid_payload", reason, errors=[("event", "expected a string")]
        )
    if kind == "endpoint.url_validation":
        payload = doc.get("payload")
        plain = payload.get("plainToken") if isinstance(payload, dict) else None
        if not isinstance(plain, str) or not plain:
            return error(
                request,
                422,
                "invalid_payload",
                "url validation without a token",
                errors=[("payload.plainToken", "missing")],
            )
        return JSONResponse(zoom_url_validation(secret, plain))
    if kind not in MEETING_EVENTS:
        return JSONResponse({"status": "ignored", "event": kind[:64]})

    # Validate this payload on its own first, so a bad one is never buffered with good ones.
    for result in from_webhooks([body], gateway.resolver):
        if isinstance(result, Rejected):
            return await _refuse(request, gateway, body, result.reason)
    uuid = _uuid(doc)
    assert uuid is not None  # the fold above rejects a payload without one
    buffer: MeetingBuffer = request.app.state.zoom_meetings
    if buffer.produced(uuid):
        return JSONResponse({"status": "already_produced"})
    payloads = buffer.add(uuid, body)
    results = list(from_webhooks(payloads, gateway.resolver))
    refused = [r for r in results if isinstance(r, Rejected)]
    if refused:
        # Each payload passed alone but the meeting they make does not (a party the event
        # model refuses): say so and dead-letter, never answer "buffered" for a lost meeting.
        return await _refuse(request, gateway, body, refused[0].reason)
    events: list[InteractionEvent] = [r.event for r in results if isinstance(r, Parsed)]
    if not events:
        return JSONResponse({"status": "buffered"})
    # If Kafka fails here the payloads stay buffered: Zoom's retry of this request completes it.
    await gateway.publish(events)
    buffer.finish(uuid)
    log.info("zoom meeting produced", request=origin(request), events=len(events))
    return JSONResponse({"status": "produced", "event_ids": [e.event_id for e in events]})
