"""A throw-away certificate authority for tests (``openssl``), made fresh in a temporary folder.

``make_ca(folder)`` writes a CA, a server certificate for 127.0.0.1/localhost (also as a PKCS12
keystore for a Java broker) and a client certificate for mutual TLS, all signed by that CA.
Nothing here is a secret worth keeping: the keys live only as long as the test's folder.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

KEYSTORE_PASSWORD = "test-keystore-pass"


@dataclass(frozen=True, slots=True)
class CertAuthority:
    """Where the files of one test CA are."""

    ca_pem: Path  # the CA certificate (clients trust it)
    server_pem: Path
    server_key: Path
    server_p12: Path  # server key + chain, PKCS12, password KEYSTORE_PASSWORD
    client_pem: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the tests need `openssl` on PATH to make their test CA")
    proc = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def _signed(folder: Path, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
    key, csr, pem, ext = (folder / f"{name}{s}" for s in (".key", ".csr", ".pem", ".ext"))
    ext.write_text(extensions)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key.name, "-out", csr.name, "-subj", subject, cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr.name, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-sha256", "-extfile", ext.name, "-out", pem.name, cwd=folder,
    )  # fmt: skip
    return pem, key


def make_ca(folder: Path) -> CertAuthority:
    """Create the CA, a server certificate (127.0.0.1, localhost) and a client certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-sha256",
        "-subj", "/CN=Shinrai test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder,
    )  # fmt: skip
    server_pem, server_key = _signed(
        folder,
        "server",
        "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    client_pem, client_key = _signed(
        folder, "client", "/CN=shinrai-test-client", "extendedKeyUsage=clientAuth\n"
    )
    _openssl(
        "pkcs12", "-export", "-in", server_pem.name, "-inkey", server_key.name,
        "-certfile", "ca.pem", "-name", "broker", "-out", "server.p12",
        "-passout", f"pass:{KEYSTORE_PASSWORD}", cwd=folder,
    )  # fmt: skip
    return CertAuthority(
        ca_pem=folder / "ca.pem",
        server_pem=server_pem,
        server_key=server_key,
        server_p12=folder / "server.p12",
        client_pem=client_pem,
        client_key=client_key,
    )
