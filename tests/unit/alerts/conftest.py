"""Factories for the alert-hook unit tests (pure: no network, no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.alerts import Alert, AlertLevel
from schemas.directory import Client
from sinks.alerts.routing import RoutingConfig, WebhookTarget
from sinks.alerts.samples import sample_alert, sample_client

FIXED_AT = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    """Factory: ``make_alert(obligation_id, level=..., ...)`` at a fixed instant by default."""

    def make(obligation_id: str = "obl-1", **kwargs: Any) -> Alert:
        kwargs.setdefault("at", FIXED_AT)
        kwargs.setdefault("level", AlertLevel.BREACH)
        return sample_alert(obligation_id, **kwargs)

    return make


@pytest.fixture
def make_client() -> Callable[..., Client]:
    """Factory for directory clients (owner and escalation contact by default)."""
    return sample_client


@pytest.fixture
def make_routing() -> Callable[..., RoutingConfig]:
    """Factory: per-person targets on example URLs plus a default target."""

    def make(**kwargs: Any) -> RoutingConfig:
        kwargs.setdefault("default", WebhookTarget(url="https://hooks.example.com/default"))
        kwargs.setdefault(
            "targets",
            {
                "owner@example.com": WebhookTarget(url="https://hooks.example.com/owner"),
                "lead@example.com": WebhookTarget(url="https://hooks.example.com/lead"),
            },
        )
        return RoutingConfig(**kwargs)

    return make
