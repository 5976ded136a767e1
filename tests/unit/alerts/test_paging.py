"""Paging rules (DESIGN §3 "Paging"): alerts page once, and only what someone can act on.

The engine keeps missed warnings (instants that passed before their event arrived) out of the
alert stream; ``sinks.alerts.paging`` decides quiet hours and per-owner digests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.alerts import alert_for, is_missed_warning
from engine.calendar import CalendarClock, clock_for
from engine.core import Engine
from engine.replay import replay
from schemas.alerts import AlertLevel
from schemas.calendars import BusinessCalendar
from schemas.facts import FactKind
from schemas.policies import CalendarDuration, SlaPolicy
from shinrai.settings import AlertSettings
from sinks.alerts.paging import (
    Decision,
    PagingRules,
    decide,
    digest_alert,
    digest_key,
    digest_window,
)
from sinks.alerts.routing import RoutingConfig
from sinks.alerts.samples import sample_alert, sample_client
from tests.builders import IN, email, policy_change

pytestmark = pytest.mark.unit

OFFICE = BusinessCalendar(calendar_id="office", timezone="Asia/Tokyo")  # Mon-Fri 09-18 Tokyo
NIGHT_DESK = BusinessCalendar(calendar_id="night", timezone="UTC", always_open=True)
CLOCKS = {c.calendar_id: clock_for(c) for c in (OFFICE, NIGHT_DESK)}
TUESDAY_NOON_TOKYO = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
TUESDAY_NIGHT_TOKYO = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
LEVELS = list(AlertLevel)


def clock_of(calendar_id: str) -> CalendarClock | None:
    return CLOCKS.get(calendar_id)


# -- missed warnings (engine) -----------------------------------------------------------------

POLICY_60 = SlaPolicy(
    policy_id="p60",
    first_response=CalendarDuration(minutes=60),
    follow_up=CalendarDuration(minutes=60),
    silence_business_days=None,
)
OPENED = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)


def _pages(delay_minutes: int) -> tuple[list[FactKind], list[AlertLevel], int]:
    """Warnings (facts), pages (alerts) and missed warnings for an inbound recorded
    ``delay_minutes`` after it happened, never answered (warnings at 30, 45, 54 min)."""
    log = [
        policy_change("p", OPENED - timedelta(hours=1), POLICY_60, NIGHT_DESK),
        email("in", OPENED, IN, recorded=OPENED + timedelta(minutes=delay_minutes)),
    ]
    facts = list(replay(log, Engine(), watermark_end=OPENED + timedelta(hours=3)))
    warnings = [f for f in facts if f.kind is FactKind.WARNING]
    pages = [a.level for f in facts if (a := alert_for(f)) is not None]
    return [f.kind for f in warnings], pages, sum(is_missed_warning(f) for f in warnings)


def test_an_event_arriving_after_its_warning_instants_pages_only_the_breach() -> None:
    kinds, pages, missed = _pages(delay_minutes=58)
    assert kinds == [FactKind.WARNING] * 3  # the warnings stay facts
    assert missed == 3
    assert pages == [AlertLevel.BREACH]


def test_an_event_on_time_pages_every_warning_then_the_breach() -> None:
    _, pages, missed = _pages(delay_minutes=0)
    assert missed == 0
    assert pages == [AlertLevel.WARNING] * 3 + [AlertLevel.BREACH]


@settings(max_examples=80, deadline=None, derandomize=True)
@given(delay=st.integers(min_value=0, max_value=6 * 60))
def test_exactly_the_warnings_still_ahead_at_arrival_page_and_the_breach_always(
    delay: int,
) -> None:
    _, pages, missed = _pages(delay)
    ahead = sum(1 for minute in (30, 45, 54) if minute >= delay)
    assert missed == 3 - ahead
    assert pages == [AlertLevel.WARNING] * ahead + [AlertLevel.BREACH]


# -- quiet hours and digests (sink) -----------------------------------------------------------


def test_breaches_always_page_even_at_night_with_quiet_hours_and_a_digest() -> None:
    rules = PagingRules(quiet_hours=True, calendar="office", digest_interval_s=900)
    client = sample_client()
    night_breach = sample_alert("o1", level=AlertLevel.BREACH, at=TUESDAY_NIGHT_TOKYO)
    night_warning = sample_alert("o1", level=AlertLevel.WARNING, at=TUESDAY_NIGHT_TOKYO)
    day_warning = sample_alert("o2", level=AlertLevel.WARNING, at=TUESDAY_NOON_TOKYO)
    assert decide(night_breach, client, rules, clock_of) is Decision.PAGE
    assert decide(night_warning, client, rules, clock_of) is Decision.QUIET
    assert decide(day_warning, client, rules, clock_of) is Decision.DIGEST
    no_digest = rules.model_copy(update={"digest_interval_s": None})
    assert decide(day_warning, client, no_digest, clock_of) is Decision.PAGE


def test_an_owner_with_a_calendar_of_their_own_is_paged_in_their_hours() -> None:
    client = sample_client()
    rules = PagingRules(
        quiet_hours=True, calendar="office", owner_calendars={client.owner: "night"}
    )
    warning = sample_alert("o1", level=AlertLevel.WARNING, at=TUESDAY_NIGHT_TOKYO)
    assert decide(warning, client, rules, clock_of) is Decision.PAGE


def test_unknown_hours_or_unknown_client_never_silence_a_warning() -> None:
    warning = sample_alert("o1", level=AlertLevel.WARNING, at=TUESDAY_NIGHT_TOKYO)
    rules = PagingRules(quiet_hours=True, calendar="no-such-calendar")
    assert decide(warning, sample_client(), rules, clock_of) is Decision.PAGE
    assert decide(warning, None, PagingRules(quiet_hours=True, calendar="office"), clock_of) is (
        Decision.PAGE
    )


def test_off_by_default() -> None:
    warning = sample_alert("o1", level=AlertLevel.WARNING, at=TUESDAY_NIGHT_TOKYO)
    assert decide(warning, sample_client(), PagingRules(), clock_of) is Decision.PAGE
    assert RoutingConfig().paging == PagingRules()


def test_settings_turn_quiet_hours_and_digests_on() -> None:
    settings_ = AlertSettings(quiet_hours_calendar="office", warning_digest_s=600)
    rules = RoutingConfig.from_settings(settings_).paging
    assert (rules.quiet_hours, rules.calendar, rules.digest_interval_s) == (True, "office", 600)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    level=st.sampled_from(LEVELS),
    minute=st.integers(min_value=0, max_value=14 * 24 * 60),
    quiet=st.booleans(),
    digest=st.one_of(st.none(), st.integers(min_value=1, max_value=86_400)),
)
def test_only_warnings_are_ever_held_or_kept_quiet(
    level: AlertLevel, minute: int, quiet: bool, digest: int | None
) -> None:
    at = TUESDAY_NOON_TOKYO + timedelta(minutes=minute)
    alert = sample_alert("o1", level=level, at=at)
    rules = PagingRules(quiet_hours=quiet, calendar="office", digest_interval_s=digest)
    decision = decide(alert, sample_client(), rules, clock_of)
    if level is not AlertLevel.WARNING:
        assert decision is Decision.PAGE
    elif quiet and not CLOCKS["office"].is_open(at):
        assert decision is Decision.QUIET
    else:
        assert decision is (Decision.PAGE if digest is None else Decision.DIGEST)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    seconds=st.integers(min_value=0, max_value=10**9),
    interval=st.integers(min_value=1, max_value=86_400),
)
def test_a_digest_window_holds_its_instant_and_is_aligned(seconds: int, interval: int) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    start, end = digest_window(at, interval)
    assert start <= at < end
    assert end - start == timedelta(seconds=interval)
    assert start.timestamp() % interval == 0
    # Every instant of the window lands in the same window: the same digest, the same key.
    assert digest_window(end - timedelta(microseconds=1), interval) == (start, end)


def test_a_digest_is_one_alert_naming_every_warning_in_it_whatever_their_order() -> None:
    window = digest_window(TUESDAY_NOON_TOKYO, 900)
    alerts = [
        sample_alert(
            f"o{i}",
            level=AlertLevel.WARNING,
            at=TUESDAY_NOON_TOKYO + timedelta(seconds=i),
            summary=f"warning number {i}",
        )
        for i in range(3)
    ]
    one = digest_alert("owner@example.com", window, alerts)
    other = digest_alert("owner@example.com", window, list(reversed(alerts)))
    assert one == other
    assert one.level is AlertLevel.WARNING
    assert one.summary.startswith("3 warnings for owner@example.com between ")
    assert all(f"warning number {i}" in one.summary for i in range(3))
    assert one.at == alerts[-1].at
    assert digest_key("a@x", window[0], "http://h/") != digest_key("b@x", window[0], "http://h/")
    with pytest.raises(ValueError, match="at least one alert"):
        digest_alert("owner@example.com", window, [])
