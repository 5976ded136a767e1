"""Seed data for the ClickHouse tests: a small, random but reproducible SLA history.

``scenario(seed)`` returns the records (with Kafka positions) a pipeline would hand the sink,
plus the ground truth the generator decided (which obligations end how), so tests can compute
expected dashboard numbers in plain Python without going through the sink or SQL.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.directory import Client
from schemas.events import CallOutcome, Channel, Direction, InteractionEvent, Kind
from schemas.facts import Fact, FactKind, ObligationKind, Outcome, TrustLevel
from sinks.clickhouse.rows import Position
from tests.builders import client, fact

T0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
NOW = T0 + timedelta(days=14, hours=12)
FACTS_TOPIC = "sla-facts.v1"
EVENTS_TOPIC = "interactions.v1"
PARTITIONS = 3
CLIENT_IDS = [f"c{i}" for i in range(6)]
OWNERS = {"c0": "alice@us.example", "c1": "alice@us.example", "c2": "bob@us.example",
          "c3": "bob@us.example", "c4": "carol@us.example"}  # fmt: skip
# c5 is deliberately missing from the directory.


def directory() -> list[Client]:
    """The client directory (c0..c4)."""
    return [client(cid, name=f"Client {cid.upper()}", owner=owner) for cid, owner in OWNERS.items()]


@dataclass
class Truth:
    """What the generator decided, independent of any storage code."""

    final_status: dict[str, str] = field(default_factory=dict)  # obligation_id -> status
    deadline: dict[str, datetime] = field(default_factory=dict)
    opened_at: dict[str, datetime] = field(default_factory=dict)
    client_of: dict[str, str] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)  # fact ids retracted


@dataclass
class Scenario:
    """Facts and events in stream order, with positions, and the ground truth."""

    facts: list[tuple[Fact, Position]]
    events: list[tuple[InteractionEvent, Position]]
    truth: Truth


def partition_of(client_id: str | None) -> int:
    """The Kafka partition a client's records land on (client_id keyed)."""
    return int(client_id[1:]) % PARTITIONS if client_id else 0


def _whole(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)


def _obligations(rng: random.Random, cid: str, truth: Truth, out: list[Fact]) -> None:
    for n in range(rng.randint(4, 9)):
        oid = f"{cid}-o{n}"
        opened = _whole(T0 + timedelta(days=rng.randint(0, 12), seconds=rng.randint(0, 86399)))
        channel = rng.choice([Channel.EMAIL, Channel.PHONE])
        ending = rng.choice(["met", "late", "waived", "open", "retracted_breach"])
        deadline = opened + timedelta(hours=4)
        if ending == "open":
            deadline = opened + timedelta(hours=rng.randint(1, 72))
        base: dict[str, Any] = {
            "client_id": cid,
            "obligation_id": oid,
            "channel": channel,
            "thread_key": f"{oid}-t",
        }
        truth.deadline[oid], truth.opened_at[oid], truth.client_of[oid] = deadline, opened, cid
        out.append(
            fact(FactKind.OBLIGATION_OPENED, f"{oid}-open", opened, deadline=deadline,
                 opened_at=opened, obligation_kind=ObligationKind.FIRST_RESPONSE, **base)
        )  # fmt: skip
        if rng.random() < 0.5:
            out.append(fact(FactKind.WARNING, f"{oid}-w50", opened + timedelta(hours=2),
                            warning_fraction=0.5, **base))  # fmt: skip
        if ending == "met":
            took = rng.uniform(60, 4 * 3600 - 60)
            out.append(fact(FactKind.FULFILLED, f"{oid}-done", opened + timedelta(seconds=took),
                            outcome=Outcome.MET, business_seconds=took,
                            calendar_seconds=took * 1.5, **base))  # fmt: skip
            truth.final_status[oid] = "met"
        elif ending == "late":
            out.append(fact(FactKind.BREACHED, f"{oid}-breach", deadline, **base))
            over = rng.uniform(60, 20 * 3600)
            out.append(fact(FactKind.FULFILLED, f"{oid}-done", deadline + timedelta(seconds=over),
                            outcome=Outcome.MET_LATE,
                            business_seconds=4 * 3600 + over, calendar_seconds=4 * 3600 + over,
                            overage_business_seconds=over, **base))  # fmt: skip
            truth.final_status[oid] = "met_late"
        elif ending == "waived":
            out.append(fact(FactKind.WAIVED, f"{oid}-waive", opened + timedelta(hours=1),
                            **base))  # fmt: skip
            truth.final_status[oid] = "waived"
        elif ending == "open":
            if deadline <= NOW:
                out.append(fact(FactKind.BREACHED, f"{oid}-breach", deadline, **base))
                truth.final_status[oid] = "breached"
            else:
                truth.final_status[oid] = "open"
        else:  # a reply sent before the deadline turned up late: the breach is retracted
            out.append(fact(FactKind.BREACHED, f"{oid}-breach", deadline, **base))
            fix_at = deadline + timedelta(hours=1)
            out.append(fact(FactKind.RETRACTED, f"{oid}-unbreach", fix_at,
                            retracts=f"{oid}-breach", **base))  # fmt: skip
            took = 4 * 3600 - 30.0
            out.append(fact(FactKind.FULFILLED, f"{oid}-done", fix_at, outcome=Outcome.MET,
                            fulfilled_at=opened + timedelta(seconds=took), business_seconds=took,
                            calendar_seconds=took, **base))  # fmt: skip
            truth.final_status[oid] = "met"
            truth.retracted.add(f"{oid}-breach")
    if cid in ("c0", "c1"):  # still open at NOW, deadline ahead
        oid = f"{cid}-pending"
        opened, deadline = T0 + timedelta(days=13, hours=10), T0 + timedelta(days=15, hours=3)
        truth.deadline[oid], truth.opened_at[oid], truth.client_of[oid] = deadline, opened, cid
        truth.final_status[oid] = "open"
        out.append(
            fact(FactKind.OBLIGATION_OPENED, f"{oid}-open", opened, client_id=cid,
                 deadline=deadline, opened_at=opened, obligation_kind=ObligationKind.CALLBACK,
                 obligation_id=oid, channel=Channel.PHONE)
        )  # fmt: skip


def _calls(rng: random.Random, cid: str, out: list[Fact]) -> None:
    for n in range(rng.randint(3, 8)):
        at = _whole(T0 + timedelta(days=rng.randint(0, 13), seconds=rng.randint(0, 86399)))
        outcome = rng.choice(
            [CallOutcome.ANSWERED] * 3 + [CallOutcome.ABANDONED, CallOutcome.MISSED]
        )
        wait = round(rng.uniform(1, 90), 3)
        within = outcome is CallOutcome.ANSWERED and wait <= 20
        out.append(fact(FactKind.SPEED_OF_ANSWER, f"{cid}-call{n}", at, client_id=cid,
                        channel=Channel.PHONE, call_outcome=outcome, wait_seconds=wait,
                        answered_within_target=within))  # fmt: skip


def _trust(rng: random.Random, cid: str, out: list[Fact]) -> None:
    levels = list(TrustLevel)
    level = rng.randrange(len(levels))
    for n in range(rng.randint(1, 4)):
        new = min(max(level + rng.choice([-1, 1]), 0), len(levels) - 1)
        at = _whole(T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 23)))
        out.append(fact(FactKind.TRUST_CHANGED, f"{cid}-trust{n}", at, client_id=cid,
                        trust_from=levels[level], trust_to=levels[new],
                        reason=f"rule {n}"))  # fmt: skip
        level = new


# Silence facts: (client, day) — c2, c4 and c5 stay silent, c3 answered after its silence.
SILENCES = {"c2": 12, "c3": 5, "c4": 11, "c5": 9}


def _events(rng: random.Random, cid: str | None, out: list[InteractionEvent]) -> None:
    last_out_day = SILENCES[cid] - 1 if cid in ("c2", "c4") else 13
    for n in range(rng.randint(10, 25)):
        direction = rng.choice([Direction.INBOUND, Direction.OUTBOUND, Direction.INTERNAL])
        if cid == "c5" and direction is Direction.OUTBOUND:
            direction = Direction.INBOUND  # c5 never hears from us
        max_day = last_out_day if direction is Direction.OUTBOUND else 13
        at = _whole(T0 + timedelta(days=rng.randint(0, max_day), seconds=rng.randint(0, 86399)))
        channel = rng.choice([Channel.EMAIL, Channel.PHONE, Channel.MEETING])
        kind = {
            Channel.EMAIL: Kind.MESSAGE,
            Channel.PHONE: Kind.CALL,
            Channel.MEETING: Kind.MEETING,
        }[channel]
        out.append(
            InteractionEvent(
                event_id=f"{cid}-e{n}", channel=channel, kind=kind, direction=direction,
                occurred_at=at, recorded_at=at + timedelta(minutes=5), client_id=cid,
                thread_key=f"{cid}-t{n % 3}", counterpart="+81312345678", staff="staff-1",
                call_outcome=CallOutcome.ANSWERED if kind is Kind.CALL else None,
                duration_seconds=120.0 if kind is Kind.CALL else None, source="seed",
            )
        )  # fmt: skip


def scenario(seed: int = 7) -> Scenario:
    """The whole history, in per-partition stream order with offsets."""
    rng = random.Random(seed)
    truth = Truth()
    facts: list[Fact] = []
    events: list[InteractionEvent] = []
    for cid in CLIENT_IDS:
        _obligations(rng, cid, truth, facts)
        _calls(rng, cid, facts)
        _trust(rng, cid, facts)
        if cid in SILENCES:
            at = T0 + timedelta(days=SILENCES[cid], hours=9)
            facts.append(
                fact(FactKind.SILENCE, f"{cid}-silence", at, client_id=cid, reason="cadence")
            )
        _events(rng, cid, events)
    _events(rng, None, events)  # unresolved counterpart: kept, never in per-client figures
    facts.sort(key=lambda f: f.at)  # stable: a retraction stays ahead of its correction
    events.sort(key=lambda e: e.occurred_at)
    return Scenario(_positioned(facts, FACTS_TOPIC), _positioned(events, EVENTS_TOPIC), truth)


def _positioned(records: list[Any], topic: str) -> list[tuple[Any, Position]]:
    offsets = [0] * PARTITIONS
    out = []
    for record in records:
        part = partition_of(record.client_id)
        out.append((record, Position(topic, part, offsets[part])))
        offsets[part] += 1
    return out
