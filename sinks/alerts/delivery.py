"""The alert-hook sink: signed, retried, rate-limit-aware webhook delivery on httpx.

Lifecycle (constructors do no I/O): ``await setup()`` opens the HTTP client and the delivered
store; ``await add(alert)`` routes the alert and starts one task per new delivery;
``await flush()`` waits until every started delivery finished (delivered, failed or
dead-lettered) and returns their results; ``await close()`` cancels what is still running (those
keys are not marked, so a restarted deliverer sends them) and releases resources.
``async with AlertDeliverer(...) as d:`` does setup and close.

Why it is shaped like this:

- One task per delivery, bounded by ``max_pending``; an HTTP attempt needs a per-target slot and
  then a global slot, so a stalled endpoint holds at most ``per_target_concurrency`` of the
  ``max_concurrency`` global slots and other targets keep flowing. Backoff sleeps hold no slot.
- Retry-After (429/503) closes a per-target gate until the given time: the receiver asked *us*
  to slow down, not one request, so every delivery to that target waits.
- The delivered store is consulted before a delivery starts and marked when it finishes: a
  restart or replay never sends a finished key again (see ``sinks.alerts.store``).
- Every attempt becomes one :class:`DeliveryRecord` in the delivery log (see ``records``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import TracebackType
from typing import Literal, Self
from zoneinfo import ZoneInfo

import httpx
from structlog.stdlib import BoundLogger

from engine.calendar import CalendarClock, clock_for
from schemas.alerts import Alert
from schemas.deadletter import DeadLetter
from schemas.directory import Client, ClientDirectory
from shinrai.errors import ConfigError
from shinrai.logging import get_logger
from shinrai.settings import AlertSettings
from sinks.alerts import paging
from sinks.alerts.clock import Clock, SystemClock, utc_from_timestamp
from sinks.alerts.errors import DelivererStateError
from sinks.alerts.payload import PAYLOAD_VERSION, build_payload, render_json, render_slack
from sinks.alerts.records import (
    DeadLetterSink,
    DeliveryLog,
    DeliveryRecord,
    FinalOutcome,
    Outcome,
)
from sinks.alerts.retry import (
    RETRY_AFTER_STATUSES,
    DeliveryOptions,
    backoff_delay,
    is_retryable_status,
    parse_retry_after,
)
from sinks.alerts.routing import Delivery, RoutingConfig, routes_for
from sinks.alerts.signing import PAYLOAD_VERSION_HEADER, signed_headers
from sinks.alerts.store import DeliveredStore


def _logger() -> BoundLogger:
    # Looked up per use: shinrai.logging.get_logger binds eagerly, so a module-level logger would
    # freeze whatever structlog config existed at import time (before the CLI configures it).
    return get_logger("alerts")


ResultOutcome = FinalOutcome | Literal["skipped"]
_ERROR_BODY_CHARS = 200


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one delivery ended (``skipped``: already finished earlier, per the store)."""

    key: str
    alert_id: str
    target: str
    outcome: ResultOutcome
    attempts: int
    status_code: int | None
    error: str


@dataclass(slots=True)
class _Attempt:
    """What one HTTP attempt came back with."""

    status_code: int | None
    error: str
    retryable: bool
    retry_after_s: float | None
    latency_ms: float


class _TargetGate:
    """Per-target concurrency slots and the Retry-After "not before" instant (monotonic)."""

    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.not_before = 0.0


def render_body(delivery: Delivery, zone: tzinfo | None = None) -> bytes:
    """The request body of ``delivery`` in its target's format (v1 JSON or Slack form).

    ``zone``: the team's, for the times in the Slack text (the JSON instants stay UTC).
    """
    payload = build_payload(
        delivery.alert,
        delivery.client,
        idempotency_key=delivery.key,
        recipients=delivery.recipients,
    )
    if delivery.target.format == "slack":
        return render_slack(payload, blocks=delivery.target.slack_blocks, zone=zone)
    return render_json(payload)


DIGEST_GRACE_S = 5.0
"""Seconds after a digest window ends before its digest is sent."""


@dataclass(slots=True)
class _Digest:
    """An owner's warnings of one window, for one target, not sent yet."""

    key: str
    client: Client  # of the first warning (the payload names one client; the summary all)
    delivery: Delivery
    window: tuple[datetime, datetime]
    alerts: list[Alert]


class AlertDeliverer:
    """Delivers alerts to their routed webhook targets, at most once per (alert, target)."""

    def __init__(
        self,
        *,
        settings: AlertSettings,
        routing: RoutingConfig,
        directory: ClientDirectory,
        log: DeliveryLog,
        store: DeliveredStore,
        dead_letters: DeadLetterSink | None = None,
        options: DeliveryOptions | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        # The team's zone for the times people read in an alert's text (validated in settings).
        self._zone: tzinfo | None = ZoneInfo(settings.time_zone) if settings.time_zone else None
        self._routing = routing
        self._clients: dict[str, Client] = {c.client_id: c for c in directory.clients}
        self._calendars = {c.calendar_id: c for c in directory.calendars}
        self._clocks: dict[str, CalendarClock] = {}
        # Owners' digests still collecting (key -> digest), see sinks.alerts.paging.
        self._digests: dict[str, _Digest] = {}
        self.not_paged = 0  # warnings kept from paging by quiet hours (a count for tests/metrics)
        self._log = log
        self._store = store
        self._dead_letters = dead_letters
        self._options = options or DeliveryOptions()
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._global: asyncio.Semaphore | None = None
        self._pending: asyncio.Semaphore | None = None
        self._gates: dict[str, _TargetGate] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        # Bounded: a long-running caller that rarely flushes must not grow memory without end;
        # the delivery log, not this buffer, is the durable record of every attempt.
        self._results: deque[DeliveryResult] = deque(maxlen=self._options.results_limit)
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def setup(self) -> None:
        """Open the HTTP client and the delivered store. Refuses to run without a secret."""
        if self._closed:
            raise DelivererStateError("a closed AlertDeliverer cannot be set up again")
        if self._http is not None:
            return
        if not self._settings.signing_secret.get_secret_value():
            raise ConfigError("alert signing secret is empty (set SHINRAI_ALERTS__SIGNING_SECRET)")
        self._store.open()
        timeout = self._options.attempt_timeout_s
        self._http = httpx.AsyncClient(
            transport=self._transport,
            # The hard per-attempt cap is asyncio.timeout in _attempt; httpx's own phase timeouts
            # sit just above it so a slow-drip response cannot outlast the cap phase by phase.
            timeout=httpx.Timeout(timeout + 1.0),
            follow_redirects=False,  # a redirect is a misconfigured target: permanent failure
            headers={"User-Agent": self._options.user_agent},
            limits=httpx.Limits(max_connections=self._options.max_concurrency),
        )
        self._global = asyncio.Semaphore(self._options.max_concurrency)
        self._pending = asyncio.Semaphore(self._options.max_pending)

    async def close(self) -> None:
        """Cancel unfinished deliveries (they stay unmarked), close the HTTP client and store."""
        self._closed = True
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self._store.close()

    async def __aenter__(self) -> Self:
        await self.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def update_directory(self, directory: ClientDirectory) -> None:
        """Use a newer client directory for alerts added from now on."""
        self._clients = {c.client_id: c for c in directory.clients}
        self._calendars = {c.calendar_id: c for c in directory.calendars}
        self._clocks = {}

    # -- submit and flush ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Deliveries started and not yet finished."""
        return len(self._inflight)

    async def add(self, alert: Alert) -> list[Delivery]:
        """Route ``alert`` and start delivering every delivery not already finished or running.

        Returns the deliveries started. Waits (backpressure) while ``max_pending`` deliveries
        are unfinished.
        """
        if self._closed or self._http is None or self._pending is None:
            raise DelivererStateError("call setup() before add(), and never after close()")
        client = self._clients.get(alert.client_id)
        decision = paging.decide(alert, client, self._routing.paging, self._clock_of)
        if decision is paging.Decision.QUIET:
            self.not_paged += 1
            _logger().info("warning_not_paged_quiet_hours", alert_id=alert.alert_id)
            return []
        deliveries = routes_for(alert, client, self._routing)
        if not deliveries:
            _logger().warning("alert_unrouted", alert_id=alert.alert_id, level=alert.level.value)
        if decision is paging.Decision.DIGEST and client is not None:
            held = [(d, self._hold(alert, client, d)) for d in deliveries]
            alone = [d for d, h in held if h is None]  # its window's digest is gone already
            return [h for _, h in held if h is not None] + await self._start(alone)
        return await self._start(deliveries)

    async def _start(self, deliveries: Iterable[Delivery]) -> list[Delivery]:
        """Start every delivery not already finished or running; return those started."""
        assert self._pending is not None
        started: list[Delivery] = []
        for delivery in deliveries:
            alert = delivery.alert
            if delivery.key in self._inflight:
                continue  # the same alert again (a replay) while its delivery is running
            finished = self._store.status(delivery.key)
            if finished is not None:
                self._results.append(
                    DeliveryResult(
                        key=delivery.key,
                        alert_id=alert.alert_id,
                        target=delivery.target_label,
                        outcome="skipped",
                        attempts=0,
                        status_code=None,
                        error=f"already finished: {finished}",
                    )
                )
                continue
            await self._pending.acquire()
            task = asyncio.create_task(self._deliver(delivery), name=f"alert:{delivery.key}")
            self._inflight[delivery.key] = task
            task.add_done_callback(functools.partial(self._done, delivery.key))
            started.append(delivery)
        return started

    def _clock_of(self, calendar_id: str) -> CalendarClock | None:
        clock = self._clocks.get(calendar_id)
        if clock is None:
            calendar = self._calendars.get(calendar_id)
            if calendar is None:
                return None
            clock = self._clocks[calendar_id] = clock_for(calendar)
        return clock

    def _hold(self, alert: Alert, client: Client, delivery: Delivery) -> Delivery | None:
        """Put ``alert`` into its owner's digest for ``delivery``'s target and return the
        delivery that stands for the digest (its key finishes when the digest does); None when
        that window's digest is already sent or sending (a warning read late pages alone)."""
        interval = self._routing.paging.digest_interval_s
        assert interval is not None
        window = paging.digest_window(alert.at, interval)
        key = paging.digest_key(client.owner, window[0], delivery.target.url)
        digest = self._digests.get(key)
        if digest is None:
            if key in self._inflight or self._store.status(key) is not None:
                return None
            digest = self._digests[key] = _Digest(key, client, delivery, window, [])
        if all(a.alert_id != alert.alert_id for a in digest.alerts):
            digest.alerts.append(alert)
        return dataclasses.replace(delivery, key=key)

    @property
    def held(self) -> int:
        """Warnings waiting in owners' digests."""
        return sum(len(d.alerts) for d in self._digests.values())

    async def release_digests(self, *, all_windows: bool = False) -> list[Delivery]:
        """Send every owner's digest whose window has ended on the wall clock (``all_windows``:
        every digest, e.g. in tests); returns the deliveries started."""
        # A grace after the window's end: a warning of the window still on its way joins it.
        now = utc_from_timestamp(self._clock.time() - DIGEST_GRACE_S)
        due = [d for d in self._digests.values() if all_windows or d.window[1] <= now]
        for d in due:
            del self._digests[d.key]
        deliveries = [
            dataclasses.replace(
                d.delivery,
                alert=paging.digest_alert(d.client.owner, d.window, d.alerts),
                client=d.client,
                key=d.key,
            )
            for d in due
        ]
        return await self._start(deliveries)

    async def add_many(self, alerts: Iterable[Alert]) -> list[Delivery]:
        """``add`` each alert in order."""
        started: list[Delivery] = []
        for alert in alerts:
            started.extend(await self.add(alert))
        return started

    def _done(self, key: str, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        if self._pending is not None:
            self._pending.release()

    async def flush(self) -> list[DeliveryResult]:
        """Wait until every started delivery finished; return the results since the last flush.

        Raises the first unexpected error a delivery task hit (e.g. the delivered store failing),
        after all tasks have finished, so the caller does not commit offsets past lost work.
        """
        while self._inflight:
            outcomes = await asyncio.gather(*self._inflight.values(), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(
                    outcome, asyncio.CancelledError
                ):
                    raise outcome
        return self.drain_results()

    def drain_results(self) -> list[DeliveryResult]:
        """Results finished since the last drain/flush, without waiting (oldest dropped first
        beyond ``DeliveryOptions.results_limit``)."""
        results = list(self._results)
        self._results.clear()
        return results

    # -- one delivery ----------------------------------------------------------------------------

    def _gate(self, url: str) -> _TargetGate:
        gate = self._gates.get(url)
        if gate is None:
            gate = self._gates[url] = _TargetGate(self._options.per_target_concurrency)
        return gate

    async def _deliver(self, delivery: Delivery) -> None:
        body = render_body(delivery, self._zone)
        expires_at = delivery.alert.at.timestamp() + self._settings.max_age_s
        gate = self._gate(delivery.target.url)
        attempt = 0
        while True:
            async with gate.slots:
                # Another delivery's Retry-After may have closed the gate (or extended it while
                # we slept); waiting past the alert's expiry is pointless, so stop early then.
                while (wait := gate.not_before - self._clock.monotonic()) > 0:
                    if self._clock.time() + wait >= expires_at:
                        break
                    await self._clock.sleep(wait)
                if self._clock.time() >= expires_at or gate.not_before > self._clock.monotonic():
                    self._expire(delivery, body, attempt + 1)
                    return
                attempt += 1
                assert self._global is not None  # set in setup(), checked by add()
                async with self._global:
                    result = await self._attempt(delivery, body)
            if result.status_code is not None and 200 <= result.status_code < 300:
                self._finish(delivery, body, attempt, "delivered", result)
                return
            if not result.retryable:
                self._finish(delivery, body, attempt, "failed", result)
                return
            if result.retry_after_s is not None:
                delay = min(result.retry_after_s, self._options.max_retry_after_s)
                gate.not_before = max(gate.not_before, self._clock.monotonic() + delay)
            else:
                delay = backoff_delay(attempt, self._options, self._rng)
            if self._clock.time() + delay >= expires_at:
                result.error = f"{result.error}; max age reached after {attempt} attempt(s)"
                self._finish(delivery, body, attempt, "dead_letter", result)
                return
            self._record(delivery, attempt, "retry", result)
            _logger().warning(
                "alert_retry",
                alert_id=delivery.alert.alert_id,
                target=delivery.target_label,
                attempt=attempt,
                status_code=result.status_code,
                error=result.error,
                delay_s=round(delay, 3),
            )
            await self._clock.sleep(delay)

    async def _attempt(self, delivery: Delivery, body: bytes) -> _Attempt:
        assert self._http is not None
        timeout = self._options.attempt_timeout_s
        headers = {
            **signed_headers(
                self._settings.signing_secret,
                body,
                timestamp=int(self._clock.time()),
                key=delivery.key,
            ),
            "Content-Type": "application/json",
            PAYLOAD_VERSION_HEADER: str(PAYLOAD_VERSION),
        }
        # Latency is a measurement, not scheduling: always real time, even with a test clock.
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                response = await self._http.post(delivery.target.url, content=body, headers=headers)
        except TimeoutError:
            return _Attempt(None, f"timeout after {timeout:g} s", True, None, _ms(started))
        except httpx.UnsupportedProtocol as exc:
            return _Attempt(None, _describe(exc, delivery), False, None, _ms(started))
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            # Connection refused/reset, TLS trouble, a read timeout: the receiver may recover.
            retryable = isinstance(exc, httpx.TransportError)
            return _Attempt(None, _describe(exc, delivery), retryable, None, _ms(started))
        latency = _ms(started)
        status = response.status_code
        if 200 <= status < 300:
            return _Attempt(status, "", False, None, latency)
        retry_after = None
        if status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), now=self._clock.time()
            )
        detail = response.text[:_ERROR_BODY_CHARS].strip()
        error = f"HTTP {status}" + (f": {detail}" if detail else "")
        return _Attempt(status, error, is_retryable_status(status), retry_after, latency)

    # -- bookkeeping -----------------------------------------------------------------------------

    def _record(self, delivery: Delivery, attempt: int, outcome: Outcome, result: _Attempt) -> None:
        self._log.record(
            DeliveryRecord(
                alert_id=delivery.alert.alert_id,
                attempt=attempt,
                at=utc_from_timestamp(self._clock.time()),
                target=delivery.target_label,
                status_code=result.status_code,
                outcome=outcome,
                error=result.error,
                latency_ms=result.latency_ms,
            )
        )

    def _expire(self, delivery: Delivery, body: bytes, attempt: int) -> None:
        age = self._clock.time() - delivery.alert.at.timestamp()
        error = f"expired: alert age {age:.0f} s exceeds max_age_s {self._settings.max_age_s:g}"
        no_request = _Attempt(None, error, False, None, 0.0)
        self._finish(delivery, body, attempt, "dead_letter", no_request)

    def _finish(
        self, delivery: Delivery, body: bytes, attempt: int, outcome: FinalOutcome, result: _Attempt
    ) -> None:
        self._record(delivery, attempt, outcome, result)
        self._store.mark(
            delivery.key,
            alert_id=delivery.alert.alert_id,
            target=delivery.target_label,
            outcome=outcome,
            at=utc_from_timestamp(self._clock.time()),
        )
        self._results.append(
            DeliveryResult(
                key=delivery.key,
                alert_id=delivery.alert.alert_id,
                target=delivery.target_label,
                outcome=outcome,
                attempts=attempt,
                status_code=result.status_code,
                error=result.error,
            )
        )
        fields = {
            "alert_id": delivery.alert.alert_id,
            "target": delivery.target_label,
            "attempts": attempt,
            "status_code": result.status_code,
        }
        if outcome == "delivered":
            _logger().info("alert_delivered", **fields)
        elif attempt <= 1 and result.status_code is None and result.error.startswith("expired"):
            # Already older than max_age when it arrived (a replay or backfill of history, a
            # long outage): policy, not a delivery failure. Still dead-lettered and logged in
            # the delivery log, but not an error line per historic alert.
            _logger().info("alert_expired_unsent", error=result.error, **fields)
        else:
            _logger().error(f"alert_{outcome}", error=result.error, **fields)
        if outcome == "delivered":
            return
        if self._dead_letters is not None:
            self._dead_letters.dead_letter(
                DeadLetter(
                    raw=body,
                    reason=result.error,
                    source=f"alerts:{outcome}",
                    origin=f"{delivery.target_label} key={delivery.key}",
                    key=delivery.alert.alert_id.encode(),
                )
            )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _describe(exc: Exception, delivery: Delivery) -> str:
    # httpx messages can quote the URL; keep credentials and query strings out of logs and rows.
    text = str(exc).replace(delivery.target.url, delivery.target_label)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
