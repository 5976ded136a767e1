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

Both are read strictly: ``CallDuration`` is ASCII digits (``str.isdigit`` would take "²", which
``float`` refuses) of at most a day (Twilio's own call time limit), and a ``Timestamp`` that is
present must be a valid RFC 2822 date. Anything else answers 422 naming the parameter.
"""

from __future__ import annotations

import re
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
# The mapping reports REST field names; the sender knows the callback's parameter names.
_PARAMETER = {
    "sid": "CallSid",
    "status": "CallStatus",
    "direction": "Direction",
    "from": "From",
    "to": "To",
    "start_time": "Timestamp",
    "end_time": "Timestamp",
    "date_updated": "Timestamp",
    "duration": "CallDuration",
}
MAX_CALL_SECONDS = 86_400  # Twilio ends any call after 24 hours (its maximum time limit)
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class CallbackInvalid(ValueError):
    """A callback parameter that cannot be right; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def public_url(request: Request, base: str | None) -> str:
    """The URL Twilio called: ``base`` + this path and query, or the URL as received."""
    if base is None:
        return str(request.url)
    url = base.rstrip("/") + request.url.path
    query = request.url.query
    return f"{url}?{query}" if query else url


def _instant(value: str | None) -> datetime | None:
    """The callback's ``Timestamp``; None when absent; CallbackInvalid when not a date."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise CallbackInvalid("Timestamp", "not an RFC 2822 date") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _duration(text: str) -> float:
    """``CallDuration`` in seconds: ASCII digits, at most ``MAX_CALL_SECONDS``."""
    if not _SECONDS.fullmatch(text):
        raise CallbackInvalid("CallDuration", "not a number of seconds (ASCII digits)")
    seconds = float(text)
    if seconds > MAX_CALL_SECONDS:
        raise CallbackInvalid("CallDuration", f"longer than {MAX_CALL_SECONDS} seconds")
    return seconds


def call_resource(form: Mapping[str, str], received: datetime) -> dict[str, Any]:
    """A Twilio Call resource (REST field names) from status-callback parameters.

    Raises CallbackInvalid (naming the parameter) for a duration or timestamp that cannot be
    right, so the endpoint answers 422 instead of failing inside ``float`` or ``timedelta``.
    """
    stamp = _instant(form.get("Timestamp")) or received
    duration_text = form.get("CallDuration") or ""
    duration = _duration(duration_text) if duration_text else 0.0
    try:
        start = (stamp - timedelta(seconds=duration)).astimezone(UTC)
        stamp = stamp.astimezone(UTC)
    except OverflowError:  # a Timestamp in year 1 (or 9999 with an offset) has no UTC form
        raise CallbackInvalid("Timestamp", "out of range") from None
    call: dict[str, Any] = {
        "sid": form.get("CallSid", ""),
        "status": form.get("CallStatus", ""),
        "direction": form.get("Direction", ""),
        "from": form.get("From", ""),
        "to": form.get("To", ""),
        "start_time": format_datetime(start, usegmt=True),
        "date_updated": format_datetime(stamp, usegmt=True),
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

    try:
        call = call_resource(form, datetime.now(UTC))
    except CallbackInvalid as exc:
        await gateway.dead_letter(DeadLetter(body, str(exc), SOURCE, origin(request)))
        return error(request, 422, "invalid_callback", str(exc), errors=[(exc.field, exc.reason)])
    results = list(
        parse_bytes(orjson.dumps(call), gateway.resolver, name=origin(request), region=None)
    )
    rejected = [r for r in results if isinstance(r, Rejected)]
    if rejected:
        field, _, why = rejected[0].reason.partition(": ")
        field = _PARAMETER.get(field, field)
        reason = f"{field}: {why}" if why else field
        await gateway.dead_letter(DeadLetter(body, reason, SOURCE, origin(request)))
        return error(request, 422, "invalid_callback", reason, errors=[(field, why or field)])
    events = [r.event for r in results if isinstance(r, Parsed)]
    await gateway.publish(events)
    return JSONResponse({"status": "produced", "event_ids": [e.event_id for e in events]})
