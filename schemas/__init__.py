"""Canonical, frozen, versioned pydantic models shared by every part of Shinrai.

Producers decode source formats into these models at the edge; everything downstream speaks them.
"""

from schemas.alerts import Alert, AlertLevel
from schemas.base import SCHEMA_VERSION, decode, encode
from schemas.calendars import BusinessCalendar, TimeInterval
from schemas.directory import Client, ClientDirectory, Contact, StaffDirectory
from schemas.events import (
    CallOutcome,
    Channel,
    ClientPolicyChanged,
    Direction,
    EngineInput,
    Flag,
    InteractionEvent,
    Kind,
)
from schemas.facts import Fact, FactKind
from schemas.policies import (
    BusinessDuration,
    CalendarDuration,
    CrossChannelRule,
    DeadlineRule,
    SameDayOrNextMorning,
    SlaPolicy,
    TrustLadderRules,
)

__all__ = [
    "SCHEMA_VERSION",
    "Alert",
    "AlertLevel",
    "BusinessCalendar",
    "BusinessDuration",
    "CalendarDuration",
    "CallOutcome",
    "Channel",
    "Client",
    "ClientDirectory",
    "ClientPolicyChanged",
    "Contact",
    "CrossChannelRule",
    "DeadlineRule",
    "Direction",
    "EngineInput",
    "Fact",
    "FactKind",
    "Flag",
    "InteractionEvent",
    "Kind",
    "SameDayOrNextMorning",
    "SlaPolicy",
    "StaffDirectory",
    "TimeInterval",
    "TrustLadderRules",
    "decode",
    "encode",
]
