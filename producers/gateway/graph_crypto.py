"""Decrypt the resource data of Microsoft Graph rich notifications (``encryptedContent``).

A subscription created with ``includeResourceData`` and our certificate's public key gets
notifications whose ``encryptedContent`` holds (Graph's documented scheme):

- ``dataKey``: a random symmetric key, encrypted with the certificate's public key
  (RSA/ECB/OAEPWithSHA1AndMGF1Padding);
- ``data``: the resource's JSON, AES-CBC with that key (PKCS#7 padding), the IV being the
  key's first 16 bytes;
- ``dataSignature``: HMAC-SHA256 of the encrypted ``data`` with the same key.

The signature is checked (constant time) before anything is decrypted: a mismatch means the
content was altered and the notification is refused. Not checked here: the JWT
``validationTokens`` Graph adds to rich notifications (the ``clientState`` check applies to
them as to every notification).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shinrai.errors import ConfigError

SETTING = "SHINRAI_GATEWAY__GRAPH_PRIVATE_KEY_FILE"


class SignatureMismatch(Exception):
    """``dataSignature`` does not match ``data``: the content was altered."""


class Undecryptable(Exception):
    """The content cannot be decrypted with our key (another certificate, corrupt fields)."""


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """The certificate's RSA private key from an unencrypted PEM file (one-line errors)."""
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"{SETTING}: cannot read {path} ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{SETTING}: {path} is not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{SETTING}: {path} is not an RSA key (Graph encrypts with RSA)")
    return key


def _b64(content: Mapping[str, Any], field: str) -> bytes:
    value = content.get(field)
    if not isinstance(value, str):
        raise Undecryptable(f"encryptedContent.{field}: missing")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise Undecryptable(f"encryptedContent.{field}: not base64") from None


def decrypt(key: rsa.RSAPrivateKey, content: Mapping[str, Any]) -> dict[str, Any]:
    """The resource JSON of one ``encryptedContent``; raises SignatureMismatch/Undecryptable."""
    data, signature, wrapped = (_b64(content, f) for f in ("data", "dataSignature", "dataKey"))
    try:
        symmetric = key.decrypt(
            wrapped, OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        )
    except ValueError:
        raise Undecryptable("encryptedContent.dataKey: not for our key") from None
    if len(symmetric) not in (16, 24, 32):
        raise Undecryptable("encryptedContent.dataKey: not an AES key")
    expected = hmac.new(symmetric, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise SignatureMismatch("encryptedContent.dataSignature: does not match data")
    if not data or len(data) % 16:
        raise Undecryptable("encryptedContent.data: not whole AES blocks")
    decryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        resource = orjson.loads(plain)
    except (ValueError, orjson.JSONDecodeError):
        raise Undecryptable("encryptedContent.data: not padded JSON after decryption") from None
    if not isinstance(resource, dict):
        raise Undecryptable("encryptedContent.data: not a JSON object")
    return resource
