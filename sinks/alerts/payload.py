"""The webhook payload: a documented, versioned JSON contract built from an Alert and its Client.

``payload_version`` changes only on incompatible changes (a field removed, renamed or retyped);
new optional fields may be added within a version, so receivers should ignore unknown fields.
The JSON Schema in ``docs/alert-payload.schema.json`` is generated from :class:`AlertPayload`
(``shinrai alerts schema --write``) and a unit test fails when it is stale.

The payload carries no links and no message bodies: only ids, times, the summary the engine wrote
and who the alert is routed to. The body is rendered once per delivery and is byte-identical on
every retry (the signature timestamp is what changes), so receivers may compare bodies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field

from schemas.alerts import Alert, AlertLevel
from schemas.base import Frozen
from schemas.directory import Client
from schemas.facts import TrustLevel

PAYLOAD_VERSION: Literal[1] = 1
SCHEMA_ID = "https://shinrai.invalid/schemas/alert-payload.v1.json"


class Recipient(StrEnum):
    """Why a target receives an alert."""

    OWNER = "owner"  # the client's account owner
    ESCALATION = "escalation"  # the client's escalation contact
    DEFAULT = "default"  # the catch-all route (unknown client, or nobody else configured)


class AlertRouting(Frozen):
    """Who the alert is for; the receiver decides how to reach them."""

    # Every field is always serialised, so the published schema marks every field required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    owner: str | None = Field(description="The client's account owner (e-mail); null if unknown")
    escalation_contact: str | None = Field(description="The client's escalation contact, if any")
    recipients: tuple[Recipient, ...] = Field(
        min_length=1, description="Roles this delivery is meant for (one target may serve several)"
    )


class AlertPayload(Frozen):
    """Version 1 of the JSON body POSTed to alert webhooks."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    payload_version: Literal[1] = Field(default=PAYLOAD_VERSION, description="Contract version")
    idempotency_key: str = Field(
        description="Same as the Idempotency-Key header: one key per (alert, target); "
        "a receiver that has seen it may acknowledge and ignore the repeat"
    )
    alert_id: str = Field(description="Stable id of the alert: one per (obligation, level)")
    level: AlertLevel
    client_id: str
    client_name: str | None = Field(description="From the client directory; null if unknown")
    at: AwareDatetime = Field(description="UTC instant the alert is about (e.g. the deadline)")
    deadline: AwareDatetime | None = Field(description="UTC deadline of the obligation, if any")
    obligation_id: str | None
    fact_id: str = Field(description="The SLA fact that raised the alert")
    warning_fraction: float | None = Field(description="For warnings: fraction of the SLA elapsed")
    trust_from: TrustLevel | None = Field(description="For trust changes: the previous level")
    trust_to: TrustLevel | None = Field(description="For trust changes: the new level")
    summary: str = Field(max_length=1024, description="Human-readable one-liner from the engine")
    routing: AlertRouting


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def build_payload(
    alert: Alert,
    client: Client | None,
    *,
    idempotency_key: str,
    recipients: tuple[Recipient, ...],
) -> AlertPayload:
    """The v1 payload for one delivery of ``alert`` (``client`` None when not in the directory)."""
    at = _utc(alert.at)
    assert at is not None  # Alert.at is required; narrows the type for mypy
    return AlertPayload(
        idempotency_key=idempotency_key,
        alert_id=alert.alert_id,
        level=alert.level,
        client_id=alert.client_id,
        client_name=client.name if client else None,
        at=at,
        deadline=_utc(alert.deadline),
        obligation_id=alert.obligation_id,
        fact_id=alert.fact_id,
        warning_fraction=alert.warning_fraction,
        trust_from=alert.trust_from,
        trust_to=alert.trust_to,
        summary=alert.summary,
        routing=AlertRouting(
            owner=client.owner if client else None,
            escalation_contact=client.escalation_contact if client else None,
            recipients=recipients,
        ),
    )


def _open_objects(node: Any) -> Any:
    # The model forbids extra fields (our own typo guard), but the published contract must let
    # receivers accept fields added later within v1, so "additionalProperties: false" is dropped.
    if isinstance(node, dict):
        return {
            key: _open_objects(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_open_objects(item) for item in node]
    return node


def payload_json_schema() -> dict[str, Any]:
    """The JSON Schema of the v1 payload, exactly as committed in docs/alert-payload.schema.json."""
    schema = _open_objects(AlertPayload.model_json_schema(mode="serialization"))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_json(payload: AlertPayload) -> bytes:
    """The JSON body (compact, UTF-8, field order fixed by the model)."""
    return payload.model_dump_json().encode()


_TITLES: dict[AlertLevel, str] = {
    AlertLevel.WARNING: ":hourglass_flowing_sand: SLA warning",
    AlertLevel.BREACH: ":rotating_light: SLA breached",
    AlertLevel.TRUST_DOWNGRADE: ":chart_with_downwards_trend: Trust downgraded",
    AlertLevel.SILENCE: ":mute: No outreach for the cadence",
    AlertLevel.RETRACTION: ":leftwards_arrow_with_hook: Breach alert retracted",
    AlertLevel.CHASE: ":raising_hand: The client is asking again",
}


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _title(payload: AlertPayload) -> str:
    title = _TITLES[payload.level]
    if payload.level is AlertLevel.WARNING and payload.warning_fraction is not None:
        title += f" ({payload.warning_fraction:.0%} of the SLA elapsed)"
    if payload.trust_from and payload.trust_to:
        title += f": {payload.trust_from.value} → {payload.trust_to.value}"
    return title


def local_time(instant: datetime, zone: tzinfo | None) -> str:
    """``instant`` as people read it: wall time in ``zone`` (UTC when None), the zone named.

    ``2026-12-07 21:43 JST (Asia/Tokyo)``; ``2026-12-07 12:43 UTC``.
    """
    local = instant.astimezone(zone or UTC)
    key = getattr(zone, "key", None)
    name = local.tzname() or "UTC"
    suffix = f" ({key})" if key and key != name else ""
    return f"{local:%Y-%m-%d %H:%M} {name}{suffix}"


def slack_text(payload: AlertPayload, zone: tzinfo | None = None) -> str:
    """The plain ``text`` of the Slack form (also the notification fallback when blocks exist).

    Times are shown in ``zone``, the team's (``SHINRAI_ALERTS__TIME_ZONE``), named.
    """
    client = payload.client_name or payload.client_id
    lines = [
        f"*{_slack_escape(_title(payload))}* — {_slack_escape(client)} (`{payload.client_id}`)",
        _slack_escape(payload.summary),
    ]
    details = []
    if payload.deadline is not None:
        details.append(f"Deadline: {local_time(payload.deadline, zone)}")
    if payload.routing.owner:
        details.append(f"Owner: {_slack_escape(payload.routing.owner)}")
    if payload.routing.escalation_contact and Recipient.ESCALATION in payload.routing.recipients:
        details.append(f"Escalation: {_slack_escape(payload.routing.escalation_contact)}")
    if details:
        lines.append(" · ".join(details))
    return "\n".join(lines)


def slack_message(
    payload: AlertPayload, *, blocks: bool = False, zone: tzinfo | None = None
) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message: ``{"text": ...}`` and optionally ``blocks``."""
    text = slack_text(payload, zone)
    message: dict[str, Any] = {"text": text}
    if blocks:
        message["blocks"] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"alert `{payload.alert_id}` · key `{payload.idempotency_key}`",
                    }
                ],
            },
        ]
    return message


def render_slack(
    payload: AlertPayload, *, blocks: bool = False, zone: tzinfo | None = None
) -> bytes:
    """The Slack-form body as compact UTF-8 JSON (times in ``zone``, UTC when None)."""
    return json.dumps(
        slack_message(payload, blocks=blocks, zone=zone), ensure_ascii=False, separators=(",", ":")
    ).encode()
