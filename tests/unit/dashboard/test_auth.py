"""Access policy of the served dashboard: scrypt hashes, bearer/Basic checks, the binding rule."""

from __future__ import annotations

import base64
import hashlib

import pytest
from pydantic import SecretStr

from dashboard.auth import (
    SCRYPT_N,
    AccessPolicy,
    _parse_hash,
    hash_password,
    is_loopback,
    verify_password,
)
from shinrai.errors import ConfigError
from shinrai.settings import DashboardSettings

pytestmark = pytest.mark.unit

FAST = {"n": 2**4, "r": 8, "p": 1}  # cheap parameters: the format and checks, not the cost


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_hash_round_trip_with_documented_defaults() -> None:
    encoded = hash_password("s3cret pass")
    scheme, n, r, p, _salt, _key = encoded.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, 8, 1)
    parts = _parse_hash(encoded)
    assert len(parts.salt) == 16
    assert len(parts.key) == 32
    assert parts.key == hashlib.scrypt(
        b"s3cret pass", salt=parts.salt, n=SCRYPT_N, r=8, p=1, dklen=32, maxmem=64 * 2**20
    )
    assert verify_password("s3cret pass", encoded)
    assert not verify_password("s3cret pasS", encoded)
    assert hash_password("s3cret pass") != encoded  # a fresh salt every time


@pytest.mark.parametrize(
    "encoded",
    ["", "plain-text", "bcrypt$2$8$1$AAAA$BBBB", "scrypt$15$8$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAA",
     "scrypt$16$8$1$!!$??"],
)  # fmt: skip
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert not verify_password("anything", encoded)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.0.2.2", False),
     ("dashboard.example", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_is_open_by_default_and_closed_on_request() -> None:
    assert not AccessPolicy.for_binding(DashboardSettings(), "127.0.0.1").required
    assert AccessPolicy.for_binding(DashboardSettings(), "127.0.0.1").allows(None)
    with pytest.raises(ConfigError, match="require_auth is on"):
        AccessPolicy.for_binding(DashboardSettings(require_auth=True), "127.0.0.1")
    policy = AccessPolicy.for_binding(
        DashboardSettings(require_auth=True, bearer_tokens=(SecretStr("tok"),)), "127.0.0.1"
    )
    assert policy.required
    assert not policy.allows(None)
    assert policy.allows("Bearer tok")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.2", "::", "dashboard.example"])
def test_off_loopback_without_credentials_is_refused_in_one_line(host: str) -> None:
    with pytest.raises(ConfigError) as refused:
        AccessPolicy.for_binding(DashboardSettings(host=host), host)
    message = str(refused.value)
    assert "\n" not in message
    assert f"binds {host}" in message
    assert "SHINRAI_DASHBOARD__BEARER_TOKENS" in message
    assert "SHINRAI_DASHBOARD__USERS" in message


def test_a_user_with_a_malformed_hash_is_refused_naming_the_user() -> None:
    settings = DashboardSettings(users={"aiko": SecretStr("plain-password")})
    with pytest.raises(ConfigError, match=r"SHINRAI_DASHBOARD__USERS\[aiko\]"):
        AccessPolicy.for_binding(settings, "0.0.0.0")


def test_bearer_and_basic_checks() -> None:
    settings = DashboardSettings(
        bearer_tokens=(SecretStr("first"), SecretStr("second")),
        users={"aiko": SecretStr(hash_password("pw", **FAST))},
    )
    policy = AccessPolicy.for_binding(settings, "0.0.0.0")
    assert policy.required
    assert policy.allows("Bearer first")
    assert policy.allows("bearer second")
    for refused in (None, "", "Bearer", "Bearer firs", "Bearer first2", "Token first",
                    _basic("aiko", "wrong"), _basic("nobody", "pw"), "Basic !!notbase64",
                    "Basic " + base64.b64encode(b"no-colon").decode()):  # fmt: skip
        assert not policy.allows(refused), refused
    assert policy.allows(_basic("aiko", "pw"))
    assert policy.allows(_basic("aiko", "pw"))  # remembered: the same answer
    assert not policy.allows(_basic("aiko", "pw "))
