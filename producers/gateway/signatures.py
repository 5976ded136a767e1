"""Webhook signature schemes, pure and constant-time (no I/O, no clock: ``now`` is passed in).

- Zoom: ``x-zm-signature: v0=<hex HMAC-SHA256(secret, "v0:{x-zm-request-timestamp}:{body}")>``;
  the timestamp is epoch seconds and must be within the allowed skew (replay protection).
  ``endpoint.url_validation`` is answered with ``plainToken`` and
  ``encryptedToken = hex HMAC-SHA256(secret, plainToken)``.
- Twilio: ``X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + k1 + v1 + k2 + v2 ...))`` with
  the POST parameters sorted by name (values of a repeated name sorted too, as Twilio's own
  validator does), over the exact URL Twilio called.
- Bearer: ``Authorization: Bearer <token>`` compared in constant time against every configured
  token (no early exit, so timing does not reveal which token or prefix matched).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence


def zoom_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``x-zm-signature`` value Zoom sends for ``body`` at ``timestamp``."""
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def zoom_problem(
    secret: str,
    *,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: float,
    max_skew_s: float,
) -> str | None:
    """Why a Zoom request is not authentic (a short reason), or None when it is."""
    if not signature:
        return "missing x-zm-signature header"
    if not timestamp:
        return "missing x-zm-request-timestamp header"
    try:
        stamp = int(timestamp)
    except ValueError:
        return "x-zm-request-timestamp is not an integer"
    # Zoom documents seconds; a millisecond value would be far in the future and fail below.
    if abs(now - stamp) > max_skew_s:
        return "x-zm-request-timestamp outside the allowed window (stale or replayed)"
    expected = zoom_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return "x-zm-signature does not match"
    return None


def zoom_url_validation(secret: str, plain_token: str) -> dict[str, str]:
    """The answer to Zoom's ``endpoint.url_validation`` challenge."""
    encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain_token, "encryptedToken": encrypted}


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` value for a form POST of ``params`` to ``url``."""
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_valid(
    auth_token: str, *, signature: str | None, url: str, params: Iterable[tuple[str, str]]
) -> bool:
    """True when ``signature`` is Twilio's signature of ``params`` posted to ``url``."""
    if not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode())


def bearer_valid(authorization: str | None, tokens: Sequence[str]) -> bool:
    """True when the ``Authorization`` header carries one of ``tokens`` as a Bearer token."""
    if not authorization or not tokens:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    candidate = given.strip().encode()
    matched = False
    for token in tokens:
        # Every token is compared (no short-circuit), each in constant time.
        matched |= hmac.compare_digest(candidate, token.encode())
    return matched
