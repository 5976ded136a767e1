"""Latest state of one obligation, folded from its facts (pure: no I/O, no clock).

The sink keeps this state per obligation and writes one ``obligations`` row per changed
obligation per flush; ClickHouse's ReplacingMergeTree(version) keeps the newest. ``version`` is
the Kafka offset of the fact that produced the state: all of one client's facts share a
partition, so offsets order an obligation's facts, and a replayed fact whose offset is not above
the stored version is recognised as already applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

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


_OPENED = FactKind.OBLIGATION_OPENED
_DEADLINE_CHANGED = FactKind.DEADLINE_CHANGED
_BREACHED = FactKind.BREACHED
_FULFILLED = FactKind.FULFILLED
_WAIVED = FactKind.WAIVED
_RETRACTED = FactKind.RETRACTED

# Hot path (one call per obligation fact in every flush): rows are built positionally with
# ``tuple.__new__``. ``NamedTuple._replace`` and ``Enum.value`` are Python-level calls that made
# this fold the most expensive step of a flush. StrEnum members are ``str``: they are compared
# with ``==`` (a plain-string kind from a fast-constructed fact compares equal too) and stored
# as-is (written as their values).
_new = tuple.__new__
_fromisoformat = datetime.fromisoformat


def as_datetime(value: Any) -> datetime | None:
    """A timestamp of a fact row: datetimes as they are, RFC 3339 strings (raw rows) parsed."""
    if type(value) is str:
        return _fromisoformat(value)
    return value  # type: ignore[no-any-return]


def _opened(fact: Mapping[str, Any], obligation_id: str, version: int) -> ObligationState:
    at = as_datetime(fact["at"])
    get = fact.get
    opened_at = get("opened_at")
    return _new(
        ObligationState,
        (
            obligation_id,
            fact["client_id"],
            get("thread_key"),
            get("obligation_kind") or "",
            get("channel"),
            as_datetime(opened_at) if opened_at else at,
            as_datetime(get("deadline")),
            Status.OPEN,
            None,
            None,
            None,
            None,
            None,
            fact["policy_id"],
            fact["policy_version"],
            fact["fact_id"] if fact["kind"] == _OPENED else "",
            fact["fact_id"],
            at,
            version,
        ),
    )


def apply(
    state: ObligationState | None, fact: Fact | Mapping[str, Any], version: int
) -> ObligationState | None:
    """The obligation's state after ``fact``; ``state`` unchanged if the fact changes nothing.

    ``fact`` is a Fact or its fields as a dict (a model's ``vars`` or a row decoded by
    ``records``, whose timestamps are strings). Returns None only when there is no state and the
    fact cannot start one (no obligation id). A fact for an obligation never seen opened (e.g.
    its OPENED fact predates retention) starts a state from the fields the fact carries, so the
    row exists rather than being lost.
    """
    row: Mapping[str, Any] = fact if type(fact) is dict else vars(fact)
    kind = row["kind"]
    oid = row.get("obligation_id")
    if oid is None or kind not in OBLIGATION_KINDS:
        return state
    if kind == _OPENED:
        return _opened(row, oid if state is None else state.obligation_id, version)
    if state is None:
        if kind == _RETRACTED:
            return None  # nothing known to retract
        state = _opened(row, oid, version)
    (oid, client, thread, okind, channel, opened_at, deadline, status, fulfilled_at, by_channel,
     business, calendar, overage, policy_id, _, opened_fid, status_fid, _, _) = state  # fmt: skip
    get = row.get
    fact_id = row["fact_id"]
    if kind == _FULFILLED:
        status, status_fid = get("outcome") or Status.MET, fact_id
        fulfilled_at = as_datetime(get("fulfilled_at") or row["at"])
        by_channel = get("fulfilled_by_channel")
        business, calendar = get("business_seconds"), get("calendar_seconds")
        overage = get("overage_business_seconds")
    elif kind == _BREACHED:
        status, status_fid = Status.BREACHED, fact_id
    elif kind == _WAIVED:
        status, status_fid = Status.WAIVED, fact_id
    elif kind == _DEADLINE_CHANGED:
        deadline = as_datetime(get("deadline")) or deadline
    elif get("retracts") == opened_fid:  # RETRACTED: the opening itself no longer holds
        status, status_fid = Status.RETRACTED, fact_id
    elif get("retracts") == status_fid:
        # The fact that set the status no longer holds: back to open. The engine follows a
        # retraction with the corrected fact (e.g. FULFILLED met), which lands next.
        status, status_fid = Status.OPEN, fact_id
        fulfilled_at = by_channel = business = calendar = overage = None
    else:
        return state
    return _new(
        ObligationState,
        (oid, client, thread, okind, channel, opened_at, deadline, status, fulfilled_at,
         by_channel, business, calendar, overage, policy_id, row["policy_version"], opened_fid,
         status_fid, as_datetime(row["at"]), version),
    )  # fmt: skip
