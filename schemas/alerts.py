"""Alerts: what the alert hooks deliver, derived from facts (warnings, breaches, downgrades).

``alert_id`` is the idempotency key: at most one alert per (obligation, level), so it is derived
from those two alone and stays the same across restarts and replays.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.base import Frozen
from schemas.facts import TrustLevel
from schemas.identifiers import Identifier, ShortIdentifier


class AlertLevel(StrEnum):
    """Why someone is being paged."""

    WARNING = "warning"  # a warning fraction elapsed (see ``warning_fraction``)
    BREACH = "breach"
    TRUST_DOWNGRADE = "trust_downgrade"
    SILENCE = "silence"
    RETRACTION = "retraction"  # an earlier breach alert no longer holds
    CHASE = "chase"  # the client chased an obligation not yet due (once per obligation)


def alert_id_for(subject_id: str, level: str) -> str:
    """Stable idempotency key for (obligation or client-event, level)."""
    return hashlib.sha256(f"{subject_id}|{level}".encode()).hexdigest()[:32]


class Alert(Frozen):
    """One alert to deliver; ``alert_id`` doubles as the webhook Idempotency-Key."""

    schema_version: Literal[1] = 1
    alert_id: ShortIdentifier
    level: AlertLevel
    client_id: Identifier
    at: AwareDatetime = Field(description="Event time the alert is about (e.g. the deadline)")
    fact_id: ShortIdentifier
    obligation_id: Identifier | None = None
    deadline: AwareDatetime | None = None
    warning_fraction: float | None = None
    trust_from: TrustLevel | None = None
    trust_to: TrustLevel | None = None
    summary: str = Field(max_length=1024)
