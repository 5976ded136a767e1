"""POST /v1/twilio: Twilio voice status callbacks (form-encoded, X-Twilio-Signature).

The signature covers the exact URL Twilio called plus the sorted form parameters. Behind a
proxy the URL the app sees differs from the public one, so ``public_base_url`` (when set)
replaces scheme, host and port; path and query are the ones of this request.

A callback for a finished call (completed, busy, no-answer, failed, canceled) becomes a Call
resource and goes through the same mapping as the file importer
(``producers.parsers.twilio.parse_bytes``), so a call seen both as a callback and in a REST export
gets the same event id (``twilio:<CallSid>``). Progress callbacks (queued, ringing,
in-progress) are acknowledged and ignored.

Callback fields are not the REST resource's: there is no start time, only ``Timestamp`` (when
the callback fired, RFC 2822) and ``CallDuration`` (seconds, answered calls). The call's start is
``Timestamp - CallDuration``; without ``Timestamp`` the gateway's receive time is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
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
from producers.gateway.signatures import twilio_valid
from producers.parsers.base import Parsed, Rejected
from producers.parsers.twilio import parse_bytes
from schemas.deadletter import DeadLetter

SOURCE = "gateway:twilio"
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


def public_url(request: Request, base: str | None) -> str:
    """The URL Twilio called: ``base`` + this path and query, or the URL as received."""
    if base is None:
        return str(request.url)
    url = base.rstrip("/") + request.url.path
    query = request.url.query
    return f"{url}?{query}" if query else url


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def call_resource(form: Mapping[str, str], received: datetime) -> dict[str, Any]:
    """A Twilio Call resource (REST field names) from status-callback parameters."""
    stamp = _instant(form.get("Timestamp")) or received
    duration_text = form.get("CallDuration") or ""
    duration = float(duration_text) if duration_text.replace(".", "", 1).isdigit() else 0.0
    start = stamp - timedelta(seconds=duration)
    call: dict[str, Any] = {
        "sid": form.get("CallSid", ""),
        "status": form.get("CallStatus", ""),
        "direction": form.get("Direction", ""),
        "from": form.get("From", ""),
        "to": form.get("To", ""),
        "start_time": format_datetime(start.astimezone(UTC), usegmt=True),
        "date_updated": format_datetime(stamp.astimezone(UTC), usegmt=True),
        "duration": duration_text or None,
    }
    if duration_text:
        call["end_time"] = call["date_updated"]
    return call


async def receive_twilio(request: Request) -> Response:
    """Verify the signature, map a final status callback to a call event, produce it."""
    gateway: Gateway = request.app.state.gateway
    settings = gateway.settings
    if settings.twilio_auth_token is None:
        return not_configured(request, "POST /v1/twilio (no Twilio auth token)")
    try:
        body = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        return too_large(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return error(
            request,
            415,
            "unsupported_media_type",
            "expected application/x-www-form-urlencoded (a Twilio status callback)",
        )
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        params = None
    url = public_url(request, settings.public_base_url)
    if params is None or not twilio_valid(
        settings.twilio_auth_token.get_secret_value(),
        signature=request.headers.get("x-twilio-signature"),
        url=url,
        params=params,
    ):
        return error(request, 401, "invalid_signature", "X-Twilio-Signature does not match")

    form = dict(params)
    status = form.get("CallStatus", "").lower()
    if not form.get("CallSid"):
        await gateway.dead_letter(DeadLetter(body, "CallSid: missing", SOURCE, origin(request)))
        return error(
            request, 422, "invalid_callback", "not a call", errors=[("CallSid", "missing")]
        )
    if status not in FINAL_STATUSES:
        return JSONResponse({"status": "ignored", "call_status": status})

    call = call_resource(form, datetime.now(UTC))
    results = list(
        parse_bytes(orjson.dumps(call), gateway.resolver, name=origin(request), region=None)
    )
    rejected = [r for r in results if isinstance(r, Rejected)]
    if rejected:
        reason = rejected[0].reason
        await gateway.dead_letter(DeadLetter(body, reason, SOURCE, origin(request)))
        field, _, why = reason.partition(": ")
        return error(request, 422, "invalid_callback", reason, errors=[(field, why or field)])
    events = [r.event for r in results if isinstance(r, Parsed)]
    await gateway.publish(events)
    return JSONResponse({"status": "produced", "event_ids": [e.event_id for e in events]})
