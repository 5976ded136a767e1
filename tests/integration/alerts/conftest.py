"""Fixtures for the alert-hook integration tests: receivers on 127.0.0.1 and deliverers.

Both fixtures return factories and tear down everything they made (receivers stopped,
deliverers closed). The receiver itself lives in ``harness.py``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from schemas.directory import Client
from shinrai.settings import AlertSettings
from sinks.alerts.clock import Clock
from sinks.alerts.delivery import AlertDeliverer
from sinks.alerts.records import InMemoryDeadLetters, InMemoryDeliveryLog
from sinks.alerts.retry import DeliveryOptions
from sinks.alerts.routing import RoutingConfig
from sinks.alerts.samples import sample_directory
from sinks.alerts.store import DeliveredStore, InMemoryDeliveredStore

from .harness import FAST, SECRET, Harness, Plan, Receiver, always_ok


@pytest.fixture
async def make_receiver() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """Factory: ``await make_receiver(plan)`` starts a receiver; all are stopped afterwards."""
    receivers: list[Receiver] = []

    async def make(plan: Plan = always_ok, *, secret: str = SECRET) -> Receiver:
        receiver = Receiver(plan, secret)
        await receiver.start()
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        await receiver.stop()


@pytest.fixture
async def make_deliverer(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Factory: a set-up deliverer with small timeouts, a seeded RNG and in-memory records."""
    harnesses: list[Harness] = []

    async def make(
        routing: RoutingConfig,
        *,
        clients: tuple[Client, ...] = (),
        store: DeliveredStore | None = None,
        options: DeliveryOptions = FAST,
        max_age_s: float = 60.0,
        clock: Clock | None = None,
        secret: str = SECRET,
    ) -> Harness:
        settings = AlertSettings(signing_secret=SecretStr(secret), max_age_s=max_age_s)
        log, dead = InMemoryDeliveryLog(), InMemoryDeadLetters()
        store = store or InMemoryDeliveredStore()
        deliverer = AlertDeliverer(
            settings=settings,
            routing=routing,
            directory=sample_directory(*clients),
            log=log,
            store=store,
            dead_letters=dead,
            options=options,
            clock=clock,
            rng=random.Random(1234),
        )
        harness = Harness(deliverer=deliverer, log=log, dead=dead, store=store)
        await harness.deliverer.setup()
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.deliverer.close()
