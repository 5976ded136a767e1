"""The SLA engine: ``apply`` one event of one client, ``advance`` its timers to a watermark.

Time model (DESIGN §3 "Time"):

* The engine runs on event time. ``advance(state, watermark)`` processes event time up to the
  *horizon* ``watermark - allowed_lateness``: buffered events and timers (warnings, breaches,
  silences) are handled in one merged event-time order, events before timers at the same instant
  (a reply at exactly the deadline is on time). Facts therefore lag the watermark by at most the
  allowed lateness, but each timer fact carries its own exact instant as ``at``.
* ``apply`` only buffers an event whose time is after the processed horizon, so any arrival order
  within the allowed lateness yields exactly the facts of in-order processing (buffer strategy,
  not snapshot-and-recompute: cheaper per event and the state stays small).
* An event at or before the horizon is *late beyond lateness*: it is applied at once against the
  current state and the engine corrects what it can: a reply dated before a breach that already
  fired retracts the breach (and any warning fired after the reply) and records MET; a touch dated
  before a fired silence retracts the silence; a late inbound opens its obligation with timers
  computed from its own time (overdue timers fire at once, with their exact instants).
  Not corrected: a late reply to an obligation already fulfilled by a later event (the first
  fulfilment stands), a late inbound into a thread whose obligation is already open (the clock is
  not moved back), a late policy change (applies from now on).
* Duplicates (same event_id) are ignored for ``duplicate_window`` of event time behind the
  horizon; an interaction older than that cannot be told from a duplicate: ``apply`` raises
  ``EventTooOld`` (the caller dead-letters it with the reason; counted in ``state.too_late``). A
  policy change older than that takes effect at the horizon (nothing final is recomputed).
* A client with no interaction processed yet (at most policy changes) is never advanced: nothing
  can fire for it, and its horizon stays unset, so history read after a directory announcement
  is processed in event time, not as late data. The first interaction starts the first silent
  stretch (a policy change does not: its instant may be "the beginning" of a first entry).
* ``next_due`` is the *watermark* at which ``advance`` will next have work (the earliest pending
  timer or buffered event, plus the allowed lateness): what a live deadline index schedules on.
  Warning and silence instants are computed lazily (most obligations are answered, most silent
  stretches broken, long before): until then a cheap lower bound stands in, so ``next_due`` may
  be early (an ``advance`` then only refines the instant); it is never late.
* ``settle(state, until)`` processes everything up to ``until`` with no lateness (end of a replay:
  the log is complete).
* An input the engine cannot compute (no deadline within ten years on a calendar the edge
  validation let through) raises ``InputRejected`` naming the client, the event and the reason,
  without half-applying it; an uncomputable timer is dropped the same way. The caller keeps the
  state, publishes ``exc.facts`` and dead-letters the input; every other input goes on.
* Trust: a correction retracts the trust changes its breach or silence caused, and trust facts
  of a client are stamped at strictly increasing instants (see ``_retrust``), so the latest
  standing change is the level the engine holds whatever the arrival order.

E-mail conversations (schema v2 events): the thread of a message is its conversation's root in
the client's message-id memory (``engine.threads``), not the producer's ``thread_key``; when a
late-learnt link joins two conversations, what was kept under the old root moves to the new one.

Policy changes re-evaluate every open, not yet breached obligation from the change on (a change
to the very (policy, calendar) pair already in force changes nothing and emits nothing): new
deadline and budget from the original opening instant, warning fractions not yet fired whose new
instants are still ahead, a DEADLINE_CHANGED fact; a stricter policy that makes an obligation
already overdue breaches it at the change instant. Breached obligations keep their breach.
Facts carry the policy id and version current when they are emitted.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from engine import chase, classify, threads, trust
from engine.alerts import missed_warning_reason
from engine.calendar import CalendarClock, clock_for
from engine.deadlines import deadline_for, sla_budget, warnings_within
from engine.factmake import build_fact
from engine.ids import fact_id, obligation_id
from engine.state import TRUST_LOG_SIZE, ClientState, Event, Obligation, TrustEntry, TrustFact
from schemas.calendars import BusinessCalendar
from schemas.events import CallOutcome, ClientPolicyChanged, Direction, InteractionEvent, Kind
from schemas.facts import Fact, FactKind, ObligationKind, Outcome
from schemas.policies import CalendarDuration, DeadlineRule, SlaPolicy, TrustLadderRules
from shinrai.errors import EngineError, EventTooOld, InputRejected

__all__ = ["DEFAULT_CALENDAR", "Engine"]

DEFAULT_CALENDAR = BusinessCalendar(calendar_id="default", timezone="UTC")
"""UTC, Monday to Friday 09:00-18:00, no public holidays."""

_NOON = time(12)
_TICK = timedelta(microseconds=1)  # the smallest step of a datetime
_ONE_DAY = timedelta(days=1)


class Engine:
    """The pure SLA engine (no I/O, no wall clock); see the module docstring for semantics."""

    def __init__(
        self,
        *,
        allowed_lateness: timedelta = timedelta(minutes=5),
        default_policy: SlaPolicy | None = None,
        default_calendar: BusinessCalendar | None = None,
        duplicate_window: timedelta = timedelta(days=7),
        thread_memory: timedelta = timedelta(days=30),
        chase_window: timedelta | None = chase.DEFAULT_CHASE_WINDOW,
    ) -> None:
        """Configure lateness, defaults (SlaPolicy.default(), UTC Mon-Fri 09-18) and memories.

        ``thread_memory``: a thread fulfilled longer ago than this starts afresh (the next
        inbound is a first response again, not a follow-up).
        ``chase_window``: a new conversation this soon after an open obligation was opened is a
        chase of it (``engine.chase``); None or zero: new conversations never chase.
        """
        if allowed_lateness < timedelta(0):
            raise EngineError("allowed_lateness must not be negative")
        if duplicate_window < allowed_lateness:
            raise EngineError("duplicate_window must be at least allowed_lateness")
        self.allowed_lateness = allowed_lateness
        self.default_policy = default_policy or SlaPolicy.default()
        self.default_calendar = default_calendar or DEFAULT_CALENDAR
        self.duplicate_window = duplicate_window
        self.thread_memory = thread_memory
        self.chase_window = chase_window
        self._default_clock = clock_for(self.default_calendar)
        # forget_before sweeps ``answered`` when thread_cutoff - swept_at > 1 day, i.e. when
        # seen_cutoff - swept_at > thread_memory + 1 day.
        self._sweep_gap = thread_memory + _ONE_DAY
        # (clock, local start date, n) -> the n-th business day after it (silence cadence).
        self._nth_day: dict[tuple[CalendarClock, date, int], date] = {}
        # silence_business_days -> (days - 1) whole days (the silence lower bound's span).
        self._silence_lb: dict[int, timedelta] = {}

    # -- public API --------------------------------------------------------------------------

    def apply(
        self, state: ClientState | None, event: InteractionEvent | ClientPolicyChanged
    ) -> tuple[ClientState, list[Fact]]:
        """Take one event of one client; returns the (same, mutated) state and any facts.

        Events within the allowed lateness are buffered (facts come from ``advance``); only a
        duplicate is ignored, and a late-beyond-lateness event is applied and corrected at once.
        Events without a client are kept by the caller but do nothing here.
        """
        client_id = event.client_id
        if client_id is None:
            return (state if state is not None else ClientState(client_id="")), []
        st = state if state is not None else ClientState(client_id=client_id)
        out: list[Fact]
        t = event.occurred_at
        horizon = st.processed_until
        if horizon is not None and t < horizon - self.duplicate_window:
            if isinstance(event, ClientPolicyChanged):
                # A policy takes effect no earlier than what is already final: from the horizon.
                out = []
                self._change_policy(st, event, horizon, out)
                self._run(st, horizon, out)
                return st, out
            st.too_late += 1
            raise EventTooOld(
                client_id=client_id,
                event_id=event.event_id,
                reason=f"occurred at {t.isoformat()}, more than the duplicate window "
                f"({self.duplicate_window}) before the client's processed time "
                f"{horizon.isoformat()}: it cannot be told from a duplicate (import history "
                "before live events, or rebuild with `shinrai backfill`)",
            )
        if event.event_id in st.seen:
            return st, []
        st.remember(event.event_id, t)
        if horizon is None or t > horizon:
            st.buffer_event(event)
            return st, []
        out = []
        self._process(st, event, out, late=True)
        self._run(st, horizon, out)
        return st, out

    def apply_in_order(
        self, state: ClientState | None, event: InteractionEvent | ClientPolicyChanged
    ) -> tuple[ClientState, list[Fact]]:
        """``apply`` then ``settle`` for a caller that feeds each client's events in event-time
        order (replay of a sorted log): fires the timers before the event, then processes it at
        once, skipping the buffer. Same facts as in-order ``apply``/``advance``; an event before
        what was already processed falls back to ``apply`` (buffer or correction).
        """
        client_id = event.client_id
        if client_id is None:
            return (state if state is not None else ClientState(client_id="")), []
        st = state if state is not None else ClientState(client_id=client_id)
        t = event.occurred_at
        before = t - _TICK  # timers at t itself fire after the events at t
        horizon = st.processed_until
        if st.buffer or (horizon is not None and t <= horizon):
            return self.apply(st, event)
        if event.event_id in st.seen:
            return st, []
        out: list[Fact] = []
        if horizon is None or before > horizon:
            self._run(st, before, out)  # settle to just before the event (no idle check: the
            self._processed(st, before)  # event itself is processed right after)
        st.remember(event.event_id, t)
        self._process(st, event, out, late=False)
        return st, out

    def advance(self, state: ClientState, watermark: datetime) -> tuple[ClientState, list[Fact]]:
        """Process buffered events and fire timers up to ``watermark - allowed_lateness``."""
        return self.settle(state, watermark - self.allowed_lateness)

    def settle(
        self, state: ClientState, until: datetime, out: list[Fact] | None = None
    ) -> tuple[ClientState, list[Fact]]:
        """Process buffered events and fire timers up to ``until`` itself (no lateness).

        Facts are appended to ``out`` when given (and returned).
        """
        if out is None:
            out = []
        if state.processed_until is not None and until <= state.processed_until:
            return state, out
        self._run(state, until, out)
        if state.stretch_start is None:
            # No interaction processed yet (policy changes at most): nothing can fire, and
            # nothing is final, so the client's own first events are never "late" (a directory
            # announced before history is read must not turn that history late).
            return state, out
        self._processed(state, until)
        return state, out

    def _processed(self, state: ClientState, until: datetime) -> None:
        """Everything up to ``until`` is final: move the horizon, and forget what no event still
        accepted can need. forget_before is called only when it has something to do (it is
        O(1) then, but this is the per-event path): a seen id older than the cutoff, or a sweep
        of ``answered`` due."""
        state.processed_until = until
        seen_cutoff = until - self.duplicate_window
        order = state.seen_order
        swept = state.swept_at
        if (order and order[0][0] < seen_cutoff) or (
            (state.answered or state.links)
            and (swept is None or seen_cutoff - swept > self._sweep_gap)
        ):
            state.forget_before(seen_cutoff, seen_cutoff - self.thread_memory)

    def next_due(self, state: ClientState) -> datetime | None:
        """The watermark at which ``advance`` will next produce or process something."""
        due = self._next_timer(state)[0]
        if state.buffer:
            first = state.buffer[0][0][0]
            if due is None or first < due:
                due = first
        return None if due is None else due + self.allowed_lateness

    def policy_of(self, state: ClientState) -> SlaPolicy:
        """The policy in force for ``state`` (its own, else the engine default)."""
        return state.policy if state.policy is not None else self.default_policy

    def clock_of(self, state: ClientState) -> CalendarClock:
        """The calendar clock in force for ``state`` (its own calendar, else the default)."""
        clock = state.clock
        if clock is None:
            clock = self._default_clock if state.calendar is None else clock_for(state.calendar)
            state.clock = clock
        return clock

    # -- the merged event/timer loop ---------------------------------------------------------

    def _run(self, st: ClientState, horizon: datetime, out: list[Fact]) -> None:
        buf = st.buffer
        while True:
            instant, ob = self._next_timer(st)
            if buf:
                event_t = buf[0][0][0]
                if event_t <= horizon and (instant is None or event_t <= instant):
                    self._process(st, buf.pop(0)[1], out, late=False)
                    continue
            if instant is None or instant > horizon:
                return
            try:
                self._fire(st, instant, ob, out)
            except EngineError as exc:
                # Only a calendar the edge validation let through (e.g. holidays on every open
                # day for ten years) gets here: drop the timer so the client can go on, and say so.
                self._drop_timer(st, ob)
                raise InputRejected(
                    client_id=st.client_id,
                    event_id=None if ob is None else ob.source_event_id,
                    reason=f"timer dropped: {exc}",
                    facts=list(out),
                ) from exc

    @staticmethod
    def _drop_timer(st: ClientState, ob: Obligation | None) -> None:
        """Forget a timer the engine cannot compute: the silence, or an obligation's warnings."""
        if ob is None:
            st.silence_due = None
            st.silence_exact = True
        else:
            ob.warn_lb = None
            ob.warnings = []

    @staticmethod
    def _next_timer(st: ClientState) -> tuple[datetime | None, Obligation | None]:
        best: datetime | None = None
        best_ob: Obligation | None = None
        for ob in st.timed.values():
            at = ob.warn_lb
            if at is None:
                if ob.warnings:
                    at = ob.warnings[0][1]
                elif ob.breach_fact is None:
                    at = ob.due
                else:
                    continue
            if best is None or at < best:
                best, best_ob = at, ob
        silence = st.silence_due
        if silence is not None and (best is None or silence < best):
            return silence, None
        return best, best_ob

    def _fire(
        self, st: ClientState, instant: datetime, ob: Obligation | None, out: list[Fact]
    ) -> None:
        if ob is None:
            if st.silence_exact:
                self._fire_silence(st, instant, out)
            else:
                self._refine_silence(st)
            return
        if ob.warn_lb is not None:  # the lower bound passed: now compute the real instants
            ob.warn_lb = None
            policy = self.policy_of(st)
            rule = self._rule(policy, ob.kind)
            # The budget is known: sla_budget(rule, opened_at, deadline) is target_business_s.
            ob.warnings = warnings_within(
                rule,
                ob.opened_at,
                ob.deadline,
                policy.warning_fractions,
                self.clock_of(st),
                ob.target_business_s,
                max(0.0, (ob.deadline - ob.opened_at).total_seconds()),
            )
            return
        if ob.warnings:
            fraction, at = ob.warnings.pop(0)
            fid = fact_id(ob.obligation_id, "warning", repr(fraction))
            extra: dict[str, Any] = {}
            if ob.arrived is not None and at < ob.arrived:
                extra["reason"] = missed_warning_reason(ob.arrived)
            out.append(
                self._ob_fact(st, ob, FactKind.WARNING, at, fid, warning_fraction=fraction, **extra)
            )
            ob.fired.append((fraction, at, fid))
            return
        fid = fact_id(ob.obligation_id, "breached")
        out.append(
            self._ob_fact(
                st,
                ob,
                FactKind.BREACHED,
                ob.due,
                fid,
                target_business_seconds=ob.target_business_s,
            )
        )
        ob.breach_fact = fid
        del st.timed[ob.thread]  # no timer left: keep it out of the timer scan
        rules = self.policy_of(st).trust
        self._record(st, TrustEntry(ob.obligation_id, rules.breach_points, "breach", ob.due))
        head = st.trust_head
        if head is None or head.level is not st.trust:  # else _retrust has nothing to say
            self._retrust(
                st, ob.due, out, f"the breach of obligation {ob.obligation_id}", ob.obligation_id
            )

    # -- events ------------------------------------------------------------------------------

    def _process(self, st: ClientState, ev: Event, out: list[Fact], *, late: bool) -> None:
        """``_apply_event``, or InputRejected naming the client and the event when the engine
        cannot compute it (e.g. no deadline within ten years): the event's own facts are
        dropped, the state is left as if it never came (deadlines and policy are computed
        before anything is changed), and the facts emitted before it are handed over."""
        mark = len(out)
        try:
            self._apply_event(st, ev, out, late=late)
        except InputRejected:
            raise
        except EngineError as exc:
            del out[mark:]
            raise InputRejected(
                client_id=st.client_id, event_id=ev.event_id, reason=str(exc), facts=list(out)
            ) from exc

    def _apply_event(self, st: ClientState, ev: Event, out: list[Fact], *, late: bool) -> None:
        t = ev.occurred_at.astimezone(UTC)
        if isinstance(ev, ClientPolicyChanged):
            self._change_policy(st, ev, t, out)
            return
        if st.stretch_start is None:
            st.stretch_start = t  # the first interaction starts the first silent stretch
            self._schedule_silence(st, t)
        policy = self.policy_of(st)
        if ev.kind is Kind.NO_REPLY_NEEDED:
            ob = st.open.get(classify.thread_of(ev))
            if ob is not None and ob.opened_at <= t:
                self._waive(st, ob, ev, t, out)
            return
        if ev.kind is Kind.CALL and ev.direction is Direction.INBOUND:
            self._speed_of_answer(st, ev, t, policy, out)
        thread = self._thread(st, ev, t, out)
        opening = classify.opens(ev)
        if st.open and ev.direction is Direction.INBOUND:
            self._chase(st, ev, thread, opening, t, out)
        if opening is not None:
            if thread not in st.open:
                if opening is ObligationKind.FIRST_RESPONSE:
                    before = st.answered.get(thread)
                    if before is not None and before <= t <= before + self.thread_memory:
                        opening = ObligationKind.FOLLOW_UP
                self._open(st, ev, opening, thread, t, policy, out)
            return
        touch = classify.is_outbound_touch(ev)
        if not st.open and not touch:
            return
        targets: dict[str, Obligation] = {}
        # Anything answers only what was opened strictly before it (DESIGN §3: "opened before
        # it"): an inbound at the very same instant stays open whichever of the two is processed
        # first. Same-instant events are ordered by recorded_at and event id, which must not
        # decide an outcome.
        if classify.is_thread_reply(ev):
            ob = st.open.get(thread)
            if ob is not None and ob.opened_at < t:
                targets[ob.thread] = ob
        if classify.is_cross_channel_touch(ev, policy.cross_channel):
            for ob in st.open.values():
                if ob.opened_at < t:
                    targets[ob.thread] = ob
        elif classify.is_answered_outbound_call(ev):
            for ob in st.open.values():
                if ob.kind is ObligationKind.CALLBACK and ob.opened_at < t:
                    targets[ob.thread] = ob
        for ob in targets.values():
            self._fulfil(st, ob, ev, t, out)
        if touch:
            self._touch(st, t, out, late=late)

    # -- e-mail conversations (engine.threads) ------------------------------------------------

    def _thread(self, st: ClientState, ev: InteractionEvent, t: datetime, out: list[Fact]) -> str:
        """The thread of ``ev``: for an e-mail with message ids (schema v2) its conversation's
        root in the client's id memory (learning its links first), else ``classify.thread_of``."""
        key = ev.message_key
        if key is None and not ev.parent_keys:
            return classify.thread_of(ev)
        chain = [*ev.parent_keys, key] if key is not None else list(ev.parent_keys)
        links, touched = st.links, st.young_links
        for joined in threads.link_chain(links, chain, t, touched):
            self._rethread(st, joined, t, out)
        return threads.THREAD_PREFIX + threads.root_of(links, chain[-1], t, touched)

    def _rethread(self, st: ClientState, old_root: str, t: datetime, out: list[Fact]) -> None:
        """``old_root`` got a parent: what was kept under its key moves to the new root's key.

        One obligation per (client, conversation): when both keys hold an open obligation the
        earlier opened one stands and the other is waived ("merged"); the fulfilment memory keeps
        the later instant. A moved obligation keeps its id; its later facts carry the new key.
        """
        old = threads.THREAD_PREFIX + old_root
        new = threads.THREAD_PREFIX + threads.root_of(st.links, old_root, None, st.young_links)
        if new == old:
            return
        when = st.pop_answered(old)
        if when is not None:
            before = st.answered.get(new)
            st.set_answered(new, when if before is None or before < when else before)
        ob = st.open.pop(old, None)
        if ob is None:
            return
        st.timed.pop(old, None)
        other = st.open.get(new)
        if other is not None and (other.opened_at, other.obligation_id) > (
            ob.opened_at,
            ob.obligation_id,
        ):
            ob, other = other, ob  # ``other``: the earlier, which stands
            del st.open[new]
            st.timed.pop(new, None)
            other.thread = new
            st.open[new] = other
            if other.breach_fact is None:
                st.timed[new] = other
        if other is not None:
            out.append(
                self._ob_fact(
                    st,
                    ob,
                    FactKind.WAIVED,
                    t,
                    fact_id(ob.obligation_id, "waived", f"merged|{new}"),
                    reason=f"merged: conversation {new} already owes {other.obligation_id}",
                )
            )
            return
        ob.thread = new
        st.open[new] = ob
        if ob.breach_fact is None:
            st.timed[new] = ob

    def _rule(self, policy: SlaPolicy, kind: ObligationKind) -> DeadlineRule:
        return policy.follow_up if kind is ObligationKind.FOLLOW_UP else policy.first_response

    def _open(
        self,
        st: ClientState,
        ev: InteractionEvent,
        kind: ObligationKind,
        thread: str,
        t: datetime,
        policy: SlaPolicy,
        out: list[Fact],
    ) -> None:
        clock = st.clock
        if clock is None:
            clock = self.clock_of(st)
        # self._rule(policy, kind), written out
        rule = policy.follow_up if kind is ObligationKind.FOLLOW_UP else policy.first_response
        deadline = deadline_for(rule, t, clock)
        # sla_budget, written out: t and deadline are aware UTC already.
        budget = clock.business_seconds_between(t, deadline)
        budget_c = max(0.0, (deadline - t).total_seconds())
        fractions = policy.warning_fractions
        warnings: list[tuple[float, datetime]] = []
        warn_lb: datetime | None = None
        if fractions and budget > 0 and not isinstance(rule, CalendarDuration):
            # warning_instants measures these in business time: at least as late as the same
            # span of wall-clock time, which is the cheap lower bound.
            warn_lb = t + timedelta(seconds=fractions[0] * budget)
        elif fractions:
            warnings = warnings_within(rule, t, deadline, fractions, clock, budget, budget_c)
        ob = Obligation(
            obligation_id=obligation_id(st.client_id, thread, ev.event_id),
            kind=kind,
            thread=thread,
            channel=ev.channel,
            opened_at=t,
            source_event_id=ev.event_id,
            deadline=deadline,
            target_business_s=budget,
            due=max(deadline, t),  # a deadline can never fire before the obligation exists
            warnings=warnings,
            warn_lb=warn_lb,
            arrived=ev.recorded_at if ev.recorded_at > t else None,
        )
        st.open[thread] = ob
        st.timed[thread] = ob
        out.append(
            self._ob_fact(
                st,
                ob,
                FactKind.OBLIGATION_OPENED,
                t,
                fact_id(ob.obligation_id, "opened"),
                source_event_id=ev.event_id,
                target_business_seconds=budget,
            )
        )

    def _fulfil(
        self, st: ClientState, ob: Obligation, ev: InteractionEvent, t: datetime, out: list[Fact]
    ) -> None:
        clock = st.clock
        if clock is None:
            clock = self.clock_of(st)
        # deadlines.elapsed, written out: t, opened_at and deadline are all aware UTC already.
        business = clock.business_seconds_between(ob.opened_at, t)
        calendar = max(0.0, (t - ob.opened_at).total_seconds())
        met = t <= ob.deadline
        over_b: float | None = None
        over_c: float | None = None
        if not met:
            over_b = clock.business_seconds_between(ob.deadline, t)
            over_c = max(0.0, (t - ob.deadline).total_seconds())
        if ob.breach_fact is not None and met:
            # Late data: a reply sent before the deadline turned up after the breach fired.
            out.append(
                self._ob_fact(
                    st,
                    ob,
                    FactKind.RETRACTED,
                    t,
                    fact_id(ob.obligation_id, "retracted", ob.breach_fact),
                    source_event_id=ev.event_id,
                    retracts=ob.breach_fact,
                    reason=f"reply {ev.event_id} sent at {t.isoformat()}, before the deadline",
                )
            )
        for fraction, at, wid in ob.fired:
            if at > t:  # only possible with late data: the warning should never have fired
                out.append(
                    self._ob_fact(
                        st,
                        ob,
                        FactKind.RETRACTED,
                        t,
                        fact_id(ob.obligation_id, "retracted", wid),
                        source_event_id=ev.event_id,
                        retracts=wid,
                        warning_fraction=fraction,
                        reason=f"reply {ev.event_id} sent at {t.isoformat()}, before the warning",
                    )
                )
        out.append(
            self._ob_fact(
                st,
                ob,
                FactKind.FULFILLED,
                t,
                fact_id(ob.obligation_id, "fulfilled", ev.event_id),
                source_event_id=ev.event_id,
                fulfilled_at=t,
                fulfilled_by_channel=ev.channel,
                outcome=Outcome.MET if met else Outcome.MET_LATE,
                business_seconds=business,
                calendar_seconds=calendar,
                target_business_seconds=ob.target_business_s,
                overage_business_seconds=over_b,
                overage_calendar_seconds=over_c,
            )
        )
        if ob.chases:
            self._unchase(st, ob, ev, t, out)
        del st.open[ob.thread]
        st.timed.pop(ob.thread, None)
        st.set_answered(ob.thread, t)
        rules = (st.policy if st.policy is not None else self.default_policy).trust
        if not met:
            label = "late"
        elif ob.target_business_s > 0:
            label = "fast" if business <= rules.fast_fraction * ob.target_business_s else "on_time"
        else:  # no business time in the budget (e.g. due before opening): judge on the wall clock
            budget_c = (ob.deadline - ob.opened_at).total_seconds()
            label = "fast" if calendar <= rules.fast_fraction * budget_c else "on_time"
        if label == "on_time" and not ob.chases and ob.thread in st.chased_threads:
            label = "fast"  # answered before being asked again where the client used to chase
        entry = TrustEntry(ob.obligation_id, trust.points_for(label, rules), label, t)
        if ob.breach_fact is not None:
            self._replace_entry(st, entry)
            if met:  # the breach is retracted: so is the trust change it caused
                self._retract_trust(st, ob.obligation_id, t, out, f"reply {ev.event_id}")
        else:
            self._record(st, entry)
        head = st.trust_head
        if head is None or head.level is not st.trust:  # else _retrust has nothing to say
            self._retrust(
                st, t, out, f"a {label} answer to obligation {ob.obligation_id}", ob.obligation_id
            )

    def _chase(
        self,
        st: ClientState,
        ev: InteractionEvent,
        thread: str,
        opening: ObligationKind | None,
        t: datetime,
        out: list[Fact],
    ) -> None:
        """Emit CHASED when ``ev`` chases an open obligation (``engine.chase``)."""
        found = chase.find_chase(
            ev,
            thread,
            opening,
            st.open,
            st.answered.get(thread),
            t,
            window=self.chase_window,
            thread_memory=self.thread_memory,
        )
        if found is None:
            return
        kind, ob = found
        fid = fact_id(ob.obligation_id, "chased", ev.event_id)
        fields = chase.chase_fields(kind, ob, ev, t, self.clock_of(st))
        out.append(self._ob_fact(st, ob, FactKind.CHASED, t, fid, **fields))
        first = not ob.chases
        ob.chases.append((t, fid))
        before = st.chased_threads.get(ob.thread)
        if before is None or before < t:
            st.set_chased(ob.thread, t)
        if t <= ob.deadline:
            if first:  # one trust outcome per obligation; after the deadline the breach counted
                rules = self.policy_of(st).trust
                self._record(st, TrustEntry(fid, rules.chase_points, "chase", t))
                self._retrust(
                    st, t, out, f"a chase ({kind.value}) of obligation {ob.obligation_id}", fid
                )
            log = st.chase_log
            log.append((fid, fields["business_seconds"], ob.target_business_s))
            if len(log) > chase.SUGGEST_WINDOW:
                del log[: -chase.SUGGEST_WINDOW]
            self._suggest(st, t, out)

    def _suggest(self, st: ClientState, t: datetime, out: list[Fact]) -> None:
        """Emit TARGET_SUGGESTED when the chase log suggests another target (engine.chase)."""
        found = chase.suggested_target(st.chase_log)
        if found is None or found[0] == st.suggested:
            return
        target, wait, ours = found
        st.suggested = target
        out.append(
            self._fact(
                st,
                FactKind.TARGET_SUGGESTED,
                t,
                fact_id(st.client_id, "target_suggested", f"{t.isoformat()}|{target!r}"),
                target_business_seconds=target,
                business_seconds=wait,
                reason=(
                    f"{len(st.chase_log)} chases before our deadline; the median came after "
                    f"{wait / 3600:.1f} business h, under half our target of {ours / 3600:.1f} "
                    f"business h: a first-response target of {target / 60:.0f} business minutes "
                    "would have answered 9 in 10 of them before the client asked again "
                    "(accept it as a directory policy change)"
                ),
            )
        )

    def _unchase(
        self, st: ClientState, ob: Obligation, ev: InteractionEvent, t: datetime, out: list[Fact]
    ) -> None:
        """Late data: ``ev`` closed ``ob`` at ``t``, before chases already emitted: they were
        not chases (the client wrote after our answer); retract them."""
        gone = {cid for at, cid in ob.chases if at > t}
        for cid in sorted(gone):
            out.append(
                self._ob_fact(
                    st,
                    ob,
                    FactKind.RETRACTED,
                    t,
                    fact_id(cid, "retracted"),
                    source_event_id=ev.event_id,
                    retracts=cid,
                    reason=f"{chase.RETRACTION_PREFIX}{ev.event_id} at {t.isoformat()} "
                    "closed the obligation before it",
                )
            )
        if gone and any(entry.subject in gone for entry in st.record):
            # They were no chases: their trust outcomes leave the record, their changes go.
            st.record = [entry for entry in st.record if entry.subject not in gone]
            st.trust_head = None
            for cid in sorted(gone):
                self._retract_trust(st, cid, t, out, f"{ev.event_id} at {t.isoformat()}")
            self._retrust(st, t, out, "a retracted chase", None)
        if gone and any(entry[0] in gone for entry in st.chase_log):
            # The suggestion is recomputed without them (a new fact only if it changes).
            st.chase_log = [entry for entry in st.chase_log if entry[0] not in gone]
            self._suggest(st, t, out)

    def _waive(
        self, st: ClientState, ob: Obligation, ev: InteractionEvent, t: datetime, out: list[Fact]
    ) -> None:
        out.append(
            self._ob_fact(
                st,
                ob,
                FactKind.WAIVED,
                t,
                fact_id(ob.obligation_id, "waived", ev.event_id),
                source_event_id=ev.event_id,
                reason="no reply needed",
            )
        )
        if ob.chases:
            self._unchase(st, ob, ev, t, out)
        del st.open[ob.thread]
        st.timed.pop(ob.thread, None)

    def _speed_of_answer(
        self, st: ClientState, ev: InteractionEvent, t: datetime, policy: SlaPolicy, out: list[Fact]
    ) -> None:
        outcome = ev.call_outcome
        wait = ev.wait_seconds
        within: bool | None
        if outcome is None:
            within = None
        elif outcome is CallOutcome.ANSWERED:
            within = None if wait is None else wait <= policy.answer_target_seconds
        else:
            within = False
        out.append(
            self._fact(
                st,
                FactKind.SPEED_OF_ANSWER,
                t,
                fact_id(ev.event_id, "speed_of_answer"),
                thread_key=classify.thread_of(ev),
                channel=ev.channel,
                source_event_id=ev.event_id,
                call_outcome=outcome,
                wait_seconds=wait,
                answered_within_target=within,
            )
        )

    # -- silence -----------------------------------------------------------------------------

    def _touch(self, st: ClientState, t: datetime, out: list[Fact], *, late: bool) -> None:
        start = st.stretch_start
        fired = st.silence_fact
        if late and fired is not None and fired[1] > t and (start is None or start < t):
            # Late data: we did reach out before the silence we reported.
            out.append(
                self._fact(
                    st,
                    FactKind.RETRACTED,
                    t,
                    fact_id(fired[0], "retracted"),
                    retracts=fired[0],
                    reason=f"outbound touch at {t.isoformat()} precedes the silence",
                )
            )
            st.record = [e for e in st.record if e.subject != fired[0]]
            st.trust_head = None
            self._retract_trust(st, fired[0], t, out, f"outbound touch at {t.isoformat()}")
            self._retrust(st, t, out, "a retracted silence", None)
        if start is None or t >= start:
            st.stretch_start = t
            st.silence_fact = None
            self._schedule_silence(st, t)

    def _schedule_silence(self, st: ClientState, now: datetime) -> None:
        policy = st.policy if st.policy is not None else self.default_policy
        days = policy.silence_business_days
        start = st.stretch_start
        st.silence_exact = False
        if days is None or start is None or st.silence_fact is not None:
            st.silence_due = None
            return
        # N business days later is at least N-1 whole days later (a DST shift can take an hour
        # off the last day): a cheap lower bound, refined when it passes (_refine_silence).
        span = self._silence_lb.get(days)
        if span is None:
            span = self._silence_lb[days] = (days - 1) * _ONE_DAY
        due = start + span
        st.silence_due = due if due >= now else now  # = max(due, now)

    def _refine_silence(self, st: ClientState) -> None:
        days = self.policy_of(st).silence_business_days
        start = st.stretch_start
        bound = st.silence_due
        assert days is not None
        assert start is not None
        assert bound is not None
        # The bound is also the clamp: a policy change cannot schedule a silence in the past.
        st.silence_due = max(self._business_days_after(self.clock_of(st), start, days), bound)
        st.silence_exact = True

    def _business_days_after(self, clock: CalendarClock, start: datetime, days: int) -> datetime:
        """The local time of ``start`` on the ``days``-th business day after its local date."""
        local = start.astimezone(clock.zone)
        key = (clock, local.date(), days)
        target = self._nth_day.get(key)
        if target is None:
            day = local.date()
            for _ in range(days):
                day = (
                    clock.next_business_day_at(
                        datetime.combine(day, _NOON, tzinfo=clock.zone), _NOON
                    )
                    .astimezone(clock.zone)
                    .date()
                )
            target = day
            self._nth_day[key] = target
        # Ask the clock for the wall time on that day: it resolves DST gaps and folds exactly.
        eve = datetime.combine(target - _ONE_DAY, _NOON, tzinfo=clock.zone)
        return clock.next_business_day_at(eve, local.time())

    def _fire_silence(self, st: ClientState, instant: datetime, out: list[Fact]) -> None:
        start = st.stretch_start
        assert start is not None  # a silence is only ever scheduled with a stretch start
        policy = self.policy_of(st)
        fid = fact_id(st.client_id, "silence", start.isoformat())
        out.append(
            self._fact(
                st,
                FactKind.SILENCE,
                instant,
                fid,
                reason=(
                    f"no outbound touch since {start.isoformat()} "
                    f"({policy.silence_business_days} business days)"
                ),
            )
        )
        st.silence_fact = (fid, instant)
        st.silence_due = None
        self._record(st, TrustEntry(fid, policy.trust.silence_points, "silence", instant))
        self._retrust(
            st, instant, out, f"{policy.silence_business_days} business days of silence", fid
        )

    # -- policy ------------------------------------------------------------------------------

    def _change_policy(
        self, st: ClientState, ev: ClientPolicyChanged, t: datetime, out: list[Fact]
    ) -> None:
        if st.policy == ev.policy and st.calendar == ev.calendar:
            return  # the pair in force, announced again (a directory re-read): nothing moves
        clock = clock_for(ev.calendar)
        policy = ev.policy
        # Every new deadline is computed before anything changes: a pair the engine cannot
        # compute (EngineError) leaves the client under the policy it had.
        plans: list[tuple[Obligation, datetime, float, list[tuple[float, datetime]]]] = []
        for ob in st.open.values():
            if ob.breach_fact is not None:
                continue  # the breach stands; see module docstring
            rule = self._rule(policy, ob.kind)
            deadline = deadline_for(rule, ob.opened_at, clock)
            budget, budget_c = sla_budget(rule, ob.opened_at, deadline, clock)
            done = {fraction for fraction, _, _ in ob.fired}
            pending = [
                (fraction, at)
                for fraction, at in warnings_within(
                    rule, ob.opened_at, deadline, policy.warning_fractions, clock, budget, budget_c
                )
                if fraction not in done and at > t
            ]
            plans.append((ob, deadline, budget, pending))
        st.policy = policy
        st.calendar = ev.calendar
        st.clock = clock
        for ob, deadline, budget, pending in plans:
            ob.warn_lb = None
            ob.warnings = pending
            ob.deadline = deadline
            ob.due = max(deadline, t)
            ob.target_business_s = budget
            out.append(
                self._ob_fact(
                    st,
                    ob,
                    FactKind.DEADLINE_CHANGED,
                    t,
                    fact_id(ob.obligation_id, "deadline_changed", ev.event_id),
                    source_event_id=ev.event_id,
                    target_business_seconds=budget,
                    reason=(
                        f"policy {policy.policy_id} v{policy.version}, "
                        f"calendar {ev.calendar.calendar_id}"
                    ),
                )
            )
        self._schedule_silence(st, t)
        self._trim(st, policy.trust)
        st.trust_head = None  # other rules: the record is re-scored under them
        self._retrust(st, t, out, f"policy {policy.policy_id} v{policy.version}", None)

    # -- trust -------------------------------------------------------------------------------

    def _record(self, st: ClientState, entry: TrustEntry) -> None:
        """Add ``entry`` to the record in the order outcomes happened (late data: in place)."""
        record = st.record
        rules = (st.policy if st.policy is not None else self.default_policy).trust
        if not record or record[-1].at <= entry.at:
            record.append(entry)
            head = st.trust_head
            if head is not None:  # the common case: one more step of the cached head
                trust.step(head, entry, rules)
        else:
            bisect.insort_right(record, entry, key=lambda e: e.at)
            st.trust_head = None
        if len(record) > rules.window:  # _trim's own test, before the call (once per outcome)
            self._trim(st, rules)

    @staticmethod
    def _trim(st: ClientState, rules: TrustLadderRules) -> None:
        """Outcomes beyond the record's window move into the anchor (the head is unchanged)."""
        record = st.record
        while len(record) > rules.window:
            trust.step(st.trust_anchor, record.pop(0), rules)

    def _replace_entry(self, st: ClientState, entry: TrustEntry) -> None:
        """The breach entry of ``entry.subject`` becomes ``entry``: a late answer keeps the
        breach's instant (the deadline was missed then); an answer in time moves to its own."""
        for i in range(len(st.record) - 1, -1, -1):
            if st.record[i].subject == entry.subject:
                if entry.label == "late":
                    entry.at = st.record[i].at
                    st.record[i] = entry
                else:
                    del st.record[i]
                    bisect.insort_right(st.record, entry, key=lambda e: e.at)
                st.trust_head = None
                return
        if entry.label != "late":  # the breach left the record: it stays in the anchor
            self._record(st, entry)

    def _retrust(
        self, st: ClientState, t: datetime, out: list[Fact], cause: str, subject: str | None
    ) -> None:
        """Emit TRUST_CHANGED when the record earns another level than the one shown.

        Trust facts are stamped in a strictly increasing order per client: at ``t``, or just
        after the latest trust fact already emitted when late data put ``t`` before it (a
        correction supersedes what was published, so "the latest change by time" is the level
        the engine holds, and two changes never share an instant).
        """
        head = st.trust_head
        if head is None:
            rules = self.policy_of(st).trust
            head = st.trust_head = trust.fold(st.trust_anchor, st.record, rules)
        level = head.level
        if level is st.trust:
            return
        last = st.trust_at
        at = t if last is None or t > last else last + _TICK
        if head.reason is not None and head.level is not st.trust and head.changed_at == t:
            reason = f"{head.reason} (after {cause})"
        else:  # a correction or other rules: the record as it now stands earns another level
            reason = (
                f"{trust.name(st.trust)} -> {trust.name(level)}: the record as it now stands "
                f"earns {level.value} (after {cause})"
            )
            if head.reason is not None:
                reason += f"; last change: {head.reason}"
        if at != t:
            reason = f"{reason} (a correction for {t.isoformat()})"
        reason = reason[:2048]
        fid = fact_id(st.client_id, "trust_changed", f"{at.isoformat()}|{level.value}|{cause}")
        out.append(
            self._fact(
                st,
                FactKind.TRUST_CHANGED,
                at,
                fid,
                trust_from=st.trust,
                trust_to=level,
                reason=reason,
            )
        )
        st.trust_log.append(TrustFact(fid, at, st.trust, level, subject))
        if len(st.trust_log) > TRUST_LOG_SIZE:
            del st.trust_log[:-TRUST_LOG_SIZE]
        st.trust_at = at
        st.trust = level

    def _retract_trust(
        self, st: ClientState, subject: str, t: datetime, out: list[Fact], by: str
    ) -> None:
        """Retract the trust changes caused by ``subject`` (a breach or silence that turned out
        not to hold); the level shown becomes the one before them (``_retrust`` then moves it to
        what the corrected record earns)."""
        log = st.trust_log
        i = 0
        while i < len(log):
            tf = log[i]
            if tf.subject != subject:
                i += 1
                continue
            out.append(
                self._fact(
                    st,
                    FactKind.RETRACTED,
                    t,
                    fact_id(tf.fact_id, "retracted"),
                    retracts=tf.fact_id,
                    trust_from=tf.trust_from,
                    trust_to=tf.trust_to,
                    reason=f"{by} retracts the outcome that moved trust at {tf.at.isoformat()}",
                )
            )
            del log[i]
            if i < len(log):  # keep the chain: the next change now starts where this one did
                log[i] = log[i]._replace(trust_from=tf.trust_from)
            else:
                st.trust = tf.trust_from  # it was the latest: the level before it shows again

    # -- fact construction -------------------------------------------------------------------

    def _fact(self, st: ClientState, kind: FactKind, at: datetime, fid: str, **fields: Any) -> Fact:
        policy = st.policy if st.policy is not None else self.default_policy
        fields["fact_id"] = fid
        fields["kind"] = kind
        fields["client_id"] = st.client_id
        fields["at"] = at
        fields["policy_id"] = policy.policy_id
        fields["policy_version"] = policy.version
        return build_fact(fields)

    def _ob_fact(
        self,
        st: ClientState,
        ob: Obligation,
        kind: FactKind,
        at: datetime,
        fid: str,
        **fields: Any,
    ) -> Fact:
        policy = st.policy if st.policy is not None else self.default_policy
        fields["fact_id"] = fid
        fields["kind"] = kind
        fields["client_id"] = st.client_id
        fields["at"] = at
        fields["policy_id"] = policy.policy_id
        fields["policy_version"] = policy.version
        fields["obligation_id"] = ob.obligation_id
        fields["obligation_kind"] = ob.kind
        fields["thread_key"] = ob.thread
        fields.setdefault("channel", ob.channel)  # a chase carries its own channel
        fields["opened_at"] = ob.opened_at
        fields["deadline"] = ob.deadline
        return build_fact(fields)
