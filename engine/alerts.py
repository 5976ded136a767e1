"""Which facts page someone, and the alert each one becomes.

Alerts page people only for what they can still act on (DESIGN §3 "Paging"): every warning
(one per obligation and fraction) except a *missed* one, every breach, every trust downgrade,
every silence, and the retraction of a breach, of a silence or of a trust downgrade (so whoever
was paged learns it no longer holds). A warning is missed when its instant passed before the
event that opened the obligation reached us (its ``recorded_at``): it stays a fact, its reason
starting with ``MISSED_WARNING``, and pages nobody, so an event that arrives after its warning
instants pages only the breach. A chase on an obligation whose deadline had not passed pages its
owner once per obligation (the client is waiting now); a chase after the deadline pages nobody
(the breach did) and a retracted chase pages nobody (the chase page was a nudge, not a verdict).
``alert_id`` is ``schemas.alerts.alert_id_for(subject, level)`` where the subject is the
obligation for obligation facts and the fact itself otherwise, so a replay or a restart never
pages twice for the same (obligation, level).
"""

from __future__ import annotations

from datetime import datetime

from engine.chase import deadline_passed, is_chase_retraction
from schemas.alerts import Alert, AlertLevel, alert_id_for
from schemas.facts import Fact, FactKind

__all__ = ["MISSED_WARNING", "alert_for", "is_missed_warning", "missed_warning_reason"]

MISSED_WARNING = "missed: "
"""How the reason of a missed warning fact starts (see the module docstring)."""


def missed_warning_reason(arrived: datetime) -> str:
    """The reason a warning fact carries when its instant passed before its event arrived."""
    return (
        f"{MISSED_WARNING}the event that opened the obligation arrived at "
        f"{arrived.isoformat()}, after this warning's instant; a fact, not a page"
    )


def is_missed_warning(fact: Fact) -> bool:
    """True for a warning whose instant passed before the obligation's event arrived."""
    return fact.kind is FactKind.WARNING and (fact.reason or "").startswith(MISSED_WARNING)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def alert_for(fact: Fact) -> Alert | None:
    """The alert ``fact`` raises, or None when it raises none."""
    kind = fact.kind
    ob = fact.obligation_id
    # No instant in the summary: the deadline is its own field, shown in the team's zone by
    # the delivery (a UTC time in the text would contradict the local one beside it).
    if kind is FactKind.WARNING and ob is not None and fact.warning_fraction is not None:
        if is_missed_warning(fact):
            return None  # nobody could have acted on it: the breach (if any) is the page
        level = AlertLevel.WARNING
        alert_id = alert_id_for(ob, f"{level.value}:{fact.warning_fraction!r}")
        summary = (
            f"{fact.client_id}: {_pct(fact.warning_fraction)} of the SLA used by "
            f"{fact.obligation_kind or 'obligation'} in {fact.thread_key}"
        )
    elif kind is FactKind.BREACHED and ob is not None:
        level = AlertLevel.BREACH
        alert_id = alert_id_for(ob, level.value)
        summary = (
            f"{fact.client_id}: SLA breached by {fact.obligation_kind or 'obligation'} "
            f"in {fact.thread_key}"
        )
    elif kind is FactKind.CHASED and ob is not None:
        if deadline_passed(fact):
            return None
        level = AlertLevel.CHASE
        alert_id = alert_id_for(ob, level.value)
        waited = (fact.calendar_seconds or 0.0) / 3600
        summary = (
            f"{fact.client_id}: asked again ({fact.channel or 'unknown channel'}) after "
            f"{waited:.1f} h about {fact.obligation_kind or 'obligation'} in {fact.thread_key}"
        )
    elif kind is FactKind.TRUST_CHANGED:
        if fact.trust_from is None or fact.trust_to is None:
            return None
        if fact.trust_to.rank >= fact.trust_from.rank:
            return None  # upgrades are good news, not pages
        level = AlertLevel.TRUST_DOWNGRADE
        alert_id = alert_id_for(fact.fact_id, level.value)
        summary = f"{fact.client_id}: trust {fact.trust_from.value} -> {fact.trust_to.value}"
    elif kind is FactKind.SILENCE:
        level = AlertLevel.SILENCE
        alert_id = alert_id_for(fact.fact_id, level.value)
        summary = f"{fact.client_id}: reach out before they have to ask ({fact.reason})"
    elif kind is FactKind.RETRACTED and fact.retracts is not None:
        if is_chase_retraction(fact):
            return None
        if fact.warning_fraction is not None:
            return None  # a retracted warning: the warning alert was advisory, not a page
        retracted_move = (fact.trust_from, fact.trust_to)
        if retracted_move[0] is not None and retracted_move[1] is not None:
            # A retracted trust change: only a downgrade paged anyone.
            if retracted_move[1].rank >= retracted_move[0].rank:
                return None
            what = "trust downgrade"
        else:
            what = "breach" if ob is not None else "silence"
        level = AlertLevel.RETRACTION
        # Breach retraction: one per obligation; silence and trust retractions: one per fact.
        alert_id = alert_id_for(ob if ob is not None else fact.retracts, level.value)
        summary = f"{fact.client_id}: earlier {what} alert retracted ({fact.reason})"
    else:
        return None
    return Alert(
        alert_id=alert_id,
        level=level,
        client_id=fact.client_id,
        at=fact.at,
        fact_id=fact.fact_id,
        obligation_id=ob,
        deadline=fact.deadline,
        warning_fraction=fact.warning_fraction if level is AlertLevel.WARNING else None,
        trust_from=fact.trust_from,
        trust_to=fact.trust_to,
        summary=summary[:1024],
    )
