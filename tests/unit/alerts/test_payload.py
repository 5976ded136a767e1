"""The v1 payload: content, stability of the published schema, and the Slack form."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schemas.alerts import Alert, AlertLevel
from schemas.directory import Client
from shinrai.commands.alerts import schema_text
from sinks.alerts.payload import (
    AlertPayload,
    Recipient,
    build_payload,
    payload_json_schema,
    render_json,
    render_slack,
    slack_message,
)
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.unit

SCHEMA_FILE = REPO_ROOT / "docs" / "alert-payload.schema.json"
JST = timezone(timedelta(hours=9))


def test_committed_schema_matches_the_model() -> None:
    committed = json.loads(Path(SCHEMA_FILE).read_text(encoding="utf-8"))
    assert committed == payload_json_schema(), (
        "docs/alert-payload.schema.json is stale: run `shinrai alerts schema --write` and bump "
        "payload_version if the change is incompatible"
    )
    assert Path(SCHEMA_FILE).read_text(encoding="utf-8") == schema_text()


def test_schema_lists_the_documented_fields() -> None:
    schema = payload_json_schema()
    assert schema["properties"]["payload_version"]["const"] == 1
    assert set(schema["required"]) >= {"payload_version", "idempotency_key", "alert_id", "level"}
    documented = {
        "payload_version", "idempotency_key", "alert_id", "level", "client_id", "client_name",
        "at", "deadline", "obligation_id", "fact_id", "warning_fraction", "trust_from",
        "trust_to", "summary", "routing",
    }  # fmt: skip
    assert set(schema["properties"]) == documented
    # Receivers must be able to accept fields added later within v1.
    assert "additionalProperties" not in json.dumps(schema)


def test_payload_carries_alert_client_and_routing(
    make_alert: Callable[..., Alert], make_client: Callable[..., Client]
) -> None:
    at = datetime(2026, 3, 2, 15, 0, tzinfo=JST)
    alert = make_alert("obl-9", level=AlertLevel.WARNING, at=at)
    payload = build_payload(
        alert, make_client(), idempotency_key="key-1", recipients=(Recipient.OWNER,)
    )
    data = json.loads(render_json(payload))
    assert data["payload_version"] == 1
    assert data["idempotency_key"] == "key-1"
    assert data["alert_id"] == alert.alert_id
    assert data["level"] == "warning"
    assert data["client_id"] == "acme"
    assert data["client_name"] == "Acme K.K."
    assert data["obligation_id"] == "obl-9"
    assert data["warning_fraction"] == 0.75
    # Times are normalised to UTC so receivers never have to guess the zone.
    assert data["at"] == "2026-03-02T06:00:00Z"
    assert data["deadline"] == "2026-03-02T06:00:00Z"
    assert data["routing"] == {
        "owner": "owner@example.com",
        "escalation_contact": "lead@example.com",
        "recipients": ["owner"],
    }
    assert AlertPayload.model_validate_json(render_json(payload)) == payload


def test_unknown_client_still_builds(make_alert: Callable[..., Alert]) -> None:
    payload = build_payload(
        make_alert(client_id="ghost"), None, idempotency_key="k", recipients=(Recipient.DEFAULT,)
    )
    assert payload.client_name is None
    assert payload.routing.owner is None
    assert payload.routing.recipients == (Recipient.DEFAULT,)


def test_body_is_byte_identical_for_the_same_delivery(
    make_alert: Callable[..., Alert], make_client: Callable[..., Client]
) -> None:
    def body() -> bytes:
        return render_json(
            build_payload(
                make_alert(), make_client(), idempotency_key="k", recipients=(Recipient.OWNER,)
            )
        )

    assert body() == body()


def test_slack_form_is_text_with_optional_blocks(
    make_alert: Callable[..., Alert], make_client: Callable[..., Client]
) -> None:
    alert = make_alert(summary="Reply to <Q3> & co")
    payload = build_payload(
        alert,
        make_client(name="Acme & Sons"),
        idempotency_key="k",
        recipients=(Recipient.OWNER, Recipient.ESCALATION),
    )
    plain = json.loads(render_slack(payload))
    assert set(plain) == {"text"}
    text = plain["text"]
    assert "SLA breached" in text
    assert "Acme &amp; Sons (`acme`)" in text
    assert "Reply to &lt;Q3&gt; &amp; co" in text  # Slack control characters escaped
    assert "Owner: owner@example.com" in text
    assert "Escalation: lead@example.com" in text
    rich = slack_message(payload, blocks=True)
    assert rich["text"] == text  # the fallback text stays for notifications
    assert rich["blocks"][0]["text"]["text"] == text
    assert alert.alert_id in rich["blocks"][1]["elements"][0]["text"]


def test_slack_titles_per_level(
    make_alert: Callable[..., Alert], make_client: Callable[..., Client]
) -> None:
    def text(level: AlertLevel) -> str:
        payload = build_payload(
            make_alert(level=level),
            make_client(),
            idempotency_key="k",
            recipients=(Recipient.OWNER,),
        )
        return str(slack_message(payload)["text"])

    assert "SLA warning (75% of the SLA elapsed)" in text(AlertLevel.WARNING)
    assert "Trust downgraded: credible → anxious" in text(AlertLevel.TRUST_DOWNGRADE)
    assert "retracted" in text(AlertLevel.RETRACTION)
    # Escalation contact is only named to deliveries meant for the escalation.
    assert "Escalation:" not in text(AlertLevel.WARNING)


def test_at_is_utc_even_for_utc_inputs(make_alert: Callable[..., Alert]) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    payload = build_payload(
        make_alert(at=at), None, idempotency_key="k", recipients=(Recipient.DEFAULT,)
    )
    assert payload.at == at
    assert payload.at.utcoffset() == timedelta(0)


def test_slack_deadline_reads_in_the_team_zone_and_the_json_stays_utc(
    make_alert: Callable[..., Alert], make_client: Callable[..., Client]
) -> None:
    due = datetime(2026, 12, 7, 12, 43, tzinfo=UTC)
    payload = build_payload(
        make_alert(at=due), make_client(), idempotency_key="k", recipients=(Recipient.OWNER,)
    )
    tokyo = json.loads(render_slack(payload, zone=ZoneInfo("Asia/Tokyo")))["text"]
    assert "Deadline: 2026-12-07 21:43 JST (Asia/Tokyo)" in tokyo
    assert "12:43" not in tokyo  # no UTC time beside the local one
    assert "Deadline: 2026-12-07 12:43 UTC" in json.loads(render_slack(payload))["text"]
    assert json.loads(render_json(payload))["deadline"] == "2026-12-07T12:43:00Z"
