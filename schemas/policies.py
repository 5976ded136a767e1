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
    """How a client's record moves it on the trust ladder (documented defaults; see engine.trust).

    Trust is slow to build and quick to lose. Every closed outcome is one step: an answer within
    ``fast_fraction`` of its SLA is *fast* (``fast_points``), any other on-time answer *on time*
    (``on_time_points``); a breach (``breach_points``, ``late_points`` once answered late) and a
    silence (``silence_points``) are *bad*, and so is a chase (``chase_points``, once per
    obligation, before our deadline: after it the breach already counted); an answer before any
    chase in a conversation the client used to chase counts as *fast*.

    * Falling is immediate: a breach takes the level down ``breach_steps`` levels, a silence
      ``silence_steps`` (steps alone stop at 不安 anxious); a bad outcome also drops the level to
      what the running score earns (below the anxious threshold: 不信 distrust).
    * Rising is one level at a time and needs a sustained record: good outcomes in a row worth at
      least ``rise_points`` (fast answers count double), ``rise_dwell_days`` at the current level,
      and a running score (an average of the points
      that forgets with a half-life of about ``window`` outcomes) reaching the next level's
      threshold. A good outcome never lowers the level.
    * With fewer than ``min_outcomes`` outcomes the client keeps the start level, 安心 assured.
    * ``repeated_breaches`` breaches within ``repeated_breach_days`` cap the level at 安心.
    """

    window: int = Field(
        default=20,
        gt=0,
        description="Outcomes kept for corrections; also the memory of the running score",
    )
    min_outcomes: int = Field(
        default=3, ge=1, description="Fewer outcomes keep the start level (安心 assured)"
    )
    fast_fraction: float = Field(default=0.5, gt=0, le=1)
    fast_points: float = 2.0
    on_time_points: float = 1.0
    late_points: float = -1.0
    breach_points: float = -2.0
    silence_points: float = -1.0
    thresholds: tuple[float, float, float, float] = Field(
        default=(-1.0, 0.0, 0.75, 1.5),
        description="Minimum running score for anxious, assured, credible, trusted (ascending)",
    )
    rise_points: float = Field(
        default=20.0,
        gt=0,
        description="Points of good outcomes in a row (no bad one) needed to rise one level",
    )
    rise_dwell_days: float = Field(
        default=7.0, ge=0, description="Days at a level before the next step up"
    )
    breach_steps: int = Field(default=1, ge=0, le=4, description="Levels a breach takes off")
    silence_steps: int = Field(default=1, ge=0, le=4, description="Levels a silence takes off")
    chase_points: float = Field(
        default=-1.0,
        description="A client chasing an obligation before our deadline (once per obligation): "
        "a bad outcome (the client was already anxious when it had to ask)",
    )
    chase_steps: int = Field(default=1, ge=0, le=4, description="Levels a chase takes off")
    repeated_breaches: int = Field(
        default=2, ge=1, description="This many breaches within the period cap the level at 安心"
    )
    repeated_breach_days: int = Field(
        default=30, gt=0, le=3650, description="The period repeated breaches are counted over"
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
