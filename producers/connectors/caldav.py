"""Follow one CalDAV calendar: held meetings with a client attendee become meeting events.

The calendar's resources are read with the ``caldav`` library and every resource is parsed by
the .ics importer (``producers.parsers.ics.parse_bytes``), so recurrences are expanded the same
way and the event ids are the same: importing the calendar's .ics export and following the live
calendar never count a meeting twice (the engine ignores a repeated event id).

How changes are found (``CalDAVFeed``):

- **sync-token** (RFC 6578 sync-collection) where the server supports it: each poll asks for
  what changed since the last token; an expired token (DAV:valid-sync-token) means one full
  listing, then tokens again.
- **ctag / etag** otherwise: the collection's ``getctag`` (a CalendarServer extension) skips a
  poll when nothing changed; else a depth-1 PROPFIND lists every resource's etag and only the
  resources whose etag changed are fetched.

What is published (``CalendarTracker``): an occurrence is published once it is *held* (it ended
at or before now) and has a client attendee, which is exactly ``Flag.HELD`` + ``CLIENT_ATTENDEE``
of ``ics.parse_bytes(..., as_of=now)``. A meeting still in the future is never published, so a
move or a cancellation before it takes place needs no correction at all. Occurrences that ended
up to ``history`` before now are looked at (first sync, and after a restart).

Cancellations and moves of a meeting that was already published: the wire contract (events v1/v2)
has no retraction of an event, and the engine ignores a second event with the same id. A
published occurrence that disappears (STATUS:CANCELLED, resource deleted, or DTSTART moved, which
gives a non-recurring meeting a new id) is therefore answered with a *cancellation notice*: the
same meeting with ``Flag.CANCELLED`` instead of ``Flag.HELD`` under the id
``ics-cancel:<original id>``. The engine treats it as a meeting that did not take place (it
opens and fulfils nothing) and it is kept in the event log and the interactions table; the
original event keeps whatever effect it had (gap: an engine-side retraction is needed to undo
it). A moved meeting that has ended is published under its new id. A moved *instance* of a
recurring series keeps the id of its slot (as in the importer): an already published one cannot
be re-timed on the wire; that is logged and counted (``unrepresentable``).

State (checkpoint key ``calendar_state``, JSON): the ids published per resource, with the event
each one was, pruned once they fall out of ``history``. Calendar data is never stored: a restart
lists the calendar again (the sync token is only good with the data it came with), publishes
what ended while it was down, and recognises resources deleted meanwhile. Secrets are read when a
connection is opened and registered for redaction; log lines carry no calendar data.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from caldav.davclient import DAVClient
from caldav.elements import dav
from caldav.elements.base import ValuedBaseElement
from caldav.lib import error as dav_error
from prometheus_client import CollectorRegistry, Counter, Gauge

from producers.connectors.config import CalendarSource
from producers.parsers import ics
from producers.parsers._common import readable_id
from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.resolution import Resolver
from schemas.events import Flag, InteractionEvent
from shinrai.errors import ConfigError
from shinrai.logging import get_logger

__all__ = [
    "CalDAVFeed",
    "CalendarMetrics",
    "CalendarTracker",
    "Changes",
    "Checkpoints",
    "Resource",
    "follow_calendar",
]

log = get_logger("shinrai.connect.caldav")

HISTORY = timedelta(days=7)
"""How far back a first sync (or a restart) looks for held meetings: the engine's duplicate
window, beyond which it cannot tell an old event from a repeat and dead-letters it. Older history
is imported from the calendar's .ics export (``shinrai produce --format ics``, same ids)."""
STATE_KEY = "calendar_state"
CANCEL_PREFIX = "ics-cancel"
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 300.0
REQUEST_TIMEOUT_S = 30


class Checkpoints(Protocol):
    """Durable per-source key/value state (the connector runner's store)."""

    def get(self, source: str, key: str) -> str | None:
        """The stored value, or None."""

    def put(self, source: str, key: str, value: str) -> None:
        """Store ``value`` durably before returning."""


Publish = Callable[[Sequence[ParseResult]], None]


class CalendarMetrics:
    """Per-calendar Prometheus metrics (in the caller's registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["calendar"]
        self.published = Counter(
            "shinrai_calendar_events_total",
            "Meeting events published from a calendar, by kind (held, cancelled, rejected)",
            [*labels, "kind"],
            registry=registry,
        )
        self.syncs = Counter(
            "shinrai_calendar_syncs_total",
            "Completed polls of a calendar, by mode (sync-token, etag, unchanged)",
            [*labels, "mode"],
            registry=registry,
        )
        self.errors = Counter(
            "shinrai_calendar_errors_total", "Failed polls of a calendar", labels, registry=registry
        )
        self.unrepresentable = Counter(
            "shinrai_calendar_unrepresentable_total",
            "Changes to published meetings the wire contract cannot carry (re-timed instance)",
            labels,
            registry=registry,
        )
        self.last_sync = Gauge(
            "shinrai_calendar_last_sync_timestamp_seconds",
            "When a calendar was last polled successfully",
            labels,
            registry=registry,
        )
        self.resources = Gauge(
            "shinrai_calendar_resources", "Resources a calendar holds", labels, registry=registry
        )


@dataclass(frozen=True, slots=True)
class Resource:
    """One calendar object resource: its etag and its iCalendar bytes."""

    etag: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Changes:
    """What a poll found: changed resources, deleted hrefs, and (when known) every href present."""

    changed: Mapping[str, Resource] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()
    present: frozenset[str] | None = None  # a full listing: anything else is gone
    mode: str = "unchanged"


@dataclass(frozen=True, slots=True)
class Plan:
    """The results of one poll and the state to keep once they are published."""

    results: list[ParseResult]
    resources: dict[str, Resource]
    published: dict[str, dict[str, str]]
    held: int
    cancelled: int
    rejected: int
    unrepresentable: int


class CalendarTracker:
    """Pure: which events a calendar's resources call for at a given time (no I/O)."""

    def __init__(
        self,
        name: str,
        resolver: Resolver,
        *,
        history: timedelta = HISTORY,
        published: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.name = name
        self.resolver = resolver
        self.history = history
        self.resources: dict[str, Resource] = {}
        # href → {event id → the published event's JSON}: what a cancellation notice repeats.
        self.published: dict[str, dict[str, str]] = published or {}

    @classmethod
    def from_state(
        cls, name: str, resolver: Resolver, state: str | None, *, history: timedelta = HISTORY
    ) -> CalendarTracker:
        """A tracker resuming from a checkpoint (``state_json`` output) or from nothing."""
        published: dict[str, dict[str, str]] = {}
        if state:
            try:
                loaded = json.loads(state)
                published = {
                    str(href): {str(k): str(v) for k, v in ids.items()}
                    for href, ids in loaded["published"].items()
                }
            except (ValueError, KeyError, AttributeError, TypeError):
                # An unreadable checkpoint only costs re-publishing held meetings of the
                # history window: the engine ignores the repeated ids.
                log.warning("calendar checkpoint unreadable, starting afresh", calendar=name)
        return cls(name, resolver, history=history, published=published)

    def state_json(self) -> str:
        """The checkpoint: published ids per resource (never calendar data)."""
        return json.dumps({"version": 1, "published": self.published}, sort_keys=True)

    def plan(self, changes: Changes, now: datetime) -> Plan:
        """Apply ``changes`` and compute what to publish at ``now`` (state is not changed)."""
        window_start = now - self.history
        resources = dict(self.resources)
        published = {href: dict(ids) for href, ids in self.published.items()}
        gone = set(changes.deleted)
        if changes.present is not None:
            gone |= (set(resources) | set(published)) - changes.present
        gone -= set(changes.changed)
        results: list[ParseResult] = []
        held = cancelled = rejected = unrepresentable = 0

        for href in sorted(gone):
            resources.pop(href, None)
            for stored in published.pop(href, {}).values():
                event = InteractionEvent.model_validate_json(stored)
                if event.occurred_at >= window_start:
                    results.append(_cancellation(event, href, now))
                    cancelled += 1
        resources.update(changes.changed)

        for href, resource in sorted(resources.items()):
            current: dict[str, InteractionEvent] = {}
            for result in ics.parse_bytes(
                resource.data,
                self.resolver,
                name=href,
                window_start=window_start,
                window_end=now,
                as_of=now,
            ):
                if isinstance(result, Rejected):
                    if href in changes.changed:  # said once per version, not every poll
                        results.append(result)
                        rejected += 1
                elif {Flag.HELD, Flag.CLIENT_ATTENDEE} <= result.event.flags:
                    current[result.event.event_id] = result.event
            mine = published.setdefault(href, {})
            for event_id, event in current.items():
                if event_id not in mine:
                    results.append(Parsed(event, f"{self.name}:{href}"))
                    mine[event_id] = event.model_dump_json()
                    held += 1
            for event_id, stored in list(mine.items()):
                before = InteractionEvent.model_validate_json(stored)
                if before.occurred_at < window_start:
                    del mine[event_id]  # out of the window: nothing will be compared with it
                elif event_id not in current:
                    results.append(_cancellation(before, href, now))
                    del mine[event_id]
                    cancelled += 1
                elif _timing(current[event_id]) != _timing(before):
                    unrepresentable += 1
                    log.warning(
                        "published meeting re-timed; the event contract cannot carry the change",
                        calendar=self.name,
                        event_id=event_id,
                    )
                    mine[event_id] = current[event_id].model_dump_json()
            if not mine:
                del published[href]
        return Plan(results, resources, published, held, cancelled, rejected, unrepresentable)

    def commit(self, plan: Plan) -> None:
        """The plan's results are durable: keep its state."""
        self.resources = plan.resources
        self.published = plan.published


def _timing(event: InteractionEvent) -> tuple[datetime, float | None]:
    return event.occurred_at, event.duration_seconds


def _cancellation(event: InteractionEvent, href: str, now: datetime) -> Parsed:
    """The notice that a published meeting did not take place after all (see module doc)."""
    data = event.model_dump()
    data["event_id"] = readable_id(CANCEL_PREFIX, event.event_id)
    data["flags"] = (event.flags - {Flag.HELD}) | {Flag.CANCELLED}
    data["recorded_at"] = now
    return Parsed(InteractionEvent.model_validate(data), f"{href}#cancelled")


class CalendarAuthError(ConfigError):
    """The server refused the configured credentials."""


class _GetCtag(ValuedBaseElement):
    """CalendarServer's collection tag: changes whenever anything in the collection does."""

    tag = "{http://calendarserver.org/ns/}getctag"


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CalDAVFeed:
    """The changes of one calendar collection, poll after poll (blocking; run in a thread)."""

    def __init__(self, source: CalendarSource, *, use_sync_token: bool = True) -> None:
        scheme = urlsplit(source.url).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(f"calendars[{source.name!r}].url: expected an http(s) URL")
        if scheme == "http" and not _loopback(source.url):
            raise ConfigError(
                f"calendars[{source.name!r}].url: plain http is allowed on loopback only "
                "(the password would cross the network in clear); use https"
            )
        self.source = source
        verify: bool | str = str(source.ca_file) if source.ca_file is not None else True
        self._client = DAVClient(
            url=source.url,
            username=source.user,
            password=source.secret(),
            ssl_verify_cert=verify,
            timeout=REQUEST_TIMEOUT_S,
            enable_rfc6764=False,
            require_tls=False,  # checked above: http only on loopback
        )
        self._calendar = self._client.calendar(url=source.url)  # type: ignore[no-untyped-call]
        self.mode = "sync-token" if use_sync_token else "etag"
        self._token: str | None = None
        self._ctag: str | None = None
        self._etags: dict[str, str] = {}

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close()

    def poll(self) -> Changes:
        """What changed since the previous poll (the first poll lists everything)."""
        try:
            if self.mode == "sync-token":
                changes = self._by_sync_token()
                if changes is not None:
                    return changes
            return self._by_etag()
        except dav_error.AuthorizationError as exc:
            if exc.status == 401 or "Unauthorized" in str(exc.reason):
                raise CalendarAuthError(
                    f"calendar {self.source.name!r}: {self.source.url} refused user "
                    f"{self.source.user!r} (wrong password? check "
                    f"{self.source.password_env or 'password_command'})"
                ) from None
            raise

    def _by_sync_token(self) -> Changes | None:
        """Changes by RFC 6578 sync-collection; None when the server cannot do it."""
        token = self._token
        try:
            found = self._calendar.get_objects_by_sync_token(
                sync_token=token, load_objects=True, disable_fallback=True
            )
        except dav_error.DAVError as exc:
            expired = "{DAV:}valid-sync-token" in (exc.preconditions or [])
            refused = isinstance(exc, dav_error.AuthorizationError) and not expired
            if refused and (token is None or exc.status == 401):
                raise
            if token is not None:
                # An expired (or refused) token: list everything once, then tokens again.
                log.info("sync token refused, listing the calendar", calendar=self.source.name)
                self._token = None
                return self._by_sync_token()
            log.info("no sync-collection, using ctag/etag", calendar=self.source.name)
            self.mode = "etag"
            return None
        deleted = {str(url.canonical()) for url in found.deleted_urls}
        changed: dict[str, Resource] = {}
        for obj in found.objects:
            href = str(obj.url.canonical())
            if href in deleted:
                continue
            data = obj.data
            if data is None:  # gone between the report and the fetch
                deleted.add(href)
                continue
            etag = str((obj.props or {}).get(dav.GetEtag.tag, ""))
            changed[href] = Resource(etag, data.encode() if isinstance(data, str) else data)
        self._token = found.sync_token
        present = frozenset(changed) if token is None else None
        return Changes(changed, frozenset(deleted), present, "sync-token")

    def _by_etag(self) -> Changes:
        """Changes by comparing the collection's ctag, then every resource's etag."""
        ctag = self._calendar.get_properties([_GetCtag()]).get(_GetCtag.tag)
        if ctag is not None and self._ctag is not None and ctag == self._ctag:
            return Changes(mode="unchanged")
        response = self._calendar.get_properties([dav.GetEtag()], depth=1, parse_response_xml=False)
        own = str(self._calendar.url.canonical())
        etags: dict[str, str] = {}
        for href, props in response.expand_simple_props([dav.GetEtag()]).items():
            url = str(self._calendar.url.join(href).canonical())
            if url.rstrip("/") != own.rstrip("/"):
                etags[url] = str(props.get(dav.GetEtag.tag, ""))
        changed: dict[str, Resource] = {}
        for url, etag in etags.items():
            if self._etags.get(url) == etag:
                continue
            try:
                obj = self._calendar.event_by_url(url)
                obj.load()
            except dav_error.NotFoundError:
                continue  # deleted since the listing: the next poll says so
            data = obj.data
            changed[url] = Resource(etag, data.encode() if isinstance(data, str) else data)
        deleted = frozenset(set(self._etags) - set(etags))
        self._etags = {u: e for u, e in etags.items() if u in changed or self._etags.get(u) == e}
        self._ctag = ctag
        return Changes(changed, deleted, frozenset(etags), "etag")


def _describe(exc: BaseException) -> str:
    """A one-line error text (the logger redacts registered secrets)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


async def follow_calendar(
    source: CalendarSource,
    publish: Publish,
    checkpoints: Checkpoints,
    stop: asyncio.Event,
    *,
    resolver: Resolver | None = None,
    metrics: CalendarMetrics | None = None,
    history: timedelta = HISTORY,
    use_sync_token: bool = True,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Follow ``source`` until ``stop`` is set: poll, publish held meetings, checkpoint.

    ``publish`` must make the results durable before it returns (it blocks: it runs in a
    thread); the checkpoint is written only after it did, so a crash in between re-publishes
    (the engine ignores repeated ids) and never loses. Network, server and broker errors back
    off exponentially (1 s to 5 min) and retry; refused credentials raise ``ConfigError`` (one
    line naming the calendar and the setting). ``resolver`` (the client directory) tells client
    attendees from the others: without it no meeting could ever qualify, so it is required.
    """
    if resolver is None:
        raise ConfigError(
            f"calendar {source.name!r}: the calendar connector needs the client directory "
            "(follow_calendar(..., resolver=...))"
        )
    metrics = metrics or CalendarMetrics(CollectorRegistry())
    tracker = CalendarTracker.from_state(
        source.name, resolver, checkpoints.get(source.name, STATE_KEY), history=history
    )
    feed: CalDAVFeed | None = None
    delay = BACKOFF_START_S
    try:
        while not stop.is_set():
            wait = source.poll_interval_s
            try:
                if feed is None:
                    feed = await asyncio.to_thread(
                        CalDAVFeed, source, use_sync_token=use_sync_token
                    )
                changes = await asyncio.to_thread(feed.poll)
                plan = tracker.plan(changes, clock())
                if plan.results:
                    await asyncio.to_thread(publish, plan.results)
                tracker.commit(plan)
                checkpoints.put(source.name, STATE_KEY, tracker.state_json())
                _count(metrics, source.name, changes, plan)
                if plan.results:
                    log.info(
                        "calendar synced",
                        calendar=source.name,
                        mode=changes.mode,
                        held=plan.held,
                        cancelled=plan.cancelled,
                        rejected=plan.rejected,
                    )
                delay = BACKOFF_START_S
            except ConfigError:
                raise
            except Exception as exc:
                metrics.errors.labels(source.name).inc()
                log.warning(
                    "calendar sync failed, retrying",
                    calendar=source.name,
                    error=_describe(exc),
                    retry_in_s=delay,
                )
                if feed is not None:
                    feed.close()
                feed = None  # reconnect: a restarted server forgets nothing we rely on
                wait, delay = delay, min(delay * 2, BACKOFF_MAX_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        if feed is not None:
            feed.close()


def _count(metrics: CalendarMetrics, name: str, changes: Changes, plan: Plan) -> None:
    metrics.syncs.labels(name, changes.mode).inc()
    metrics.last_sync.labels(name).set_to_current_time()
    metrics.resources.labels(name).set(len(plan.resources))
    for kind, count in (
        ("held", plan.held),
        ("cancelled", plan.cancelled),
        ("rejected", plan.rejected),
    ):
        if count:
            metrics.published.labels(name, kind).inc(count)
    if plan.unrepresentable:
        metrics.unrepresentable.labels(name).inc(plan.unrepresentable)
