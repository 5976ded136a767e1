"""The directory topic drives ClientPolicyChanged events on the event log, idempotently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from schemas.directory import Client, ClientDirectory
from schemas.directory_records import directory_records
from schemas.events import ClientPolicyChanged
from schemas.facts import FactKind
from tests.builders import ALWAYS_OPEN, ONE_MINUTE

from .processor_harness import (
    CollectorFactory,
    Env,
    collector,
    processor_env,
    wait_until,
)

pytestmark = pytest.mark.integration
_ = (collector, processor_env)  # fixtures used by name


def directory(version: int) -> ClientDirectory:
    policy = ONE_MINUTE.model_copy(update={"version": version})
    return ClientDirectory(
        clients=(
            Client(
                client_id="acme",
                name="Acme",
                domains=("acme.example",),
                owner="owner@us.example",
                policy_id=policy.policy_id,
                calendar_id=ALWAYS_OPEN.calendar_id,
            ),
        ),
        policies=(policy,),
        calendars=(ALWAYS_OPEN,),
    )


async def test_policy_changes_are_announced_once_per_change(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    env = processor_env()
    log = await collector(env.topics.interactions)
    facts = await collector(env.topics.facts)
    app, stats = env.build(env.new_app_id())

    def changes() -> list[ClientPolicyChanged]:
        return [ClientPolicyChanged.model_validate_json(r.value) for r in log.records if r.value]

    async def publish(version: int) -> None:
        records = directory_records(directory(version))
        before = stats.directory_records_in
        await asyncio.to_thread(env.produce, env.topics.directory, list(records))
        await wait_until(lambda: stats.directory_records_in >= before + len(records))

    await app.start()
    try:
        await publish(1)
        await log.wait_for(lambda recs: len(recs) >= 1)
        await publish(1)  # unchanged: no second event
        await publish(2)  # a new policy version: one event
        await log.wait_for(lambda recs: len(recs) >= 2)
        await publish(1)  # back to v1 (A -> B -> A): a new event, not a dropped duplicate
        await log.wait_for(lambda recs: len(recs) >= 3)
        # The engine saw each one in order: the last policy in force is v1 again.
        await wait_until(lambda: stats.events_in >= 3)
        await asyncio.sleep(1.0)  # anything spurious would have arrived by now
    finally:
        await app.stop()

    got = list({c.event_id: c for c in changes()}.values())  # repeats share their event id
    print(f"announcements on the log: {len(log.records)} (distinct ids: {len(got)})")
    assert [c.policy.version for c in got] == [1, 2, 1]
    assert all(c.client_id == "acme" for c in got)
    assert all(r.key == b"acme" for r in log.records)
    assert all(c.calendar == ALWAYS_OPEN for c in got)
    assert stats.policy_changes_out >= 3
    assert stats.events_invalid == 0
    # No obligation is open, so a policy change alone yields no obligation facts.
    assert not [f for f in facts.facts() if f.kind is FactKind.DEADLINE_CHANGED]


async def test_a_restart_does_not_announce_an_unchanged_pair_again(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    env = processor_env()
    log = await collector(env.topics.interactions)
    app_id = env.new_app_id()
    records = directory_records(directory(1))
    await asyncio.to_thread(env.produce, env.topics.directory, list(records))
    app, stats = env.build(app_id)
    await app.start()
    try:
        await log.wait_for(lambda recs: len(recs) >= 1)
        await asyncio.sleep(3.5)  # let the offset commit happen
    finally:
        await app.stop()
    # The same records once more, then a fresh worker of the same app on a fresh datadir: the
    # announced table comes back from its changelog and nothing is announced twice.
    await asyncio.to_thread(env.produce, env.topics.directory, list(records))
    app2, stats2 = env.build(app_id, datadir=env.datadir / "second")
    await app2.start()
    try:
        await wait_until(lambda: stats2.directory_records_in >= len(records))
        await asyncio.sleep(1.0)
    finally:
        await app2.stop()
    detail = (stats, stats2, [(r.partition, r.offset, r.value) for r in log.records])
    # Exactly-once in effect: at-least-once delivery may repeat an announcement across a
    # rebalance, but only with the same event id (the engine drops the repeat).
    ids = {
        ClientPolicyChanged.model_validate_json(r.value).event_id for r in log.records if r.value
    }
    assert len(ids) == 1, detail
    # The second worker may re-send the one announcement whose table write had not reached the
    # changelog before the first stopped (at-least-once), but never a new one: its id is chained
    # on the previous digest, so the repeat carries the same id (asserted above).
    assert stats2.policy_changes_out <= 1, detail
    print(f"announcements on the log: {len(log.records)} (distinct ids: {len(ids)})")
