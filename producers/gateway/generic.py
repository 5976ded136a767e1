"""POST /v1/events: canonical events as JSON (one object or an array), Bearer-token protected.

A batch is all or nothing: when any element is invalid nothing is produced, the answer (422)
names every bad element's index, field and reason, and the original body is dead-lettered. The
client fixes and resends the batch; resending valid events is harmless (same event ids).
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from producers.gateway.http import (
    BodyTooLarge,
    Gateway,
    error,
    not_configured,
    origin,
    read_body,
    too_large,
)
from producers.gateway.signatures import bearer_valid
from schemas.base import validation_errors
from schemas.deadletter import DeadLetter
from schemas.events import ClientPolicyChanged, InteractionEvent

SOURCE = "gateway:events"
MAX_EVENTS = 10_000


def _validate(item: object) -> InteractionEvent | ClientPolicyChanged:
    if isinstance(item, dict) and item.get("type") == "policy_changed":
        return ClientPolicyChanged.model_validate_json(orjson.dumps(item))
    # Through JSON so the strict models read datetimes exactly as on the wire.
    return InteractionEvent.model_validate_json(orjson.dumps(item))


async def receive_events(request: Request) -> Response:
    """Validate and produce canonical events; see the module docstring for the contract."""
    gateway: Gateway = request.app.state.gateway
    settings = gateway.settings
    if not settings.bearer_tokens:
        return not_configured(request, "POST /v1/events (no bearer tokens)")
    tokens = [t.get_secret_value() for t in settings.bearer_tokens]
    if not bearer_valid(request.headers.get("authorization"), tokens):
        return error(
            request,
            401,
            "unauthorized",
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="shinrai"'},
        )
    try:
        body = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        return too_large(request, settings.max_body_bytes)

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = f"<json>: not valid JSON ({exc})"
        await gateway.dead_letter(DeadLetter(body, reason, SOURCE, origin(request)))
        return error(request, 400, "invalid_json", f"body is not valid JSON: {exc}")

    items = doc if isinstance(doc, list) else [doc]
    if not items or len(items) > MAX_EVENTS:
        return error(
            request, 422, "invalid_batch", f"send between 1 and {MAX_EVENTS} events per request"
        )
    events: list[InteractionEvent | ClientPolicyChanged] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        prefix = f"[{index}]." if isinstance(doc, list) else ""
        if not isinstance(item, dict):
            problems.append((prefix + "<root>", "expected a JSON object"))
            continue
        try:
            events.append(_validate(item))
        except ValidationError as exc:
            problems.extend((prefix + field, why) for field, why in validation_errors(exc))
    if problems:
        reason = "; ".join(f"{f}: {r}" for f, r in problems)
        await gateway.dead_letter(DeadLetter(body, reason, SOURCE, origin(request)))
        return error(request, 422, "invalid_events", "events failed validation", errors=problems)

    await gateway.publish(events)
    return JSONResponse(
        {"produced": len(events), "event_ids": [e.event_id for e in events]}, status_code=202
    )
