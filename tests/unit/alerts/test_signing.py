"""HMAC-SHA256 signing and the receiver-side verification helper."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from sinks.alerts.errors import SignatureInvalid
from sinks.alerts.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_signature,
    sign,
    signed_headers,
    verify_signature,
)

pytestmark = pytest.mark.unit

SECRET = "whsec_test"
TS = 1_700_000_000
BODY = b'{"a":1}'


def test_known_answer_matches_openssl() -> None:
    # printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
    expected = "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
    assert compute_signature(SECRET, TS, BODY) == expected
    assert sign(SecretStr(SECRET), TS, BODY) == f"v1={expected}"


def test_headers_carry_timestamp_signature_and_key() -> None:
    headers = signed_headers(SecretStr(SECRET), BODY, timestamp=TS, key="k-1")
    assert headers == {
        TIMESTAMP_HEADER: str(TS),
        SIGNATURE_HEADER: sign(SECRET, TS, BODY),
        IDEMPOTENCY_HEADER: "k-1",
    }


@pytest.mark.parametrize("secret", [SECRET, SecretStr(SECRET), SECRET.encode()])
def test_valid_signature_passes(secret: str | SecretStr | bytes) -> None:
    verify_signature(secret, str(TS), BODY, sign(SECRET, TS, BODY), now=TS + 10)


def test_body_as_text_verifies_like_bytes() -> None:
    verify_signature(SECRET, TS, BODY.decode(), sign(SECRET, TS, BODY), now=TS)


def _reason(**overrides: object) -> str:
    args: dict[str, object] = {
        "secret": SECRET,
        "timestamp": str(TS),
        "body": BODY,
        "signature": sign(SECRET, TS, BODY),
        "now": float(TS),
    }
    args.update(overrides)
    with pytest.raises(SignatureInvalid) as info:
        verify_signature(
            args["secret"],  # type: ignore[arg-type]
            args["timestamp"],  # type: ignore[arg-type]
            args["body"],  # type: ignore[arg-type]
            args["signature"],  # type: ignore[arg-type]
            now=args["now"],  # type: ignore[arg-type]
        )
    return info.value.reason


def test_tampered_body_is_rejected() -> None:
    assert _reason(body=b'{"a":2}') == "signature mismatch"


def test_wrong_secret_is_rejected() -> None:
    assert _reason(secret="not-the-secret") == "signature mismatch"


def test_signature_for_another_timestamp_is_rejected() -> None:
    # Re-using a captured signature with a fresh timestamp must not work: the timestamp is signed.
    assert _reason(timestamp=str(TS + 1), now=float(TS + 1)) == "signature mismatch"


def test_stale_timestamp_is_rejected_even_with_a_valid_signature() -> None:
    assert "tolerance" in _reason(now=float(TS + 301))


def test_timestamp_from_the_future_is_rejected() -> None:
    assert "tolerance" in _reason(now=float(TS - 301))


def test_tolerance_boundary_is_inclusive() -> None:
    verify_signature(SECRET, TS, BODY, sign(SECRET, TS, BODY), now=TS + 300)
    verify_signature(SECRET, TS, BODY, sign(SECRET, TS, BODY), now=TS + 60, tolerance_s=60)
    with pytest.raises(SignatureInvalid):
        verify_signature(SECRET, TS, BODY, sign(SECRET, TS, BODY), now=TS + 61, tolerance_s=60)


@pytest.mark.parametrize("timestamp", ["", "abc", "1.5", "-1700000000", "１７"])
def test_malformed_timestamp_is_rejected(timestamp: str) -> None:
    assert _reason(timestamp=timestamp) == "malformed timestamp"


@pytest.mark.parametrize("signature", ["", "v0=abc", "sha256=abc", "garbage"])
def test_missing_v1_entry_is_rejected(signature: str) -> None:
    assert _reason(signature=signature) == "no v1 signature"


def test_any_matching_v1_entry_passes_for_rotation() -> None:
    good = sign(SECRET, TS, BODY)
    verify_signature(SECRET, TS, BODY, f"v1=deadbeef, {good}, v2=zzz", now=TS)
    assert _reason(signature="v1=deadbeef,v1=00") == "signature mismatch"


def test_empty_secret_never_verifies() -> None:
    # An unconfigured receiver must not accept everything signed with the empty key.
    assert _reason(secret="", signature=sign("", TS, BODY)) == "no signing secret configured"
