"""Times as the team reads them: its time zone, named, and deadlines as wall time plus countdown.

Stored data and every query stay UTC; only what a person reads is converted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from schemas.directory import ClientDirectory


def default_zone(directory: ClientDirectory | None) -> str | None:
    """The zone of ``directory``'s default calendar: the one named ``default``, else its first."""
    if directory is None or not directory.calendars:
        return None
    for calendar in directory.calendars:
        if calendar.calendar_id == "default":
            return calendar.timezone
    return directory.calendars[0].timezone


def team_zone(setting: str, directory: ClientDirectory | None = None) -> str:
    """``dashboard.time_zone`` when set, else the directory's default calendar zone, else UTC."""
    return setting or default_zone(directory) or "UTC"


def duration(seconds: float) -> str:
    """A compact, unsigned human duration: ``2h 05m``, ``3d 4h``, ``12m 30s``."""
    s = round(abs(seconds))
    d, h, m, x = s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60
    return f"{d}d {h}h" if d else f"{h}h {m:02d}m" if h else f"{m}m {x:02d}s"


@dataclass(frozen=True)
class TeamClock:
    """Formats instants in one IANA zone, always naming it."""

    zone_name: str

    @property
    def zone(self) -> ZoneInfo:
        """The zone itself."""
        return ZoneInfo(self.zone_name)

    def local(self, at: datetime) -> datetime:
        """``at`` (aware, or naive UTC) in the team's zone."""
        aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return aware.astimezone(self.zone)

    def abbreviation(self, at: datetime) -> str:
        """The zone's short name at ``at`` (``JST``), or its IANA name when it has none."""
        name = self.local(at).tzname() or self.zone_name
        # Zones without a letter abbreviation report an offset ("+09"): name the zone instead.
        return name if name[:1].isalpha() else self.zone_name

    def stamp(self, at: datetime | None, *, seconds: bool = False) -> str:
        """``2026-03-04 14:30 JST`` (a dash for no instant)."""
        if at is None:
            return "–"
        fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return f"{self.local(at):{fmt}} {self.abbreviation(at)}"

    def short(self, at: datetime | None) -> str:
        """``03-04 14:30`` in the team's zone (tables whose header names the zone)."""
        return "–" if at is None else f"{self.local(at):%m-%d %H:%M}"

    def label(self, at: datetime) -> str:
        """``Asia/Tokyo (JST)``: the zone as a page header names it."""
        abbr = self.abbreviation(at)
        return self.zone_name if abbr == self.zone_name else f"{self.zone_name} ({abbr})"


def countdown(seconds_left: float | None, *, overdue: str = "overdue", due_in: str = "in") -> str:
    """``in 2h 05m`` before a deadline, ``overdue 2h 05m`` after it (never a negative time)."""
    if seconds_left is None:
        return "–"
    word = overdue if seconds_left < 0 else due_in
    return f"{word} {duration(seconds_left)}"
