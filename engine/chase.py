"""Chases: the client asked again while we still owed it an answer (issue 19).

Being chased means we were too slow by the client's own measure, whatever our policy said. While
an obligation of the client is open (opened strictly before the inbound, the tie rule every
answer follows in ``engine.core``), one inbound event is a chase of one obligation:

* ``same_conversation``: an inbound message (any channel) in the thread of an open obligation
  ("any update?"). The obligation is that thread's.
* ``call`` / ``voicemail``: an inbound call, whatever its outcome (we may pick up; the client
  still had to ring), or a voicemail. The obligation is the client's oldest open one (the
  longest wait; a repeat call to an open callback thread is usually that one).
* ``new_conversation``: an inbound message that starts a new conversation (nothing open in its
  thread and no answer there within the engine's thread memory) less than ``chase_window`` after
  an open obligation of the client was opened. The obligation is the oldest such. The window is
  ``Engine(chase_window=...)`` (worker setting ``SHINRAI_WORKER__CHASE_WINDOW_S``); off by
  default (None or zero), see ``DEFAULT_CHASE_WINDOW``.

Never a chase: an auto-reply (``Flag.AUTO_REPLY``, the classification the parsers already make);
a mailing-list repost, i.e. a message flagged ``MAILING_LIST`` dated at the very instant of the
obligation's opening or of a chase already counted on it (a list's copy keeps the original's
Date: one message reached us twice); anything outbound, internal or unknown (our own follow-up
included); a callback request (it opens its own callback obligation); meetings, visits and
"no reply needed".

The CHASED fact (an obligation fact: obligation id, kind, thread, opened_at, deadline) carries:
``channel`` = the chasing event's channel, ``source_event_id`` = the chasing event,
``business_seconds`` / ``calendar_seconds`` = how long the client had waited since the
obligation opened, ``target_business_seconds`` = our target, ``overage_business_seconds`` /
``overage_calendar_seconds`` = how far past our deadline (None while the deadline had not
passed: ``deadline_passed`` reads it), ``call_outcome`` for calls, and ``reason`` starting with
the chase kind and a colon (``chase_kind`` reads it back), so no new column is needed.

Suggested target (issue 19 item 3): every chase before our deadline enters the client's chase
log (the last ``SUGGEST_WINDOW``; a retracted chase leaves it). Once it holds at least
``SUGGEST_MIN_CHASES`` and the median wait at chase is under ``SUGGEST_FRACTION`` of the median
target of the chased obligations, the engine emits TARGET_SUGGESTED: ``target_business_seconds``
= the 10th percentile of the waits, rounded down to quarter hours (a first-response target in
business time that would have answered at least 90% of those chases before the client asked
again), ``business_seconds`` = the median wait, and a reason for the owner. A new fact only when
the suggested value changes. Nothing changes by itself: accepting it is a directory policy change
like any other, effective from its effective time. A suggestion is advice and is never
retracted; a later chase or correction suggests again.

Replay and corrections: chases are decided in the engine's merged event order, so any arrival
order within the allowed lateness gives the in-order chases. A late answer dated before a chase
already emitted (beyond lateness) retracts it (a RETRACTED fact whose reason starts with
``RETRACTION_PREFIX``; it pages nobody). Not corrected, like the engine's other late cases: a
late inbound into a thread whose obligation a later event already fulfilled (no obligation is
open any more, so no chase is emitted for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from engine.calendar import CalendarClock
from engine.state import Obligation
from schemas.events import Direction, Flag, InteractionEvent, Kind
from schemas.facts import Fact, FactKind, ObligationKind

__all__ = [
    "DEFAULT_CHASE_WINDOW",
    "RETRACTION_PREFIX",
    "SUGGEST_FRACTION",
    "SUGGEST_MIN_CHASES",
    "SUGGEST_STEP_SECONDS",
    "SUGGEST_WINDOW",
    "ChaseKind",
    "chase_fields",
    "chase_kind",
    "deadline_passed",
    "find_chase",
    "is_chase_retraction",
    "suggested_target",
]

DEFAULT_CHASE_WINDOW: timedelta | None = None
"""New-conversation chases are opt-in: a client with several topics at once is not chasing, and
only the team knows how its clients write. A window (e.g. one day) counts a new conversation this
soon after an open obligation was opened as a chase of it."""

RETRACTION_PREFIX = "chase retracted: "
"""How the reason of a RETRACTED fact that withdraws a chase starts."""

SUGGEST_WINDOW = 20
"""A suggested target looks at the client's last this many chases before our deadline."""
SUGGEST_MIN_CHASES = 3
"""Fewer chases before our deadline than this suggest nothing (one impatient day is no standard)."""
SUGGEST_FRACTION = 0.5
"""Suggest only when the median chase came before this share of our target ("well before")."""
SUGGEST_STEP_SECONDS = 900.0
"""Suggested targets are whole quarter hours of business time, rounded down, at least one."""


class ChaseKind(StrEnum):
    """How the client chased (the first word of a CHASED fact's reason)."""

    SAME_CONVERSATION = "same_conversation"
    CALL = "call"
    VOICEMAIL = "voicemail"
    NEW_CONVERSATION = "new_conversation"


def _oldest(
    obligations: Mapping[str, Obligation], after: datetime | None, t: datetime
) -> Obligation | None:
    """The open obligation opened earliest (strictly before ``t`` and, when given, after
    ``after``); ties on the instant go to the smaller id, so the choice is order-free."""
    best: Obligation | None = None
    for ob in obligations.values():
        if ob.opened_at >= t or (after is not None and ob.opened_at <= after):
            continue
        if best is None or (ob.opened_at, ob.obligation_id) < (best.opened_at, best.obligation_id):
            best = ob
    return best


def _repost(ev: InteractionEvent, ob: Obligation, t: datetime) -> bool:
    """A list's second copy of a message already counted (same Date) on ``ob``."""
    if Flag.MAILING_LIST not in ev.flags:
        return False
    return t == ob.opened_at or any(at == t for at, _ in ob.chases)


def find_chase(
    ev: InteractionEvent,
    thread: str,
    opening: ObligationKind | None,
    open_obligations: Mapping[str, Obligation],
    answered_at: datetime | None,
    t: datetime,
    *,
    window: timedelta | None,
    thread_memory: timedelta,
) -> tuple[ChaseKind, Obligation] | None:
    """Whether ``ev`` (at ``t``, in ``thread``) chases an open obligation, and which one.

    ``opening`` is what ``ev`` opens (``classify.opens``), ``answered_at`` the last fulfilment
    in ``thread`` the engine remembers. See the module docstring for the rules.
    """
    if ev.direction is not Direction.INBOUND or not open_obligations:
        return None
    if Flag.AUTO_REPLY in ev.flags:
        return None
    kind = ev.kind
    found: tuple[ChaseKind, Obligation] | None = None
    if kind is Kind.CALL or kind is Kind.VOICEMAIL:
        ob = _oldest(open_obligations, None, t)
        if ob is not None:
            found = (ChaseKind.CALL if kind is Kind.CALL else ChaseKind.VOICEMAIL, ob)
    elif kind is Kind.MESSAGE:
        own = open_obligations.get(thread)
        if own is not None:
            if own.opened_at < t:
                found = (ChaseKind.SAME_CONVERSATION, own)
        elif (
            window is not None
            and window > timedelta(0)
            and opening is ObligationKind.FIRST_RESPONSE
            and (answered_at is None or not answered_at <= t <= answered_at + thread_memory)
        ):
            ob = _oldest(open_obligations, t - window, t)
            if ob is not None:
                found = (ChaseKind.NEW_CONVERSATION, ob)
    if found is None or _repost(ev, found[1], t):
        return None
    return found


def chase_fields(
    chase: ChaseKind, ob: Obligation, ev: InteractionEvent, t: datetime, clock: CalendarClock
) -> dict[str, Any]:
    """The fields of the CHASED fact (beside the obligation's own; see module docstring)."""
    business = clock.business_seconds_between(ob.opened_at, t)
    calendar = max(0.0, (t - ob.opened_at).total_seconds())
    over_b: float | None = None
    over_c: float | None = None
    passed = t > ob.deadline
    if passed:
        over_b = clock.business_seconds_between(ob.deadline, t)
        over_c = (t - ob.deadline).total_seconds()
    return {
        "channel": ev.channel,
        "source_event_id": ev.event_id,
        "business_seconds": business,
        "calendar_seconds": calendar,
        "target_business_seconds": ob.target_business_s,
        "overage_business_seconds": over_b,
        "overage_calendar_seconds": over_c,
        "call_outcome": ev.call_outcome,
        "reason": (
            f"{chase.value}: the client asked again after {calendar / 3600:.1f} h "
            f"({business / 3600:.1f} business h); our deadline "
            + ("had passed" if passed else "had not passed")
        ),
    }


def chase_kind(fact: Fact) -> ChaseKind | None:
    """The chase kind of a CHASED fact (None for any other fact)."""
    if fact.kind is not FactKind.CHASED or fact.reason is None:
        return None
    head = fact.reason.partition(":")[0]
    return ChaseKind(head) if head in ChaseKind._value2member_map_ else None


def deadline_passed(fact: Fact) -> bool:
    """Whether our deadline had passed when the client chased (a CHASED fact)."""
    return fact.overage_calendar_seconds is not None


def is_chase_retraction(fact: Fact) -> bool:
    """Whether ``fact`` is the RETRACTED fact of a chase (a late answer came before it)."""
    return (
        fact.kind is FactKind.RETRACTED
        and fact.reason is not None
        and fact.reason.startswith(RETRACTION_PREFIX)
    )


def suggested_target(log: list[tuple[str, float, float]]) -> tuple[float, float, float] | None:
    """(suggested target, median wait, median target) in business seconds from a chase log of
    (fact id, waited, target) entries, or None when the chases suggest nothing."""
    if len(log) < SUGGEST_MIN_CHASES:
        return None
    waits = sorted(w for _, w, _ in log)
    targets = sorted(t for _, _, t in log)
    wait = waits[len(waits) // 2]
    target = targets[len(targets) // 2]
    if target <= 0 or wait >= SUGGEST_FRACTION * target:
        return None
    low = waits[int(0.1 * len(waits))]
    step = SUGGEST_STEP_SECONDS
    return max(step, (low // step) * step), wait, target
