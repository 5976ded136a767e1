"""The deliverer's lifecycle rules, checked without any network traffic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from schemas.alerts import Alert
from shinrai.errors import ConfigError
from shinrai.settings import AlertSettings
from sinks.alerts.delivery import AlertDeliverer, render_body
from sinks.alerts.errors import DelivererStateError
from sinks.alerts.records import InMemoryDeliveryLog, JsonlDeliveryLog
from sinks.alerts.retry import DeliveryOptions
from sinks.alerts.routing import RoutingConfig, WebhookTarget, routes_for
from sinks.alerts.samples import sample_client, sample_directory
from sinks.alerts.store import InMemoryDeliveredStore, SqliteDeliveredStore

pytestmark = pytest.mark.unit

ROUTING = RoutingConfig(default=WebhookTarget(url="http://127.0.0.1:9/never-contacted"))


def _deliverer(tmp_path: Path, secret: str = "s3cret") -> AlertDeliverer:
    return AlertDeliverer(
        settings=AlertSettings(signing_secret=SecretStr(secret)),
        routing=ROUTING,
        directory=sample_directory(),
        log=JsonlDeliveryLog(tmp_path / "log.jsonl"),
        store=SqliteDeliveredStore(tmp_path / "store.sqlite"),
    )


def test_constructor_does_no_io(tmp_path: Path) -> None:
    _deliverer(tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_add_before_setup_is_refused(
    tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
    with pytest.raises(DelivererStateError):
        await _deliverer(tmp_path).add(make_alert())


async def test_empty_secret_is_refused_at_setup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="signing secret"):
        await _deliverer(tmp_path, secret="").setup()
    assert not (tmp_path / "store.sqlite").exists()


async def test_setup_opens_the_store_and_close_ends_the_deliverer(
    tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
    deliverer = _deliverer(tmp_path)
    await deliverer.setup()
    assert (tmp_path / "store.sqlite").exists()
    assert await deliverer.flush() == []
    await deliverer.close()
    await deliverer.close()  # idempotent
    with pytest.raises(DelivererStateError):
        await deliverer.add(make_alert())
    with pytest.raises(DelivererStateError):
        await deliverer.setup()


async def test_finished_keys_are_skipped_without_sending(
    make_alert: Callable[..., Alert],
) -> None:
    alert = make_alert()
    store = InMemoryDeliveredStore()
    (delivery,) = routes_for(alert, sample_client(), ROUTING)
    store.mark(delivery.key, alert_id=alert.alert_id, target="t", outcome="delivered", at=alert.at)
    log = InMemoryDeliveryLog()
    async with AlertDeliverer(
        settings=AlertSettings(signing_secret=SecretStr("s")),
        routing=ROUTING,
        directory=sample_directory(),
        log=log,
        store=store,
    ) as deliverer:
        assert await deliverer.add(alert) == []
        (result,) = await deliverer.flush()
    assert (result.outcome, result.attempts, result.key) == ("skipped", 0, delivery.key)
    assert log.records == []


async def test_results_buffer_is_bounded(make_alert: Callable[..., Alert]) -> None:
    store = InMemoryDeliveredStore()
    alerts = [make_alert(f"obl-{i}") for i in range(5)]
    for alert in alerts:
        (delivery,) = routes_for(alert, sample_client(), ROUTING)
        store.mark(delivery.key, alert_id=alert.alert_id, target="t", outcome="delivered",
                   at=alert.at)  # fmt: skip
    async with AlertDeliverer(
        settings=AlertSettings(signing_secret=SecretStr("s")),
        routing=ROUTING,
        directory=sample_directory(),
        log=InMemoryDeliveryLog(),
        store=store,
        options=DeliveryOptions(results_limit=3),
    ) as deliverer:
        await deliverer.add_many(alerts)
        kept = deliverer.drain_results()
        assert [r.alert_id for r in kept] == [a.alert_id for a in alerts[-3:]]
        assert deliverer.drain_results() == []


def test_render_body_follows_the_target_format(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert()
    slack = RoutingConfig(default=WebhookTarget(url="https://h.example.com/x", format="slack"))
    (json_delivery,) = routes_for(alert, sample_client(), ROUTING)
    (slack_delivery,) = routes_for(alert, sample_client(), slack)
    assert render_body(json_delivery).startswith(b'{"payload_version":1,')
    assert render_body(slack_delivery).startswith(b'{"text":')
