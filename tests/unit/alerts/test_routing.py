"""routes_for: who hears about which alert, and the per-delivery idempotency keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.alerts import Alert, AlertLevel
from schemas.directory import Client
from shinrai.settings import AlertSettings
from sinks.alerts.errors import RoutingConfigError
from sinks.alerts.payload import Recipient
from sinks.alerts.routing import (
    RoutingConfig,
    WebhookTarget,
    delivery_key,
    redact_url,
    routes_for,
)

pytestmark = pytest.mark.unit

OWNER = "https://hooks.example.com/owner"
LEAD = "https://hooks.example.com/lead"
DEFAULT = "https://hooks.example.com/default"


def _summary(deliveries: list) -> list[tuple[str, tuple[Recipient, ...]]]:  # type: ignore[type-arg]
    return [(d.target.url, d.recipients) for d in deliveries]


def test_warning_goes_to_the_owner_only(
    make_alert: Callable[..., Alert],
    make_client: Callable[..., Client],
    make_routing: Callable[..., RoutingConfig],
) -> None:
    deliveries = routes_for(make_alert(level=AlertLevel.WARNING), make_client(), make_routing())
    assert _summary(deliveries) == [(OWNER, (Recipient.OWNER,))]


def test_breach_goes_to_owner_and_escalation_as_two_deliveries(
    make_alert: Callable[..., Alert],
    make_client: Callable[..., Client],
    make_routing: Callable[..., RoutingConfig],
) -> None:
    alert = make_alert(level=AlertLevel.BREACH)
    deliveries = routes_for(alert, make_client(), make_routing())
    assert _summary(deliveries) == [
        (OWNER, (Recipient.OWNER,)),
        (LEAD, (Recipient.ESCALATION,)),
    ]
    keys = [d.key for d in deliveries]
    assert len(set(keys)) == 2
    assert keys == [delivery_key(alert.alert_id, OWNER), delivery_key(alert.alert_id, LEAD)]


def test_trust_downgrade_goes_to_escalation_only(
    make_alert: Callable[..., Alert],
    make_client: Callable[..., Client],
    make_routing: Callable[..., RoutingConfig],
) -> None:
    alert = make_alert(level=AlertLevel.TRUST_DOWNGRADE)
    assert _summary(routes_for(alert, make_client(), make_routing())) == [
        (LEAD, (Recipient.ESCALATION,))
    ]


def test_people_without_a_target_use_the_default(
    make_alert: Callable[..., Alert],
    make_client: Callable[..., Client],
    make_routing: Callable[..., RoutingConfig],
) -> None:
    client = make_client(owner="new@example.com", escalation_contact="boss@example.com")
    assert _summary(routes_for(make_alert(), client, make_routing())) == [
        (DEFAULT, (Recipient.OWNER, Recipient.ESCALATION))  # one URL, one delivery
    ]


def test_missing_escalation_contact_falls_back_to_owner_or_nobody(
    make_alert: Callable[..., Alert],
    make_client: Callable[..., Client],
    make_routing: Callable[..., RoutingConfig],
) -> None:
    client = make_client(escalation_contact=None)
    downgrade = make_alert(level=AlertLevel.TRUST_DOWNGRADE)
    assert _summary(routes_for(downgrade, client, make_routing())) == [
        (OWNER, (Recipient.ESCALATION,))
    ]
    strict = make_routing(escalation_falls_back_to_owner=False)
    assert routes_for(downgrade, client, strict) == []
    # A breach still reaches the owner once, not twice.
    assert _summary(routes_for(make_alert(), client, make_routing())) == [
        (OWNER, (Recipient.OWNER, Recipient.ESCALATION))
    ]


def test_unknown_client_goes_to_the_default_target(
    make_alert: Callable[..., Alert], make_routing: Callable[..., RoutingConfig]
) -> None:
    deliveries = routes_for(make_alert(client_id="ghost"), None, make_routing())
    assert _summary(deliveries) == [(DEFAULT, (Recipient.DEFAULT,))]
    assert routes_for(make_alert(client_id="ghost"), None, RoutingConfig()) == []


def test_custom_rules_override_one_level_and_keep_the_rest(
    make_alert: Callable[..., Alert],
    make_client: Callable[..., Client],
    make_routing: Callable[..., RoutingConfig],
) -> None:
    config = make_routing(rules={AlertLevel.WARNING: ("owner", "escalation")})
    warning = make_alert(level=AlertLevel.WARNING)
    assert [d.target.url for d in routes_for(warning, make_client(), config)] == [OWNER, LEAD]
    downgrade = make_alert(level=AlertLevel.TRUST_DOWNGRADE)
    assert [d.target.url for d in routes_for(downgrade, make_client(), config)] == [LEAD]
    silent = make_routing(rules={AlertLevel.SILENCE: ()})
    assert routes_for(make_alert(level=AlertLevel.SILENCE), make_client(), silent) == []


def test_keys_are_stable_and_distinct() -> None:
    assert delivery_key("a", OWNER) == delivery_key("a", OWNER)
    assert delivery_key("a", OWNER) != delivery_key("a", LEAD)
    assert delivery_key("a", OWNER) != delivery_key("b", OWNER)


def test_from_settings_routes_everything_to_the_webhook_url(
    make_alert: Callable[..., Alert], make_client: Callable[..., Client]
) -> None:
    config = RoutingConfig.from_settings(AlertSettings(webhook_url=DEFAULT))
    deliveries = routes_for(make_alert(), make_client(), config)
    assert _summary(deliveries) == [(DEFAULT, (Recipient.OWNER, Recipient.ESCALATION))]
    assert RoutingConfig.from_settings(AlertSettings()).default is None


def test_load_yaml_with_plain_strings(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "default: {url: 'https://hooks.example.com/default'}\n"
        "targets:\n"
        "  owner@example.com: {url: 'https://hooks.slack.com/services/T/B/x', format: slack}\n"
        "rules:\n"
        "  warning: [owner, escalation]\n",
        encoding="utf-8",
    )
    config = RoutingConfig.load(path)
    assert config.targets["owner@example.com"].format == "slack"
    assert config.rules[AlertLevel.WARNING] == ("owner", "escalation")
    assert config.rules[AlertLevel.BREACH] == ("owner", "escalation")


@pytest.mark.parametrize(
    "text",
    [
        "default: {url: 'ftp://example.com/x'}\n",
        "rules: {warning: [boss]}\n",
        "rules: {panic: [owner]}\n",
        "unknown_key: 1\n",
        "default: [unclosed\n",
    ],
)
def test_bad_config_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutingConfigError, match=r"routing\.yaml"):
        RoutingConfig.load(path)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError):
        RoutingConfig.load(tmp_path / "absent.yaml")


def test_redact_url_drops_credentials_query_and_fragment() -> None:
    assert redact_url("https://user:pw@hooks.example.com:8443/a/b?token=s3cret#frag") == (
        "https://hooks.example.com:8443/a/b"
    )
    assert redact_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"


def test_target_error_message_does_not_leak_credentials() -> None:
    with pytest.raises(ValueError, match=r"hooks\.example\.com") as info:
        WebhookTarget(url="ftp://user:pw@hooks.example.com/x?token=s3cret")
    assert "pw" not in str(info.value)
    assert "s3cret" not in str(info.value)
