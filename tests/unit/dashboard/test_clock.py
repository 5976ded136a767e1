"""Team time: the zone chosen, instants shown in it and named, countdowns without a minus sign."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dashboard.clock import TeamClock, countdown, default_zone, duration, team_zone
from producers.demo import build_directory
from schemas.calendars import BusinessCalendar
from schemas.directory import ClientDirectory
from shinrai.settings import DashboardSettings

pytestmark = pytest.mark.unit


def test_the_zone_is_the_setting_else_the_directorys_default_calendar_else_utc() -> None:
    demo = build_directory()
    assert team_zone("Europe/Paris", demo) == "Europe/Paris"
    assert team_zone("", demo) == "Asia/Tokyo"
    assert team_zone("", None) == "UTC"
    named = ClientDirectory(
        calendars=(
            BusinessCalendar(calendar_id="ny", timezone="America/New_York"),
            BusinessCalendar(calendar_id="default", timezone="Asia/Seoul"),
        )
    )
    assert default_zone(named) == "Asia/Seoul"  # the calendar called "default" wins


def test_an_unknown_zone_setting_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone 'Asia/Tokio'"):
        DashboardSettings(time_zone="Asia/Tokio")
    with pytest.raises(ValidationError, match="not one of auto, ja, en"):
        DashboardSettings(language="fr")


def test_instants_are_shown_in_the_zone_and_named() -> None:
    tokyo = TeamClock("Asia/Tokyo")
    at = datetime(2026, 3, 4, 5, 30, tzinfo=UTC)
    assert tokyo.stamp(at) == "2026-03-04 14:30 JST"
    assert tokyo.stamp(at, seconds=True) == "2026-03-04 14:30:00 JST"
    assert tokyo.short(datetime(2026, 3, 3, 20, 0, tzinfo=UTC)) == "03-04 05:00"  # next day
    assert tokyo.label(at) == "Asia/Tokyo (JST)"
    # A zone without a letter abbreviation is named by its IANA name, not "+04".
    dubai = TeamClock("Asia/Dubai")
    assert dubai.stamp(at) == "2026-03-04 09:30 Asia/Dubai"
    # Daylight saving is the zone's: the same UTC hour reads differently in summer.
    paris = TeamClock("Europe/Paris")
    assert paris.stamp(datetime(2026, 1, 10, 12, tzinfo=UTC)) == "2026-01-10 13:00 CET"
    assert paris.stamp(datetime(2026, 7, 10, 12, tzinfo=UTC)) == "2026-07-10 14:00 CEST"
    assert tokyo.stamp(None) == "–"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (7500, "in 2h 05m"),
        (-7500, "overdue 2h 05m"),
        (-35, "overdue 0m 35s"),
        (35, "in 0m 35s"),
        (-3 * 86400 - 4 * 3600, "overdue 3d 4h"),
        (0, "in 0m 00s"),
    ],
)
def test_countdown_reads_in_or_overdue_never_a_negative_time(seconds: float, text: str) -> None:
    assert countdown(seconds) == text
    assert "-" not in countdown(seconds)


def test_duration_is_unsigned() -> None:
    assert duration(-125.0) == duration(125.0) == "2m 05s"
