"""kafka-python client configuration from Settings.kafka (security options, never logging secrets)."""

from __future__ import annotations

from typing import Any

from shinrai.settings import KafkaSettings


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Common kafka-python options: bootstrap servers, timeouts, SASL/TLS when configured."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap.split(","),
        "request_timeout_ms": int(settings.request_timeout_s * 1000),
        "security_protocol": settings.security_protocol,
    }
    if settings.ssl_cafile is not None:
        config["ssl_cafile"] = str(settings.ssl_cafile)
    if settings.sasl_mechanism:
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return config
