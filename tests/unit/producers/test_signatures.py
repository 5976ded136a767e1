"""Webhook signature schemes against documented vectors and independent computations."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from producers.gateway.signatures import (
    bearer_valid,
    twilio_signature,
    twilio_valid,
    zoom_problem,
    zoom_signature,
    zoom_url_validation,
)

pytestmark = pytest.mark.unit

# Twilio's documented example ("Validating signatures from Twilio").
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]


def test_twilio_documented_vector() -> None:
    assert twilio_signature("12345", TWILIO_URL, TWILIO_PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_parameter_order_does_not_matter_but_values_and_url_do() -> None:
    good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_valid("12345", signature=good, url=TWILIO_URL, params=reversed(TWILIO_PARAMS))
    tampered = [*TWILIO_PARAMS[:-1], ("To", "+18005551213")]
    assert not twilio_valid("12345", signature=good, url=TWILIO_URL, params=tampered)
    assert not twilio_valid("12345", signature=good, url=TWILIO_URL + "&x=1", params=TWILIO_PARAMS)
    assert not twilio_valid("12345", signature=None, url=TWILIO_URL, params=TWILIO_PARAMS)


def test_zoom_signature_matches_an_independent_hmac() -> None:
    body = b'{"event":"meeting.started"}'
    expected = hmac.new(b"s3cret", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert zoom_signature("s3cret", "1700000000", body) == f"v0={expected}"


@pytest.mark.parametrize(
    ("signature", "timestamp", "now", "reason"),
    [
        (None, "1700000000", 1_700_000_000, "missing x-zm-signature"),
        ("v0=00", None, 1_700_000_000, "missing x-zm-request-timestamp"),
        ("v0=00", "soon", 1_700_000_000, "not an integer"),
        ("GOOD", "1700000000", 1_700_000_301, "outside the allowed window"),
        ("GOOD", "1700000000", 1_699_999_699, "outside the allowed window"),
        ("v0=" + "0" * 64, "1700000000", 1_700_000_000, "does not match"),
    ],
)
def test_zoom_problems(signature: str | None, timestamp: str | None, now: int, reason: str) -> None:
    body = b"{}"
    if signature == "GOOD":
        signature = zoom_signature("s3cret", "1700000000", body)
    problem = zoom_problem(
        "s3cret", signature=signature, timestamp=timestamp, body=body, now=now, max_skew_s=300
    )
    assert problem is not None
    assert reason in problem


def test_zoom_valid_within_window() -> None:
    body = b"{}"
    signature = zoom_signature("s3cret", "1700000000", body)
    assert (
        zoom_problem(
            "s3cret",
            signature=signature,
            timestamp="1700000000",
            body=body,
            now=1_700_000_299,
            max_skew_s=300,
        )
        is None
    )


def test_zoom_url_validation_answer() -> None:
    answer = zoom_url_validation("s3cret", "plain-token")
    assert answer["plainToken"] == "plain-token"
    assert answer["encryptedToken"] == hmac.new(b"s3cret", b"plain-token", "sha256").hexdigest()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer t2", True),
        ("bearer t1", True),
        ("Bearer t3", False),
        ("Basic t1", False),
        ("Bearer ", False),
        ("t1", False),
        (None, False),
    ],
)
def test_bearer(header: str | None, ok: bool) -> None:
    assert bearer_valid(header, ["t1", "t2"]) is ok


def test_bearer_without_configured_tokens_rejects_everything() -> None:
    assert not bearer_valid("Bearer anything", [])
