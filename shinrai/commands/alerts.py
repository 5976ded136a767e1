"""``shinrai alerts``: the payload schema, signature checks and a signed test delivery."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import BinaryIO

import click

from shinrai.commands._context import get_settings

SCHEMA_PATH = Path("docs") / "alert-payload.schema.json"


def schema_text() -> str:
    """The committed form of the payload JSON Schema (2-space indent, trailing newline)."""
    from sinks.alerts.payload import payload_json_schema

    return json.dumps(payload_json_schema(), indent=2, ensure_ascii=False) + "\n"


@click.group("alerts")
def command() -> None:
    """Alert hooks: payload schema, signature verification, test deliveries."""


@command.command("schema")
@click.option(
    "--write",
    is_flag=True,
    help=f"Write {SCHEMA_PATH} under the working directory (the repository root) instead of "
    "printing.",
)
def schema(write: bool) -> None:
    """Print (or write) the JSON Schema of the v1 webhook payload."""
    if not write:
        click.echo(schema_text(), nl=False)
        return
    target = Path.cwd() / SCHEMA_PATH
    target.write_text(schema_text(), encoding="utf-8")
    click.echo(f"wrote {target}")


@command.command("verify")
@click.option("--timestamp", required=True, help="X-Shinrai-Timestamp header value.")
@click.option("--signature", required=True, help="X-Shinrai-Signature header value.")
@click.option("--tolerance", type=float, default=300.0, show_default=True, help="Seconds.")
@click.argument("body", type=click.File("rb"), default="-")
def verify(timestamp: str, signature: str, tolerance: float, body: BinaryIO) -> None:
    """Check a received request's signature (BODY file or stdin) with the configured secret.

    The secret comes from SHINRAI_ALERTS__SIGNING_SECRET. Exit status 0 when valid, 1 when not.
    """
    from sinks.alerts.errors import SignatureInvalid
    from sinks.alerts.signing import verify_signature

    secret = get_settings().alerts.signing_secret
    try:
        verify_signature(secret, timestamp, body.read(), signature, tolerance_s=tolerance)
    except SignatureInvalid as exc:
        click.echo(f"invalid: {exc.reason}", err=True)
        sys.exit(1)
    click.echo("valid")


@command.command("send-test")
@click.option("--url", required=True, help="Webhook URL to POST a signed sample alert to.")
@click.option("--format", "fmt", type=click.Choice(["json", "slack"]), default="json")
@click.option(
    "--level",
    type=click.Choice(["warning", "breach", "trust_downgrade", "silence", "retraction"]),
    default="breach",
    show_default=True,
)
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Per attempt, s.")
@click.option("--max-age", type=float, default=60.0, show_default=True, help="Give up after, s.")
def send_test(url: str, fmt: str, level: str, timeout: float, max_age: float) -> None:
    """Deliver one signed sample alert to URL (with retries) and print every attempt.

    Uses SHINRAI_ALERTS__SIGNING_SECRET; nothing is stored (in-memory log and store).
    """
    import asyncio

    from schemas.alerts import AlertLevel
    from shinrai.logging import configure
    from sinks.alerts.delivery import AlertDeliverer
    from sinks.alerts.records import InMemoryDeliveryLog
    from sinks.alerts.retry import DeliveryOptions
    from sinks.alerts.routing import RoutingConfig, WebhookTarget
    from sinks.alerts.samples import sample_alert, sample_directory
    from sinks.alerts.store import InMemoryDeliveredStore

    all_settings = get_settings()
    configure(all_settings.log_level, json=all_settings.log_json)  # logs to stderr, not stdout
    settings = all_settings.alerts.model_copy(update={"max_age_s": max_age})
    log = InMemoryDeliveryLog()
    try:
        target = WebhookTarget.model_validate({"url": url, "format": fmt})
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    deliverer = AlertDeliverer(
        settings=settings,
        routing=RoutingConfig(default=target),
        directory=sample_directory(),
        log=log,
        store=InMemoryDeliveredStore(),
        options=DeliveryOptions(attempt_timeout_s=timeout),
    )

    async def run() -> str:
        async with deliverer:
            await deliverer.add(sample_alert(level=AlertLevel(level)))
            results = await deliverer.flush()
        return results[0].outcome if results else "unrouted"

    outcome = asyncio.run(run())
    for rec in log.records:
        status = rec.status_code if rec.status_code is not None else "-"
        click.echo(
            f"attempt {rec.attempt}: {rec.outcome} status={status} "
            f"latency={rec.latency_ms:.0f}ms {rec.error}".rstrip()
        )
    click.echo(outcome)
    if outcome != "delivered":
        sys.exit(1)
