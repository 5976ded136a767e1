"""Sample alerts and clients: for ``shinrai alerts send-test``, the docs and the tests."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.alerts import Alert, AlertLevel, alert_id_for
from schemas.directory import Client, ClientDirectory
from schemas.facts import TrustLevel


def sample_client(
    client_id: str = "acme",
    *,
    name: str = "Acme K.K.",
    owner: str = "owner@example.com",
    escalation_contact: str | None = "lead@example.com",
) -> Client:
    """A directory entry with an owner and (by default) an escalation contact."""
    return Client(
        client_id=client_id, name=name, owner=owner, escalation_contact=escalation_contact
    )


def sample_directory(*clients: Client) -> ClientDirectory:
    """A directory holding ``clients`` (default: one :func:`sample_client`)."""
    return ClientDirectory(clients=clients or (sample_client(),))


def sample_alert(
    obligation_id: str = "obl-1",
    *,
    level: AlertLevel = AlertLevel.BREACH,
    client_id: str = "acme",
    at: datetime | None = None,
    summary: str = "No reply to 'Quote for Q3' within 4 business hours",
) -> Alert:
    """An alert for ``obligation_id``; ``at`` defaults to now (UTC), so it is not expired."""
    when = at or datetime.now(UTC).replace(microsecond=0)
    trust = level is AlertLevel.TRUST_DOWNGRADE
    return Alert(
        alert_id=alert_id_for(obligation_id, level.value),
        level=level,
        client_id=client_id,
        at=when,
        fact_id=f"fact-{obligation_id}-{level.value}",
        obligation_id=None if trust else obligation_id,
        deadline=None if trust else when,
        warning_fraction=0.75 if level is AlertLevel.WARNING else None,
        trust_from=TrustLevel.CREDIBLE if trust else None,
        trust_to=TrustLevel.ANXIOUS if trust else None,
        summary=summary,
    )
