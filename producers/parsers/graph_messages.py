"""Microsoft Graph message resources (JSON) → the e-mail importer's events.

A Graph ``message`` is turned into the header block of the RFC 5322 message it describes and
handed to the e-mail parser (``producers.parsers.email``), so the event id (the hash of
``internetMessageId``), the thread keys, the direction, the automation flags and the fan-out
of a staff message to every client it reaches are exactly the importer's: importing the mailbox
and receiving its Graph notifications never count a message twice.

- Headers: ``internetMessageHeaders`` when the resource carries them (``$select`` them: they
  hold References, In-Reply-To and Auto-Submitted); the fields Graph always has fill in what is
  missing: Message-ID (``internetMessageId``), From/Sender, To/Cc, Reply-To, Date
  (``sentDateTime``, else ``receivedDateTime``) and Subject.
- The body is never read (``body``/``uniqueBody``/``bodyPreview`` are ignored, and left out of
  the bytes a rejected message is dead-lettered with).
- Drafts (``isDraft``) are not messages anyone sent: skipped.
- Without ``internetMessageId`` the message is rejected: the importer would hash the body,
  which a notification does not carry, so the ids could not match.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr
from typing import Any

import orjson

from producers.parsers._common import reject
from producers.parsers.base import ParseResult
from producers.parsers.email import _parse_stored, _Stored
from producers.resolution import Resolver

SOURCE = "graph:message"
BODY_FIELDS = frozenset({"body", "uniqueBody", "bodyPreview"})


def _clean(value: object) -> str:
    """One header line: no CR/LF (a value must never start a header of its own)."""
    return " ".join(str(value).split())


def _address(person: object) -> str | None:
    mailbox = person.get("emailAddress") if isinstance(person, dict) else None
    if not isinstance(mailbox, dict) or not isinstance(mailbox.get("address"), str):
        return None
    name = mailbox.get("name")
    return formataddr((_clean(name) if isinstance(name, str) else "", _clean(mailbox["address"])))


def _addresses(people: object) -> str | None:
    found = (
        [a for a in (_address(p) for p in people or []) if a] if isinstance(people, list) else []
    )
    return ", ".join(found) or None


def _date(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return format_datetime(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def header_block(item: Mapping[str, Any]) -> bytes:
    """The RFC 5322 header block of a Graph message (no body)."""
    synthesised = {
        "Message-ID": item.get("internetMessageId"),
        "From": _address(item.get("from")),
        "Sender": _address(item.get("sender")),
        "To": _addresses(item.get("toRecipients")),
        "Cc": _addresses(item.get("ccRecipients")),
        "Reply-To": _addresses(item.get("replyTo")),
        "Date": _date(item.get("sentDateTime")) or _date(item.get("receivedDateTime")),
        "Subject": item.get("subject"),
    }
    lines: list[str] = []
    present: set[str] = set()
    for header in item.get("internetMessageHeaders") or []:
        if isinstance(header, dict) and isinstance(header.get("name"), str):
            name = _clean(header["name"]).rstrip(":")
            if name and ":" not in name:
                lines.append(f"{name}: {_clean(header.get('value', ''))}")
                present.add(name.lower())
    for name, value in synthesised.items():
        if isinstance(value, str) and value and name.lower() not in present:
            lines.append(f"{name}: {_clean(value)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_message(
    item: Mapping[str, Any], resolver: Resolver, *, origin: str
) -> Iterator[ParseResult]:
    """The events of one Graph message resource (none for a draft), or one Rejected."""
    # What a dead letter keeps: the resource without its body (never stored, even rejected).
    raw = orjson.dumps({k: v for k, v in item.items() if k not in BODY_FIELDS})
    if item.get("isDraft") is True:
        return
    message_id = item.get("internetMessageId")
    if not isinstance(message_id, str) or not message_id.strip():
        yield reject(origin, raw, "internetMessageId", "missing (the event id is made from it)")
        return
    headers = header_block(item)
    yield from _parse_stored(
        iter([_Stored(origin, raw, headers)]),
        resolver,
        source=SOURCE,
        recorded_at=None,
        list_bulk_is_auto_reply=False,
    )
