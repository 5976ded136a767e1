"""Routing: which webhook targets receive an alert, as a pure function of alert, client and config.

Rules map an alert level to the roles that should hear about it (the client's owner, its
escalation contact). Each role resolves to a person (``Client.owner`` / ``escalation_contact``)
and each person to a webhook target (``targets[person]``, else the ``default`` target). Roles
that land on the same URL are merged into one delivery, so one alert reaches one URL once.

Every delivery has its own idempotency key derived from ``alert_id`` and the target URL: the same
alert to two targets is two deliveries, and the same alert to the same target is always the same
key across restarts and replays. (Changing a target's URL therefore makes a new delivery.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.alerts import Alert, AlertLevel
from schemas.directory import Client
from shinrai.settings import AlertSettings
from sinks.alerts.errors import RoutingConfigError
from sinks.alerts.paging import PagingRules
from sinks.alerts.payload import Recipient

Role = Literal["owner", "escalation"]

DEFAULT_RULES: Mapping[AlertLevel, tuple[Role, ...]] = MappingProxyType(
    {
        AlertLevel.WARNING: ("owner",),
        AlertLevel.BREACH: ("owner", "escalation"),
        AlertLevel.TRUST_DOWNGRADE: ("escalation",),
        AlertLevel.SILENCE: ("owner",),
        # Whoever was told about a breach must hear that it no longer holds.
        AlertLevel.RETRACTION: ("owner", "escalation"),
        # The client is waiting now, before our deadline: its owner can still answer in time.
        AlertLevel.CHASE: ("owner",),
    }
)


def redact_url(url: str) -> str:
    """``url`` without credentials, query or fragment (what logs and the delivery table keep)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


class WebhookTarget(BaseModel):
    """One webhook endpoint and the body format it expects."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: str = Field(description="http(s) URL the alert is POSTed to")
    format: Literal["json", "slack"] = Field(
        default="json", description="json: the v1 payload; slack: {'text': ...} (incoming webhook)"
    )
    slack_blocks: bool = Field(default=False, description="Add Block Kit blocks to the Slack form")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{redact_url(value)!r} is not an http(s) URL with a host")
        return value


class RoutingConfig(BaseModel):
    """Where alerts go: a default target, per-person targets and per-level rules.

    Not strict, so it can be loaded from YAML/JSON where levels and roles are plain strings.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    default: WebhookTarget | None = Field(
        default=None, description="Catch-all target for people without their own, unknown clients"
    )
    targets: dict[str, WebhookTarget] = Field(
        default_factory=dict, description="Per person (owner or escalation contact e-mail)"
    )
    rules: dict[AlertLevel, tuple[Role, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_RULES),
        description="Roles notified per level; levels left out keep their default rule",
    )
    escalation_falls_back_to_owner: bool = Field(
        default=True,
        description="When a client has no escalation contact, send escalations to the owner",
    )
    paging: PagingRules = Field(
        default_factory=PagingRules,
        description="Quiet hours and per-owner digests for warnings (see sinks.alerts.paging)",
    )

    @field_validator("rules")
    @classmethod
    def _merge_defaults(
        cls, value: dict[AlertLevel, tuple[Role, ...]]
    ) -> dict[AlertLevel, tuple[Role, ...]]:
        return {**DEFAULT_RULES, **value}

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> RoutingConfig:
        """Everything to ``settings.webhook_url`` (the minimal, single-endpoint setup)."""
        default = WebhookTarget(url=settings.webhook_url) if settings.webhook_url else None
        return cls(default=default, paging=paging_from_settings(settings))

    @classmethod
    def load(cls, path: Path) -> RoutingConfig:
        """Read a YAML or JSON routing file; errors name the file and the bad field."""
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            return cls.model_validate(data or {})
        except (OSError, ValueError, yaml.YAMLError) as exc:
            # pydantic's ValidationError is a ValueError: one message for every way it can be wrong.
            raise RoutingConfigError(f"routing config {path}: {exc}") from exc


def paging_from_settings(settings: AlertSettings) -> PagingRules:
    """The paging rules of the ``SHINRAI_ALERTS__`` settings (quiet hours, digest interval)."""
    calendar = settings.quiet_hours_calendar
    return PagingRules(
        quiet_hours=calendar is not None,
        calendar=calendar or "default",
        digest_interval_s=settings.warning_digest_s,
    )


def delivery_key(alert_id: str, target_url: str) -> str:
    """The idempotency key of one (alert, target) delivery: stable across restarts and replays."""
    return hashlib.sha256(f"v1|{alert_id}|{target_url}".encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert to one target; ``key`` is its Idempotency-Key."""

    alert: Alert
    client: Client | None
    target: WebhookTarget
    recipients: tuple[Recipient, ...]
    key: str

    @property
    def target_label(self) -> str:
        """The target URL without credentials or query (safe to log and store)."""
        return redact_url(self.target.url)


def _person(client: Client, role: Role, config: RoutingConfig) -> tuple[Recipient, str] | None:
    if role == "owner":
        return Recipient.OWNER, client.owner
    if client.escalation_contact:
        return Recipient.ESCALATION, client.escalation_contact
    if config.escalation_falls_back_to_owner:
        # Still an escalation in intent: the owner is told in the escalation contact's place.
        return Recipient.ESCALATION, client.owner
    return None


def routes_for(alert: Alert, client: Client | None, config: RoutingConfig) -> list[Delivery]:
    """The deliveries for ``alert``: one per distinct target URL, in rule order.

    ``client`` is None when the alert's client is not in the directory; such alerts still go to
    the default target (an alert is never dropped for want of a directory entry). An empty list
    means no target is configured for anyone concerned.
    """
    by_url: dict[str, tuple[WebhookTarget, list[Recipient]]] = {}

    def add(target: WebhookTarget | None, recipient: Recipient) -> None:
        if target is None:
            return
        _, recipients = by_url.setdefault(target.url, (target, []))
        if recipient not in recipients:
            recipients.append(recipient)

    if client is None:
        add(config.default, Recipient.DEFAULT)
    else:
        for role in config.rules.get(alert.level, ()):
            resolved = _person(client, role, config)
            if resolved is not None:
                recipient, person = resolved
                add(config.targets.get(person, config.default), recipient)
    return [
        Delivery(
            alert=alert,
            client=client,
            target=target,
            recipients=tuple(recipients),
            key=delivery_key(alert.alert_id, url),
        )
        for url, (target, recipients) in by_url.items()
    ]
