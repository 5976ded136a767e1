"""Who may read the dashboard: bearer tokens or HTTP Basic users with scrypt-hashed passwords.

The rule (``AccessPolicy.for_binding``): a dashboard bound to loopback is open, unless
``dashboard.require_auth``; bound to any other address (``0.0.0.0`` included) every request but
``/healthz`` needs a login, and starting without any credential configured is refused with one
line naming the settings. The decision rests on the bound address, not on the client's: behind
a reverse proxy on the same host every client would look like loopback.

Passwords are stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash in URL-safe
base64 without padding), made with the standard library's ``hashlib.scrypt``: n = 2**14,
r = 8, p = 1 (16 MiB of memory per check, ~50 ms on one core), a 16-byte random salt and a
32-byte key. ``shinrai dashboard hash-password`` prints one. A verified login is remembered
(as a SHA-256 digest, never the password) so a page's several requests cost one scrypt.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from shinrai.errors import ConfigError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from shinrai.settings import DashboardSettings

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
_MAXMEM = 64 * 2**20
_PREFIX = "scrypt"
OPEN_PATHS = frozenset({"/healthz"})
_REMEMBERED = 256


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``password`` as a self-describing scrypt hash with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_DKLEN, maxmem=_MAXMEM
    )
    return f"{_PREFIX}${n}${r}${p}${_b64(salt)}${_b64(key)}"


@dataclass(frozen=True)
class _Scrypt:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


def _parse_hash(encoded: str) -> _Scrypt:
    """The parts of an encoded hash; ValueError when it is not one ``hash_password`` makes."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        raise ValueError("expected scrypt$<n>$<r>$<p>$<salt>$<hash>")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"malformed scrypt hash: {exc}") from None
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or 128 * r * n > _MAXMEM:
        raise ValueError("scrypt parameters out of range")
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("scrypt salt or hash too short")
    return _Scrypt(n, r, p, salt, key)


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` hashes to ``encoded`` (constant-time compare)."""
    try:
        h = _parse_hash(encoded)
    except ValueError:
        return False
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=h.salt, n=h.n, r=h.r, p=h.p, dklen=len(h.key), maxmem=_MAXMEM
    )
    return hmac.compare_digest(key, h.key)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); not for 0.0.0.0."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


@dataclass
class AccessPolicy:
    """Whether a login is needed, and the credentials that pass."""

    required: bool
    tokens: tuple[bytes, ...] = ()
    users: Mapping[str, str] = field(default_factory=dict)
    _verified: OrderedDict[bytes, None] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls) -> AccessPolicy:
        """No login needed (loopback, tests)."""
        return cls(required=False)

    @classmethod
    def for_binding(cls, settings: DashboardSettings, host: str) -> AccessPolicy:
        """The policy of a dashboard bound to ``host``; ConfigError for unusable settings."""
        users: dict[str, str] = {}
        for name, secret in settings.users.items():
            encoded = secret.get_secret_value()
            try:
                _parse_hash(encoded)
            except ValueError as exc:
                raise ConfigError(
                    f"SHINRAI_DASHBOARD__USERS[{name}]: {exc} "
                    "(make one with `shinrai dashboard hash-password`)"
                ) from None
            users[name] = encoded
        tokens = tuple(t.get_secret_value().encode() for t in settings.bearer_tokens if t)
        required = settings.require_auth or not is_loopback(host)
        if required and not tokens and not users:
            why = "require_auth is on" if is_loopback(host) else f"it binds {host}, not loopback"
            raise ConfigError(
                f"the dashboard needs a login ({why}): set SHINRAI_DASHBOARD__BEARER_TOKENS "
                "or SHINRAI_DASHBOARD__USERS"
            )
        return cls(required=required, tokens=tokens, users=users)

    def allows(self, authorization: str | None) -> bool:
        """True when no login is needed or the Authorization header carries a valid one."""
        if not self.required:
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            given = value.encode()
            # Every token is compared, so timing does not tell which one nearly matched.
            return any([hmac.compare_digest(given, token) for token in self.tokens])
        if scheme.lower() == "basic" and value:
            return self._basic(value)
        return False

    def _basic(self, value: str) -> bool:
        try:
            name, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        encoded = self.users.get(name)
        if not sep or encoded is None:
            return False
        digest = hashlib.sha256(f"{name}\0{password}\0{encoded}".encode()).digest()
        with self._lock:  # checks run in worker threads
            if digest in self._verified:
                self._verified.move_to_end(digest)
                return True
        if not verify_password(password, encoded):
            return False
        with self._lock:
            self._verified[digest] = None
            while len(self._verified) > _REMEMBERED:
                self._verified.popitem(last=False)
        return True


class AuthMiddleware:
    """ASGI middleware: 401 (with ``WWW-Authenticate``) for requests the policy refuses."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        """Wrap ``app``; ``policy`` decides every HTTP request but ``/healthz``."""
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 401 without reading it."""
        if scope["type"] != "http" or not self.policy.required or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        authorization: str | None = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        if authorization is not None and authorization[:6].lower() == "basic ":
            # scrypt takes ~50 ms of CPU: off the event loop, which in a worker runs the
            # SLA processor too (a stream of bad passwords must not stall it).
            allowed = await asyncio.to_thread(self.policy.allows, authorization)
        else:
            allowed = self.policy.allows(authorization)
        if allowed:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps({"error": "login required (bearer token or HTTP Basic)"})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="shinrai", Basic realm="shinrai"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
