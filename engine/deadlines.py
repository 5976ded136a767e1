"""Deadline rules of an SLA policy evaluated on a client's business calendar (DESIGN §3).

Pure functions of (rule, instants, clock); every result is an aware UTC datetime or seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from engine.calendar import CalendarClock
from schemas.policies import (
    BusinessDuration,
    CalendarDuration,
    DeadlineRule,
    SameDayOrNextMorning,
)
from shinrai.errors import EngineError

__all__ = ["deadline_for", "elapsed", "sla_budget", "warning_instants", "warnings_within"]


def _utc(t: datetime) -> datetime:
    # astimezone() would silently read a naive datetime as the host's local time.
    if t.tzinfo is None or t.utcoffset() is None:
        raise EngineError(f"naive datetime {t.isoformat()} (the engine needs aware datetimes)")
    return t.astimezone(UTC)


def deadline_for(rule: DeadlineRule, opened_at: datetime, clock: CalendarClock) -> datetime:
    """When an obligation opened at ``opened_at`` under ``rule`` is due.

    * BusinessDuration: after ``minutes`` of business time (from the next opening if closed).
    * CalendarDuration: ``minutes`` of real elapsed time later (24 h across a DST change is
      24 real hours, not the same wall-clock time the next day).
    * SameDayOrNextMorning: if the local day is a business day, the local time is before
      ``cutoff`` and the day still has an open interval ending after ``opened_at``, due at the end
      of that business day. This deliberately includes requests that arrive before the day's
      first opening (an email at 07:00 is due at 18:00 the same day: the team has the whole day).
      Otherwise (after the cutoff, after closing, on a weekend or holiday) due at ``next_day_by``
      local time on the next business day, even if that is before the day's opening hour.
    """
    if isinstance(rule, BusinessDuration):
        return clock.add_business(opened_at, rule.minutes * 60)
    if isinstance(rule, CalendarDuration):
        return _utc(opened_at) + timedelta(minutes=rule.minutes)
    assert isinstance(rule, SameDayOrNextMorning)
    # The rule above, with the per-day parts memoised by the clock.
    return clock.same_day_or_next_morning(_utc(opened_at), rule.cutoff, rule.next_day_by)


def elapsed(opened_at: datetime, until: datetime, clock: CalendarClock) -> tuple[float, float]:
    """(business seconds, calendar seconds) from ``opened_at`` to ``until``; both 0 if not after."""
    # In UTC: Python subtracts two datetimes sharing one tzinfo as wall-clock times, which is
    # off by an hour across a DST change.
    calendar_seconds = max(0.0, (_utc(until) - _utc(opened_at)).total_seconds())
    return clock.business_seconds_between(opened_at, until), calendar_seconds


def sla_budget(
    rule: DeadlineRule, opened_at: datetime, deadline: datetime, clock: CalendarClock
) -> tuple[float, float]:
    """(business seconds, calendar seconds) the obligation had between opening and deadline.

    ``rule`` is accepted for symmetry with :func:`warning_instants`; both budgets are always the
    true measures on this calendar, whatever rule produced the deadline.
    """
    del rule
    return elapsed(opened_at, deadline, clock)


def warning_instants(
    rule: DeadlineRule,
    opened_at: datetime,
    deadline: datetime,
    fractions: Sequence[float],
    clock: CalendarClock,
) -> list[tuple[float, datetime]]:
    """(fraction, instant) pairs at which ``fraction`` of the SLA has elapsed, ascending.

    CalendarDuration rules measure in calendar time; the others in business time (so a warning
    never fires at night), falling back to calendar time when the business budget is zero (e.g.
    a next-morning deadline that falls before the day's opening). Instants not strictly before
    the deadline are dropped; the breach itself fires at the deadline.
    """
    business, calendar_seconds = sla_budget(rule, opened_at, deadline, clock)
    return warnings_within(rule, opened_at, deadline, fractions, clock, business, calendar_seconds)


def warnings_within(
    rule: DeadlineRule,
    opened_at: datetime,
    deadline: datetime,
    fractions: Sequence[float],
    clock: CalendarClock,
    business: float,
    calendar_seconds: float,
) -> list[tuple[float, datetime]]:
    """:func:`warning_instants` for a caller that already knows ``sla_budget``'s result."""
    use_business = not isinstance(rule, CalendarDuration) and business > 0
    out: list[tuple[float, datetime]] = []
    for fraction in sorted(fractions):
        if use_business:
            at = clock.add_business(opened_at, fraction * business)
        else:
            at = _utc(opened_at) + timedelta(seconds=fraction * calendar_seconds)
        if at < deadline:
            out.append((fraction, at))
    return out
