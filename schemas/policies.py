"""SLA policy model: targets, deadline rules, warnings, cross-channel fulfilment, trust ladder.

``SlaPolicy.default()`` embodies the seed rule of DESIGN §1: answer the same business day if the
request arrives before 15:00, otherwise by 10:00 the next business day.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import Field, field_validator

from schemas.base import Frozen
from schemas.calendars import BusinessCalendar
from schemas.identifiers import ShortIdentifier

MAX_RULE_MINUTES = 3650 * 24 * 60
"""Ten years: no response target is longer (and a longer one overflows date arithmetic)."""

# The engine gives up a deadline after scanning ten years of calendar days; a business duration
# is accepted when an ordinary calendar week repeated over nine years holds it, which leaves a
# year for public holidays and extra closed dates (no country has a tenth of its days off).
_FEASIBLE_WEEKS = 9 * 365 / 7


class BusinessDuration(Frozen):
    """Due after ``minutes`` of the client's business time."""

    rule: Literal["business"] = "business"
    minutes: int = Field(gt=0, le=MAX_RULE_MINUTES)


class CalendarDuration(Frozen):
    """Due after ``minutes`` of wall-clock time (24x7 clients)."""

    rule: Literal["calendar"] = "calendar"
    minutes: int = Field(gt=0, le=MAX_RULE_MINUTES)


class SameDayOrNextMorning(Frozen):
    """Opened before ``cutoff`` on a business day: due at the end of that business day.

    Otherwise (after the cutoff, or outside a business day): due at ``next_day_by`` local time of
    the next business day.
    """

    rule: Literal["same_day_or_next_morning"] = "same_day_or_next_morning"
    cutoff: time = time(15, 0)
    next_day_by: time = time(10, 0)


DeadlineRule = Annotated[
    BusinessDuration | CalendarDuration | SameDayOrNextMorning, Field(discriminator="rule")
]


class CrossChannelRule(Frozen):
    """Which touches on another channel fulfil every open obligation of the client."""

    enabled: bool = True
    min_call_seconds: int = Field(default=60, ge=0, description="Answered outbound call length")
    meetings: bool = True
    visits: bool = True


class TrustLadderRules(Frozen):
    """How the recent record maps to a trust level (documented defaults; see engine.trust).

    The score is computed over the last ``window`` closed outcomes: an answer within
    ``fast_fraction`` of its SLA scores ``fast_points``, any other on-time answer ``on_time_points``,
    a met-late answer ``late_points`` (negative) and every breach or silence ``breach_points`` /
    ``silence_points``. The level is the highest whose threshold the average score reaches.
    """

    window: int = Field(default=20, gt=0)
    min_outcomes: int = Field(default=3, ge=1, description="Fewer outcomes keep the start level")
    fast_fraction: float = Field(default=0.5, gt=0, le=1)
    fast_points: float = 2.0
    on_time_points: float = 1.0
    late_points: float = -1.0
    breach_points: float = -2.0
    silence_points: float = -1.0
    thresholds: tuple[float, float, float, float] = Field(
        default=(-1.0, 0.0, 0.75, 1.5),
        description="Minimum average for anxious, assured, credible, trusted (ascending)",
    )

    @field_validator("thresholds")
    @classmethod
    def _ascending(
        cls, value: tuple[float, float, float, float]
    ) -> tuple[float, float, float, float]:
        if list(value) != sorted(value):
            raise ValueError(
                "thresholds must be ascending (anxious <= assured <= credible <= trusted)"
            )
        return value


class SlaPolicy(Frozen):
    """A client's response standard. ``version`` increases with every change; facts carry it."""

    schema_version: Literal[1] = 1
    policy_id: ShortIdentifier
    version: int = Field(default=1, ge=1)
    first_response: DeadlineRule = Field(default_factory=SameDayOrNextMorning)
    follow_up: DeadlineRule = Field(default_factory=SameDayOrNextMorning)
    warning_fractions: tuple[float, ...] = (0.5, 0.75, 0.9)
    cross_channel: CrossChannelRule = Field(default_factory=CrossChannelRule)
    answer_target_seconds: int = Field(default=20, gt=0, description="Phone speed-of-answer target")
    silence_business_days: int | None = Field(
        default=10,
        gt=0,
        le=2500,  # about ten years of business days
        description="Emit a silence fact after this long without an outbound touch",
    )
    trust: TrustLadderRules = Field(default_factory=TrustLadderRules)

    @field_validator("warning_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError("every warning fraction must be strictly between 0 and 1")
        if list(value) != sorted(set(value)):
            raise ValueError("warning fractions must be ascending and distinct")
        return value

    @classmethod
    def default(cls) -> SlaPolicy:
        """Same business day if before 15:00, else by 10:00 the next business day; warn at 50/75/90%."""
        return cls(policy_id="default")


def schedule_problems(policy: SlaPolicy, calendar: BusinessCalendar) -> list[str]:
    """Why ``policy`` cannot run on ``calendar`` (empty when it can): a business-time target
    that no deadline within ten years could meet. Checked wherever a (policy, calendar) pair
    enters (directory load and publish, policy-change events), so the engine never meets one."""
    weekly = calendar.weekly_minutes()
    problems: list[str] = []
    for name, rule in (("first_response", policy.first_response), ("follow_up", policy.follow_up)):
        if isinstance(rule, BusinessDuration) and rule.minutes > weekly * _FEASIBLE_WEEKS:
            problems.append(
                f"policy {policy.policy_id!r} {name}: {rule.minutes} business minutes cannot end "
                f"within ten years on calendar {calendar.calendar_id!r} "
                f"({weekly:g} business minutes a week)"
            )
    return problems
