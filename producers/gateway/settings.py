"""Gateway settings (env prefix ``SHINRAI_GATEWAY_``), kept beside the gateway until the lead folds
them into ``shinrai.settings.Settings`` as a ``gateway`` group.

An endpoint whose secret is not set answers 503 "not configured": it never accepts unsigned input.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.topics import DLQ, INTERACTIONS


class GatewaySettings(BaseSettings):
    """Secrets, limits and targets of the HTTP ingestion gateway."""

    model_config = SettingsConfigDict(env_prefix="SHINRAI_GATEWAY_", extra="ignore", frozen=True)

    zoom_secret_token: SecretStr | None = Field(
        default=None, description="Zoom app 'Secret Token' (webhook signature and URL validation)"
    )
    zoom_max_skew_s: float = Field(
        default=300.0, gt=0, description="Reject Zoom requests whose timestamp is older/newer"
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Twilio auth token (X-Twilio-Signature)"
    )
    bearer_tokens: tuple[SecretStr, ...] = Field(
        default=(), description="Accepted tokens for POST /v1/events (JSON list in the env var)"
    )
    public_base_url: str | None = Field(
        default=None,
        description="URL the outside world calls (https://hooks.example.com) when behind a proxy; "
        "Twilio signs the full URL it called, so it must be known exactly",
    )
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, description="Larger bodies get 413")
    topic: str = INTERACTIONS.name
    dlq_topic: str = DLQ.name
    directory: Path | None = Field(
        default=None, description="Client directory (YAML/CSV) used to resolve webhook parties"
    )
    default_region: str = Field(default="US", description="Phone region for national numbers")
    meeting_buffer: int = Field(
        default=10_000, gt=0, description="Zoom meetings whose payloads are kept until they end"
    )
