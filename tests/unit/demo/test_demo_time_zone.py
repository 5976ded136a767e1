"""The demo's alerts read in the team's zone: the setting when given, else the demo directory's."""

from __future__ import annotations

import pytest

from shinrai.jobs.demo import demo_settings
from shinrai.settings import AlertSettings, DashboardSettings, Settings

pytestmark = pytest.mark.unit


def test_alerts_default_to_the_demo_directorys_zone() -> None:
    assert demo_settings(Settings()).alerts.time_zone == "Asia/Tokyo"


def test_the_team_zone_setting_wins() -> None:
    team = Settings(dashboard=DashboardSettings(time_zone="Europe/Paris"))
    assert demo_settings(team).alerts.time_zone == "Europe/Paris"
    own = Settings(alerts=AlertSettings(time_zone="America/New_York"))
    assert demo_settings(own).alerts.time_zone == "America/New_York"


def test_an_unknown_zone_names_the_field() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone 'Mars/Base'"):
        AlertSettings(time_zone="Mars/Base")
