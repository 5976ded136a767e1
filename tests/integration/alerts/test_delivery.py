"""Alert delivery against real receivers on 127.0.0.1 that fail, stall and rate-limit."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from schemas.alerts import Alert, AlertLevel
from shinrai.settings import AlertSettings
from sinks.alerts.clock import SimulatedClock
from sinks.alerts.delivery import AlertDeliverer
from sinks.alerts.records import DeliveryRecord, JsonlDeliveryLog
from sinks.alerts.retry import DeliveryOptions
from sinks.alerts.routing import RoutingConfig, WebhookTarget, redact_url, routes_for
from sinks.alerts.samples import sample_alert, sample_client, sample_directory
from sinks.alerts.store import InMemoryDeliveredStore, SqliteDeliveredStore

from .harness import (
    FAST,
    SECRET,
    Action,
    Drop,
    Harness,
    Received,
    Receiver,
    Respond,
    Stall,
)

pytestmark = pytest.mark.integration

MakeReceiver = Callable[..., Awaitable[Receiver]]
MakeDeliverer = Callable[..., Awaitable[Harness]]

CLIENTS = tuple(
    sample_client(cid, name=f"Client {cid}", owner="owner@example.com")
    for cid in ("acme", "beta", "gamma")
)


def _routing(owner_url: str, lead_url: str, **kwargs: object) -> RoutingConfig:
    return RoutingConfig.model_validate(
        {
            "targets": {
                "owner@example.com": {"url": owner_url},
                "lead@example.com": {"url": lead_url},
            },
            **kwargs,
        }
    )


def _alerts(n: int, level: AlertLevel = AlertLevel.BREACH, **kwargs: object) -> list[Alert]:
    return [
        sample_alert(f"obl-{level.value}-{i}", level=level, client_id=CLIENTS[i % 3].client_id,
                     **kwargs)  # type: ignore[arg-type]
        for i in range(n)
    ]  # fmt: skip


def _by_delivery(records: list[DeliveryRecord]) -> dict[tuple[str, str], list[DeliveryRecord]]:
    grouped: dict[tuple[str, str], list[DeliveryRecord]] = defaultdict(list)
    for rec in records:
        grouped[(rec.alert_id, rec.target)].append(rec)
    return grouped


async def _wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def _assert_signed_and_consistent(receiver: Receiver) -> None:
    for req in receiver.requests:
        assert req.signature_error is None, req.signature_error
        assert json.loads(req.body)["idempotency_key"] == req.key
        assert req.headers["content-type"] == "application/json"
        assert req.headers["x-shinrai-payload-version"] == "1"


async def test_failing_stalling_receivers_recover_and_every_key_is_acked_once(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    def flaky(_req: Received, seen: int) -> Action:
        # 500, then a stall past the client's 0.4 s timeout, then a dropped connection, then OK.
        script: list[Action] = [Respond(500), Stall(1.0), Drop()]
        return script[seen] if seen < len(script) else Respond(200)

    def busy(_req: Received, seen: int) -> Action:
        return Respond(503) if seen == 0 else Respond(202)

    owner_rx, lead_rx = await make_receiver(flaky), await make_receiver(busy)
    routing = _routing(f"{owner_rx.url}/hooks/owner?token=abc", f"{lead_rx.url}/hooks/lead")
    options = FAST.model_copy(update={"per_target_concurrency": 8, "max_concurrency": 12})
    h = await make_deliverer(routing, clients=CLIENTS, options=options)

    alerts = _alerts(6) + _alerts(6, AlertLevel.WARNING)
    for alert in alerts:
        await h.deliverer.add(alert)
    results = await h.deliverer.flush()

    clients = {c.client_id: c for c in CLIENTS}
    expected = {d.key for a in alerts for d in routes_for(a, clients[a.client_id], routing)}
    assert len(expected) == 6 * 2 + 6  # breaches: owner + escalation; warnings: owner only
    assert {r.key for r in results} == expected
    assert {r.outcome for r in results} == {"delivered"}
    # Exactly one 2xx-acknowledged request per key, across both receivers; nothing else acked.
    acked = owner_rx.acked() + lead_rx.acked()
    assert set(acked) == expected
    assert set(acked.values()) == {1}
    assert set(owner_rx.received().values()) == {4}  # 500, stall, drop, 200
    assert set(lead_rx.received().values()) == {2}  # 503, 202
    _assert_signed_and_consistent(owner_rx)
    _assert_signed_and_consistent(lead_rx)

    # Every attempt is in the log, numbered from 1, with the outcome of that attempt.
    owner_label = f"{owner_rx.url}/hooks/owner"  # no query string: it may hold credentials
    for (_alert_id, target), recs in _by_delivery(h.log.records).items():
        assert [r.attempt for r in recs] == list(range(1, len(recs) + 1))
        if target == owner_label:
            assert [r.outcome for r in recs] == ["retry", "retry", "retry", "delivered"]
            assert [r.status_code for r in recs] == [500, None, None, 200]
            assert recs[1].error.startswith("timeout after 0.4 s")
            assert recs[2].error.startswith("RemoteProtocolError")
            assert recs[1].latency_ms >= 400
        else:
            assert target == f"{lead_rx.url}/hooks/lead"
            assert [(r.outcome, r.status_code) for r in recs] == [
                ("retry", 503),
                ("delivered", 202),
            ]
        assert all(r.at.tzinfo is not None and r.at.utcoffset() == timedelta(0) for r in recs)
    assert h.dead.letters == []


async def test_retry_after_seconds_is_honoured_for_the_whole_target(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    first_seen: list[bool] = []

    def limited(_req: Received, _seen: int) -> Action:
        if not first_seen:  # only the very first request is rate-limited
            first_seen.append(True)
            return Respond(429, {"Retry-After": "1"})
        return Respond(200)

    rx = await make_receiver(limited)
    h = await make_deliverer(_routing(f"{rx.url}/o", f"{rx.url}/l"), clients=CLIENTS)
    first, second = _alerts(2, AlertLevel.WARNING)
    started = time.monotonic()
    await h.deliverer.add(first)
    # Once the deliverer has seen the 429 (its retry is logged), the whole target is closed.
    await _wait_until(lambda: [r.outcome for r in h.log.records] == ["retry"])
    await h.deliverer.add(second)  # same target: must also wait for the Retry-After gate
    results = await h.deliverer.flush()
    elapsed = time.monotonic() - started

    assert {r.outcome for r in results} == {"delivered"}
    retry_at = rx.requests[0].arrived
    later = rx.requests[1:]
    assert len(later) == 2
    gaps = [req.arrived - retry_at for req in later]
    assert min(gaps) >= 1.0, gaps  # nobody came back before Retry-After elapsed
    assert max(gaps) < 2.0, gaps  # ...and not much later either (no extra backoff on top)
    assert elapsed < 2.5
    recs = _by_delivery(h.log.records)[(first.alert_id, f"{rx.url}/o")]
    assert [(r.outcome, r.status_code) for r in recs] == [("retry", 429), ("delivered", 200)]
    assert set(rx.acked().values()) == {1}


async def test_retry_after_http_date_is_honoured(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    clock = SimulatedClock(start=time.time())

    def unavailable(_req: Received, seen: int) -> Action:
        if seen == 0:
            until = datetime.fromtimestamp(clock.time() + 30, tz=UTC)
            return Respond(503, {"Retry-After": format_datetime(until, usegmt=True)})
        return Respond(200)

    rx = await make_receiver(unavailable)
    h = await make_deliverer(_routing(f"{rx.url}/o", f"{rx.url}/l"), clients=CLIENTS, clock=clock)
    await h.deliverer.add(_alerts(1, AlertLevel.WARNING)[0])
    started = time.monotonic()
    results = await h.deliverer.flush()

    assert [r.outcome for r in results] == ["delivered"]
    # The date has whole-second resolution, so the wait is in (29, 30]; jitter would be ≤ 0.05.
    assert len(clock.sleeps) == 1
    assert 29.0 < clock.sleeps[0] <= 30.0
    assert time.monotonic() - started < 5.0  # simulated time: the test does not wait 30 s
    assert [r.status for r in rx.requests] == [503, 200]


async def test_undeliverable_alert_is_dead_lettered_at_max_age(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    clock = SimulatedClock(start=time.time())
    rx = await make_receiver(lambda _req, _seen: Respond(500))
    options = FAST.model_copy(update={"base_delay_s": 1.0, "max_delay_s": 2.0})
    h = await make_deliverer(
        _routing(f"{rx.url}/o", f"{rx.url}/l"),
        clients=CLIENTS,
        clock=clock,
        options=options,
        max_age_s=10.0,
    )
    alert = sample_alert("obl-old", level=AlertLevel.WARNING, at=datetime.fromtimestamp(
        int(clock.time()), tz=UTC))  # fmt: skip
    await h.deliverer.add(alert)
    results = await h.deliverer.flush()

    assert [r.outcome for r in results] == ["dead_letter"]
    recs = h.log.records
    assert len(recs) == len(rx.requests) >= 3  # one record per request, none sent unlogged
    assert [r.outcome for r in recs] == ["retry"] * (len(recs) - 1) + ["dead_letter"]
    assert [r.attempt for r in recs] == list(range(1, len(recs) + 1))
    assert "max age" in recs[-1].error
    expiry = alert.at + timedelta(seconds=10)
    assert all(r.at <= expiry for r in recs)  # no attempt after the alert's maximum age
    assert len(h.dead.letters) == 1
    letter = h.dead.letters[0]
    assert letter.raw == rx.requests[0].body  # the body is kept for a manual resend
    assert letter.key == alert.alert_id.encode()
    assert h.store.status(rx.requests[0].key) == "dead_letter"

    # A replay of the same alert is not retried (the key is finished)...
    sent = len(rx.requests)
    await h.deliverer.add(alert)
    assert [r.outcome for r in await h.deliverer.flush()] == ["skipped"]
    assert len(rx.requests) == sent


async def test_alert_already_past_max_age_is_dead_lettered_without_a_request(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    rx = await make_receiver()
    h = await make_deliverer(
        _routing(f"{rx.url}/o", f"{rx.url}/l"), clients=CLIENTS, max_age_s=60.0
    )
    old = sample_alert(level=AlertLevel.WARNING, at=datetime.now(UTC) - timedelta(minutes=5))
    await h.deliverer.add(old)
    results = await h.deliverer.flush()
    assert [r.outcome for r in results] == ["dead_letter"]
    assert rx.requests == []
    (rec,) = h.log.records
    assert (rec.attempt, rec.status_code, rec.outcome, rec.latency_ms) == (
        1,
        None,
        "dead_letter",
        0.0,
    )
    assert rec.error.startswith("expired")
    assert len(h.dead.letters) == 1


@pytest.mark.parametrize("status", [400, 404, 410, 422])
async def test_permanent_4xx_is_dead_lettered_after_one_attempt(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer, status: int
) -> None:
    rx = await make_receiver(lambda _req, _seen: Respond(status, body=b"unknown channel"))
    h = await make_deliverer(_routing(f"{rx.url}/o", f"{rx.url}/l"), clients=CLIENTS)
    await h.deliverer.add(_alerts(1, AlertLevel.WARNING)[0])
    results = await h.deliverer.flush()
    assert [(r.outcome, r.attempts, r.status_code) for r in results] == [("failed", 1, status)]
    assert len(rx.requests) == 1
    (rec,) = h.log.records
    assert (rec.outcome, rec.status_code) == ("failed", status)
    assert rec.error == f"HTTP {status}: unknown channel"
    assert len(h.dead.letters) == 1
    assert h.dead.letters[0].source == "alerts:failed"


async def test_408_is_retried_not_dead_lettered(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    rx = await make_receiver(lambda _req, seen: Respond(408) if seen == 0 else Respond(200))
    h = await make_deliverer(_routing(f"{rx.url}/o", f"{rx.url}/l"), clients=CLIENTS)
    await h.deliverer.add(_alerts(1, AlertLevel.WARNING)[0])
    assert [(r.outcome, r.attempts) for r in await h.deliverer.flush()] == [("delivered", 2)]


async def test_receiver_with_another_secret_rejects_and_the_alert_is_dead_lettered(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    rx = await make_receiver(secret="the-receivers-secret")
    h = await make_deliverer(_routing(f"{rx.url}/o", f"{rx.url}/l"), clients=CLIENTS)
    await h.deliverer.add(_alerts(1, AlertLevel.WARNING)[0])
    assert [r.outcome for r in await h.deliverer.flush()] == ["failed"]
    assert [r.signature_error for r in rx.requests] == ["signature mismatch"]
    assert rx.acked() == {}


async def test_restart_with_the_same_sqlite_store_sends_nothing_twice(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer, tmp_path: Path
) -> None:
    recovered = asyncio.Event()
    alerts = _alerts(6)
    slow = {alerts[0].alert_id, alerts[1].alert_id}

    def plan(req: Received, _seen: int) -> Action:
        if json.loads(req.body)["alert_id"] in slow and not recovered.is_set():
            return Stall(2.0)  # these never succeed before the first deliverer stops
        return Respond(200)

    rx = await make_receiver(plan)
    routing = _routing(f"{rx.url}/o", f"{rx.url}/l")
    path = tmp_path / "delivered.sqlite"
    options = FAST.model_copy(update={"per_target_concurrency": 8, "max_concurrency": 16})

    first = await make_deliverer(
        routing, clients=CLIENTS, store=SqliteDeliveredStore(path), options=options
    )
    for alert in alerts:
        await first.deliverer.add(alert)
    await _wait_until(lambda: len(rx.acked()) == 8)  # 4 fast alerts x 2 targets
    await asyncio.sleep(0.5)  # let the slow ones retry at least once
    assert first.deliverer.pending == 4
    await first.deliverer.close()  # "crash": the slow deliveries are cancelled, not marked
    acked_before = set(rx.acked())

    recovered.set()
    second = await make_deliverer(
        routing, clients=CLIENTS, store=SqliteDeliveredStore(path), options=options
    )
    for alert in alerts:  # a replay of the whole topic
        await second.deliverer.add(alert)
    results = await second.deliverer.flush()
    outcomes = {r.key: r.outcome for r in results}
    assert sorted(outcomes.values()) == ["delivered"] * 4 + ["skipped"] * 8
    assert {k for k, o in outcomes.items() if o == "skipped"} == acked_before
    assert len(rx.acked()) == 12
    assert set(rx.acked().values()) == {1}  # every key acknowledged exactly once overall
    _assert_signed_and_consistent(rx)

    third = await make_deliverer(
        routing, clients=CLIENTS, store=SqliteDeliveredStore(path), options=options
    )
    sent = len(rx.requests)
    for alert in alerts:
        await third.deliverer.add(alert)
    assert {r.outcome for r in await third.deliverer.flush()} == {"skipped"}
    assert len(rx.requests) == sent
    assert third.log.records == []


async def test_a_stalled_target_does_not_block_other_targets(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    stalled = await make_receiver(lambda _req, _seen: Stall(5.0))
    fast = await make_receiver()
    clients = (
        sample_client("slowco", owner="slow@example.com", escalation_contact=None),
        sample_client("fastco", owner="fast@example.com", escalation_contact=None),
    )
    routing = RoutingConfig(
        targets={
            "slow@example.com": WebhookTarget(url=f"{stalled.url}/s"),
            "fast@example.com": WebhookTarget(url=f"{fast.url}/f"),
        }
    )
    # Three global slots, two per target: the stalled target can never take all of them.
    options = FAST.model_copy(
        update={"attempt_timeout_s": 3.0, "max_concurrency": 3, "per_target_concurrency": 2}
    )
    h = await make_deliverer(routing, clients=clients, options=options)
    slow_alerts = [sample_alert(f"s{i}", level=AlertLevel.WARNING, client_id="slowco")
                   for i in range(6)]  # fmt: skip
    fast_alerts = [sample_alert(f"f{i}", level=AlertLevel.WARNING, client_id="fastco")
                   for i in range(6)]  # fmt: skip
    started = time.monotonic()
    for alert in slow_alerts + fast_alerts:
        await h.deliverer.add(alert)
    # The receiver counts an ack when it answers; the deliverer finishes just after reading it.
    await _wait_until(lambda: len(fast.acked()) == 6 and h.deliverer.pending == 6, within=2.0)
    assert time.monotonic() - started < 2.5  # inside the stalled target's 3 s attempt timeout
    assert len(stalled.requests) == 2  # only its own two slots are in use
    # close() cancels the stalled deliveries; nothing was marked for them.
    await h.deliverer.close()
    assert all(h.store.status(r.key) is None for r in stalled.requests)


async def test_slack_target_and_jsonl_log(make_receiver: MakeReceiver, tmp_path: Path) -> None:
    rx = await make_receiver(lambda _req, seen: Respond(503) if seen == 0 else Respond(200))
    log_path = tmp_path / "deliveries.jsonl"
    log = JsonlDeliveryLog(log_path)
    target = WebhookTarget(url=f"{rx.url}/services/T0/B0/x", format="slack", slack_blocks=True)
    deliverer = AlertDeliverer(
        settings=AlertSettings(signing_secret=SecretStr(SECRET)),
        routing=RoutingConfig(default=target),
        directory=sample_directory(),
        log=log,
        store=InMemoryDeliveredStore(),
        options=FAST,
    )
    async with deliverer:
        await deliverer.add(sample_alert(level=AlertLevel.TRUST_DOWNGRADE))
        results = await deliverer.flush()
    log.close()
    assert [r.outcome for r in results] == ["delivered"]
    body = json.loads(rx.requests[-1].body)
    assert set(body) == {"text", "blocks"}
    assert "Trust downgraded: credible → anxious" in body["text"]
    assert all(r.signature_error is None for r in rx.requests)
    recs = JsonlDeliveryLog.read(log_path)
    assert [(r.attempt, r.outcome, r.status_code) for r in recs] == [
        (1, "retry", 503),
        (2, "delivered", 200),
    ]
    assert {r.target for r in recs} == {redact_url(target.url)}


async def test_unknown_client_goes_to_the_default_target(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    rx = await make_receiver()
    routing = RoutingConfig(default=WebhookTarget(url=f"{rx.url}/default"))
    h = await make_deliverer(routing, clients=CLIENTS)
    await h.deliverer.add(sample_alert(client_id="not-in-directory"))
    assert [r.outcome for r in await h.deliverer.flush()] == ["delivered"]
    body = json.loads(rx.requests[0].body)
    assert body["client_id"] == "not-in-directory"
    assert body["client_name"] is None
    assert body["routing"]["recipients"] == ["default"]


async def test_add_waits_when_max_pending_deliveries_are_unfinished(
    make_receiver: MakeReceiver, make_deliverer: MakeDeliverer
) -> None:
    gate = asyncio.Event()

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        gate.set()

    def plan(_req: Received, _seen: int) -> Action:
        return Respond(200) if gate.is_set() else Respond(503)

    rx = await make_receiver(plan)
    options = DeliveryOptions(
        attempt_timeout_s=0.4, base_delay_s=0.05, max_delay_s=0.05, max_pending=1
    )
    routing = _routing(f"{rx.url}/o", f"{rx.url}/l")
    h = await make_deliverer(routing, clients=CLIENTS, options=options)
    first, second = _alerts(2, AlertLevel.WARNING)
    await h.deliverer.add(first)
    releaser = asyncio.create_task(release_later())
    started = time.monotonic()
    await h.deliverer.add(second)  # blocks until the first delivery finished
    assert time.monotonic() - started >= 0.25
    (first_delivery,) = routes_for(first, CLIENTS[0], routing)
    assert h.store.status(first_delivery.key) == "delivered"
    await releaser
    assert {r.outcome for r in await h.deliverer.flush()} == {"delivered"}
