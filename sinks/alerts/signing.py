"""Webhook signatures: HMAC-SHA256 over ``f"{timestamp}.{body}"`` with a shared secret.

Headers on every request (see docs/alerts.md):

- ``X-Shinrai-Timestamp``: Unix seconds when this attempt was signed (fresh on every retry).
- ``X-Shinrai-Signature``: ``v1=<hex>``; receivers must accept a comma-separated list and pass if
  any ``v1`` entry matches (room for secret rotation and future schemes).
- ``Idempotency-Key``: the delivery key (also in the signed body as ``idempotency_key``).

Signing the timestamp with the body lets receivers reject replays of old requests; the tolerance
window (default 300 s) bounds how long a captured request stays valid.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from pydantic import SecretStr

from sinks.alerts.errors import SignatureInvalid

TIMESTAMP_HEADER = "X-Shinrai-Timestamp"
SIGNATURE_HEADER = "X-Shinrai-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PAYLOAD_VERSION_HEADER = "X-Shinrai-Payload-Version"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300.0

Secret = SecretStr | str | bytes


def _key(secret: Secret) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def compute_signature(secret: Secret, timestamp: int | str, body: bytes | str) -> str:
    """The bare hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    message = str(timestamp).encode() + b"." + _as_bytes(body)
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign(secret: Secret, timestamp: int, body: bytes | str) -> str:
    """The ``X-Shinrai-Signature`` header value: ``v1=<hex>``."""
    return f"{SCHEME}={compute_signature(secret, timestamp, body)}"


def signed_headers(secret: Secret, body: bytes, *, timestamp: int, key: str) -> dict[str, str]:
    """Every Shinrai header for one attempt (timestamp, signature, idempotency key)."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        IDEMPOTENCY_HEADER: key,
    }


def verify_signature(
    secret: Secret,
    timestamp: str | int,
    body: bytes | str,
    signature: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a request's signature; raise :class:`SignatureInvalid` (with ``reason``) if it fails.

    ``timestamp`` and ``signature`` are the raw header values, ``body`` the raw request bytes
    (verify before parsing JSON). ``now`` is Unix seconds (default: the system clock). Timestamps
    more than ``tolerance_s`` away from ``now`` in either direction are rejected as stale.
    The comparison is constant-time.
    """
    key = _key(secret)
    if not key:
        raise SignatureInvalid("no signing secret configured")
    ts_text = str(timestamp).strip()
    if not ts_text.isascii() or not ts_text.isdigit():
        raise SignatureInvalid("malformed timestamp")
    ts = int(ts_text)
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise SignatureInvalid(f"timestamp outside the {tolerance_s:g} s tolerance")
    candidates = [
        value.strip()
        for scheme, _, value in (part.strip().partition("=") for part in signature.split(","))
        if scheme == SCHEME
    ]
    if not candidates:
        raise SignatureInvalid(f"no {SCHEME} signature")
    expected = compute_signature(key, ts_text, body)
    # Check every candidate (no early exit) so timing does not reveal which entry matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureInvalid("signature mismatch")
