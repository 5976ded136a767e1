"""Paging rules: which alerts page at once, which wait for the owner's digest, which stay quiet.

Alerts page people only for what they can act on (DESIGN §3 "Paging"). The engine already keeps
missed warnings (instants that passed before their event arrived) out of the alert stream; here,
per owner and optional (``PagingRules`` in the routing file, or ``SHINRAI_ALERTS__...``):

* **quiet hours**: a warning whose instant falls outside the owner's business hours (a calendar
  of the directory: ``owner_calendars[owner]``, else ``calendar``) is not paged; it stays a fact,
  and if nobody answers in time the breach pages. Breaches, trust downgrades, silences and
  retractions always page.
* **digest**: warnings are batched into one page per owner and target per ``digest_interval_s``
  (windows aligned to the epoch, by the warning's instant, so a restart rebuilds the same digest
  under the same idempotency key). The digest is sent once its window has ended on the wall
  clock; until then the alerts in it are not committed, so a crash re-reads and re-sends them.

Everything here is pure: the deliverer (``sinks.alerts.delivery``) applies it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from engine.calendar import CalendarClock
from schemas.alerts import Alert, AlertLevel, alert_id_for
from schemas.directory import Client

__all__ = [
    "Decision",
    "PagingRules",
    "decide",
    "digest_alert",
    "digest_key",
    "digest_window",
    "owner_calendar",
]


class PagingRules(BaseModel):
    """Optional per-owner paging behaviour for warnings (breaches always page at once)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    quiet_hours: bool = Field(
        default=False,
        description="Do not page warnings outside the owner's business hours (breaches page)",
    )
    calendar: str = Field(
        default="default",
        description="Calendar id (in the client directory) of the owners' business hours",
    )
    owner_calendars: dict[str, str] = Field(
        default_factory=dict, description="Per owner (e-mail): a calendar id of their own"
    )
    digest_interval_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="Batch warnings into one page per owner per this many seconds; null: off",
    )


class Decision(StrEnum):
    """What happens to one alert."""

    PAGE = "page"  # routed and sent at once
    DIGEST = "digest"  # held for the owner's digest of its window
    QUIET = "quiet"  # not paged: a warning outside the owner's business hours


def owner_calendar(client: Client, rules: PagingRules) -> str:
    """The calendar id of the business hours of ``client``'s owner."""
    return rules.owner_calendars.get(client.owner, rules.calendar)


def decide(
    alert: Alert,
    client: Client | None,
    rules: PagingRules,
    clock_of: Callable[[str], CalendarClock | None],
) -> Decision:
    """The paging decision for ``alert`` under ``rules``.

    ``clock_of(calendar_id)`` returns the calendar clock, or None for an id the directory does
    not hold (then the owner's hours are unknown and the warning pages: never silence by
    mistake). A client not in the directory has no known owner: its alerts page.
    """
    if alert.level is not AlertLevel.WARNING or client is None:
        return Decision.PAGE
    if rules.quiet_hours:
        clock = clock_of(owner_calendar(client, rules))
        if clock is not None and not clock.is_open(alert.at):
            return Decision.QUIET
    if rules.digest_interval_s is not None:
        return Decision.DIGEST
    return Decision.PAGE


def digest_window(at: datetime, interval_s: float) -> tuple[datetime, datetime]:
    """The digest window ``[start, end)`` holding the instant ``at`` (aligned to the epoch)."""
    ts = at.timestamp()
    start = ts - ts % interval_s
    begin = datetime.fromtimestamp(start, UTC)
    return begin, begin + timedelta(seconds=interval_s)


def digest_key(owner: str, window_start: datetime, target_url: str) -> str:
    """The idempotency key of an owner's digest for one window and target."""
    raw = f"v1|digest|{owner}|{window_start.isoformat()}|{target_url}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def digest_alert(owner: str, window: tuple[datetime, datetime], alerts: Sequence[Alert]) -> Alert:
    """One warning alert standing for ``alerts`` (the owner's warnings of ``window``)."""
    if not alerts:
        raise ValueError("a digest needs at least one alert")
    ordered = sorted(alerts, key=lambda a: (a.at, a.alert_id))
    first, last = ordered[0], ordered[-1]
    deadlines = [a.deadline for a in ordered if a.deadline is not None]
    head = (
        f"{len(ordered)} warning{'s' if len(ordered) != 1 else ''} for {owner} between "
        f"{window[0].isoformat()} and {window[1].isoformat()}: "
    )
    return Alert(
        alert_id=alert_id_for(f"digest:{owner}", window[0].isoformat()),
        level=AlertLevel.WARNING,
        client_id=first.client_id,
        at=last.at,  # its max age counts from the latest warning in it
        fact_id=first.fact_id,
        deadline=min(deadlines) if deadlines else None,
        summary=(head + "; ".join(a.summary for a in ordered))[:1024],
    )
