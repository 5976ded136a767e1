"""Benchmark of the SLA engine: ``engine.replay`` over a synthetic log, events per second.

Run: ``.venv/bin/python -m bench.engine [--quick] [--events N] [--profile] [--state-io]``.
Generates a log in memory (not timed), replays it on one core (timed), prints a table and writes
``bench/results/engine-<UTC timestamp>.json``. ``--profile`` prints the top functions of a
cProfile run of the same replay (slower; the figure it prints is not the benchmark figure).
``--state-io`` measures the state read and write per batch of one busy client instead.

The log: ``clients`` clients over ``days`` days, mostly in business hours (UTC, Tokyo and New York
calendars mixed via policy changes), with a mix modelled on a support desk: inbound and outbound
email in threads (some auto-replies, mailing-list mail and internal notes), inbound calls
(answered, missed, abandoned) with waits, outbound calls, voicemails, held meetings.
``--log realistic`` (default, ``generate_realistic``) answers the threads it opens: most in time,
some late, some never; ``--log legacy`` (``generate_legacy``) is the original log, whose replies
pick random threads at random times, so 88% of its obligations breach.

``--digest`` prints SHA-256 digests of every fact's JSON (replay, replay 10 days further, and the
live apply/advance path with jittered, late and duplicated arrivals, plus the final states) for
the synthetic log and for the demo log (``producers.demo.generate(seed=7)``): an optimisation
must leave them unchanged (run with PYTHONHASHSEED=0: state bytes list frozenset members).

Measurements (events per CPU second, ``time.process_time``, python 3.11.7; 2 cores shared with
other jobs at load 2-10, so a single figure varies by +-25%; the 20k rows give the range of the
best-of-4 runs of 4 sessions with before and after alternated in the same conditions; "freeze" =
the generated log is gc.freeze()d, the default since this change):

=============================  ==============  ==============  =========  ====================
run                            before          after           facts      outcome mix
=============================  ==============  ==============  =========  ====================
--quick legacy, no freeze      7.7k - 9.3k     11.4k - 14.1k   37,201     88% of obligations
--quick legacy, freeze         10.6k - 11.5k   11.2k - 15.1k   37,201     breach
--quick realistic, no freeze   8.5k - 12.2k    11.4k - 15.7k   26,469     79% met, 14% late,
--quick realistic, freeze      8.7k - 12.5k    13.3k - 19.2k   26,469     3% never, 4% waived
1M legacy, no freeze           5,896 (load 1)  8,359 (load 2)  1,861,922
                               5,547 (load 10)
1M realistic, freeze           6,967 (load 4)  10,553 (load 3) 1,320,083
=============================  ==============  ==============  =========  ====================

Step by step (--quick, no freeze, best of 3, measured right after each change; the load moved
between steps, so only large steps mean anything; every step left the --digest output unchanged):

=====================================================================  =========  =======
change                                                                 realistic  legacy
=====================================================================  =========  =======
e0095de (before)                                                       9,839      8,177
calendar: business-time line (prefix sums, bisect) for add_business
and business_seconds_between                                           11,334     10,061
flat Fact construction (no nested **kwargs), fact_id without join,
warning instants from the known budget                                 14,678     11,929
settle calls forget_before only with work to do; replay skips the
drain generator when nothing is due (load spike during this run)       11,020     9,840
same-day/next-morning per-day memo, level_for, replay loop inline,
elapsed written out in _fulfil, bench tallies kinds after the clock    13,511     12,990
gc.freeze() of the generated log (measurement, not engine)             +15-30%    noise
=====================================================================  =========  =======

"before" is commit e0095de (the author measured 5,090 on the 1M legacy log); "after" is this
file's commit. Where the time goes after the changes (py-spy, realistic log): no single hot
spot; per event ~75 Python function calls across the replay loop, timer bookkeeping, deadline
arithmetic, trust and Fact construction. Building one Fact (dict of 35 fields + a SHA-256 id)
costs ~4-8 us here, and the realistic log emits 1.3 facts per event, so 200,000 events/s
(5 us per event) is out of reach for this design in CPython; see the engine report.

Second pass (546cf2a..e32213f; "before" is 5eac2ad, i.e. with the state header; the
``--quick --digest`` lines of both logs were unchanged after every commit, and the eight 1M
``--digest`` lines of 9d7458d equal those of 5eac2ad; e32213f only touches an error path): the
calendar line's coverage test inline (no ``_line`` call per business-time query), the
obligation id without ``"|".join``, facts built without the required-field check
(``factmake.build_fact``), the silence lower bound from a per-cadence span, rule/clock/policy
lookups and ``apply_in_order``'s settle written out, a C-level sort key in ``replay``,
``trust.describe`` without ``Counter``. Events per CPU second, before and after alternated in
the same session:

=========================================  ==============  ==============  ===================
run                                        before          after           note
=========================================  ==============  ==============  ===================
20k realistic, freeze, best of 3           11.1k - 18.2k   13.8k - 19.6k   11 pairs, load 2.6-8
                                                                           after won each pair
                                                                           by +2% to +33%,
                                                                           median +10%
20k legacy, freeze, best of 3              14.0k, 16.3k    13.7k, 15.0k    2 pairs, load 5.5-6.5
1M realistic, freeze                       9,417; 11,664   11,603; 10,193  2 pairs, load 1.2-2.8
1M realistic, freeze, mypyc (not in git)   -               13,284          load 2.9-3.2; pure
                                                                           after, next run:
                                                                           9,892 (load 3.4-3.6)
=========================================  ==============  ==============  ===================

So: ~+10% on the realistic 20k log (pairs measured after each of the first three commits and
at the end); at 1M the two pairs are within the +-15% noise; nothing measurable on the legacy log (timer-heavy: warnings and breaches, untouched here). The profile
is flat (py-spy, 60k realistic: replay loop 15-20% self, of which heappop ~5% and the sort ~5%;
fact building ~7%; SHA-256 ids ~8%; nothing else above 6%), so hand edits are at the end of
their road. mypyc (all nine engine modules, scratch copy, not committed: it needs a setup.py
and build requirements) gave +12% to +45% on top of this pass at 20k realistic (best of 3,
load 6-8, 2 pairs) with identical ``--quick --digest`` lines.

Commands: ``PYTHONHASHSEED=0 .venv/bin/python -m bench.engine --digest`` (and ``--quick
--digest``, ``--quick --log legacy --digest``); ``.venv/bin/python -m bench.engine --events
1000000``; the 20k pairs call ``run`` of this module three times on one generated, frozen log
and keep the lowest CPU time.

Third pass (issue 16 item 4; "before" is 6c32b74; the ``--quick --digest`` lines, live states
included, are unchanged after every commit). Facts were already built without validation
(``factmake.build_fact``); the profile (py-spy, 100k realistic) was flat again: replay loop and
drain ~16% self, fact building + SHA-256 ids ~9%, ``forget_before`` ~7% (its daily sweep of the
thread memory a Python list comprehension), trust ``step`` ~6% (``TrustLevel.rank`` was
``list(TrustLevel).index``), timer scan ~4%, business-time queries ~5%. Changed: rank by dict
lookup, memoised trust spans, the sweep by C-level iteration. 300k realistic, events per CPU s,
three before/after pairs alternated at load 4-7: after 15,751 / 15,232 / 13,154, before
14,991 / 13,192 / 14,251 (medians 15.2k vs 14.3k, +7%, within the noise of one pair). The goal
of 50,000 is not reached by edits of this kind.

``--state-io`` (``state_io``; the ``parts_*`` rows: the same through the two-generation store of
``streams.state_parts``, no cache, merges included): the processor's state read and write per batch for one client
with 5,208 seen ids, 8,387 fulfilled threads and 13,389 message-id links (2.3 MB of state),
3 events a batch, CPU per batch: read 37-42 ms -> 36.5 ms by C-level decoding (a cache of the
written states in the engine took it to 0.9 ms; it was replaced the same day by the processor's
own ``streams.state_cache``, which skips the read entirely when the table holds what the worker
wrote, so this bench now measures the decode a cache miss pays), write 17-20 ms -> 7-11 ms (orjson
encodes the seen deque and the thread memory as they are; the write still encodes the whole
state, since the table stores one value per client).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import itertools
import json
import platform
import pstats
import random
import sys
import time as wall
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.core import Engine
from engine.replay import replay
from engine.state import ClientState, Event
from schemas.calendars import BusinessCalendar
from schemas.events import (
    CallOutcome,
    Channel,
    ClientPolicyChanged,
    Direction,
    Flag,
    InteractionEvent,
    Kind,
)
from schemas.facts import Fact, FactKind, Outcome
from schemas.policies import BusinessDuration, SlaPolicy

RESULTS = Path(__file__).resolve().parent / "results"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday

_HELD = frozenset({Flag.HELD, Flag.CLIENT_ATTENDEE})
_NONE: frozenset[Flag] = frozenset()
_ONE_DAY = timedelta(days=1)
_UTC_ZONE = ZoneInfo("UTC")


def _event(
    i: int,
    client: str,
    t: datetime,
    channel: Channel,
    kind: Kind,
    direction: Direction,
    *,
    thread: str | None = None,
    flags: frozenset[Flag] = _NONE,
    outcome: CallOutcome | None = None,
    duration: float | None = None,
    wait: float | None = None,
) -> InteractionEvent:
    # model_construct: a million validated constructions would dominate the run time of the
    # generator; the values are built right here with the right types.
    return InteractionEvent.model_construct(
        event_id=f"ev-{i}",
        channel=channel,
        kind=kind,
        direction=direction,
        occurred_at=t,
        recorded_at=t + timedelta(seconds=30),
        client_id=client,
        thread_key=thread,
        counterpart=f"+8131234{client[-4:]}",
        flags=flags,
        call_outcome=outcome,
        duration_seconds=duration,
        wait_seconds=wait,
    )


def _policy_changes(clients: list[str], rng: random.Random) -> list[Event]:
    """A third of the clients get their own policy and calendar at the start of the log."""
    tokyo = BusinessCalendar(calendar_id="tokyo", timezone="Asia/Tokyo", holiday_country="JP")
    new_york = BusinessCalendar(
        calendar_id="ny",
        timezone="America/New_York",
        holiday_country="US",
        holiday_subdivision="NY",
    )
    fast = SlaPolicy(policy_id="4h", version=2, first_response=BusinessDuration(minutes=240))
    out: list[Event] = []
    for n, client in enumerate(clients):
        if n % 3:
            continue
        out.append(
            ClientPolicyChanged(
                event_id=f"pc-{client}",
                client_id=client,
                occurred_at=START,
                recorded_at=START,
                policy=fast if rng.random() < 0.5 else SlaPolicy(policy_id="std", version=2),
                calendar=tokyo if rng.random() < 0.5 else new_york,
            )
        )
    return out


def generate_legacy(total: int, *, clients: int, days: int, seed: int = 7) -> list[Event]:
    """The original log (``--log legacy``): replies pick random threads at random times, so
    most obligations breach (88%) and every breach first fires three warnings.
    ``total`` events (policy changes included) for ``clients`` clients over ``days`` days."""
    rng = random.Random(seed)
    names = [f"client-{n:05d}" for n in range(clients)]
    events: list[Event] = _policy_changes(names, rng)
    open_threads: dict[str, list[str]] = {}
    i = 0
    while len(events) < total:
        # Skewed: the busiest client gets ~1/sqrt(clients) of the events, most get a few.
        client = names[int(clients * rng.random() ** 2)]
        day = rng.randrange(days)
        # Mostly office hours (UTC 00:00-23:59 covers Tokyo, London and New York offices).
        t = START + timedelta(days=day, seconds=rng.randrange(86400))
        threads = open_threads.setdefault(client, [])
        r = rng.random()
        i += 1
        if r < 0.30:  # inbound email, new thread or reply in an existing one
            if threads and rng.random() < 0.4:
                thread = rng.choice(threads)
            else:
                thread = f"{client}-t{i}"
                threads.append(thread)
                if len(threads) > 8:
                    threads.pop(0)
            flags = _NONE
            if rng.random() < 0.08:
                flags = frozenset({Flag.AUTO_REPLY})
            elif rng.random() < 0.05:
                flags = frozenset({Flag.MAILING_LIST})
            ev = _event(
                i,
                client,
                t,
                Channel.EMAIL,
                Kind.MESSAGE,
                Direction.INBOUND,
                thread=thread,
                flags=flags,
            )
        elif r < 0.58:  # outbound email, mostly replies
            thread = rng.choice(threads) if threads and rng.random() < 0.85 else f"{client}-o{i}"
            ev = _event(
                i, client, t, Channel.EMAIL, Kind.MESSAGE, Direction.OUTBOUND, thread=thread
            )
        elif r < 0.72:  # inbound call
            outcome = rng.choices(
                [CallOutcome.ANSWERED, CallOutcome.MISSED, CallOutcome.ABANDONED], [0.7, 0.2, 0.1]
            )[0]
            answered = outcome is CallOutcome.ANSWERED
            ev = _event(
                i, client, t, Channel.PHONE, Kind.CALL, Direction.INBOUND,
                outcome=outcome,
                wait=rng.expovariate(1 / 15),
                duration=rng.expovariate(1 / 180) if answered else None,
            )  # fmt: skip
        elif r < 0.84:  # outbound call
            answered = rng.random() < 0.6
            ev = _event(
                i, client, t, Channel.PHONE, Kind.CALL, Direction.OUTBOUND,
                outcome=CallOutcome.ANSWERED if answered else CallOutcome.MISSED,
                duration=rng.expovariate(1 / 150) if answered else None,
            )  # fmt: skip
        elif r < 0.88:
            ev = _event(i, client, t, Channel.PHONE, Kind.VOICEMAIL, Direction.INBOUND)
        elif r < 0.93:
            flags = _HELD if rng.random() < 0.8 else frozenset({Flag.CANCELLED})
            ev = _event(
                i, client, t, Channel.MEETING, Kind.MEETING, Direction.OUTBOUND, flags=flags
            )
        elif r < 0.97:  # internal note in a thread
            note_thread = rng.choice(threads) if threads else None
            ev = _event(
                i, client, t, Channel.EMAIL, Kind.MESSAGE, Direction.INTERNAL, thread=note_thread
            )
        else:
            note_thread = rng.choice(threads) if threads else None
            ev = _event(
                i,
                client,
                t,
                Channel.EMAIL,
                Kind.NO_REPLY_NEEDED,
                Direction.INTERNAL,
                thread=note_thread,
            )
        events.append(ev)
    return events


def _office_time(rng: random.Random, zone: ZoneInfo, days: int) -> datetime:
    """Mostly (90%) a weekday between 08:00 and 19:00 local time, else any time of any day."""
    day = START.date() + timedelta(days=rng.randrange(days))
    if rng.random() < 0.9:
        while day.weekday() >= 5:
            day -= _ONE_DAY
        local = datetime.combine(day, time(8), tzinfo=zone)
        local += timedelta(seconds=rng.randrange(11 * 3600))
    else:
        local = datetime.combine(day, time(0), tzinfo=zone)
        local += timedelta(seconds=rng.randrange(86400))
    return local.astimezone(UTC)


def _reply_delay(rng: random.Random) -> timedelta | None:
    """How long a reply takes: None = never answered, a negative delay = waived."""
    r = rng.random()
    if r < 0.65:  # the usual quick answer
        return timedelta(seconds=rng.expovariate(1 / 2700))
    if r < 0.80:  # later the same day: most in time, some after the end of the business day
        return timedelta(seconds=rng.uniform(2 * 3600, 8 * 3600))
    if r < 0.88:  # late
        return timedelta(seconds=rng.uniform(20 * 3600, 60 * 3600))
    if r < 0.95:  # never answered: the obligation breaches
        return None
    return -timedelta(seconds=rng.uniform(300, 3600))  # "no reply needed" after a while


def generate_realistic(total: int, *, clients: int, days: int, seed: int = 7) -> list[Event]:
    """The default log (``--log realistic``): stories, not independent events.

    Inbound email threads are answered in the same thread: ~65% quickly, ~15% hours later (mostly
    in time), ~8% a day or more late, ~7% never (breach), ~5% waived; ~35% of answered threads
    get a follow-up from the client (up to three rounds). Inbound calls are mostly answered;
    missed ones and voicemails are called back (mostly within the hour). Proactive outbound
    email and calls, held meetings and internal notes fill the rest. Times are office hours of
    the client's own calendar (UTC, Tokyo or New York) on weekdays, 10% at any time.
    """
    rng = random.Random(seed)
    names = [f"client-{n:05d}" for n in range(clients)]
    events: list[Event] = _policy_changes(names, rng)
    zones = {
        ev.client_id: ZoneInfo(ev.calendar.timezone)
        for ev in events
        if isinstance(ev, ClientPolicyChanged) and ev.client_id is not None
    }
    counter = itertools.count(1)

    def add(client: str, t: datetime, channel: Channel, kind: Kind, direction: Direction,
            **kw: Any) -> None:  # fmt: skip
        events.append(_event(next(counter), client, t, channel, kind, direction, **kw))

    def callback(client: str, t: datetime) -> None:
        r = rng.random()
        if r < 0.8:
            at = t + timedelta(seconds=rng.expovariate(1 / 2400))
        elif r < 0.9:
            at = t + timedelta(hours=rng.uniform(18, 40))
        else:
            return  # never called back
        add(client, at, Channel.PHONE, Kind.CALL, Direction.OUTBOUND,
            outcome=CallOutcome.ANSWERED, duration=rng.expovariate(1 / 150))  # fmt: skip

    while len(events) < total:
        client = names[int(clients * rng.random() ** 2)]
        t = _office_time(rng, zones.get(client, _UTC_ZONE), days)
        r = rng.random()
        if r < 0.55:  # an inbound email thread and its answers
            thread = f"{client}-t{next(counter)}"
            r2 = rng.random()
            flags = _NONE
            if r2 < 0.03:
                flags = frozenset({Flag.AUTO_REPLY})
            elif r2 < 0.06:
                flags = frozenset({Flag.MAILING_LIST})
            for _round in range(4):
                add(client, t, Channel.EMAIL, Kind.MESSAGE, Direction.INBOUND,
                    thread=thread, flags=flags)  # fmt: skip
                if flags:
                    break
                if rng.random() < 0.1:  # a colleague adds to the thread before the answer
                    add(client, t + timedelta(minutes=rng.uniform(1, 30)), Channel.EMAIL,
                        Kind.MESSAGE, Direction.INTERNAL, thread=thread)  # fmt: skip
                delay = _reply_delay(rng)
                if delay is None:
                    break
                if delay < timedelta(0):
                    add(client, t - delay, Channel.EMAIL, Kind.NO_REPLY_NEEDED,
                        Direction.INTERNAL, thread=thread)  # fmt: skip
                    break
                t += delay
                add(client, t, Channel.EMAIL, Kind.MESSAGE, Direction.OUTBOUND, thread=thread)
                if rng.random() >= 0.35:
                    break
                t += timedelta(seconds=rng.expovariate(1 / 10800))  # the client writes back
        elif r < 0.75:  # an inbound call
            outcome = rng.choices(
                [CallOutcome.ANSWERED, CallOutcome.MISSED, CallOutcome.ABANDONED], [0.75, 0.15, 0.1]
            )[0]
            answered = outcome is CallOutcome.ANSWERED
            add(client, t, Channel.PHONE, Kind.CALL, Direction.INBOUND, outcome=outcome,
                wait=rng.expovariate(1 / 12),
                duration=rng.expovariate(1 / 180) if answered else None)  # fmt: skip
            if not answered:
                callback(client, t)
        elif r < 0.79:  # a voicemail
            add(client, t, Channel.PHONE, Kind.VOICEMAIL, Direction.INBOUND)
            callback(client, t)
        elif r < 0.87:  # proactive outbound email in a new thread
            add(client, t, Channel.EMAIL, Kind.MESSAGE, Direction.OUTBOUND,
                thread=f"{client}-o{next(counter)}")  # fmt: skip
        elif r < 0.93:  # proactive outbound call
            answered = rng.random() < 0.6
            add(client, t, Channel.PHONE, Kind.CALL, Direction.OUTBOUND,
                outcome=CallOutcome.ANSWERED if answered else CallOutcome.MISSED,
                duration=rng.expovariate(1 / 150) if answered else None)  # fmt: skip
        elif r < 0.96:  # a meeting
            flags = _HELD if rng.random() < 0.85 else frozenset({Flag.CANCELLED})
            add(client, t, Channel.MEETING, Kind.MEETING, Direction.OUTBOUND, flags=flags)
        else:  # an internal note outside any thread
            add(client, t, Channel.EMAIL, Kind.MESSAGE, Direction.INTERNAL)
    del events[total:]
    return events


LOGS = {"realistic": generate_realistic, "legacy": generate_legacy}


def _digest(facts: Iterable[Fact]) -> str:
    h = hashlib.sha256()
    n = 0
    for fact in facts:
        h.update(fact.model_dump_json().encode())
        h.update(b"\n")
        n += 1
    return f"{h.hexdigest()} ({n} facts)"


def live_digests(events: list[Event], lateness: timedelta, seed: int = 11) -> tuple[str, str]:
    """Digests of the facts and final states of the live path (``apply`` + ``advance``).

    Arrivals are jittered: 96% within the allowed lateness, 3% beyond it (corrections), 1%
    duplicated; the watermark is the arrival time; the client is advanced after every event and
    all clients every 997 events; at the end every client is settled a day after the last event.
    """
    rng = random.Random(seed)
    arrivals: list[tuple[datetime, int, Event]] = []
    for n, ev in enumerate(events):
        r = rng.random()
        if r < 0.96:
            delay = rng.uniform(0, 0.9) * lateness
        else:
            delay = lateness + rng.uniform(0, 3600) * timedelta(seconds=1)
        arrivals.append((ev.occurred_at + delay, n, ev))
        if r > 0.99:
            arrivals.append((ev.occurred_at + 2 * delay, n, ev))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    engine = Engine(allowed_lateness=lateness)
    states: dict[str, ClientState] = {}
    out: list[Fact] = []
    for k, (at, _, ev) in enumerate(arrivals):
        client = ev.client_id or ""
        st, facts = engine.apply(states.get(client), ev)
        states[client] = st
        out += facts
        out += engine.advance(st, at)[1]
        if k % 997 == 0:
            for name in sorted(states):
                out += engine.advance(states[name], at)[1]
    end = max(ev.occurred_at for ev in events) + timedelta(days=1)
    for name in sorted(states):
        out += engine.settle(states[name], end)[1]
    h = hashlib.sha256()
    for name in sorted(states):
        h.update(states[name].to_bytes())
    return _digest(out), h.hexdigest()


def digests(events: list[Event], lateness: timedelta) -> dict[str, str]:
    """Hashes of every fact's JSON: replay and live path (see ``live_digests``)."""
    engine = Engine(allowed_lateness=lateness)
    end = max(ev.occurred_at for ev in events) + timedelta(days=1)
    live, states = live_digests(events, lateness)
    return {
        "replay": _digest(replay(events, engine, watermark_end=end)),
        "replay+10d": _digest(
            replay(events, Engine(allowed_lateness=lateness), watermark_end=end + 9 * _ONE_DAY)
        ),
        "live": live,
        "live-states": states,
    }


def run(events: list[Event], lateness: timedelta) -> tuple[float, float, Counter[str]]:
    """Wall and CPU seconds to replay ``events`` to the end (+1 day of timers), facts by kind."""
    engine = Engine(allowed_lateness=lateness)
    end = max(ev.occurred_at for ev in events) + timedelta(days=1)
    kinds: list[FactKind] = []
    outcomes: list[Outcome | None] = []
    add_kind, add_outcome = kinds.append, outcomes.append
    started, cpu = wall.perf_counter(), wall.process_time()
    for fact in replay(events, engine, watermark_end=end):
        add_kind(fact.kind)  # tallied after the clock stops (enum hashing is not free)
        add_outcome(fact.outcome)
    seconds, cpu_s = wall.perf_counter() - started, wall.process_time() - cpu
    tally: Counter[str] = Counter()
    for kind, outcome in zip(kinds, outcomes, strict=True):
        tally[kind.value if outcome is None else f"{kind.value} ({outcome.value})"] += 1
    return seconds, cpu_s, tally


def _mail(i: int, client: str, t: datetime, direction: Direction, root: int, n: int) -> Event:
    """The ``n``-th message (0: the question) of conversation ``root``, schema v2 ids."""
    keys = [hashlib.md5(f"{root}.{k}".encode()).hexdigest() for k in range(n + 1)]
    return InteractionEvent.model_construct(
        schema_version=2,
        event_id=f"ev-{i}",
        channel=Channel.EMAIL,
        kind=Kind.MESSAGE,
        direction=direction,
        occurred_at=t,
        recorded_at=t,
        client_id=client,
        counterpart=f"someone-{root % 50}@example.com",
        message_key=keys[-1],
        parent_keys=tuple(keys[:-1]),
    )


def busy_client(seen: int = 5000, *, days: int = 30) -> tuple[Engine, ClientState, datetime]:
    """One client after ``days`` of e-mail conversations, ``seen`` events in its last 7 days
    (the duplicate window): question, answer, sometimes a follow-up and its answer, each with
    message ids, so the state holds ``seen`` event ids and a month of thread memory (fulfilled
    threads and message-id links). Returns the engine, the state and its processed time."""
    engine = Engine(allowed_lateness=timedelta(0))
    per_s = seen / (7 * 86400)
    st = ClientState(client_id="client-busy")
    rng = random.Random(3)
    t = START
    i = root = 0
    end = START + timedelta(days=days)
    while t < end:
        root += 1
        q = t
        msgs = [(q, Direction.INBOUND)]
        a = q + timedelta(seconds=rng.expovariate(1 / 1800))
        msgs.append((a, Direction.OUTBOUND))
        if rng.random() < 0.3:
            msgs += [(a + timedelta(hours=1), Direction.INBOUND),
                     (a + timedelta(hours=2), Direction.OUTBOUND)]  # fmt: skip
        for n, (at, direction) in enumerate(msgs):
            i += 1
            st, _ = engine.apply(st, _mail(i, st.client_id, at, direction, root, n))
        t += timedelta(seconds=rng.expovariate(per_s / 2.6))
        st, _ = engine.advance(st, t)
    return engine, st, t


def state_io(seen: int = 5000, *, batches: int = 100, per_batch: int = 3) -> dict[str, float]:
    """The processor's state cost per batch for one busy client (``busy_client``): read the
    bytes (``from_bytes``), apply ``per_batch`` new events (not timed), write (``to_bytes``).
    Returns microseconds of CPU per read and per write (mean over ``batches``) and the size."""
    engine, st, t = busy_client(seen)
    raw = st.to_bytes()
    read_s = write_s = 0.0
    i = 10_000_000
    for b in range(batches):
        c0 = wall.process_time()
        st = ClientState.from_bytes(raw)
        c1 = wall.process_time()
        for _ in range(per_batch):
            i += 1
            t += timedelta(seconds=30)
            direction = Direction.INBOUND if i % 2 else Direction.OUTBOUND
            st, _ = engine.apply(st, _mail(i, st.client_id, t, direction, 900_000 + b, i % 2))
        st, _ = engine.advance(st, t)
        c2 = wall.process_time()
        raw = st.to_bytes()
        write_s += wall.process_time() - c2
        read_s += c1 - c0
    # Four times the batches: a merge comes every few hundred changed items, so the mean over
    # 100 batches might contain none.
    parts = _state_io_parts(seen, batches=4 * batches, per_batch=per_batch)
    return {
        "seen_ids": float(len(st.seen)),
        "answered": float(len(st.answered)),
        "links": float(len(st.links)),
        "bytes": float(len(raw)),
        "read_us": read_s / batches * 1e6,
        "write_us": write_s / batches * 1e6,
        **parts,
    }


def _state_io_parts(seen: int, *, batches: int, per_batch: int) -> dict[str, float]:
    """``state_io`` through the processor's two-generation store (``streams.state_parts``: core
    + old generation, rewritten on a merge), the cache left out so every read decodes: bytes
    written per batch (mean, merges included), CPU per read and per write, merges."""
    from streams.state_parts import read_state, write_state

    engine, st, t = busy_client(seen)
    table: dict[bytes, bytes] = {}
    write_state(table.__setitem__, b"busy", st)  # the first write merges (not counted)
    read_s = write_s = 0.0
    written = merges = 0
    i = 10_000_000
    for b in range(batches):
        c0 = wall.process_time()
        loaded = read_state(table.get, b"busy")
        c1 = wall.process_time()
        assert loaded is not None
        st = loaded
        for _ in range(per_batch):
            i += 1
            t += timedelta(seconds=30)
            direction = Direction.INBOUND if i % 2 else Direction.OUTBOUND
            st, _ = engine.apply(st, _mail(i, st.client_id, t, direction, 900_000 + b, i % 2))
        st, _ = engine.advance(st, t)
        generation = st.generation
        c2 = wall.process_time()
        written += write_state(table.__setitem__, b"busy", st)
        write_s += wall.process_time() - c2
        read_s += c1 - c0
        merges += st.generation != generation
    return {
        "parts_bytes": written / batches,
        "parts_read_us": read_s / batches * 1e6,
        "parts_write_us": write_s / batches * 1e6,
        "parts_merges": float(merges),
    }


def main(argv: list[str] | None = None) -> None:
    """Generate, replay, print a table, write JSON under bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20k events instead of 1M")
    parser.add_argument("--events", type=int, default=None, help="number of events")
    parser.add_argument("--clients", type=int, default=None, help="default: events / 50")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--lateness", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile top 25")
    parser.add_argument(
        "--no-freeze", action="store_true", help="do not gc.freeze() the generated log"
    )
    parser.add_argument("--log", choices=sorted(LOGS), default="realistic", help="synthetic log")
    parser.add_argument(
        "--digest",
        action="store_true",
        help="print SHA-256 digests of the facts (synthetic log and demo log), do not time",
    )
    parser.add_argument(
        "--state-io",
        action="store_true",
        help="measure the state read+write per batch of a client with 5,000 seen ids instead",
    )
    args = parser.parse_args(argv)
    if args.state_io:
        for k, v in state_io().items():
            print(f"  {k:<14} {v:>12,.1f}")
        return
    total = args.events or (20_000 if args.quick else 1_000_000)
    clients = args.clients or max(10, total // 50)

    started = wall.perf_counter()
    events = LOGS[args.log](total, clients=clients, days=args.days)
    gen_s = wall.perf_counter() - started
    if not args.no_freeze:
        # The generated log (a million models held in memory, which a live worker never does)
        # is input, not engine work: keep the cyclic GC from re-scanning it during the replay.
        gc.collect()
        gc.freeze()
    lateness = timedelta(seconds=args.lateness)
    if args.digest:
        from producers.demo import generate as demo

        for name, log in (
            (f"{args.log} {total}", events),
            ("demo seed=7", list(demo(seed=7).events)),
        ):
            for what, value in digests(log, lateness).items():
                print(f"{name:>20} {what:>22}  {value}")
        return
    run(events[: min(len(events), 5000)], lateness)  # warm calendar caches and imports
    seconds, cpu_s, kinds = run(events, lateness)
    rate = len(events) / seconds
    facts = sum(kinds.values())

    rows = [
        ("log", args.log),
        ("gc.freeze of the log", "no" if args.no_freeze else "yes"),
        ("events", f"{len(events):,}"),
        ("clients", f"{clients:,}"),
        ("days", str(args.days)),
        ("generate (not timed)", f"{gen_s:.1f} s"),
        ("replay", f"{seconds:.2f} s"),
        ("events/s (wall)", f"{rate:,.0f}"),
        ("replay CPU time", f"{cpu_s:.2f} s"),
        ("events per CPU second", f"{len(events) / cpu_s:,.0f}"),
        ("facts", f"{facts:,}"),
        ("facts/s", f"{facts / seconds:,.0f}"),
        *((f"  {k}", f"{v:,}") for k, v in sorted(kinds.items())),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"bench.engine  (python {platform.python_version()}, one core, goal 200,000 events/s)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>14}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "bench": "engine",
        "at": stamp,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "log": args.log,
        "gc_freeze": not args.no_freeze,
        "events": len(events),
        "clients": clients,
        "days": args.days,
        "lateness_s": args.lateness,
        "replay_s": seconds,
        "replay_cpu_s": cpu_s,
        "events_per_cpu_s": len(events) / cpu_s,
        "events_per_s": rate,
        "facts": facts,
        "facts_by_kind": dict(kinds),
        "goal_events_per_s": 200_000,
    }
    path = RESULTS / f"engine-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"  wrote {path}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(events, lateness)
        profiler.disable()
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(25)
        print(buffer.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
