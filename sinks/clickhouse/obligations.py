"""Latest state of one obligation, folded from its facts (pure: no I/O, no clock).

The sink keeps this state per obligation and writes one ``obligations`` row per changed
obligation per flush; ClickHouse's ReplacingMergeTree(version) keeps the newest. ``version`` is
the Kafka offset of the fact that produced the state: all of one client's facts share a
partition, so offsets order an obligation's facts, and a replayed fact whose offset is not above
the stored version is recognised as already applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from schemas.facts import Fact, FactKind


class Status:
    """Values of ``obligations.status``."""

    OPEN = "open"
    MET = "met"
    MET_LATE = "met_late"
    BREACHED = "breached"
    WAIVED = "waived"
    RETRACTED = "retracted"  # the opening fact itself was retracted: the obligation never was


OBLIGATION_KINDS = frozenset(
    {
        FactKind.OBLIGATION_OPENED,
        FactKind.DEADLINE_CHANGED,
        FactKind.BREACHED,
        FactKind.FULFILLED,
        FactKind.WAIVED,
        FactKind.RETRACTED,
    }
)
"""Fact kinds that can change an obligation row (WARNING changes nothing stored)."""


class ObligationState(NamedTuple):
    """One row of the ``obligations`` table (a NamedTuple: ``_replace`` is cheap)."""

    obligation_id: str
    client_id: str
    thread_key: str | None
    kind: str
    channel: str | None
    opened_at: datetime
    deadline: datetime | None
    status: str
    fulfilled_at: datetime | None
    fulfilled_by_channel: str | None
    business_seconds: float | None
    calendar_seconds: float | None
    overage_business_seconds: float | None
    policy_id: str
    policy_version: int
    opened_fact_id: str
    status_fact_id: str
    updated_at: datetime
    version: int


def _opened(fact: Fact, obligation_id: str, version: int) -> ObligationState:
    return ObligationState(
        obligation_id=obligation_id,
        client_id=fact.client_id,
        thread_key=fact.thread_key,
        kind=fact.obligation_kind.value if fact.obligation_kind else "",
        channel=fact.channel.value if fact.channel else None,
        opened_at=fact.opened_at or fact.at,
        deadline=fact.deadline,
        status=Status.OPEN,
        fulfilled_at=None,
        fulfilled_by_channel=None,
        business_seconds=None,
        calendar_seconds=None,
        overage_business_seconds=None,
        policy_id=fact.policy_id,
        policy_version=fact.policy_version,
        opened_fact_id=fact.fact_id if fact.kind is FactKind.OBLIGATION_OPENED else "",
        status_fact_id=fact.fact_id,
        updated_at=fact.at,
        version=version,
    )


def apply(state: ObligationState | None, fact: Fact, version: int) -> ObligationState | None:
    """The obligation's state after ``fact``; ``state`` unchanged if the fact changes nothing.

    Returns None only when there is no state and the fact cannot start one (no obligation id).
    A fact for an obligation never seen opened (e.g. its OPENED fact predates retention) starts
    a state from the fields the fact carries, so the row exists rather than being lost.
    """
    if fact.obligation_id is None or fact.kind not in OBLIGATION_KINDS:
        return state
    if state is None:
        if fact.kind is FactKind.RETRACTED:
            return None  # nothing known to retract
        state = _opened(fact, fact.obligation_id, version)
        if fact.kind is FactKind.OBLIGATION_OPENED:
            return state
    touched: ObligationState = state._replace(
        updated_at=fact.at, version=version, policy_version=fact.policy_version
    )
    match fact.kind:
        case FactKind.OBLIGATION_OPENED:
            return _opened(fact, state.obligation_id, version)
        case FactKind.DEADLINE_CHANGED:
            return touched._replace(deadline=fact.deadline or state.deadline)
        case FactKind.BREACHED:
            return touched._replace(status=Status.BREACHED, status_fact_id=fact.fact_id)
        case FactKind.FULFILLED:
            return touched._replace(
                status=fact.outcome.value if fact.outcome else Status.MET,
                status_fact_id=fact.fact_id,
                fulfilled_at=fact.fulfilled_at or fact.at,
                fulfilled_by_channel=fact.fulfilled_by_channel.value
                if fact.fulfilled_by_channel
                else None,
                business_seconds=fact.business_seconds,
                calendar_seconds=fact.calendar_seconds,
                overage_business_seconds=fact.overage_business_seconds,
            )
        case FactKind.WAIVED:
            return touched._replace(status=Status.WAIVED, status_fact_id=fact.fact_id)
        case FactKind.RETRACTED:
            if fact.retracts == state.opened_fact_id:
                return touched._replace(status=Status.RETRACTED, status_fact_id=fact.fact_id)
            if fact.retracts == state.status_fact_id:
                # The fact that set the status no longer holds: back to open. The engine follows
                # a retraction with the corrected fact (e.g. FULFILLED met), which lands next.
                return touched._replace(
                    status=Status.OPEN,
                    status_fact_id=fact.fact_id,
                    fulfilled_at=None,
                    fulfilled_by_channel=None,
                    business_seconds=None,
                    calendar_seconds=None,
                    overage_business_seconds=None,
                )
            return state
        case _:
            return state
