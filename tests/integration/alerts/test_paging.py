"""Paging end to end against a real webhook receiver on 127.0.0.1: the engine's facts become
alerts, the deliverer applies the paging rules, the receiver counts what reached it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine.alerts import alert_for
from engine.core import Engine
from engine.replay import replay
from schemas.alerts import Alert, AlertLevel
from schemas.calendars import BusinessCalendar
from schemas.facts import FactKind
from schemas.policies import CalendarDuration, SlaPolicy
from sinks.alerts.paging import PagingRules
from sinks.alerts.routing import RoutingConfig, WebhookTarget
from sinks.alerts.samples import sample_alert
from tests.builders import IN, email, policy_change

from .harness import Harness, Receiver

pytestmark = pytest.mark.integration

NIGHT_DESK = BusinessCalendar(calendar_id="night", timezone="UTC", always_open=True)
POLICY_60 = SlaPolicy(
    policy_id="p60",
    first_response=CalendarDuration(minutes=60),
    follow_up=CalendarDuration(minutes=60),
    silence_business_days=None,
)
YEARS = 10 * 365 * 86_400.0  # alerts about past instants are not expired here


def _late_event_alerts(now: datetime) -> list[Alert]:
    """An inbound e-mail of ``acme`` that happened 70 minutes ago (60-minute SLA, warnings at
    30, 45 and 54 minutes) and reached us only now: its facts, turned into alerts."""
    opened = now - timedelta(minutes=70)
    log = [
        policy_change("p", opened - timedelta(hours=1), POLICY_60, NIGHT_DESK, client="acme"),
        email("in", opened, IN, client="acme", recorded=now),
    ]
    facts = list(replay(log, Engine(), watermark_end=now))
    assert sum(f.kind is FactKind.WARNING for f in facts) == 3  # the missed warnings: facts
    assert sum(f.kind is FactKind.BREACHED for f in facts) == 1
    return [a for f in facts if (a := alert_for(f)) is not None]


async def test_a_late_event_produces_exactly_one_page_the_breach(
    make_receiver: Callable[..., Awaitable[Receiver]],
    make_deliverer: Callable[..., Awaitable[Harness]],
) -> None:
    receiver = await make_receiver()
    routing = RoutingConfig(default=WebhookTarget(url=receiver.url + "/hook"))
    h = await make_deliverer(routing, max_age_s=YEARS)
    now = datetime.now(UTC).replace(microsecond=0)
    for alert in _late_event_alerts(now):
        await h.deliverer.add(alert)
    await h.deliverer.flush()
    assert len(receiver.requests) == 1
    page = json.loads(receiver.requests[0].body)
    assert page["level"] == "breach"
    assert page["client_id"] == "acme"
    assert receiver.requests[0].signature_error is None
    # Read again (a restart before the commit): the same page is not sent twice.
    for alert in _late_event_alerts(now):
        await h.deliverer.add(alert)
    await h.deliverer.flush()
    assert len(receiver.requests) == 1


async def test_warnings_of_one_owner_come_as_one_digest_and_breaches_at_once(
    make_receiver: Callable[..., Awaitable[Receiver]],
    make_deliverer: Callable[..., Awaitable[Harness]],
) -> None:
    receiver = await make_receiver()
    routing = RoutingConfig(
        default=WebhookTarget(url=receiver.url + "/hook"),
        paging=PagingRules(digest_interval_s=3600),
    )
    h = await make_deliverer(routing, max_age_s=YEARS)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    warnings = [
        sample_alert(f"o{i}", level=AlertLevel.WARNING, at=hour + timedelta(minutes=i))
        for i in range(3)
    ]
    held = [d for w in warnings for d in await h.deliverer.add(w)]
    assert len({d.key for d in held}) == 1  # all three wait for one digest
    breach = await h.deliverer.add(sample_alert("o9", level=AlertLevel.BREACH, at=hour))
    await h.deliverer.flush()
    assert [json.loads(r.body)["level"] for r in receiver.requests] == ["breach"]
    assert h.deliverer.held == 3
    assert await h.deliverer.release_digests() == []  # the window has not ended yet
    sent = await h.deliverer.release_digests(all_windows=True)
    await h.deliverer.flush()
    assert [d.key for d in sent] == [held[0].key]
    assert breach[0].key != held[0].key
    assert len(receiver.requests) == 2
    digest = json.loads(receiver.requests[1].body)
    assert digest["level"] == "warning"
    assert digest["summary"].startswith("3 warnings for owner@example.com between ")
    assert receiver.requests[1].key == held[0].key
    assert h.store.status(held[0].key) == "delivered"  # what releases the held alerts' offsets


async def test_quiet_hours_keep_night_warnings_from_paging_but_not_breaches(
    make_receiver: Callable[..., Awaitable[Receiver]],
    make_deliverer: Callable[..., Awaitable[Harness]],
) -> None:
    receiver = await make_receiver()
    routing = RoutingConfig(
        default=WebhookTarget(url=receiver.url + "/hook"),
        paging=PagingRules(quiet_hours=True, calendar="default"),  # UTC Mon-Fri 09-18
    )
    h = await make_deliverer(routing, max_age_s=YEARS)
    night = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)  # a Tuesday, after hours
    day = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert await h.deliverer.add(sample_alert("o1", level=AlertLevel.WARNING, at=night)) == []
    await h.deliverer.add(sample_alert("o1", level=AlertLevel.BREACH, at=night))
    await h.deliverer.add(sample_alert("o2", level=AlertLevel.WARNING, at=day))
    await h.deliverer.flush()
    levels = sorted(json.loads(r.body)["level"] for r in receiver.requests)
    assert levels == ["breach", "warning"]
    assert h.deliverer.not_paged == 1
