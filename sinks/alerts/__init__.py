"""Alert hooks: signed, versioned webhook deliveries of SLA alerts (see docs/alerts.md).

Pure parts (payload, routing, signing, retry maths) are importable without I/O; the deliverer
(``sinks.alerts.delivery.AlertDeliverer``) is the sink with the setup/add/flush/close lifecycle.
"""

from sinks.alerts.clock import Clock, SystemClock
from sinks.alerts.delivery import AlertDeliverer, DeliveryResult, render_body
from sinks.alerts.errors import (
    DeliveredStoreError,
    DelivererStateError,
    RoutingConfigError,
    SignatureInvalid,
)
from sinks.alerts.payload import (
    PAYLOAD_VERSION,
    AlertPayload,
    AlertRouting,
    Recipient,
    build_payload,
    payload_json_schema,
    render_json,
    render_slack,
    slack_message,
)
from sinks.alerts.records import (
    DeadLetterSink,
    DeliveryLog,
    DeliveryRecord,
    InMemoryDeadLetters,
    InMemoryDeliveryLog,
    JsonlDeadLetters,
    JsonlDeliveryLog,
)
from sinks.alerts.retry import DeliveryOptions, backoff_delay, parse_retry_after
from sinks.alerts.routing import (
    DEFAULT_RULES,
    Delivery,
    RoutingConfig,
    WebhookTarget,
    delivery_key,
    redact_url,
    routes_for,
)
from sinks.alerts.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signed_headers,
    verify_signature,
)
from sinks.alerts.store import DeliveredStore, InMemoryDeliveredStore, SqliteDeliveredStore

__all__ = [
    "DEFAULT_RULES",
    "IDEMPOTENCY_HEADER",
    "PAYLOAD_VERSION",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertDeliverer",
    "AlertPayload",
    "AlertRouting",
    "Clock",
    "DeadLetterSink",
    "DeliveredStore",
    "DeliveredStoreError",
    "DelivererStateError",
    "Delivery",
    "DeliveryLog",
    "DeliveryOptions",
    "DeliveryRecord",
    "DeliveryResult",
    "InMemoryDeadLetters",
    "InMemoryDeliveredStore",
    "InMemoryDeliveryLog",
    "JsonlDeadLetters",
    "JsonlDeliveryLog",
    "Recipient",
    "RoutingConfig",
    "RoutingConfigError",
    "SignatureInvalid",
    "SqliteDeliveredStore",
    "SystemClock",
    "WebhookTarget",
    "backoff_delay",
    "build_payload",
    "delivery_key",
    "parse_retry_after",
    "payload_json_schema",
    "redact_url",
    "render_body",
    "render_json",
    "render_slack",
    "routes_for",
    "sign",
    "signed_headers",
    "slack_message",
    "verify_signature",
]
