"""Rich-notification decryption, against content encrypted the way Graph documents it.

``encrypt`` follows Microsoft's published scheme (RSA-OAEP/SHA-1 wrapped AES key, AES-CBC with
the key's first 16 bytes as IV, HMAC-SHA256 over the ciphertext); no Graph can be reached here
to produce a real one, so both sides are ours and the test pins the scheme, not Graph itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from producers.gateway.graph_crypto import (
    SignatureMismatch,
    Undecryptable,
    decrypt,
    load_private_key,
)
from shinrai.errors import ConfigError

pytestmark = pytest.mark.unit


def new_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (the certificate's)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_pem(key: rsa.RSAPrivateKey, path: Path) -> Path:
    """The key as an unencrypted PKCS#8 PEM file."""
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path


def encrypt(public: rsa.RSAPublicKey, resource: dict[str, Any]) -> dict[str, str]:
    """``encryptedContent`` for ``resource``, as Graph builds it."""
    symmetric = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(orjson.dumps(resource)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).encryptor()
    data = encryptor.update(padded) + encryptor.finalize()
    wrapped = public.encrypt(
        symmetric, OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    )
    signature = hmac.new(symmetric, data, hashlib.sha256).digest()
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(signature).decode(),
        "dataKey": base64.b64encode(wrapped).decode(),
        "encryptionCertificateId": "shinrai-test",
        "encryptionCertificateThumbprint": "00",
    }


RESOURCE = {"id": "AAMk=", "internetMessageId": "<m-1@acme.example>", "subject": "héllo"}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


def test_round_trip(key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    loaded = load_private_key(write_pem(key, tmp_path / "graph.pem"))
    assert decrypt(loaded, encrypt(key.public_key(), RESOURCE)) == RESOURCE


def test_altered_data_is_a_signature_mismatch(key: rsa.RSAPrivateKey) -> None:
    content = encrypt(key.public_key(), RESOURCE)
    data = bytearray(base64.b64decode(content["data"]))
    data[0] ^= 1
    content["data"] = base64.b64encode(bytes(data)).decode()
    with pytest.raises(SignatureMismatch):
        decrypt(key, content)


def test_content_for_another_key_is_undecryptable(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(Undecryptable, match="not for our key"):
        decrypt(key, encrypt(new_key().public_key(), RESOURCE))


@pytest.mark.parametrize("field", ["data", "dataKey", "dataSignature"])
def test_missing_or_garbled_fields_are_undecryptable(key: rsa.RSAPrivateKey, field: str) -> None:
    content = encrypt(key.public_key(), RESOURCE)
    with pytest.raises(Undecryptable, match=f"encryptedContent.{field}: not base64"):
        decrypt(key, {**content, field: "***"})
    with pytest.raises(Undecryptable, match=f"encryptedContent.{field}: missing"):
        decrypt(key, {k: v for k, v in content.items() if k != field})


def test_key_file_errors_name_the_setting(key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GRAPH_PRIVATE_KEY_FILE: cannot read"):
        load_private_key(tmp_path / "absent.pem")
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw"))
    )
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_private_key(locked)
