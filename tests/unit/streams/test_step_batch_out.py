"""The step's output for inputs that came in batch records: fact_batch records on the facts
topic and event_batch records on the accepted topic, per destination partition, in send
order, cut at the item and byte limits; single-record inputs and alerts unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

import streams.step as step_module
from engine.core import Engine
from engine.state import ClientState
from schemas.base import encode
from schemas.batches import EVENT_BATCH, FACT_BATCH, partition_for, split
from schemas.events import Direction
from schemas.facts import Fact
from streams.step import InRecord, OutRecord, ProcessorStep, ProcessorTopics, StepResult
from streams.watermark import PartitionWatermarks
from tests.builders import ALWAYS_OPEN, ONE_MINUTE, policy_event
from tests.builders import email as email_event

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
TOPICS = ProcessorTopics.default("-b")
PARTITIONS = 3  # of the facts and accepted topics
CLIENTS = ["acme", "globex", "initech", "umbrella", "hooli", "wayne"]


def workload(clients: list[str] = CLIENTS) -> list[tuple[bytes, bytes]]:
    """(key, value) per input: each client's policy, an inbound e-mail five minutes ago (its
    deadline has passed: a breach and its alert), a reply, and a second inbound still open."""
    t0 = NOW - timedelta(minutes=5)
    out: list[tuple[bytes, bytes]] = []
    for c in clients:
        pol = policy_event(c, t0 - timedelta(minutes=1), ONE_MINUTE, ALWAYS_OPEN, event_id=f"p-{c}")
        out.append((c.encode(), encode(pol)))
    for i, (direction, at) in enumerate(
        [
            (Direction.INBOUND, t0),
            (Direction.OUTBOUND, t0 + timedelta(minutes=3)),
            (Direction.INBOUND, NOW - timedelta(seconds=20)),
        ]
    ):
        for c in clients:
            event = email_event(f"m{i}-{c}", at, direction, client=c)
            out.append((c.encode(), encode(event)))
    return out


def as_singles(inputs: list[tuple[bytes, bytes]]) -> list[InRecord]:
    return [
        InRecord(TOPICS.interactions, 0, offset, key, value, offset + 1)
        for offset, (key, value) in enumerate(inputs)
    ]


def as_batch_items(inputs: list[tuple[bytes, bytes]]) -> list[InRecord]:
    """The same inputs as the items of one batch record at offset 0 (they share its offset)."""
    return [
        InRecord(TOPICS.interactions, 0, 0, key, value, 1, index=i)
        for i, (key, value) in enumerate(inputs)
    ]


def new_step(max_batch_bytes: int = 1_000_000, batch_output_from: int = 0) -> ProcessorStep:
    return ProcessorStep(
        Engine(allowed_lateness=timedelta(0)),
        TOPICS,
        watermarks=PartitionWatermarks(timedelta(seconds=10)),
        facts_partitions=PARTITIONS,
        accepted_partitions=PARTITIONS,
        max_batch_bytes=max_batch_bytes,
        batch_output_from=batch_output_from,
    )


def run(step: ProcessorStep, batch: list[InRecord]) -> StepResult:
    table: dict[bytes, ClientState] = {}
    return step.run(batch, lambda anchor: table.get(anchor.key or b""), NOW)


def expanded(records: list[OutRecord], kind: str) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, item) of every item of ``records``, all batch records of ``kind``."""
    out: list[tuple[int, bytes, bytes]] = []
    for record in records:
        found = split(record.value)
        assert found is not None, record.value[:80]
        got_kind, items = found
        assert got_kind == kind
        assert record.partition is not None
        out.extend((record.partition, record.key or b"", item) for item in items)
    return out


def items_of(record: OutRecord) -> list[bytes]:
    found = split(record.value)
    assert found is not None
    return found[1]


def by_partition(records: list[OutRecord], topic: str) -> dict[int, list[bytes]]:
    """Single records of ``topic`` grouped by the partition of their key, in send order."""
    out: dict[int, list[bytes]] = {}
    for r in records:
        if r.topic == topic:
            out.setdefault(partition_for(r.key or b"", PARTITIONS), []).append(r.value)
    return out


def test_batch_inputs_give_batch_records_holding_exactly_the_single_records_facts() -> None:
    inputs = workload()
    singles = run(new_step(), as_singles(inputs))
    batched = run(new_step(), as_batch_items(inputs))

    single_facts = singles.on(TOPICS.facts)
    assert single_facts
    assert all(split(r.value) is None for r in single_facts)
    assert all(r.partition is None for r in singles.produce)  # the third parties' path as ever
    assert len(singles.on(TOPICS.accepted)) == len(inputs) - len(CLIENTS)  # policies are not

    for topic, kind in ((TOPICS.facts, FACT_BATCH), (TOPICS.accepted, EVENT_BATCH)):
        items = expanded(batched.on(topic), kind)
        # Every item lies on the partition its key gives, and the record on that partition.
        assert all(partition_for(key, PARTITIONS) == p for p, key, _ in items)
        got: dict[int, list[bytes]] = {}
        for p, _, item in items:
            got.setdefault(p, []).append(item)
        # Per partition, the items are the single records' values, in the same order.
        assert got == by_partition(singles.produce, topic)
    for record in batched.on(TOPICS.facts) + batched.on(TOPICS.accepted):
        first = orjson.loads(items_of(record)[0])
        assert record.key == first["client_id"].encode()  # keyed by its first item
    # One record per partition that has output: six clients, three partitions.
    assert len(batched.on(TOPICS.facts)) == len({partition_for(c.encode(), 3) for c in CLIENTS})
    # The facts themselves (ids included) are those of the single-record run.
    facts_b = [
        Fact.model_validate_json(i) for _, _, i in expanded(batched.on(TOPICS.facts), FACT_BATCH)
    ]
    facts_s = [Fact.model_validate_json(r.value) for r in single_facts]
    assert sorted(f.fact_id for f in facts_b) == sorted(f.fact_id for f in facts_s)
    # Alerts stay single records, the same ones.
    alerts_b, alerts_s = batched.on(TOPICS.alerts), singles.on(TOPICS.alerts)
    assert alerts_s
    assert [r.value for r in alerts_b] == [r.value for r in alerts_s]
    assert all(r.partition is None and split(r.value) is None for r in alerts_b)
    # The same states and due instants (the positions read differ: one batch offset).
    assert batched.due == singles.due
    assert [(u.state.open, u.state.seen) for u in batched.updates if u.state] == [
        (u.state.open, u.state.seen) for u in singles.updates if u.state
    ]


@pytest.mark.parametrize("threshold", [1, 10, len(workload())])
def test_a_full_step_of_single_records_writes_batch_records_of_the_same_output(
    threshold: int,
) -> None:
    inputs = workload()
    singles = run(new_step(), as_singles(inputs))
    full = run(new_step(batch_output_from=threshold), as_singles(inputs))
    for topic, kind in ((TOPICS.facts, FACT_BATCH), (TOPICS.accepted, EVENT_BATCH)):
        records = full.on(topic)
        assert records
        items = expanded(records, kind)  # every record of the topic is a batch record
        assert all(partition_for(key, PARTITIONS) == p for p, key, _ in items)
        got: dict[int, list[bytes]] = {}
        for p, _, item in items:
            got.setdefault(p, []).append(item)
        assert got == by_partition(singles.produce, topic)  # the same values, in order
    assert [r.value for r in full.on(TOPICS.alerts)] == [r.value for r in singles.on(TOPICS.alerts)]
    assert all(split(r.value) is None for r in full.on(TOPICS.alerts))
    assert full.due == singles.due


def test_a_step_below_the_threshold_writes_single_records() -> None:
    inputs = workload()
    result = run(new_step(batch_output_from=len(inputs) + 1), as_singles(inputs))
    assert result.on(TOPICS.facts)
    assert all(split(r.value) is None and r.partition is None for r in result.produce)
    # The step decides per run: the next, full one batches (the threshold is not sticky).
    step = new_step(batch_output_from=len(inputs))
    assert all(split(r.value) is None for r in run(step, as_singles(inputs[:-1])).produce)
    assert run(step, as_singles(inputs)).on(TOPICS.facts)
    assert all(split(r.value) is not None for r in run(step, as_singles(inputs)).on(TOPICS.facts))


def test_single_inputs_in_the_same_step_stay_single_records() -> None:
    inputs = [*workload(["acme"])]
    other = workload(["globex"])
    batch = as_batch_items(inputs) + [
        InRecord(TOPICS.interactions, 1, n, k, v, n + 1) for n, (k, v) in enumerate(other)
    ]
    result = run(new_step(), batch)
    facts = result.on(TOPICS.facts)
    batches = [r for r in facts if split(r.value) is not None]
    singles = [r for r in facts if split(r.value) is None]
    assert {r.key for r in batches} == {b"acme"}
    assert singles
    assert {r.key for r in singles} == {b"globex"}
    assert all(r.partition is None for r in singles)


def test_batch_records_are_cut_at_the_byte_limit() -> None:
    inputs = workload()
    whole = run(new_step(), as_batch_items(inputs)).on(TOPICS.facts)
    largest = max(len(i) for _, _, i in expanded(whole, FACT_BATCH))
    limit = 3 * largest + 80  # room for two or three facts and the envelope
    cut = run(new_step(max_batch_bytes=limit), as_batch_items(inputs)).on(TOPICS.facts)
    assert len(cut) > len(whole)
    assert all(len(r.value) <= limit for r in cut)
    # the same items on the same partitions in the same order
    assert [(p, i) for p, _, i in expanded(cut, FACT_BATCH)] == [
        (p, i) for p, _, i in expanded(whole, FACT_BATCH)
    ]
    for record in cut:  # each record keyed by its own first item
        first = Fact.model_validate_json(items_of(record)[0])
        assert record.key == first.client_id.encode()


def test_an_item_larger_than_the_limit_goes_alone() -> None:
    inputs = workload(["acme"])
    cut = run(new_step(max_batch_bytes=10), as_batch_items(inputs)).on(TOPICS.facts)
    assert len(cut) > 1
    assert all(len(items_of(r)) == 1 for r in cut)


def test_batch_records_are_cut_at_the_item_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_module, "MAX_BATCH_ITEMS", 4)
    inputs = workload()
    result = run(new_step(), as_batch_items(inputs))
    for topic, kind in ((TOPICS.facts, FACT_BATCH), (TOPICS.accepted, EVENT_BATCH)):
        records = result.on(topic)
        sizes = [len(items_of(r)) for r in records]
        assert max(sizes) == 4
        assert sum(sizes) == len(expanded(records, kind))
        # Full records first on each partition: only a partition's last one may be short.
        last: dict[int | None, int] = {}
        for r, n in zip(records, sizes, strict=True):
            assert last.get(r.partition, 4) == 4
            last[r.partition] = n


async def test_batch_records_are_acknowledged_before_any_state_is_stored() -> None:
    import asyncio

    step = new_step()
    result = run(step, as_batch_items(workload()))
    events: list[str] = []

    async def send(record: OutRecord) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def ack() -> None:
            events.append(f"ack {record.topic}")
            done.set_result(None)

        asyncio.get_running_loop().call_soon(ack)
        return done

    await step.commit(result, send, lambda update: events.append("store"))
    first_store = events.index("store")
    acks = [i for i, e in enumerate(events) if e.startswith("ack")]
    assert len(acks) == len(result.produce)
    assert max(acks) < first_store
    assert f"ack {TOPICS.facts}" in events


def test_a_client_with_some_batch_inputs_writes_all_its_output_in_batches() -> None:
    inputs = workload(["acme"])
    batch = [
        InRecord(TOPICS.interactions, 0, n, key, value, n + 1, index=0 if n % 2 == 0 else None)
        for n, (key, value) in enumerate(inputs)
    ]
    result = run(new_step(), batch)
    singles = run(new_step(), as_singles(inputs))
    for topic in (TOPICS.facts, TOPICS.accepted):
        records = result.on(topic)
        assert records
        assert all(split(r.value) is not None for r in records)
        # its order on the topic is the order of the single-record run
        assert [i for r in records for i in items_of(r)] == [r.value for r in singles.on(topic)]
