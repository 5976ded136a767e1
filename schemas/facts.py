"""SLA facts: the engine's output, one flat frozen model with a ``kind`` discriminator.

One flat shape (rather than a union of classes) maps 1:1 onto the ClickHouse fact table and onto
JSONL, and keeps the wire contract simple for consumers in other languages. Fields that do not
apply to a kind are None. ``fact_id`` is stable: replaying the same log yields the same ids, which
is what makes sinks idempotent and replays comparable.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.base import Frozen
from schemas.events import CallOutcome, Channel
from schemas.identifiers import Identifier, ShortIdentifier


class FactKind(StrEnum):
    """What a fact records."""

    OBLIGATION_OPENED = "obligation_opened"  # a response is now owed, with its deadline
    DEADLINE_CHANGED = (
        "deadline_changed"  # a policy/calendar change re-evaluated an open obligation
    )
    WARNING = "warning"  # a warning fraction of the SLA elapsed with the obligation open
    BREACHED = "breached"  # the deadline passed with the obligation open
    FULFILLED = "fulfilled"  # answered: outcome met or met_late (with overage)
    WAIVED = "waived"  # an explicit "no reply needed"
    RETRACTED = "retracted"  # correction: the fact ``retracts`` no longer holds (late data)
    SPEED_OF_ANSWER = "speed_of_answer"  # every inbound call: how long the caller waited
    SILENCE = "silence"  # no outbound touch to the client for its cadence
    TRUST_CHANGED = "trust_changed"  # the client's trust level moved, with the reason
    CHASED = "chased"  # the client asked again while an obligation was open (engine.chase)
    TARGET_SUGGESTED = "target_suggested"  # chases say the client expects a faster target


class ObligationKind(StrEnum):
    """Which target an obligation runs against."""

    FIRST_RESPONSE = "first_response"
    FOLLOW_UP = "follow_up"
    CALLBACK = "callback"


class Outcome(StrEnum):
    """How a fulfilled obligation ended."""

    MET = "met"
    MET_LATE = "met_late"


class TrustLevel(StrEnum):
    """The trust ladder, lowest first: 不信 < 不安 < 安心 < 信用 < 信頼."""

    DISTRUST = "distrust"  # 不信
    ANXIOUS = "anxious"  # 不安
    ASSURED = "assured"  # 安心
    CREDIBLE = "credible"  # 信用
    TRUSTED = "trusted"  # 信頼

    @property
    def rank(self) -> int:
        """0 (distrust) .. 4 (trusted)."""
        return _RANKS[self]  # a dict lookup: the engine asks once per trust outcome


_RANKS: dict[TrustLevel, int] = {level: i for i, level in enumerate(TrustLevel)}


class Fact(Frozen):
    """One SLA fact. ``at`` is the event-time instant the fact holds from."""

    schema_version: Literal[1] = 1
    # Ids follow the identifier rule of the events they come from (schemas.identifiers).
    fact_id: ShortIdentifier
    kind: FactKind
    client_id: Identifier
    at: AwareDatetime
    policy_id: ShortIdentifier
    policy_version: int
    obligation_id: Identifier | None = None
    obligation_kind: ObligationKind | None = None
    thread_key: Identifier | None = None
    channel: Channel | None = None
    source_event_id: Identifier | None = Field(
        default=None, description="Event that caused it; None for timers"
    )
    opened_at: AwareDatetime | None = None
    deadline: AwareDatetime | None = None
    fulfilled_at: AwareDatetime | None = None
    fulfilled_by_channel: Channel | None = None
    outcome: Outcome | None = None
    warning_fraction: float | None = None
    business_seconds: float | None = Field(default=None, description="Response time, business time")
    calendar_seconds: float | None = Field(default=None, description="Response time, wall clock")
    target_business_seconds: float | None = None
    overage_business_seconds: float | None = None
    overage_calendar_seconds: float | None = None
    call_outcome: CallOutcome | None = None
    wait_seconds: float | None = None
    answered_within_target: bool | None = None
    trust_from: TrustLevel | None = None
    trust_to: TrustLevel | None = None
    reason: str | None = Field(default=None, max_length=2048)
    retracts: ShortIdentifier | None = Field(default=None, description="fact_id this fact retracts")
