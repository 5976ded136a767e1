"""What an interaction event means for obligations (DESIGN §3), as small pure predicates.

Decisions made here (documented because the contract leaves room):

* **Threads.** ``thread_key`` when the producer set one; otherwise ``"<channel>:<counterpart>"``
  (``*`` when the counterpart is unknown too). So unthreaded calls from one number share one
  callback thread (a second missed call does not restart the clock), and unthreaded emails from
  one address share one thread.
* **Opens.** Inbound email message without ``Flag.AUTO_REPLY`` (a mailing-list flag alone does
  not count) -> first response, or follow-up when the thread was fulfilled before. Inbound call
  that was missed, abandoned or busy, inbound voicemail, inbound callback request -> callback.
  A failed call (a technical failure) or an inbound call with unknown outcome opens nothing.
* **Thread reply.** Outbound message, or answered outbound call, in the obligation's thread.
* **Ties.** Every answer (thread reply, call back, cross-channel touch) fulfils only obligations
  opened strictly before it (``engine.core``): an answer at the inbound's very instant leaves it
  open, so the tie-break order of same-instant events never decides an outcome.
* **Callback answer.** Any answered outbound call to the client (whatever its length) fulfils the
  client's callback obligations, cross-channel rule or not: calling back is the same channel.
* **Cross-channel touch** (only with ``policy.cross_channel.enabled``): an answered outbound call
  of at least ``min_call_seconds`` (unknown duration counts as 0), a meeting flagged HELD and
  CLIENT_ATTENDEE and not CANCELLED (if ``meetings``), a visit not CANCELLED (if ``visits``).
  Meetings and visits count whether we or the client booked them (direction inbound/outbound).
* **Outbound touch** (resets the silence cadence): any outbound message, voicemail or callback
  request, an answered outbound call, a held meeting or a visit. A missed outbound call is an
  attempt, not a touch.
* Direction internal/unknown opens and fulfils nothing, touches nothing; ``no_reply_needed``
  waives whatever its direction (it is a staff decision, usually internal).
"""

from __future__ import annotations

from schemas.events import CallOutcome, Channel, Direction, Flag, InteractionEvent, Kind
from schemas.facts import ObligationKind
from schemas.policies import CrossChannelRule

__all__ = [
    "MISSED_OUTCOMES",
    "is_answered_outbound_call",
    "is_cross_channel_touch",
    "is_outbound_touch",
    "is_thread_reply",
    "opens",
    "thread_of",
]

MISSED_OUTCOMES = frozenset({CallOutcome.MISSED, CallOutcome.ABANDONED, CallOutcome.BUSY})
_TWO_WAY = frozenset({Direction.INBOUND, Direction.OUTBOUND})


def thread_of(event: InteractionEvent) -> str:
    """The thread an event belongs to (see module docstring)."""
    if event.thread_key is not None:
        return event.thread_key
    return f"{event.channel.value}:{event.counterpart or '*'}"


def opens(event: InteractionEvent) -> ObligationKind | None:
    """FIRST_RESPONSE (maybe follow-up), CALLBACK, or None when the event opens nothing."""
    if event.direction is not Direction.INBOUND:
        return None
    kind = event.kind
    if kind is Kind.MESSAGE:
        if event.channel is Channel.EMAIL and Flag.AUTO_REPLY not in event.flags:
            return ObligationKind.FIRST_RESPONSE
        return None
    if kind is Kind.CALL:
        return ObligationKind.CALLBACK if event.call_outcome in MISSED_OUTCOMES else None
    if kind is Kind.VOICEMAIL or kind is Kind.CALLBACK_REQUEST:
        return ObligationKind.CALLBACK
    return None


def is_answered_outbound_call(event: InteractionEvent) -> bool:
    """An outbound call somebody picked up."""
    return (
        event.kind is Kind.CALL
        and event.direction is Direction.OUTBOUND
        and event.call_outcome is CallOutcome.ANSWERED
    )


def is_thread_reply(event: InteractionEvent) -> bool:
    """An outbound message or answered outbound call: answers its own thread."""
    if event.direction is not Direction.OUTBOUND:
        return False
    return event.kind is Kind.MESSAGE or is_answered_outbound_call(event)


def _held_meeting(event: InteractionEvent) -> bool:
    flags = event.flags
    return Flag.HELD in flags and Flag.CLIENT_ATTENDEE in flags and Flag.CANCELLED not in flags


def is_cross_channel_touch(event: InteractionEvent, rule: CrossChannelRule) -> bool:
    """A touch that fulfils every open obligation of the client under ``rule``."""
    if not rule.enabled or event.direction not in _TWO_WAY:
        return False
    kind = event.kind
    if kind is Kind.CALL:
        return (
            is_answered_outbound_call(event)
            and (event.duration_seconds or 0.0) >= rule.min_call_seconds
        )
    if kind is Kind.MEETING:
        return rule.meetings and _held_meeting(event)
    if kind is Kind.VISIT:
        return rule.visits and Flag.CANCELLED not in event.flags
    return False


def is_outbound_touch(event: InteractionEvent) -> bool:
    """Whether the event resets the client's silence cadence."""
    direction = event.direction
    kind = event.kind
    if kind is Kind.MEETING:
        return direction in _TWO_WAY and _held_meeting(event)
    if kind is Kind.VISIT:
        return direction in _TWO_WAY and Flag.CANCELLED not in event.flags
    if direction is not Direction.OUTBOUND:
        return False
    if kind is Kind.CALL:
        return event.call_outcome is CallOutcome.ANSWERED
    return kind is not Kind.NO_REPLY_NEEDED
