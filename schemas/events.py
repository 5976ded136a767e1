"""Interaction events: the immutable input of the SLA engine (DESIGN §3).

An ``InteractionEvent`` says that something happened between us and a client on one channel. It
never carries a message body. ``ClientPolicyChanged`` says that a client's policy or calendar
changed; the engine sees it like any other event so replays can answer "as of" questions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import Frozen
from schemas.calendars import BusinessCalendar
from schemas.identifiers import Identifier
from schemas.policies import SlaPolicy, schedule_problems

NonEmpty = Annotated[str, Field(min_length=1, max_length=512)]
MessageKey = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
"""A hashed message id (``email_headers.digest`` of the normalised id): never the raw id."""

MAX_PARENT_KEYS = 64
"""Ancestors an event carries at most (References beyond this keep their first and last ids)."""


class Channel(StrEnum):
    """Where an interaction happened."""

    EMAIL = "email"
    PHONE = "phone"
    MEETING = "meeting"
    VISIT = "visit"
    OTHER = "other"


class Kind(StrEnum):
    """What happened. Which kinds open or fulfil obligations is the engine's business."""

    MESSAGE = "message"  # an email (or chat) message
    CALL = "call"  # a phone call, inbound or outbound, answered or not
    VOICEMAIL = "voicemail"  # a voicemail left for us
    CALLBACK_REQUEST = "callback_request"  # the client asked us to call back
    MEETING = "meeting"  # a meeting (held or not: see flags)
    VISIT = "visit"  # an on-site visit
    NO_REPLY_NEEDED = "no_reply_needed"  # staff waived the open obligation of a thread


class Direction(StrEnum):
    """inbound = client to us, outbound = us to client; internal/unknown never open or fulfil."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"
    UNKNOWN = "unknown"


class CallOutcome(StrEnum):
    """How a call ended."""

    ANSWERED = "answered"
    MISSED = "missed"  # rang out, nobody picked up
    ABANDONED = "abandoned"  # the caller hung up while waiting (queue)
    BUSY = "busy"
    FAILED = "failed"


class Flag(StrEnum):
    """Facts about an event that change how the engine treats it."""

    AUTO_REPLY = "auto_reply"  # Auto-Submitted, X-Autoreply, Precedence bulk/junk/auto_reply, ...
    MAILING_LIST = "mailing_list"  # has List-Id (alone, NOT an auto-reply)
    CLIENT_ATTENDEE = "client_attendee"  # a meeting with at least one attendee from the client
    HELD = "held"  # a meeting that actually took place (not cancelled, not a no-show)
    CANCELLED = "cancelled"


class InteractionEvent(Frozen):
    """One immutable interaction between us and a client, keyed on Kafka by ``client_id``.

    Schema version 2 adds the conversation ids of a message (``message_key``, ``parent_keys``):
    hashes, never the raw ids. They let the engine thread mail like a mail client does (every id
    joins its conversation's root through its ancestors, whatever order messages arrive in).
    Version 1 events (no such fields) still validate and are threaded on ``thread_key`` alone.
    """

    schema_version: Literal[1, 2] = 1
    type: Literal["interaction"] = "interaction"
    event_id: Identifier = Field(
        description="Stable id: the same real-world event always maps to it"
    )
    channel: Channel
    kind: Kind
    direction: Direction
    occurred_at: AwareDatetime = Field(description="When it happened (event time), with offset")
    recorded_at: AwareDatetime = Field(description="When the integration recorded/exported it")
    client_id: Identifier | None = Field(
        default=None, description="Resolved client; None when the counterpart is unknown"
    )
    thread_key: Identifier | None = Field(
        default=None, description="Conversation key: email thread root, call-back thread, ..."
    )
    # Counterpart and staff are keys too (the engine threads unthreaded events by counterpart,
    # resolution matches them), so they follow the identifier rule: one spelling per party.
    counterpart: Identifier | None = Field(
        default=None,
        description="Client-side address or E.164 number (or keyed hash)",
    )
    staff: Identifier | None = Field(default=None, description="Our side: address, number, id")
    flags: frozenset[Flag] = frozenset()
    message_key: MessageKey | None = Field(
        default=None, description="v2: hash of the message's own id (e-mail Message-ID)"
    )
    parent_keys: tuple[MessageKey, ...] = Field(
        default=(),
        max_length=MAX_PARENT_KEYS,
        description="v2: hashes of the ids it replies to, root first (References, In-Reply-To)",
    )
    call_outcome: CallOutcome | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    wait_seconds: float | None = Field(
        default=None, ge=0, description="Calls: time the caller waited before answer or hang-up"
    )
    source: str = Field(
        default="unknown", max_length=128, description="Integration that produced it"
    )
    subject: str | None = Field(
        default=None, max_length=1024, description="Optional, no bodies ever"
    )

    @model_validator(mode="after")
    def _consistent(self) -> InteractionEvent:
        if self.kind is Kind.CALL and self.channel is not Channel.PHONE:
            raise ValueError("kind 'call' requires channel 'phone'")
        if self.call_outcome is not None and self.kind is not Kind.CALL:
            raise ValueError("call_outcome is only valid for kind 'call'")
        if self.schema_version == 1 and (self.message_key is not None or self.parent_keys):
            raise ValueError("message_key and parent_keys need schema_version 2")
        return self

    @property
    def key(self) -> bytes:
        """Kafka message key: the client id (all of one client's events on one partition)."""
        return (self.client_id or "").encode()


class ClientPolicyChanged(Frozen):
    """A client's policy and/or calendar changed at ``occurred_at`` (an event like any other)."""

    schema_version: Literal[1] = 1
    type: Literal["policy_changed"] = "policy_changed"
    event_id: Identifier
    client_id: Identifier
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    policy: SlaPolicy
    calendar: BusinessCalendar

    @model_validator(mode="after")
    def _schedulable(self) -> ClientPolicyChanged:
        problems = schedule_problems(self.policy, self.calendar)
        if problems:
            raise ValueError(f"client {self.client_id}: " + "; ".join(problems))
        return self

    @property
    def key(self) -> bytes:
        return self.client_id.encode()


EngineInput = Annotated[InteractionEvent | ClientPolicyChanged, Field(discriminator="type")]
"""Everything the engine consumes, discriminated by ``type``."""
