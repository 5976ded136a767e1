"""A second local broker with a SASL/PLAIN listener and a mutual-TLS listener from a test CA.

Started from the same jars as the main broker (``shinrai.local_kafka.LocalKafka`` with extra
listeners), on free ports, with its data, config and log in a temporary folder. Its PLAINTEXT
listener only serves the broker's health check; every test client goes through SASL or TLS.
Starting it fails loudly (``LocalKafkaError`` with the log tail): the tests that need it fail,
never skip.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from shinrai.local_kafka import Listener, LocalKafka
from shinrai.settings import KafkaSettings, LocalKafkaSettings
from tests.tls_ca import KEYSTORE_PASSWORD, CertAuthority, make_ca

USERNAME = "shinrai-svc"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the OS reports free right now (held open until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class SecureBroker:
    """Addresses and credentials of the running secured broker."""

    sasl_bootstrap: str
    tls_bootstrap: str
    password: str
    ca: CertAuthority

    def sasl(self, password: str | None = None, **update: object) -> KafkaSettings:
        """Settings for the SASL_PLAINTEXT/PLAIN listener (``password`` overrides the right one)."""
        return KafkaSettings(
            bootstrap=self.sasl_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username=USERNAME,
            sasl_password=SecretStr(self.password if password is None else password),
            request_timeout_s=10,
            **update,  # type: ignore[arg-type]
        )

    def tls(self, **update: object) -> KafkaSettings:
        """Settings for the SSL listener: the test CA, and the client certificate it requires."""
        return KafkaSettings(
            bootstrap=self.tls_bootstrap,
            security_protocol="SSL",
            ssl_cafile=self.ca.ca_pem,
            ssl_certfile=self.ca.client_pem,
            ssl_keyfile=self.ca.client_key,
            request_timeout_s=10,
            **update,  # type: ignore[arg-type]
        )


def run_secure_broker(folder: Path) -> Iterator[SecureBroker]:
    """Start the broker (CA, keystore and JAAS users made now), yield it, stop it.

    It shares the jar cache of the local broker (``LocalKafkaSettings.data_dir``) and keeps its
    data, config and log in ``folder``."""
    ca = make_ca(folder / "ca")
    password = secrets.token_urlsafe(16)
    plain, controller, sasl, tls = free_ports(4)
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{USERNAME}="{password}";'
    )
    listeners = [
        Listener(
            "SASL",
            "SASL_PLAINTEXT",
            sasl,
            {"sasl.enabled.mechanisms": "PLAIN", "plain.sasl.jaas.config": jaas},
        ),
        Listener(
            "TLS",
            "SSL",
            tls,
            {
                "ssl.keystore.type": "PKCS12",
                "ssl.keystore.location": str(ca.server_p12),
                "ssl.keystore.password": KEYSTORE_PASSWORD,
                "ssl.key.password": KEYSTORE_PASSWORD,
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(ca.ca_pem),
                "ssl.client.auth": "required",  # mutual TLS: the client certificate is checked
            },
        ),
    ]
    broker = LocalKafka(
        LocalKafkaSettings(port=plain, controller_port=controller, heap="384m", start_timeout_s=90),
        listeners=listeners,
        run_dir=folder / "broker",
    )
    broker.start()
    try:
        yield SecureBroker(f"127.0.0.1:{sasl}", f"127.0.0.1:{tls}", password, ca)
    finally:
        broker.stop()
