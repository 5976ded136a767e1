"""The gateway ASGI app (starlette): routes, lifespan (producer, resolver) and error handling.

Errors never leak internals: Kafka trouble is a 503 (the sender retries), anything unexpected is
a 500 carrying only an opaque error id, which is logged with the traceback. The log never holds
a secret, a body or a phone number: the traceback has no local variables and no exception
messages (a builtin's message echoes the input), and the gateway's secrets are registered for
redaction (``shinrai.logging``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from producers.gateway.generic import receive_events
from producers.gateway.graph import GraphFetcher, GraphMetrics, receive_graph
from producers.gateway.graph_crypto import load_private_key
from producers.gateway.http import Gateway, Publisher, error, log, origin, request_id
from producers.gateway.settings import GatewaySettings
from producers.gateway.twilio import receive_twilio
from producers.gateway.zoom import MeetingBuffer, receive_zoom
from producers.kafka_producer import RecordTooLarge
from producers.resolving import build_resolver
from schemas.deadletter import DeadLetter
from shinrai.errors import KafkaUnavailable
from shinrai.logging import register_secrets, secret_values
from shinrai.settings import Settings

Endpoint = Callable[[Request], Awaitable[Response]]


async def healthz(request: Request) -> Response:
    """Liveness: the process serves HTTP and has a producer."""
    return JSONResponse({"status": "ok"})


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Wrap an endpoint: an event over the topic's record limit → 413 (dead-lettered),
    KafkaUnavailable → 503, anything else → opaque 500 (logged)."""

    async def run(request: Request) -> Response:
        try:
            try:
                response = await endpoint(request)
            except RecordTooLarge as exc:
                # Bad input, not a broken log: dead-letter the event (cut to the dead-letter
                # limit) and tell the sender which event and which limit; retrying cannot help.
                gateway: Gateway = request.app.state.gateway
                letter = DeadLetter(exc.raw, str(exc), "gateway", origin(request))
                await gateway.dead_letter(letter)
                log.warning("event_too_large", request_id=request_id(request), reason=str(exc))
                response = error(request, 413, "event_too_large", str(exc))
        except KafkaUnavailable:
            error_id = uuid.uuid4().hex
            log.error("kafka unavailable", error_id=error_id, request_id=request_id(request))
            return JSONResponse(
                {"error": "unavailable", "detail": "event log unavailable, retry later"}
                | {"error_id": error_id},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        except Exception:
            error_id = uuid.uuid4().hex
            log.exception(
                "unhandled error",
                error_id=error_id,
                request_id=request_id(request),
                exception_messages=False,  # types and frames only: messages echo the input
            )
            return JSONResponse(
                {"error": "internal", "detail": "internal error", "error_id": error_id},
                status_code=500,
            )
        response.headers["X-Request-Id"] = request_id(request)
        return response

    return run


def create_app(
    settings: Settings,
    gateway: GatewaySettings,
    *,
    publisher_factory: Callable[[], Publisher] | None = None,
    graph_fetcher: GraphFetcher | None = None,
) -> Starlette:
    """Build the app. The producer is created at startup (not import), and closed at shutdown.

    ``publisher_factory`` defaults to the confirmed-delivery Kafka producer of ``settings.kafka``.
    ``graph_fetcher`` reads the resources of Graph notifications that do not carry them.
    """

    def default_publisher() -> Publisher:
        from producers.kafka_producer import KafkaRecordProducer

        return KafkaRecordProducer(settings.kafka, client_id="shinrai-gateway")

    make_publisher = publisher_factory or default_publisher
    # Before anything can log: every secret of both settings objects is redacted from logs.
    register_secrets(*secret_values(settings), *secret_values(gateway))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resolver = build_resolver(gateway.directory, default_region=gateway.default_region)
        publisher = make_publisher()
        app.state.gateway = Gateway(settings=gateway, publisher=publisher, resolver=resolver)
        app.state.zoom_meetings = MeetingBuffer(gateway.meeting_buffer)
        log.info(
            "gateway ready",
            topic=gateway.topic,
            zoom=gateway.zoom_secret_token is not None,
            twilio=gateway.twilio_auth_token is not None,
            graph=gateway.graph_client_state is not None,
            bearer_tokens=len(gateway.bearer_tokens),  # how many, never which
        )
        try:
            yield
        finally:
            close = getattr(publisher, "close", None)
            if callable(close):
                close()

    registry = CollectorRegistry()

    async def metrics(request: Request) -> Response:
        """Prometheus text of the gateway's counters (the Graph endpoint's for now)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/events", _guarded(receive_events), methods=["POST"]),
        Route("/v1/zoom", _guarded(receive_zoom), methods=["POST"]),
        Route("/v1/twilio", _guarded(receive_twilio), methods=["POST"]),
        Route("/v1/graph/notifications", _guarded(receive_graph), methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.graph_metrics = GraphMetrics(registry)
    key_file = gateway.graph_private_key_file
    app.state.graph_key = load_private_key(key_file) if key_file is not None else None
    app.state.graph_fetcher = graph_fetcher
    return app
