"""Follow IMAP folders: every new message becomes events on the same edge as ``shinrai produce``.

One follower per (mailbox, folder), each with its own connection (IDLE watches the selected
folder only) and its own thread (imapclient is blocking). A follower loops:

1. connect (TLS by default, an optional CA file; password or XOAUTH2 token from the configured
   secret source), ``SELECT`` the folder read-only;
2. compare the folder's UIDVALIDITY with the checkpoint: unchanged → fetch the UIDs above the
   checkpointed one; changed (the folder was recreated or the server renumbered it) → read the
   whole folder again: event ids come from Message-IDs and the checkpoint store remembers every
   id the broker acknowledged, so a resync sends only what was never sent;
3. fetch in batches (``BODY.PEEK[]``: the message is not marked seen), parse each message with
   the e-mail parser (``producers.parsers.email``: same ids, same direction rules, a staff
   message reaching several clients fans out to one event per client), publish the batch, wait
   for the broker's acknowledgement, THEN commit the batch's highest UID and its event ids;
4. wait for news: ``IDLE`` when the server offers it (re-issued every few minutes, as RFC 2177
   asks), otherwise ``NOOP`` every ``poll_interval_s``; then go to 2.

Errors: before the first successful sync a refused login, an untrusted certificate or a missing
folder stop the connector with one clear line (``ConnectorFailed``): a configuration mistake
should not be retried forever. Afterwards every error (server restart, network, broker down,
a token that expired) is logged in one line, counted, and retried with exponential backoff.

Never logged: passwords and tokens (registered for redaction when read), message bodies and
subjects (a rejected message's bytes go to the dead-letter topic only).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from producers.connectors.checkpoints import Checkpoints
from producers.connectors.config import MailboxSource
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.parsers.email import _message_event_info
from producers.parsers.email_threads import MessageInfo, fan_out
from producers.resolution import Resolver
from shinrai.errors import ConfigError, ShinraiError
from shinrai.logging import get_logger

_log = get_logger("producers.connectors.imap")

IDLE_RENEW_S = 25 * 60  # RFC 2177: re-issue IDLE at least every 29 minutes
IDLE_SLICE_S = 1.0  # how often an idling follower looks at the stop flag
CONNECT_TIMEOUT_S = 30.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 60.0

Publish = Callable[[Sequence[ParseResult]], None]
"""Send a batch through the producer edge and return once the broker acknowledged all of it."""

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: messages of a first sync read so far (label: mailbox/folder)."""


class Ledger(Protocol):
    """What the follower asks the topic to recover a batch interrupted by a crash."""

    def end_offsets(self) -> dict[int, int]:
        """The end offset of every partition of the events topic now."""
        ...

    def sent_since(self, since: dict[int, int], event_ids: set[str]) -> set[str]:
        """Which of ``event_ids`` are on the events topic at or after ``since``."""
        ...


class ConnectorFailed(ConfigError):
    """A source cannot work as configured (login refused, certificate untrusted, no such folder)."""


@dataclass
class FolderStats:
    """What one follower did; read by the metrics collector (plain ints, set by one thread)."""

    messages: int = 0  # messages read and acknowledged
    events: int = 0  # events published (a fanned-out message counts once per client)
    rejected: int = 0
    skipped: int = 0  # events already published before (resync, same message elsewhere)
    errors: int = 0
    lag: int = 0  # messages on the server past the checkpoint, not yet acknowledged
    last_sync: float = 0.0  # unix time of the last completed sync
    connected: bool = False


def checkpoint_keys(folder: str) -> tuple[str, str]:
    """The checkpoint keys of one folder: its UIDVALIDITY and its last acknowledged UID."""
    return f"{folder}:uidvalidity", f"{folder}:uid"


def pending_key(folder: str) -> str:
    """The key of a folder's batch in flight: its event ids and the topic's end offsets."""
    return f"{folder}:pending"


def open_connection(source: MailboxSource, *, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """Connect and log in; raise ``ConnectorFailed`` for a refused login or certificate.

    Network errors (refused, reset, timeout) propagate as ``OSError`` for the caller to retry.
    """
    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    where = f"mailbox {source.name!r} ({source.host}:{source.effective_port})"
    context: ssl.SSLContext | None = None
    if source.tls:
        try:
            context = ssl.create_default_context(
                cafile=str(source.ca_file) if source.ca_file else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConnectorFailed(
                f"{where}: ca_file {source.ca_file}: cannot load ({exc})"
            ) from None
    try:
        client = IMAPClient(
            source.host,
            port=source.effective_port,
            ssl=source.tls,
            ssl_context=context,
            timeout=timeout,
        )
    except ssl.SSLCertVerificationError as exc:
        raise ConnectorFailed(
            f"{where}: the server's certificate is not trusted ({exc.verify_message})",
            hint="set ca_file to the CA that signed it (or fix host to the certificate's name)",
        ) from None
    except ssl.SSLError as exc:
        raise ConnectorFailed(
            f"{where}: TLS handshake failed ({exc.reason or exc})",
            hint="is this the server's TLS port? (tls: false only for a plaintext test server)",
        ) from None
    client.normalise_times = False  # INTERNALDATE with its offset, not naive local time
    secret = source.secret()
    try:
        if source.auth == "xoauth2":
            client.oauth2_login(source.user, secret)
        else:
            client.login(source.user, secret)
    except LoginError as exc:
        _close(client)
        detail = _text(exc)
        field = f"password_env {source.password_env}" if source.password_env else "password_command"
        raise ConnectorFailed(
            f"{where}: login refused for {source.user} ({detail})",
            hint=f"check {field} (auth: {source.auth})",
        ) from None
    return client


def _text(exc: BaseException) -> str:
    """An imaplib/imapclient error as one short line (they often carry bytes)."""
    arg = exc.args[0] if exc.args else exc
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split())[:200]


def _close(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # already broken: closing is best effort
        with contextlib.suppress(Exception):
            client.shutdown()


class FolderFollower:
    """Follows one folder of one mailbox until ``stop`` is set (``run`` blocks; use a thread)."""

    def __init__(
        self,
        source: MailboxSource,
        folder: str,
        *,
        resolver: Resolver,
        publish: Publish,
        checkpoints: Checkpoints,
        stop: threading.Event,
        batch_size: int = 200,
        progress: Progress | None = None,
        progress_min: int = 500,
        backoff_max_s: float = BACKOFF_MAX_S,
        ledger: Ledger | None = None,
    ) -> None:
        self.source = source
        self.folder = folder
        self.label = f"{source.name}/{folder}"
        self.stats = FolderStats()
        self._resolver = resolver
        self._publish = publish
        self._checkpoints = checkpoints
        self._stop = stop
        self._batch = batch_size
        self._progress = progress
        self._progress_min = progress_min
        self._backoff_max = backoff_max_s
        self._synced_once = False
        self._ledger = ledger

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Sync, wait for news, sync again; back off on errors. Returns when ``stop`` is set."""
        delay = BACKOFF_FIRST_S
        while not self._stop.is_set():
            client: Any = None
            try:
                client = open_connection(self.source)
                self.stats.connected = True
                idle = client.has_capability("IDLE")
                while not self._stop.is_set():
                    self._sync(client)
                    delay = BACKOFF_FIRST_S  # a completed sync resets the backoff
                    self._wait(client, idle)
            except ConnectorFailed:
                if not self._synced_once:
                    raise
                self._count_error("refused")  # e.g. a password changed under a running connector
            except ShinraiError as exc:  # broker unavailable, a secret command failing
                self._count_error("publish", exc)
            except Exception as exc:  # network, server restart, protocol: retry
                self._count_error("server", exc)
            finally:
                self.stats.connected = False
                if client is not None:
                    _close(client)
            if self._stop.wait(delay * random.uniform(0.8, 1.2)):
                break
            delay = min(delay * 2, self._backoff_max)

    def _count_error(self, kind: str, exc: BaseException | None = None) -> None:
        self.stats.errors += 1
        detail = f"{type(exc).__name__}: {_text(exc)}" if exc is not None else kind
        _log.warning("imap error, retrying", source=self.label, kind=kind, error=detail)

    def _wait(self, client: Any, idle: bool) -> None:
        """Block until the server reports a change, the poll interval passed, or stop."""
        if not idle:
            if not self._stop.wait(self.source.poll_interval_s):
                client.noop()
            return
        client.idle()
        started = time.monotonic()
        try:
            while not self._stop.is_set() and time.monotonic() - started < IDLE_RENEW_S:
                asked = time.monotonic()
                responses = client.idle_check(timeout=IDLE_SLICE_S)
                if any(_is_change(r) for r in responses):
                    break
                if not responses and time.monotonic() - asked < IDLE_SLICE_S / 2:
                    # imapclient swallows EOF in idle_check and returns nothing at once: the
                    # server went away. idle_done() then raises, and the loop reconnects.
                    break
        finally:
            client.idle_done()

    # -- one sync ---------------------------------------------------------------------------------

    def _select(self, client: Any) -> dict[bytes, Any]:
        from imapclient.exceptions import IMAPClientError

        try:
            return dict(client.select_folder(self.folder, readonly=True))
        except IMAPClientError as exc:
            if self._synced_once:
                raise  # e.g. the folder is being recreated: retry
            raise ConnectorFailed(
                f"mailbox {self.source.name!r}: cannot open folder {self.folder!r} ({_text(exc)})",
                hint="check folders in the connect configuration (names are case-sensitive)",
            ) from None

    def _recover(self) -> None:
        """Settle a batch a crash interrupted between the broker's acknowledgement and the
        checkpoint: the ids found on the topic since the recorded offsets count as published,
        so the sync that follows sends only the others."""
        pending = self._checkpoints.get(self.source.name, pending_key(self.folder))
        if pending is None:
            return
        entry = json.loads(pending)
        found: set[str] = set()
        if self._ledger is not None:
            since = {int(p): int(o) for p, o in entry["offsets"].items()}
            found = self._ledger.sent_since(since, set(entry["ids"]))
        self._checkpoints.commit(
            self.source.name, {}, published=found, remove=[pending_key(self.folder)]
        )
        _log.info(
            "interrupted batch settled",
            source=self.label,
            already_sent=len(found),
            to_send=len(entry["ids"]) - len(found),
        )

    def _sync(self, client: Any) -> None:
        self._recover()
        info = self._select(client)
        validity = str(info[b"UIDVALIDITY"])
        validity_key, uid_key = checkpoint_keys(self.folder)
        name = self.source.name
        known = self._checkpoints.get(name, validity_key)
        last_uid = int(self._checkpoints.get(name, uid_key) or 0)
        if known != validity:
            if known is not None:
                _log.warning(
                    "UIDVALIDITY changed: reading the folder again (messages already sent "
                    "are recognised by their event id and not sent twice)",
                    source=self.label,
                    old=known,
                    new=validity,
                )
            last_uid = 0
        uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
        self.stats.lag = len(uids)
        total = len(uids)
        show = self._progress is not None and total >= self._progress_min
        for start in range(0, total, self._batch):
            if self._stop.is_set():
                return
            chunk = uids[start : start + self._batch]
            self._sync_batch(client, chunk, validity)
            self.stats.lag = total - start - len(chunk)
            if show and self._progress is not None:
                self._progress(self.label, start + len(chunk), total)
        if known != validity and not uids:
            self._checkpoints.commit(name, {validity_key: validity, uid_key: "0"})
        self._synced_once = True
        self.stats.last_sync = time.time()

    def _sync_batch(self, client: Any, uids: list[int], validity: str) -> None:
        fetched = client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        items: list[tuple[ParseResult, MessageInfo | None]] = []
        for uid in uids:
            data = fetched.get(uid)
            if data is None:  # expunged between SEARCH and FETCH: nothing to read
                continue
            raw = data.get(b"BODY[]") or b""
            arrived = data.get(b"INTERNALDATE")
            items.append(
                _message_event_info(
                    raw,
                    self._resolver,
                    origin=f"{self.label}#uid={uid}",
                    source=f"imap:{self.source.name}",
                    recorded_at=arrived
                    if isinstance(arrived, datetime) and arrived.tzinfo
                    else None,
                )
            )
        results = list(fan_out(items))
        ids = [r.event.event_id for r in results if isinstance(r, Parsed)]
        already = self._checkpoints.published(ids)
        fresh: list[ParseResult] = [
            r for r in results if isinstance(r, Rejected) or r.event.event_id not in already
        ]
        # Event-time order within the batch, as `shinrai produce` sends an archive.
        events = sorted(
            (r for r in fresh if isinstance(r, Parsed)),
            key=lambda r: (r.event.occurred_at, r.event.event_id),
        )
        fresh = [*events, *(r for r in fresh if isinstance(r, Rejected))]
        sent = [r.event.event_id for r in fresh if isinstance(r, Parsed)]
        pending = pending_key(self.folder)
        if sent and self._ledger is not None:
            # Before sending: what to look for, and from where, if we die before the commit.
            entry = {"ids": sent, "offsets": self._ledger.end_offsets()}
            self._checkpoints.commit(self.source.name, {pending: json.dumps(entry)})
        if fresh:
            self._publish(fresh)  # returns once the broker acknowledged every record
        validity_key, uid_key = checkpoint_keys(self.folder)
        self._checkpoints.commit(
            self.source.name,
            {validity_key: validity, uid_key: str(max(uids))},
            published=sent,
            remove=[pending],
        )
        self.stats.messages += len(items)
        self.stats.events += len(sent)
        self.stats.rejected += sum(1 for r in fresh if isinstance(r, Rejected))
        self.stats.skipped += len(results) - len(fresh)


def _is_change(response: object) -> bool:
    """An untagged IDLE response that calls for a sync: new or removed mail (``* 3 EXISTS``,
    ``EXPUNGE``), or trouble with the selected folder (``* NO``: Dovecot's answer when the folder
    was deleted under us, ``* BYE``): a fresh SELECT then sees the new UIDVALIDITY or fails."""
    if not isinstance(response, tuple) or len(response) < 2:
        return False
    return response[1] in (b"EXISTS", b"EXPUNGE", b"RECENT") or response[0] in (b"NO", b"BYE")


def check_reachable(source: MailboxSource) -> None:
    """Resolve the host once so a typo is a clear error, not an endless retry."""
    try:
        socket.getaddrinfo(source.host, source.effective_port)
    except socket.gaierror as exc:
        raise ConnectorFailed(
            f"mailbox {source.name!r}: host {source.host!r} does not resolve ({exc.strerror})"
        ) from None
