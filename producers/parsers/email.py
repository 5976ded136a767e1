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

Only the headers are read (the body is read only to hash it for a message without a
Message-ID), by ``email_header_block`` from the raw bytes: the answers of the stdlib ``email``
package (``policy=default``), whose header objects (shared between messages) it uses where a
value needs them. An mbox is read as a stream of records (``email_mbox``), a big one in chunks
parsed by worker processes and merged in file order; Maildir folders go through ``mailbox``.
"""

from __future__ import annotations

import mailbox
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import Policy
from email.policy import default as default_policy
from functools import lru_cache
from multiprocessing import get_context
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from producers.parsers._common import files
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.parsers.email_header_block import HeaderReader
from producers.parsers.email_headers import (
    Headers,
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
from producers.parsers.email_mbox import chunk_bounds, mbox_records
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


class _IndexedMessage(EmailMessage):
    """An ``EmailMessage`` that finds its headers by name through an index.

    ``Message.get``/``get_all`` scan every header, lower-casing each name, on every call; a
    message is asked for a dozen names among its ~40 headers. The index (lower-cased name → the
    raw headers of that name, in order) is built on first use, and again if the number of
    headers changed (the parser's messages are never modified afterwards). The answers are
    what ``Message`` answers: the policy's ``header_fetch_parse`` of the same raw headers.
    """

    def __init__(self, policy: Policy = default_policy) -> None:
        super().__init__(policy)
        self._index: dict[str, list[tuple[str, Any]]] = {}
        self._indexed = -1

    def _named(self, name: str) -> list[tuple[str, Any]]:
        if self._indexed != len(self):
            index: dict[str, list[tuple[str, Any]]] = {}
            for key, value in self.raw_items():
                index.setdefault(key.lower(), []).append((key, value))
            self._index, self._indexed = index, len(self)
        return self._index.get(name.lower(), [])

    def get(self, name: str, failobj: Any = None) -> Any:
        found = self._named(name)
        if not found:
            return failobj
        key, value = found[0]
        return self.policy.header_fetch_parse(key, value)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        found = self._named(name)
        if not found:
            return failobj
        return [self.policy.header_fetch_parse(key, value) for key, value in found]


class _SharedHeaders(HeaderRegistry):
    """The default policy's header factory, remembering the headers it built lately.

    Building a header object is a deterministic function of its name and raw value, and the
    objects are never modified, so one object can serve every message with the same header: a
    list's List-Id, List-Post, Precedence and To, an author's From, are parsed once, not once per
    message. The stdlib also makes a new class on every call; here once per name.
    """

    def __init__(self) -> None:
        super().__init__()
        self._build = lru_cache(maxsize=_SHARED_HEADERS)(super().__call__)
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def __call__(self, name: str, value: str) -> BaseHeader:
        return self._build(name, value)


_SHARED_HEADERS = 1024
_REGISTRY = _SharedHeaders()
_POLICY = default_policy.clone(header_factory=_REGISTRY)
_HEADER_PARSER = BytesParser(_IndexedMessage, policy=_POLICY)


def _stdlib_headers(raw: bytes) -> EmailMessage:
    # Headers only: the body is never stored, and parsing it (MIME parts, attachments) was most
    # of the time. The header block ends at the first empty line; the stdlib's parser ends the
    # headers there or earlier (at a line that is no header), so it reads the same headers.
    msg = _HEADER_PARSER.parsebytes(_header_block(raw), headersonly=True)
    assert isinstance(msg, EmailMessage)  # policy=default always builds one
    return msg


_READ_ALWAYS = (
    "Date",
    "Message-ID",
    "References",
    "In-Reply-To",
    "Subject",
    "From",
    "Reply-To",
    "To",
    "Cc",
    "List-Id",
    "List-Post",
    "Mailing-List",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "Precedence",
)
"""The headers read from every message (Received only when Date is missing: not here)."""
_READER = HeaderReader(_REGISTRY, _stdlib_headers, often=_READ_ALWAYS)


def _header_block(raw: bytes) -> bytes:
    """The message's header block, through the empty line that ends it (all of it if none)."""
    match = _HEADER_END.search(raw)
    return raw[: match.end()] if match else raw


def _read_headers(raw: bytes) -> Headers:
    """The headers of a message's bytes, as the stdlib's parser (policy=default) reads them."""
    return _READER.read(raw)


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
    msg = _read_headers(raw)
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


MBOX_CHUNK_BYTES = 1 << 20
"""Bytes of mbox one worker process reads per task (cut at From_ lines)."""
MBOX_PARALLEL_FROM = 4 << 20
"""Smaller mboxes are read in this process: starting workers would cost more than it saves."""


def parse_mbox(
    path: Path,
    resolver: Resolver,
    *,
    recorded_at: datetime | None = None,
    list_bulk_is_auto_reply: bool = False,
    workers: int | None = None,
    chunk_bytes: int = MBOX_CHUNK_BYTES,
) -> Iterator[ParseResult]:
    """Parse every message of an mbox file (``origin`` is ``file.mbox#N``, N from 1).

    The Rejected bytes of a message include its From_ line, so a fixed record can be appended
    to an mbox again as it was.

    The file is read as a stream, in chunks of about ``chunk_bytes`` cut at From_ lines, by
    ``workers`` processes, this one included (default: one per usable CPU, at most 8, from
    ``MBOX_PARALLEL_FROM`` bytes on, else this process alone); the results are merged in file
    order, so they are the same whatever the number of workers.
    """
    items = _mbox_items(
        path,
        _MboxJob(resolver, recorded_at, list_bulk_is_auto_reply),
        workers=workers,
        chunk_bytes=chunk_bytes,
    )
    return fan_out(items)


@dataclass(frozen=True, slots=True)
class _MboxJob:
    """What parsing one chunk of an mbox needs (sent once to each worker process)."""

    resolver: Resolver
    recorded_at: datetime | None
    list_bulk_is_auto_reply: bool

    def chunk(
        self, path: Path, start: int, end: int
    ) -> list[tuple[ParseResult, MessageInfo | None]]:
        """The messages of ``path`` in ``[start, end)``, origins numbered from 1 in the chunk."""
        out: list[tuple[ParseResult, MessageInfo | None]] = []
        for number, raw in enumerate(mbox_records(path, start, end), start=1):
            first, _, message = raw.partition(b"\n")
            # Every record starts with its From_ line (email_mbox): the message follows it.
            result, info = _message_event_info(
                message,
                self.resolver,
                origin=str(number),
                source="email:mbox",
                from_line=first.decode("latin-1"),
                recorded_at=self.recorded_at,
                list_bulk_is_auto_reply=self.list_bulk_is_auto_reply,
            )
            if isinstance(result, Rejected):  # carry the full original record
                result = Rejected(result.reason, result.origin, raw)
            out.append((result, info))
        return out


_WORKER_JOB: _MboxJob | None = None


def _start_worker(job: _MboxJob) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _worker_chunk(task: tuple[str, int, int]) -> list[tuple[ParseResult, MessageInfo | None]]:
    if _WORKER_JOB is None:  # pragma: no cover - the pool's initializer always runs first
        raise RuntimeError("mbox worker started without its job")
    path, start, end = task
    return _WORKER_JOB.chunk(Path(path), start, end)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _mbox_items(
    path: Path, job: _MboxJob, *, workers: int | None, chunk_bytes: int
) -> Iterator[tuple[ParseResult, MessageInfo | None]]:
    if not path.is_file():
        raise ShinraiError(f"{path}: not an mbox file")
    try:
        bounds = chunk_bounds(path, max(1, chunk_bytes))
        size = path.stat().st_size
    except OSError as exc:
        raise ShinraiError(f"{path}: cannot read mbox: {exc}") from exc
    if workers is None:
        workers = min(_usable_cpus(), 8) if size >= MBOX_PARALLEL_FROM else 1
    workers = min(workers, len(bounds))
    try:
        if workers > 1:
            chunks = _pooled_chunks(path, job, bounds, workers - 1)
        else:
            chunks = (job.chunk(path, start, end) for start, end in bounds)
        number = 0
        for chunk in chunks:
            for result, info in chunk:
                number += 1
                origin = f"{path.name}#{number}"
                if isinstance(result, Rejected):
                    yield Rejected(result.reason, origin, result.raw), info
                else:
                    yield Parsed(result.event, origin), info
    except OSError as exc:
        raise ShinraiError(f"{path}: cannot read mbox: {exc}") from exc


_Chunk = list[tuple[ParseResult, MessageInfo | None]]


def _pooled_chunks(
    path: Path, job: _MboxJob, bounds: list[tuple[int, int]], helpers: int
) -> Iterator[_Chunk]:
    """Every chunk's results in file order, parsed by ``helpers`` worker processes and this one.

    The workers take chunks from the front; this process, whenever the next chunk in order is
    not parsed yet, parses the last chunk nobody has taken. So it works while the workers start
    (a spawned interpreter imports the parser: ~0.3 s of CPU) instead of waiting, and one core
    needs no worker of its own.
    """
    # spawn, not fork: the caller may hold threads (a chdb sink, a Kafka producer).
    pool = get_context("spawn").Pool(helpers, _start_worker, (job,))
    try:
        waiting = deque(range(len(bounds)))
        sent: dict[int, AsyncResult[_Chunk]] = {}
        parsed: dict[int, _Chunk] = {}
        for index in range(len(bounds)):
            while index not in parsed:
                while waiting and len(sent) < 2 * helpers:  # a queued task for every worker
                    task = waiting.popleft()
                    sent[task] = pool.apply_async(_worker_chunk, ((str(path), *bounds[task]),))
                result = sent.get(index)
                if result is not None and (result.ready() or not waiting):
                    parsed[index] = result.get()
                    del sent[index]
                elif waiting:
                    last = waiting.pop()
                    parsed[last] = job.chunk(path, *bounds[last])
                else:  # pragma: no cover - every chunk is sent, parsed here or done
                    raise RuntimeError(f"mbox chunk {index} was never parsed")
            yield parsed.pop(index)
    finally:
        pool.terminate()
        pool.join()


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
