"""``shinrai gateway``: serve the HTTP ingestion gateway (Zoom, Twilio, canonical events)."""

from __future__ import annotations

import click

from shinrai.commands._context import get_settings


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def command(host: str, port: int) -> None:
    """Serve POST /v1/zoom, /v1/twilio and /v1/events, and GET /healthz.

    Every accepted request is produced to Kafka (acks=all) before it is answered. Secrets come
    from SHINRAI_GATEWAY__* variables: ZOOM_SECRET_TOKEN, TWILIO_AUTH_TOKEN, BEARER_TOKENS (a JSON
    list), PUBLIC_BASE_URL (the URL Twilio calls, when behind a proxy), MAX_BODY_BYTES,
    DIRECTORY (clients YAML/CSV to resolve callers and attendees). An endpoint whose secret is
    not set answers 503.
    """
    import uvicorn

    from producers.gateway.app import create_app
    from shinrai.errors import ShinraiError
    from shinrai.kafka_check import check_connection
    from shinrai.logging import configure
    from shinrai.ports import require_free

    settings = get_settings()
    # Before Kafka is asked anything: a taken port is one line at once, not uvicorn's log.
    require_free(port, setting="--port", what="the gateway", host=host)
    configure(settings.log_level, json=settings.log_json)
    try:
        # Before serving: a refused login is one error line here, not a traceback from the
        # server's start-up hook.
        check_connection(settings.kafka)
    except ShinraiError as exc:
        raise click.ClickException(str(exc)) from exc
    app = create_app(settings, settings.gateway)
    # proxy_headers off: the Twilio signature is checked against PUBLIC_BASE_URL, not headers
    # a client could forge. log_config None: uvicorn's own loggers (errors, access lines with
    # query strings) propagate to the handler ``configure`` installed, which redacts.
    uvicorn.run(
        app, host=host, port=port, proxy_headers=False, server_header=False, log_config=None
    )
