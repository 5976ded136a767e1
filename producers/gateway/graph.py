"""POST /v1/graph/notifications: Microsoft Graph change notifications for mail and calendars.

The protocol (Graph "change notifications through webhooks"):

- **Validation**: when a subscription is created (or its lifecycle URL set), Graph POSTs with
  ``?validationToken=...`` and expects the token back as ``text/plain`` with 200 within 10 s.
- **Notifications**: ``{"value": [{subscriptionId, clientState, changeType, resource,
  resourceData, ...}, ...]}``, answered 202. Each carries the ``clientState`` secret given when
  the subscription was created: it is compared (constant time) on *every* notification of the
  request; one wrong or missing value refuses the whole request with 403, counts it
  (``shinrai_graph_refused_total{reason="client_state"}``) and processes nothing. A refused body
  is never dead-lettered (anyone could fill the dead-letter topic).
- **Lifecycle notifications** (``lifecycleEvent``: ``reauthorizationRequired``, ``missed``,
  ``subscriptionRemoved``) are counted (``shinrai_graph_lifecycle_total{event}``) and logged as
  warnings saying what the operator must do; they produce no event.

Turning a notification into events: the resource is a message (``#Microsoft.Graph.Message`` or a
``.../messages/...`` path) or an event (``#Microsoft.Graph.Event``, ``.../events/...``). When
``resourceData`` carries the resource itself (a rich notification, decrypted by a relay, or any
sender that includes the fields) it is parsed directly; otherwise the notification is handed to
the pluggable ``GraphFetcher`` (GET the resource from Graph), and without one it is counted
``unresolved`` and logged. Parsing reuses the importers, so ids match the file imports:
messages through ``producers.parsers.graph_messages`` (the e-mail parser's ids), events through
``producers.parsers.graph`` (``graph:<iCalUId>@<start>``), of which only *held* meetings with a
client attendee are produced (a future meeting produced now would block its held version, which
has the same id). ``deleted`` notifications carry nothing to produce and are counted
``ignored``.

Rich notifications (``includeResourceData``) carry the resource encrypted in
``encryptedContent``: with ``graph_private_key_file`` (the private key of the certificate given
to the subscription) it is verified and decrypted (``graph_crypto``); an altered one (its HMAC
does not match) refuses the request with 403 (``refused_total{reason="signature"}``); one that
cannot be decrypted with our key goes to the fetcher like a basic notification. No fetcher that calls Graph ships with Shinrai yet (no Graph is reachable where it is built and
tested); the tests use recorded Graph payloads.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry, Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from producers.gateway.graph_crypto import SignatureMismatch, Undecryptable, decrypt
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
from producers.parsers import graph as graph_events
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.parsers.graph_messages import parse_message
from schemas.deadletter import DeadLetter
from schemas.events import Flag, InteractionEvent

SOURCE = "gateway:graph"
MAX_VALIDATION_TOKEN = 4096
LIFECYCLE_ACTIONS = {
    "reauthorizationRequired": "reauthorize the subscription (PATCH its expirationDateTime)",
    "missed": "notifications were lost: re-sync the mailbox/calendar (delta query or import)",
    "subscriptionRemoved": "the subscription is gone: create it again",
}
_MESSAGE_PATH = re.compile(r"/messages/", re.IGNORECASE)
_EVENT_PATH = re.compile(r"/events/", re.IGNORECASE)


class GraphFetcher(Protocol):
    """Reads the resource a notification names (e.g. ``GET /v1.0/<resource>`` on Graph)."""

    async def fetch(self, notification: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The resource's JSON, or None when it no longer exists."""


class GraphMetrics:
    """The Graph endpoint's counters (in the gateway's registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "shinrai_graph_notifications_total",
            "Graph change notifications by resource kind and outcome (produced, not_held, "
            "unresolved, ignored, rejected, fetch_failed)",
            ["kind", "outcome"],
            registry=registry,
        )
        self.refused = Counter(
            "shinrai_graph_refused_total",
            "Graph notification requests refused (client_state, signature, malformed)",
            ["reason"],
            registry=registry,
        )
        self.lifecycle = Counter(
            "shinrai_graph_lifecycle_total",
            "Graph subscription lifecycle notifications by event",
            ["event"],
            registry=registry,
        )
        self.validations = Counter(
            "shinrai_graph_validations_total",
            "Subscription validation handshakes answered",
            registry=registry,
        )


class FetchFailed(Exception):
    """The fetcher could not read a resource (Graph down, throttled): Graph should retry."""


def _kind(item: Mapping[str, Any]) -> str:
    data = item.get("resourceData")
    odata = data.get("@odata.type") if isinstance(data, dict) else None
    if isinstance(odata, str):
        lowered = odata.lower()
        if lowered.endswith("graph.message"):
            return "message"
        if lowered.endswith("graph.event"):
            return "event"
    resource = item.get("resource")
    if isinstance(resource, str):
        if _MESSAGE_PATH.search(resource):
            return "message"
        if _EVENT_PATH.search(resource):
            return "event"
    return "other"


def _carried(
    item: Mapping[str, Any], kind: str, key: rsa.RSAPrivateKey | None
) -> Mapping[str, Any] | None:
    """The resource itself: decrypted from ``encryptedContent``, or ``resourceData`` when it
    holds enough of it; else None. Raises ``SignatureMismatch`` for altered content."""
    encrypted = item.get("encryptedContent")
    if isinstance(encrypted, dict) and key is not None:
        try:
            return decrypt(key, encrypted)
        except Undecryptable as exc:
            log.warning("graph rich notification not decrypted", kind=kind, reason=str(exc))
    data = item.get("resourceData")
    if not isinstance(data, dict):
        return None
    if kind == "message" and isinstance(data.get("internetMessageId"), str):
        return data
    if (
        kind == "event"
        and isinstance(data.get("start"), dict)
        and isinstance(data.get("end"), dict)
    ):
        return data
    return None


def _results(
    gateway: Gateway, kind: str, resource: Mapping[str, Any], where: str
) -> list[ParseResult]:
    if kind == "message":
        return list(parse_message(resource, gateway.resolver, origin=where))
    held: list[ParseResult] = []
    now = datetime.now(UTC)
    for result in graph_events.parse_bytes(
        orjson.dumps(resource), gateway.resolver, name=where, as_of=now
    ):
        if isinstance(result, Rejected) or {Flag.HELD, Flag.CLIENT_ATTENDEE} <= result.event.flags:
            held.append(result)
    return held


async def receive_graph(request: Request) -> Response:
    """Answer the validation handshake, check clientState, produce what notifications carry."""
    gateway: Gateway = request.app.state.gateway
    metrics: GraphMetrics = request.app.state.graph_metrics
    fetcher: GraphFetcher | None = request.app.state.graph_fetcher
    settings = gateway.settings
    if settings.graph_client_state is None:
        return not_configured(request, "POST /v1/graph/notifications (no Graph clientState)")

    token = request.query_params.get("validationToken")
    if token is not None:
        if not token or len(token) > MAX_VALIDATION_TOKEN:
            return error(request, 400, "invalid_token", "validationToken is empty or too long")
        metrics.validations.inc()
        log.info("graph subscription validated", request=origin(request))
        return PlainTextResponse(token, status_code=200)

    try:
        body = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        return too_large(request, settings.max_body_bytes)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        metrics.refused.labels("malformed").inc()
        return error(request, 400, "invalid_json", f"body is not valid JSON: {exc}")
    items = doc.get("value") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        metrics.refused.labels("malformed").inc()
        return error(
            request,
            400,
            "invalid_payload",
            'expected {"value": [notification objects]}',
            errors=[("value", "expected a list of objects")],
        )

    # Authenticate every notification before touching any: the request is all or nothing.
    secret = settings.graph_client_state.get_secret_value().encode()
    for item in items:
        state = item.get("clientState")
        given = state.encode() if isinstance(state, str) else b""
        if not hmac.compare_digest(given, secret):
            metrics.refused.labels("client_state").inc()
            log.warning(
                "graph notification refused: wrong clientState",
                request=origin(request),
                notifications=len(items),
            )
            return error(request, 403, "invalid_client_state", "clientState does not match")

    events: list[InteractionEvent] = []
    for index, item in enumerate(items):
        where = f"{origin(request)}#{index}"
        lifecycle = item.get("lifecycleEvent")
        if isinstance(lifecycle, str):
            event = lifecycle[:64]
            metrics.lifecycle.labels(event).inc()
            log.warning(
                "graph subscription lifecycle event",
                lifecycle_event=event,
                subscription=str(item.get("subscriptionId", ""))[:128],
                action=LIFECYCLE_ACTIONS.get(event, "see the Graph documentation"),
            )
            continue
        kind = _kind(item)
        if kind == "other" or item.get("changeType") == "deleted":
            metrics.notifications.labels(kind, "ignored").inc()
            continue
        try:
            resource = _carried(item, kind, request.app.state.graph_key)
        except SignatureMismatch:
            metrics.refused.labels("signature").inc()
            log.warning("graph notification refused: altered encryptedContent", request=where)
            return error(request, 403, "invalid_signature", "encryptedContent signature mismatch")
        if resource is None and fetcher is not None:
            try:
                resource = await fetcher.fetch(item)
            except Exception as exc:
                metrics.notifications.labels(kind, "fetch_failed").inc()
                log.warning(
                    "graph resource fetch failed; asking Graph to retry",
                    request=origin(request),
                    error=type(exc).__name__,
                )
                return error(
                    request,
                    503,
                    "fetch_failed",
                    "the notified resource could not be read, retry later",
                    headers={"Retry-After": "30"},
                )
        if resource is None:
            metrics.notifications.labels(kind, "unresolved").inc()
            log.info(
                "graph notification without its resource and no way to fetch it",
                request=origin(request),
                kind=kind,
            )
            continue
        results = _results(gateway, kind, resource, where)
        if not results:
            metrics.notifications.labels(kind, "not_held" if kind == "event" else "ignored").inc()
        for result in results:
            if isinstance(result, Parsed):
                events.append(result.event)
                metrics.notifications.labels(kind, "produced").inc()
            else:
                metrics.notifications.labels(kind, "rejected").inc()
                await gateway.dead_letter(
                    DeadLetter(result.raw, result.reason, SOURCE, result.origin)
                )
    await gateway.publish(events)
    return JSONResponse(
        {"status": "accepted", "event_ids": [e.event_id for e in events]}, status_code=202
    )
