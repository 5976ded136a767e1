"""Business-time arithmetic over a :class:`schemas.calendars.BusinessCalendar` (DESIGN §3).

Definitions (the contract the rest of the engine relies on):

* **Business day.** ``always_open`` calendars are open every day, holidays included (24x7 means
  every instant). Otherwise a date listed in ``extra_business_days`` is a business day even if it
  is a holiday or a weekend (it wins over ``extra_holidays`` too); it keeps the hours of its own
  weekday, or, when its weekday has none (a Saturday make-up day), Monday's hours, or failing that
  the hours of the first weekday that has any. Any other date is a business day when its weekday
  has hours and it is neither a public holiday of ``holiday_country``/``holiday_subdivision``
  (the ``holidays`` package, observed days included) nor in ``extra_holidays``.
* **Open instants.** An instant is business time iff its local date in the calendar's zone is a
  business day and its local wall-clock time lies in one of that day's ``[start, end)`` intervals
  (``end`` None = midnight). The wall clock decides, so DST is exact without special cases:

  - spring forward (e.g. America/New_York 2026-03-08, 02:00 -> 03:00): a 00:00-06:00 shift lasts
    5 real hours; an opening at the nonexistent 02:30 means "open from the moment the clock jumps
    past it", i.e. 03:00 EDT; an interval lying wholly in the gap (02:00-02:45) is empty that day.
  - fall back (2026-11-01, 02:00 -> 01:00): a 00:00-06:00 shift lasts 7 real hours; an interval
    with a boundary inside the repeated hour is open whenever the clock shows a time inside it, so
    01:30-06:00 is open 01:30-02:00 EDT, closed 01:00-01:30 EST (the clock reads "before opening"
    again), then open from 01:30 EST: two pieces, 5 real hours.

* **A local time on a date** (``next_business_day_at``) is the first instant at which the clock
  shows that time or later on that date: the first occurrence of an ambiguous time, the transition
  instant for a nonexistent one.

All arithmetic runs on integer microseconds since the Unix epoch (exact, no float drift); inputs
are aware datetimes with any offset, outputs are aware UTC datetimes. Per-day open intervals are
computed once and cached, so adding business time skips whole days with one dict lookup each.

Known limits: the zone's UTC offset is sampled every few hours around each day, so two offset
changes less than ``_SAMPLE_STEP_US`` apart (none in current tzdata for real zones) would be missed;
a scan gives up (EngineError) after ``_MAX_SCAN_DAYS`` days without business time.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import icalendar
import recurring_ical_events

from schemas.calendars import BusinessCalendar, TimeInterval
from shinrai.errors import EngineError, ValidationFailed

__all__ = ["CalendarClock", "clock_for", "load_ical_holidays"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
_SECOND_US = 1_000_000
_HOUR_US = 3600 * _SECOND_US
_DAY_US = 24 * _HOUR_US
# No zone is or was more than 16 h from UTC, so a local day lies inside this UTC window.
_OFFSET_MARGIN_US = 16 * _HOUR_US
# Offset sampling step when looking for DST transitions around a day (see module docstring).
_SAMPLE_STEP_US = 4 * _HOUR_US
# A calendar with no business time for ten years is a configuration error, not a long wait.
_MAX_SCAN_DAYS = 3660
_MIDNIGHT = time(0)
# The business-time line grows by at least this many days at a time, and never by more than
# _LINE_MAX_GAP_DAYS for one query (a query years away from the rest walks day by day instead).
_LINE_CHUNK = timedelta(days=31)
_LINE_MAX_GAP_DAYS = 400
# An answer of add_business this far from its start is left to the walk and its scan limit.
_LINE_SCAN_US = (_MAX_SCAN_DAYS - 2) * _DAY_US

Piece = tuple[int, int]
"""An open interval ``[start, end)`` in microseconds since the Unix epoch."""


def _to_us(t: datetime) -> int:
    """Microseconds since the epoch of an aware datetime; naive input is a programming error."""
    try:
        return (t - _EPOCH) // _ONE_US  # a naive ``t`` cannot be subtracted from an aware one
    except TypeError:
        raise EngineError(
            f"naive datetime {t.isoformat()} (the engine needs aware datetimes)"
        ) from None


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _duration_us(seconds: float) -> int:
    if not math.isfinite(seconds) or seconds < 0:
        raise EngineError(f"business duration must be finite and >= 0, got {seconds!r}")
    return round(seconds * _SECOND_US)


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _SECOND_US + t.microsecond


def _naive_us(d: date) -> int:
    """Local midnight of ``d`` as microseconds on the naive (wall-clock) time line."""
    return (datetime.combine(d, _MIDNIGHT) - _NAIVE_EPOCH) // _ONE_US


class CalendarClock:
    """Business-time arithmetic for one BusinessCalendar; immutable; caches per-day intervals."""

    __slots__ = (
        "_always_open",
        "_calendar",
        "_cum",
        "_day_dt",
        "_days",
        "_ends",
        "_fallback_hours",
        "_holiday_years",
        "_line_first",
        "_line_hi",
        "_line_last",
        "_line_lo",
        "_morning",
        "_starts",
        "_weekly",
        "_zone",
    )

    def __init__(self, calendar: BusinessCalendar) -> None:
        """Prepare a clock; validates the holiday country/subdivision (EngineError if unknown)."""
        self._calendar = calendar
        self._zone = ZoneInfo(calendar.timezone)
        self._always_open = calendar.always_open
        self._weekly: dict[int, tuple[tuple[int, int], ...]] = {
            wd: self._wall_ranges(intervals) for wd, intervals in calendar.weekly_hours.items()
        }
        self._fallback_hours = self._weekly.get(0) or next(
            (self._weekly[wd] for wd in sorted(self._weekly) if self._weekly[wd]), ()
        )
        self._holiday_years: dict[int, frozenset[date]] = {}
        # day -> (pieces, total business microseconds, offset segments); see _day().
        self._days: dict[date, tuple[tuple[Piece, ...], int, tuple[tuple[int, int, int], ...]]] = {}
        self._day_dt: dict[date, tuple[tuple[datetime, datetime], ...]] = {}
        # The business-time line (see _line): every open piece of the local days
        # [_line_first, _line_last] in one ascending list, with the business microseconds before
        # each piece, so elapsed business time is a difference of two bisections and adding
        # business time one bisection, whatever the span. Instants in [_line_lo, _line_hi) are
        # certainly inside those days.
        self._line_first: date | None = None
        self._line_last: date | None = None
        self._line_lo = 0
        self._line_hi = 0
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._cum: list[int] = []  # business microseconds before piece i; one more at the end
        # (local day, cutoff, next_day_by) -> what same_day_or_next_morning needs of that day.
        self._morning: dict[tuple[date, time, time], tuple[bool, datetime | None, datetime]] = {}
        if calendar.holiday_country is not None:
            self._country_holidays(2000)  # fail fast on an unknown country or subdivision

    @property
    def calendar(self) -> BusinessCalendar:
        """The calendar this clock computes with."""
        return self._calendar

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's IANA time zone."""
        return self._zone

    # -- days ------------------------------------------------------------------------------

    @staticmethod
    def _wall_ranges(intervals: Iterable[TimeInterval]) -> tuple[tuple[int, int], ...]:
        ranges = sorted(
            (_time_us(i.start), _DAY_US if i.end is None else _time_us(i.end)) for i in intervals
        )
        return tuple(ranges)

    def _country_holidays(self, year: int) -> frozenset[date]:
        cached = self._holiday_years.get(year)
        if cached is None:
            country = self._calendar.holiday_country
            if country is None:
                cached = frozenset()
            else:
                try:
                    found = holidays.country_holidays(
                        country, subdiv=self._calendar.holiday_subdivision, years=year
                    )
                except NotImplementedError as exc:
                    raise EngineError(
                        f"calendar {self._calendar.calendar_id!r}: no public holidays for "
                        f"{country!r}/{self._calendar.holiday_subdivision!r}: {exc}"
                    ) from exc
                cached = frozenset(found.keys())
            self._holiday_years[year] = cached
        return cached

    def _hours(self, day: date) -> tuple[tuple[int, int], ...]:
        """Wall-clock ranges (microseconds after local midnight) the calendar is open on ``day``."""
        if self._always_open:
            return ((0, _DAY_US),)
        cal = self._calendar
        own = self._weekly.get(day.weekday(), ())
        if day in cal.extra_business_days:
            return own or self._fallback_hours
        if not own or day in cal.extra_holidays or day in self._country_holidays(day.year):
            return ()
        return own

    def is_business_day(self, day: date) -> bool:
        """Whether ``day`` (a local date in the calendar's zone) has business hours."""
        return bool(self._hours(day))

    def _offset_us(self, us: int) -> int:
        offset = _from_us(us).astimezone(self._zone).utcoffset()
        assert offset is not None  # a ZoneInfo always yields an offset for an aware datetime
        return offset // _ONE_US

    def _transition(self, lo: int, hi: int, after: int) -> int:
        """First instant in ``(lo, hi]`` whose offset is ``after`` (one change assumed)."""
        # Transitions fall on whole seconds in tzdata, so bisect on seconds.
        lo_s, hi_s = lo // _SECOND_US, -(-hi // _SECOND_US)
        while hi_s - lo_s > 1:
            mid = (lo_s + hi_s) // 2
            if self._offset_us(mid * _SECOND_US) == after:
                hi_s = mid
            else:
                lo_s = mid
        return max(lo + 1, min(hi, hi_s * _SECOND_US))

    def _segments(self, day: date) -> tuple[tuple[int, int, int], ...]:
        """Constant-offset UTC segments ``(lo, hi, offset)`` covering every instant of ``day``."""
        midnight = _naive_us(day)
        lo, hi = midnight - _OFFSET_MARGIN_US, midnight + _DAY_US + _OFFSET_MARGIN_US
        samples = [*range(lo, hi, _SAMPLE_STEP_US), hi]
        offsets = [self._offset_us(u) for u in samples]
        segments: list[tuple[int, int, int]] = []
        seg_lo = lo
        for i in range(1, len(samples)):
            if offsets[i] != offsets[i - 1]:
                cut = self._transition(samples[i - 1], samples[i], offsets[i])
                segments.append((seg_lo, cut, offsets[i - 1]))
                seg_lo = cut
        segments.append((seg_lo, hi, offsets[-1]))
        return tuple(segments)

    def _day(self, day: date) -> tuple[tuple[Piece, ...], int, tuple[tuple[int, int, int], ...]]:
        """Open pieces of ``day`` (ascending, disjoint), their total, and the day's segments."""
        found = self._days.get(day)
        if found is not None:
            return found
        segments = self._segments(day)
        hours = self._hours(day)
        midnight = _naive_us(day)
        raw: list[Piece] = []
        for seg_lo, seg_hi, offset in segments:
            # Within a segment, local wall time = utc + offset, so a wall range maps back exactly.
            for start, end in hours:
                s = max(seg_lo, midnight + start - offset)
                e = min(seg_hi, midnight + end - offset)
                if s < e:
                    raw.append((s, e))
        raw.sort()
        pieces: list[Piece] = []
        for s, e in raw:
            if pieces and pieces[-1][1] == s:  # the same interval continued across a transition
                pieces[-1] = (pieces[-1][0], e)
            else:
                pieces.append((s, e))
        result = (tuple(pieces), sum(e - s for s, e in pieces), segments)
        self._days[day] = result
        return result

    def _local_date(self, t: datetime) -> date:
        return t.astimezone(self._zone).date()

    def intervals_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Open intervals ``[start, end)`` of local ``day`` as aware UTC datetimes, ascending."""
        found = self._day_dt.get(day)
        if found is None:
            found = tuple((_from_us(s), _from_us(e)) for s, e in self._day(day)[0])
            self._day_dt[day] = found
        return found

    # -- the business-time line ------------------------------------------------------------

    def _line(self, lo: int, hi: int) -> bool:
        """Make the line cover instants ``lo`` and ``hi``; False when that would take more than
        ``_LINE_MAX_GAP_DAYS`` new days (a far-away query: the callers then walk day by day)."""
        if self._line_lo <= lo and hi < self._line_hi:
            return True
        # Two days of margin: then _line_lo <= lo and hi < _line_hi after the build.
        try:
            first = self._local_date(_from_us(lo)) - 2 * _ONE_DAY
            last = self._local_date(_from_us(hi)) + 2 * _ONE_DAY
            _naive_us(last + _LINE_CHUNK + _ONE_DAY)
        except OverflowError:  # the ends of the datetime range: leave them to the walk
            return False
        old_first, old_last = self._line_first, self._line_last
        if old_first is None or old_last is None:
            if (last - first).days > _LINE_MAX_GAP_DAYS:
                return False
            last = max(last, first + _LINE_CHUNK)
        else:
            if first < old_first and (old_first - first).days > _LINE_MAX_GAP_DAYS:
                return False
            if last > old_last and (last - old_last).days > _LINE_MAX_GAP_DAYS:
                return False
            if last > old_last:
                last = max(last, old_last + _LINE_CHUNK)
            if first < old_first:
                first = min(first, old_first - _LINE_CHUNK)
            first, last = min(first, old_first), max(last, old_last)
        self._build_line(first, last)
        return True

    def _build_line(self, first: date, last: date) -> None:
        starts: list[int] = []
        ends: list[int] = []
        cum = [0]
        total = 0
        day = first
        while day <= last:
            for s, e in self._day(day)[0]:
                starts.append(s)
                ends.append(e)
                total += e - s
                cum.append(total)
            day += _ONE_DAY
        self._starts, self._ends, self._cum = starts, ends, cum
        self._line_first, self._line_last = first, last
        # Local midnight is within _OFFSET_MARGIN_US of naive midnight in every zone.
        self._line_lo = _naive_us(first) + _OFFSET_MARGIN_US
        self._line_hi = _naive_us(last + _ONE_DAY) - _OFFSET_MARGIN_US

    def _position(self, u: int) -> int:
        """Business microseconds on the line before instant ``u`` (``u`` must be covered)."""
        i = bisect_right(self._starts, u) - 1
        if i < 0:
            return 0
        return self._cum[i] + min(u, self._ends[i]) - self._starts[i]

    # -- instants --------------------------------------------------------------------------

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` is business time."""
        u = _to_us(t)
        return any(s <= u < e for s, e in self._day(self._local_date(t))[0])

    def add_business(self, t: datetime, seconds: float) -> datetime:
        """The first instant at which ``seconds`` of business time have elapsed since ``t``.

        Zero seconds gives ``t`` itself; a span ending exactly at a closing time gives the closing
        instant (not the next opening). Resolution is one microsecond.
        """
        start = _to_us(t)
        need = _duration_us(seconds)
        if need == 0 or self._always_open:
            return _from_us(start + need)
        if (self._line_lo <= start < self._line_hi) or self._line(start, start):
            target = self._position(start) + need
            cum = self._cum
            while target > cum[-1]:  # past the line's end: extend it (bounded, see _line)
                if self._line_hi - start > _LINE_SCAN_US or not self._line(
                    start, self._line_hi + _DAY_US
                ):
                    break
                cum = self._cum
            else:
                # The first piece whose end reaches the target; a target exactly at a piece's
                # end gives that closing instant (not the next opening), like the walk below.
                i = bisect_left(cum, target, 1) - 1
                found = self._starts[i] + target - cum[i]
                if found - start < _LINE_SCAN_US:
                    return _from_us(found)
            # Far away (or nowhere): the walk below decides, with its scan limit.
        day = self._local_date(t)
        days = self._days
        for _ in range(_MAX_SCAN_DAYS):
            entry = days.get(day) or self._day(day)
            pieces, total = entry[0], entry[1]
            if total:
                if pieces[0][0] >= start and need > total:
                    need -= total  # the whole day fits: skip it without looking at its pieces
                else:
                    for s, e in pieces:
                        if e <= start:
                            continue
                        s = max(s, start)
                        if need <= e - s:
                            return _from_us(s + need)
                        need -= e - s
            day += _ONE_DAY
        raise EngineError(
            f"calendar {self._calendar.calendar_id!r}: "
            f"no business time within {_MAX_SCAN_DAYS} days"
        )

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        """Business seconds in ``[a, b)``; 0 if ``b <= a``."""
        ua, ub = _to_us(a), _to_us(b)
        if ub <= ua:
            return 0.0
        if self._always_open:
            return (ub - ua) / _SECOND_US
        if (self._line_lo <= ua and ub < self._line_hi) or self._line(ua, ub):
            # _position(ub) - _position(ua), written out (the per-obligation path).
            starts, ends, cum = self._starts, self._ends, self._cum
            i = bisect_right(starts, ua) - 1
            j = bisect_right(starts, ub) - 1
            pa = 0 if i < 0 else cum[i] + min(ua, ends[i]) - starts[i]
            pb = 0 if j < 0 else cum[j] + min(ub, ends[j]) - starts[j]
            return (pb - pa) / _SECOND_US
        day = self._local_date(a)
        last = self._local_date(_from_us(ub - 1))
        total = 0
        while day <= last:
            pieces, day_total, _ = self._day(day)
            if day_total:
                if pieces[0][0] >= ua and pieces[-1][1] <= ub:
                    total += day_total
                else:
                    for s, e in pieces:
                        s, e = max(s, ua), min(e, ub)
                        if s < e:
                            total += e - s
            day += _ONE_DAY
        return total / _SECOND_US

    def end_of_business_day(self, t: datetime) -> datetime | None:
        """End of the last open interval of ``t``'s local day, or None if that day has none."""
        pieces = self._day(self._local_date(t))[0]
        return _from_us(pieces[-1][1]) if pieces else None

    def _first_at_or_after(self, day: date, at: time) -> int:
        """First instant at which the clock shows ``at`` or later on local date ``day``."""
        wall = _naive_us(day) + _time_us(at)
        for seg_lo, seg_hi, offset in self._day(day)[2]:
            if seg_lo + offset > wall:  # ``at`` was skipped by a forward jump: the jump instant
                return seg_lo
            if wall < seg_hi + offset:  # first segment showing ``at``: its first occurrence
                return wall - offset
        raise EngineError(f"local time {at} on {day} lies outside the computed window")

    def same_day_or_next_morning(self, t: datetime, cutoff: time, next_day_by: time) -> datetime:
        """The deadline of the same-day-or-next-morning rule (see engine.deadlines.deadline_for)
        for an obligation opened at ``t``; the per-day parts are computed once per local day."""
        local = t.astimezone(self._zone)
        day = local.date()
        key = (day, cutoff, next_day_by)
        known = self._morning.get(key)
        if known is None:
            is_day = self.is_business_day(day)
            pieces = self._day(day)[0]
            end = _from_us(pieces[-1][1]) if pieces else None
            known = (is_day, end, self.next_business_day_at(t, next_day_by))
            self._morning[key] = known
        is_day, end, next_morning = known
        if is_day and local.time() < cutoff and end is not None and end > t:
            return end
        return next_morning

    def next_business_day_at(self, t: datetime, at: time) -> datetime:
        """``at`` local time on the first business day strictly after ``t``'s local date."""
        _to_us(t)
        day = self._local_date(t)
        for _ in range(_MAX_SCAN_DAYS):
            day += _ONE_DAY
            if self.is_business_day(day):
                return _from_us(self._first_at_or_after(day, at))
        raise EngineError(
            f"calendar {self._calendar.calendar_id!r}: no business day within {_MAX_SCAN_DAYS} days"
        )


_CLOCKS: OrderedDict[Hashable, CalendarClock] = OrderedDict()
_CLOCKS_MAX = 1024


def _clock_key(calendar: BusinessCalendar) -> Hashable:
    # BusinessCalendar holds a dict, so it is not hashable; build a canonical key instead
    # (sorted, so equal calendars built in a different order share one clock).
    return (
        calendar.calendar_id,
        calendar.timezone,
        calendar.always_open,
        tuple(sorted((wd, iv) for wd, iv in calendar.weekly_hours.items())),
        calendar.holiday_country,
        calendar.holiday_subdivision,
        tuple(sorted(calendar.extra_holidays)),
        tuple(sorted(calendar.extra_business_days)),
        calendar.ical_feeds,
    )


def clock_for(calendar: BusinessCalendar) -> CalendarClock:
    """A shared clock for ``calendar`` (memoised by value, least recently used evicted)."""
    key = _clock_key(calendar)
    clock = _CLOCKS.get(key)
    if clock is None:
        clock = CalendarClock(calendar)
        _CLOCKS[key] = clock
        if len(_CLOCKS) > _CLOCKS_MAX:
            _CLOCKS.popitem(last=False)
    else:
        _CLOCKS.move_to_end(key)
    return clock


# -- iCal holiday feeds --------------------------------------------------------------------


def _prop_value(component: icalendar.cal.Component, name: str) -> object:
    """The decoded value (``.dt``) of a date/time property, or None when absent."""
    value: object = getattr(component.get(name), "dt", None)
    return value


def _ical_years(cal: icalendar.Calendar) -> tuple[int, int]:
    years = [
        start.year
        for component in cal.walk("VEVENT")
        if isinstance(start := _prop_value(component, "DTSTART"), date)
    ]
    if not years:
        return (2000, 2000)
    # Recurring holidays are expanded ten years past the feed's last explicit date: the engine
    # has no wall clock to anchor "the next few years" on.
    return (min(years), max(years) + 10)


def load_ical_holidays(
    calendar: BusinessCalendar,
    ics_bytes: bytes,
    source: str,
    *,
    years: tuple[int, int] | None = None,
) -> BusinessCalendar:
    """A copy of ``calendar`` with the all-day events of an iCal feed added to ``extra_holidays``.

    Every all-day VEVENT counts, each date in ``[DTSTART, DTEND)`` (a missing, equal or inverted
    DTEND means one day); recurring events (RRULE/RDATE, minus EXDATE) are expanded over
    ``years`` = (first, last) inclusive, by default from the feed's first DTSTART year to ten
    years after its last. Timed events and cancelled ones are not holidays and are ignored: the
    model has whole-day holidays only. ``source`` is appended to ``ical_feeds`` for provenance.
    Raises ValidationFailed if the bytes are not an iCalendar stream.
    """
    try:
        cal = icalendar.Calendar.from_ical(ics_bytes)
        first, last = years if years is not None else _ical_years(cal)
        occurrences = list(
            recurring_ical_events.of(cal).between(date(first, 1, 1), date(last + 1, 1, 1))
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(
            f"invalid iCal holiday feed {source!r}: {exc}",
            errors=[("ics", str(exc) or type(exc).__name__)],
            raw=ics_bytes,
        ) from exc
    dates: set[date] = set()
    for event in occurrences:
        if event.name != "VEVENT" or str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start = _prop_value(event, "DTSTART")
        if isinstance(start, datetime) or not isinstance(start, date):
            continue
        end = _prop_value(event, "DTEND")
        if isinstance(end, datetime) or not isinstance(end, date) or end <= start:
            end = start + _ONE_DAY
        day = start
        while day < end:
            dates.add(day)
            day += _ONE_DAY
    return calendar.model_copy(
        update={
            "extra_holidays": calendar.extra_holidays | frozenset(dates),
            "ical_feeds": (*calendar.ical_feeds, source),
        }
    )
