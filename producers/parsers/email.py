"""E-mail parsers: .eml files, mbox mailboxes and Maildir folders → InteractionEvents.

One message becomes one ``InteractionEvent`` (channel email, kind message) or one ``Rejected``
with the reason and the original bytes. What is kept: ids, thread, time, direction, the client
and counterpart, automation flags and the subject. The body is never stored.

- event_id: ``email:<hash of the normalised Message-ID>``, so one message exported by several
  archivers (or delivered twice) is one event. Without a Message-ID: ``email:h:<hash>`` of the
  Date, From and Subject header texts and a hash of the first 4 KB of the body.
- thread_key: ``email:<hash of the thread root id>`` where the root is the first References id,
  else In-Reply-To, else the message's own id: replies share their root's key (a root's thread
  key equals its event id) even when the root is missing from the archive.
- message_key / parent_keys (schema v2): the hashes of the message's own id and of its
  ancestors, root first (References, then In-Reply-To, with or without brackets). The engine
  threads on them (an incomplete References chain still joins its conversation's root).
- direction: a list or group address (the message's List-Post / List-Id, or the directory's
  ``staff.groups``) is neither staff nor client; a staff message reaches every client among its
  To/Cc and, through a list, the clients who wrote to that list in the conversation: one event
  per client reached (see ``email_threads``).
- occurred_at: Date; else the oldest Received hop; else the mbox From_ line; else rejected.
- sender: the author behind mailing-list From-munging (Reply-To), see ``email_headers``.
- recorded_at: passed in (the archive or parse time); by default occurred_at, so parsing the same
  file twice gives identical events.

Parsing uses the stdlib ``email`` package (``policy=default``) and ``mailbox``.
"""

from __future__ import annotations

import email
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from pydantic import ValidationError

from producers.parsers._common import files
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.parsers.email_headers import (
    addresses,
    automation_flags,
    clean,
    digest,
    from_line_date,
    header_text,
    list_addresses,
    message_ids,
    parse_date,
    real_sender,
    received_date,
    thread_ids,
)
from producers.parsers.email_threads import MessageInfo, fan_out
from producers.resolution import Resolver
from schemas.base import validation_reason
from schemas.events import MAX_PARENT_KEYS, Channel, Direction, Flag, InteractionEvent, Kind
from shinrai.errors import ShinraiError

BODY_HASH_BYTES = 4096
_SUBJECT_MAX = 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def email_event_id(message_id: str) -> str:
    """The event id of a Message-ID (with or without <>); a thread root's thread key too."""
    ids = message_ids(message_id) or [message_id.strip()]
    return f"email:{digest(ids[0])}"


def _body_digest(raw: bytes) -> str:
    """Hash of the first 4 KB of the body (line endings normalised: archivers differ on them)."""
    match = _HEADER_END.search(raw)
    body = raw[match.end() :] if match else b""
    return digest(body.replace(b"\r\n", b"\n")[:BODY_HASH_BYTES].decode("latin-1"))


def message_event(
    raw: bytes,
    resolver: Resolver,
    *,
    origin: str,
    source: str,
    from_line: str | None = None,
    recorded_at: datetime | None = None,
    list_bulk_is_auto_reply: bool = False,
) -> ParseResult:
    """Turn one message's bytes into a ``Parsed`` event or a ``Rejected`` (never raises).

    A staff message reaching several clients is returned for the first one only; the
    container parsers (``parse_eml``/``parse_mbox``/``parse_maildir``) emit one per client.
    """
    return _message_event_info(
        raw,
        resolver,
        origin=origin,
        source=source,
        from_line=from_line,
        recorded_at=recorded_at,
        list_bulk_is_auto_reply=list_bulk_is_auto_reply,
    )[0]


def _message_event_info(
    raw: bytes,
    resolver: Resolver,
    *,
    origin: str,
    source: str,
    from_line: str | None = None,
    recorded_at: datetime | None = None,
    list_bulk_is_auto_reply: bool = False,
) -> tuple[ParseResult, MessageInfo | None]:
    try:
        return _message_event(
            raw,
            resolver,
            origin=origin,
            source=source,
            from_line=from_line,
            recorded_at=recorded_at,
            list_bulk_is_auto_reply=list_bulk_is_auto_reply,
        )
    except Exception as exc:  # hostile input must become a dead letter, never a crash
        return Rejected(f"message: unexpected {type(exc).__name__}: {exc}", origin, raw), None


def _message_event(
    raw: bytes,
    resolver: Resolver,
    *,
    origin: str,
    source: str,
    from_line: str | None,
    recorded_at: datetime | None,
    list_bulk_is_auto_reply: bool,
) -> tuple[ParseResult, MessageInfo | None]:
    msg = email.message_from_bytes(raw, policy=default_policy)
    if not isinstance(msg, EmailMessage):  # policy=default always builds one; narrows the type
        return Rejected("message: not parseable as an e-mail message", origin, raw), None

    problems: list[str] = []
    date_text = header_text(msg, "Date")
    occurred_at = parse_date(date_text) or received_date(msg) or from_line_date(from_line)
    if occurred_at is None:
        shown = "missing" if date_text is None else f"unparseable {clean(date_text)[:80]!r}"
        problems.append(f"Date: {shown}, and no usable Received or mbox From_ line date")
    sender = real_sender(msg)
    if sender is None:
        problems.append("From: missing or without a usable address")
    if occurred_at is None or sender is None:
        return Rejected("; ".join(problems), origin, raw), None

    own_id, ancestors = thread_ids(msg)
    root = ancestors[0] if ancestors else own_id
    subject_text = header_text(msg, "Subject")
    if own_id is not None:
        event_id = f"email:{digest(own_id)}"
    else:
        event_id = "email:h:" + digest(
            date_text or "", header_text(msg, "From") or "", subject_text or "", _body_digest(raw)
        )
    thread_key = f"email:{digest(root)}" if root is not None else event_id

    recipients = [addr for _, addr in addresses(msg, "To", "Cc")]
    lists = list_addresses(msg)
    direction, client_id, counterpart = resolver.direction_for_email(sender[1], recipients, lists)
    parent_keys = [digest(mid) for mid in ancestors]
    if len(parent_keys) > MAX_PARENT_KEYS:  # keep the root and the nearest ancestors
        parent_keys = parent_keys[:1] + parent_keys[1 - MAX_PARENT_KEYS :]
    message_key = digest(own_id) if own_id is not None else None
    keys = (*parent_keys, *([message_key] if message_key else []))
    staff_sender = resolver.is_staff_email(sender[1]) and direction is Direction.OUTBOUND
    info = MessageInfo(
        own=message_key,
        ancestors=tuple(parent_keys),
        reached=tuple(resolver.clients_reached(recipients, lists)) if staff_sender else (),
        groups=tuple(a for a in recipients if resolver.is_group_email(a, lists)),
        staff_sender=staff_sender,
    )
    # Our side: the sender when it is one of us, else the first of us among the recipients.
    staff_side = [sender[1], *recipients] if resolver.is_staff_email(sender[1]) else recipients
    staff = next((a for a in staff_side if resolver.is_staff_email(a)), None)

    flags: frozenset[Flag] = frozenset(
        automation_flags(msg, list_bulk_is_auto_reply=list_bulk_is_auto_reply)
    )
    subject = clean(subject_text)[:_SUBJECT_MAX] if subject_text else None
    try:
        event = InteractionEvent(
            schema_version=2 if keys else 1,
            event_id=event_id,
            channel=Channel.EMAIL,
            kind=Kind.MESSAGE,
            direction=direction,
            occurred_at=occurred_at,
            recorded_at=recorded_at or occurred_at,
            client_id=client_id,
            thread_key=thread_key,
            counterpart=clean(counterpart)[:512] if counterpart else None,
            staff=clean(staff)[:512] if staff else None,
            flags=flags,
            source=source,
            subject=subject or None,
            message_key=message_key,
            parent_keys=tuple(parent_keys),
        )
    except ValidationError as exc:
        reason = validation_reason(exc)
        return Rejected(reason, origin, raw), None
    return Parsed(event, origin), info


# -- containers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stored:
    """One message as a container holds it: where, its record and what of it is parsed."""

    origin: str
    record: bytes  # the record as stored (an mbox record with its From_ line): a Rejected's bytes
    message: bytes  # the message itself
    from_line: str | None = None


def _parse_stored(
    stored: Iterator[_Stored | Rejected],
    resolver: Resolver,
    *,
    source: str,
    recorded_at: datetime | None,
    list_bulk_is_auto_reply: bool,
) -> Iterator[ParseResult]:
    """The per-message step of every container: parse each message (a read failure is already a
    Rejected), then fan staff messages out to the clients they reach."""

    def items() -> Iterator[tuple[ParseResult, MessageInfo | None]]:
        for item in stored:
            if isinstance(item, Rejected):
                yield item, None
                continue
            result, info = _message_event_info(
                item.message,
                resolver,
                origin=item.origin,
                source=source,
                from_line=item.from_line,
                recorded_at=recorded_at,
                list_bulk_is_auto_reply=list_bulk_is_auto_reply,
            )
            if isinstance(result, Rejected):  # carry the full original record
                result = Rejected(result.reason, result.origin, item.record)
            yield result, info

    return fan_out(items())


def parse_eml(
    path: Path,
    resolver: Resolver,
    *,
    recorded_at: datetime | None = None,
    list_bulk_is_auto_reply: bool = False,
) -> Iterator[ParseResult]:
    """Parse one ``.eml`` file, or every ``*.eml`` below a folder (sorted by path)."""
    return _parse_stored(
        _eml_messages(path),
        resolver,
        source="email:eml",
        recorded_at=recorded_at,
        list_bulk_is_auto_reply=list_bulk_is_auto_reply,
    )


def _eml_messages(path: Path) -> Iterator[_Stored | Rejected]:
    if not path.exists():
        raise ShinraiError(f"{path}: no such file or folder")
    for file in files(path, (".eml",)):
        origin = str(file.relative_to(path)) if path.is_dir() else file.name
        try:
            raw = file.read_bytes()
        except OSError as exc:
            yield Rejected(f"file: cannot read: {exc}", origin, b"")
            continue
        yield _Stored(origin, raw, raw)


def parse_mbox(
    path: Path,
    resolver: Resolver,
    *,
    recorded_at: datetime | None = None,
    list_bulk_is_auto_reply: bool = False,
) -> Iterator[ParseResult]:
    """Parse every message of an mbox file (``origin`` is ``file.mbox#N``, N from 1).

    The Rejected bytes of a message include its From_ line, so a fixed record can be appended
    to an mbox again as it was.
    """
    return _parse_stored(
        _mbox_messages(path),
        resolver,
        source="email:mbox",
        recorded_at=recorded_at,
        list_bulk_is_auto_reply=list_bulk_is_auto_reply,
    )


def _mbox_messages(path: Path) -> Iterator[_Stored | Rejected]:
    if not path.is_file():
        raise ShinraiError(f"{path}: not an mbox file")
    try:
        box = mailbox.mbox(path, create=False)
        keys = list(box.iterkeys())
    except (OSError, mailbox.Error) as exc:
        raise ShinraiError(f"{path}: cannot read mbox: {exc}") from exc
    try:
        for number, key in enumerate(keys, start=1):
            origin = f"{path.name}#{number}"
            try:
                raw = box.get_bytes(key, from_=True)
            except (OSError, mailbox.Error) as exc:
                yield Rejected(f"mbox: cannot read message: {exc}", origin, b"")
                continue
            first, _, message = raw.partition(b"\n")
            if first.startswith(b"From "):
                yield _Stored(origin, raw, message, first.decode("latin-1"))
            else:
                yield _Stored(origin, raw, raw)
    finally:
        box.close()


def parse_maildir(
    path: Path,
    resolver: Resolver,
    *,
    recorded_at: datetime | None = None,
    list_bulk_is_auto_reply: bool = False,
) -> Iterator[ParseResult]:
    """Parse every message of a Maildir folder (new/ and cur/), in a stable (sorted key) order."""
    return _parse_stored(
        _maildir_messages(path),
        resolver,
        source="email:maildir",
        recorded_at=recorded_at,
        list_bulk_is_auto_reply=list_bulk_is_auto_reply,
    )


def _maildir_messages(path: Path) -> Iterator[_Stored | Rejected]:
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise ShinraiError(f"{path}: not a Maildir folder (no cur/ or new/)")
    try:
        box = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(box.iterkeys())
    except (OSError, mailbox.Error) as exc:
        raise ShinraiError(f"{path}: cannot read Maildir: {exc}") from exc
    for key in keys:
        origin = f"{path.name}/{key}"
        try:
            raw = box.get_bytes(key)
        except (OSError, KeyError, mailbox.Error) as exc:  # e.g. moved away while we read
            yield Rejected(f"maildir: cannot read message: {exc}", origin, b"")
            continue
        yield _Stored(origin, raw, raw)
