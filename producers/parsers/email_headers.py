"""What an e-mail's headers say: ids and threading, dates, automation flags, the real sender.

Pure functions over a message's headers (``Headers``: an ``email.message.EmailMessage`` parsed with
``policy=default``, or the cheaper ``email_header_block.HeaderBlock`` giving the same answers). Every
header read goes through ``header_text``, which never raises: real archives contain headers the
stdlib's structured parser chokes on, and one bad header must not take the whole message down.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Protocol

from schemas.events import Flag

_MSG_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")
_BARE_ID = re.compile(r"^\s*([^<>\s@]+@[^<>\s@]+)\s*$")
_FROM_LINE_DATE = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(?P<day>\d{1,2})\s+"
    r"(?P<time>\d{1,2}:\d{2}(?::\d{2})?)\s+(?:(?P<zone>[A-Z]{2,5}|[+-]\d{4})\s+)?(?P<year>\d{4})"
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_VIA = re.compile(r"\svia\s", re.IGNORECASE)


class Headers(Protocol):
    """What these functions read of a message: an ``email.message.EmailMessage`` (parsed with
    ``policy=default``) or an ``email_header_block.HeaderBlock``, which answers the same."""

    def get(self, name: str, failobj: Any = None) -> Any:
        """The first ``name`` header, or ``failobj``."""

    def get_all(self, name: str, failobj: Any = None) -> Any:
        """Every ``name`` header, or ``failobj`` when there is none."""


AUTO_PRECEDENCE = frozenset({"bulk", "junk", "auto_reply", "auto-reply"})
LIST_PRECEDENCE = frozenset({"bulk", "list"})
"""Precedence values a list manager stamps on every post (ezmlm: bulk, Mailman: list)."""


def clean(text: str) -> str:
    """``text`` safe to serialise: undecodable bytes (surrogate escapes) become U+FFFD, no CR/LF."""
    safe = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(safe.split())


def header_text(msg: Headers, name: str) -> str | None:
    """The (decoded) text of the first ``name`` header, or None when missing or unreadable."""
    try:
        value = msg.get(name)
        return None if value is None else str(value)
    except Exception:  # the stdlib's header parser can raise on hostile input; treat as absent
        return None


def header_texts(msg: Headers, name: str) -> list[str]:
    """The texts of every ``name`` header, in message order (unreadable ones skipped)."""
    out: list[str] = []
    try:
        values = msg.get_all(name) or []
    except Exception:
        return out
    for value in values:
        try:
            out.append(str(value))
        except Exception:
            continue
    return out


# -- message ids and threads ----------------------------------------------------------------------


def normalise_id(token: str) -> str:
    """A Message-ID without brackets; the domain part lower-cased (it is case-insensitive)."""
    local, at, domain = token.strip().strip("<>").rpartition("@")
    return f"{local}@{domain.lower()}" if at else token.strip().strip("<>")


def message_ids(value: str | None) -> list[str]:
    """Every ``<id>`` in a Message-ID / In-Reply-To / References value, normalised, in order.

    Ids without brackets (old mailers, web-archive front-ends) count too: a value with no
    ``<id>`` at all is read as whitespace- or comma-separated bare ``local@domain`` tokens.
    """
    if not value:
        return []
    ids = [normalise_id(m) for m in _MSG_ID.findall(value)]
    if not ids:
        for token in re.split(r"[\s,]+", value):
            bare = _BARE_ID.match(token)
            if bare:
                ids.append(normalise_id(bare.group(1)))
    return ids


def thread_ids(msg: Headers) -> tuple[str | None, list[str]]:
    """(own Message-ID, ancestors root first): References in order, then In-Reply-To.

    The last ancestor is the direct parent: In-Reply-To names it when References does not
    (web-archive front-ends and some mailers send a bare In-Reply-To only). Duplicates and the
    message's own id are dropped (a loop in the headers must not make it its own ancestor).
    """
    own = next(iter(message_ids(header_text(msg, "Message-ID"))), None)
    ancestors: list[str] = []
    for name in ("References", "In-Reply-To"):
        for mid in message_ids(" ".join(header_texts(msg, name))):
            if mid != own and mid not in ancestors:
                ancestors.append(mid)
    return own, ancestors


def thread_root(msg: Headers) -> tuple[str | None, str | None]:
    """(root id, own Message-ID): the first References id, else In-Reply-To, else own id.

    The first References entry is the thread's root by RFC 5322 convention, so every message of
    a thread shares it even when the root itself is missing from the archive.
    """
    own = next(iter(message_ids(header_text(msg, "Message-ID"))), None)
    for name in ("References", "In-Reply-To"):
        ids = message_ids(" ".join(header_texts(msg, name)))
        if ids:
            return ids[0], own
    return own, own


def digest(*parts: str) -> str:
    """A short, stable hex digest of ``parts`` (NUL-joined, so boundaries cannot collide)."""
    data = "\x00".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()[:32]


# -- dates ----------------------------------------------------------------------------------------


def parse_date(value: str | None) -> datetime | None:
    """An aware UTC datetime from an RFC 5322 date, or None.

    ``-0000`` ("zone unknown") yields a naive value from the stdlib; RFC 5322 defines it as UTC.
    """
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def received_date(msg: Headers) -> datetime | None:
    """The date of the OLDEST (bottom-most) parseable Received header.

    The bottom hop is nearest the sender's submission, and it is the hop every archiver of the
    same list shares (the top hops are each archiver's own), so all copies get the same time.
    """
    for value in reversed(header_texts(msg, "Received")):
        _, sep, when = value.rpartition(";")
        parsed = parse_date(when) if sep else None
        if parsed is not None:
            return parsed
    return None


def from_line_date(from_line: str | None) -> datetime | None:
    """The date of an mbox ``From_`` line (asctime form, UTC unless a zone is given)."""
    if not from_line:
        return None
    match = _FROM_LINE_DATE.search(from_line)
    if match is None:
        return None
    hms = [int(p) for p in match["time"].split(":")] + [0]
    zone = match["zone"] or ""
    try:
        naive = datetime(
            int(match["year"]),
            _MONTHS.index(match["mon"].lower()) + 1,
            int(match["day"]),
            hms[0],
            hms[1],
            hms[2],
        )
    except ValueError:
        return None
    if re.fullmatch(r"[+-]\d{4}", zone):
        return parse_date(naive.strftime(f"%a, %d %b %Y %H:%M:%S {zone}"))
    return naive.replace(tzinfo=UTC)


# -- automation -----------------------------------------------------------------------------------


def _token(value: str | None) -> str:
    """First token of a header value, lower-cased, without parameters or comments."""
    if value is None:
        return ""
    return re.split(r"[;(\s]", value.strip(), maxsplit=1)[0].lower()


def is_list_message(msg: Headers) -> bool:
    """True when a list manager distributed the message (List-Id, or ezmlm's Mailing-List)."""
    return header_text(msg, "List-Id") is not None or header_text(msg, "Mailing-List") is not None


def automation_flags(msg: Headers, *, list_bulk_is_auto_reply: bool = False) -> set[Flag]:
    """Flags per DESIGN §3: AUTO_REPLY for automated mail, MAILING_LIST for list traffic.

    Automated: Auto-Submitted other than "no", any X-Autoreply / X-Autorespond, Precedence
    bulk/junk/auto_reply. A List-Id alone is not an auto-reply. List managers (ezmlm, Mailman)
    stamp ``Precedence: bulk``/``list`` on EVERY post they distribute, so on a list message that
    value says nothing about the author and is ignored unless ``list_bulk_is_auto_reply``;
    ``junk`` and ``auto_reply`` still count.
    """
    flags: set[Flag] = set()
    listed = is_list_message(msg)
    if listed:
        flags.add(Flag.MAILING_LIST)
    auto_submitted = header_text(msg, "Auto-Submitted")
    if auto_submitted is not None and _token(auto_submitted) not in ("", "no"):
        flags.add(Flag.AUTO_REPLY)
    for name in ("X-Autoreply", "X-Autorespond"):
        value = header_text(msg, name)
        if value is not None and _token(value) != "no":
            flags.add(Flag.AUTO_REPLY)
    precedence = _token(header_text(msg, "Precedence"))
    if precedence in AUTO_PRECEDENCE and not (
        listed and precedence in LIST_PRECEDENCE and not list_bulk_is_auto_reply
    ):
        flags.add(Flag.AUTO_REPLY)
    return flags


# -- people ---------------------------------------------------------------------------------------


def addresses(msg: Headers, *names: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) of every mailbox in the ``names`` headers."""
    pairs: list[tuple[str, str]] = []
    for name in names:
        try:
            headers = msg.get_all(name) or []
        except Exception:
            continue
        for header in headers:
            pairs.extend(_mailboxes(header))
    out: list[tuple[str, str]] = []
    for display, addr in pairs:
        addr = addr.strip().lower()
        if "@" in addr and not addr.startswith("@") and not addr.endswith("@"):
            out.append((clean(display), addr))
    return out


def _mailboxes(header: object) -> list[tuple[str, str]]:
    """Mailboxes of one address header: the structured parse, else ``getaddresses`` on its text.

    The structured parse comes first because it decodes RFC 2047 display names without
    re-splitting them ("Doe, John" stays one name); it can fail on hostile input.
    """
    try:
        found = [(a.display_name, a.addr_spec) for a in header.addresses]  # type: ignore[attr-defined]
        if found:
            return found
    except Exception:
        pass
    try:
        return getaddresses([str(header)])
    except Exception:
        return []


def list_addresses(msg: Headers) -> list[str]:
    """The addresses of the list that distributed the message (List-Post, List-Id), lower-cased.

    ``List-Id: <users.lists.example.com>`` names the list ``users@lists.example.com`` (RFC 2919
    ids are the posting address with the ``@`` turned into a dot, for Mailman and ezmlm alike).
    """
    found: list[str] = []
    post = list_post_address(msg)
    if post:
        found.append(post)
    list_id = header_text(msg, "List-Id")
    if list_id:
        match = re.search(r"<\s*([^<>\s@]+)\s*>", list_id) or re.fullmatch(
            r"\s*([^<>\s@]+)\s*", list_id
        )
        if match:
            local, dot, domain = match.group(1).lower().partition(".")
            address = f"{local}@{domain}"
            if dot and "." in domain and address not in found:
                found.append(address)
    return found


def list_post_address(msg: Headers) -> str | None:
    """The list's posting address from ``List-Post: <mailto:...>``, lower-cased."""
    value = header_text(msg, "List-Post")
    if not value:
        return None
    match = re.search(r"mailto:([^>?\s]+)", value, re.IGNORECASE)
    return match.group(1).lower() if match else None


def real_sender(msg: Headers) -> tuple[str, str] | None:
    """(display name, address) of who really wrote the message.

    DMARC From-munging (Mailman, Google Groups) rewrites ``From:`` to ``"Name via List"
    <list@...>`` and moves the author to ``Reply-To:``. When From is munged (display name "... via
    ..." or From is the list's own posting address) and Reply-To names someone other than the
    list, that someone is the sender. Otherwise From is. None when no usable From exists.
    """
    senders = addresses(msg, "From")
    if not senders:
        return None
    display, addr = senders[0]
    list_addr = list_post_address(msg)
    munged = bool(_VIA.search(f" {display} ")) or (list_addr is not None and addr == list_addr)
    if munged:
        for reply_display, reply_addr in addresses(msg, "Reply-To"):
            if reply_addr not in (addr, list_addr):
                return reply_display, reply_addr
    return display, addr
