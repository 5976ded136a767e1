"""Benchmark of the SLA engine: ``engine.replay`` over a synthetic log, events per second.

Run: ``.venv/bin/python -m bench.engine [--quick] [--events N] [--profile]``. Generates a log in
memory (not timed), replays it on one core (timed), prints a table and writes
``bench/results/engine-<UTC timestamp>.json``. ``--profile`` prints the top functions of a
cProfile run of the same replay (slower; the figure it prints is not the benchmark figure).

The log: ``clients`` clients over ``days`` days, mostly in business hours (UTC, Tokyo and New York
calendars mixed via policy changes), with a mix modelled on a support desk: inbound and outbound
email in threads (some auto-replies, mailing-list mail and internal notes), inbound calls
(answered, missed, abandoned) with waits, outbound calls, voicemails, held meetings.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import platform
import pstats
import random
import sys
import time as wall
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.core import Engine
from engine.replay import replay
from engine.state import Event
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
from schemas.policies import BusinessDuration, SlaPolicy

RESULTS = Path(__file__).resolve().parent / "results"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday

_HELD = frozenset({Flag.HELD, Flag.CLIENT_ATTENDEE})
_NONE: frozenset[Flag] = frozenset()


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


def generate(total: int, *, clients: int, days: int, seed: int = 7) -> list[Event]:
    """``total`` events (policy changes included) for ``clients`` clients over ``days`` days."""
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


def run(events: list[Event], lateness: timedelta) -> tuple[float, float, Counter[str]]:
    """Wall and CPU seconds to replay ``events`` to the end (+1 day of timers), facts by kind."""
    engine = Engine(allowed_lateness=lateness)
    end = max(ev.occurred_at for ev in events) + timedelta(days=1)
    kinds: Counter[str] = Counter()
    started, cpu = wall.perf_counter(), wall.process_time()
    for fact in replay(events, engine, watermark_end=end):
        kinds[fact.kind.value] += 1
    return wall.perf_counter() - started, wall.process_time() - cpu, kinds


def main(argv: list[str] | None = None) -> None:
    """Generate, replay, print a table, write JSON under bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20k events instead of 1M")
    parser.add_argument("--events", type=int, default=None, help="number of events")
    parser.add_argument("--clients", type=int, default=None, help="default: events / 50")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--lateness", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile top 25")
    args = parser.parse_args(argv)
    total = args.events or (20_000 if args.quick else 1_000_000)
    clients = args.clients or max(10, total // 50)

    started = wall.perf_counter()
    events = generate(total, clients=clients, days=args.days)
    gen_s = wall.perf_counter() - started
    lateness = timedelta(seconds=args.lateness)
    run(events[: min(len(events), 5000)], lateness)  # warm calendar caches and imports
    seconds, cpu_s, kinds = run(events, lateness)
    rate = len(events) / seconds
    facts = sum(kinds.values())

    rows = [
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
