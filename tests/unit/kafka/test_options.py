"""The one translation of Settings.kafka into kafka-python, aiokafka and Faust options (no network)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shinrai.errors import ConfigError, KafkaRejected, KafkaUnavailable
from shinrai.kafka_check import explain
from shinrai.kafka_options import (
    aiokafka_options,
    env_name,
    faust_options,
    kafka_python_options,
)
from shinrai.local_kafka import Listener, LocalKafka
from shinrai.settings import KafkaSettings, LocalKafkaSettings, Settings
from tests.tls_ca import CertAuthority, make_ca

pytestmark = pytest.mark.unit

SECRET = "pa55-w0rd-never-logged"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return make_ca(tmp_path_factory.mktemp("ca"))


def sasl(**update: Any) -> KafkaSettings:
    values: dict[str, Any] = {
        "bootstrap": "b1:9092, b2:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "svc",
        "sasl_password": SecretStr(SECRET),
    }
    return KafkaSettings(**(values | update))


def test_plaintext_is_bare_for_every_library() -> None:
    kafka = KafkaSettings(bootstrap="a:9092, b:9092 ,", request_timeout_s=7)
    for options in (kafka_python_options(kafka), aiokafka_options(kafka)):
        assert options["bootstrap_servers"] == ["a:9092", "b:9092"]
        assert options["security_protocol"] == "PLAINTEXT"
        assert not {"ssl_context", "sasl_mechanism", "sasl_plain_password"} & set(options)
    assert kafka_python_options(kafka)["request_timeout_ms"] == 7000
    # aiokafka consumers wait up to their session timeout for a join: 30 s more.
    assert aiokafka_options(kafka)["request_timeout_ms"] == 37_000
    assert faust_options(kafka) == {"broker": "kafka://a:9092;kafka://b:9092"}


def test_sasl_reaches_all_three_libraries_alike() -> None:
    """The security bug this module fixes: Faust got only a URL and connected without login."""
    import faust

    kafka = sasl(sasl_mechanism="scram-sha-512")
    for options in (kafka_python_options(kafka), aiokafka_options(kafka)):
        assert options["security_protocol"] == "SASL_PLAINTEXT"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == "svc"
        assert options["sasl_plain_password"] == SECRET  # the clients want the plain string
        assert "ssl_context" not in options
    creds = faust_options(kafka)["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password) == ("svc", SECRET)
    assert creds.protocol.value == "SASL_PLAINTEXT"
    assert creds.mechanism.value == "SCRAM-SHA-512"
    assert creds.ssl_context is None
    # Neither the settings nor Faust's credentials show the secret when printed or logged.
    assert SECRET not in repr(kafka)
    assert SECRET not in repr(creds)
    assert SECRET not in repr(Settings(kafka=kafka))


def test_faust_hands_the_credentials_to_its_aiokafka_clients() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    kafka = sasl()
    auth = credentials_to_aiokafka_auth(faust_options(kafka)["broker_credentials"])
    expected = aiokafka_options(kafka)
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username"):
        assert auth[key] == expected[key]
    assert auth["sasl_plain_password"] == SECRET


def _ca_names(context: ssl.SSLContext) -> list[str]:
    return [
        value
        for cert in context.get_ca_certs()
        for rdn in cert["subject"]
        for key, value in rdn
        if key == "commonName"
    ]


def test_tls_is_one_verifying_context_for_all_three(ca: CertAuthority) -> None:
    import faust

    kafka = KafkaSettings(
        bootstrap="b1:9093",
        security_protocol="SSL",
        ssl_cafile=ca.ca_pem,
        ssl_certfile=ca.client_pem,
        ssl_keyfile=ca.client_key,
    )
    contexts = [kafka_python_options(kafka)["ssl_context"], aiokafka_options(kafka)["ssl_context"]]
    creds = faust_options(kafka)["broker_credentials"]
    assert isinstance(creds, faust.SSLCredentials)
    assert creds.protocol.value == "SSL"
    contexts.append(creds.context)
    for context in contexts:
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert _ca_names(context) == ["Shinrai test CA"]  # the configured CA, not the system's


def test_sasl_ssl_puts_the_context_in_the_sasl_credentials(ca: CertAuthority) -> None:
    kafka = sasl(security_protocol="SASL_SSL", ssl_cafile=ca.ca_pem)
    options = kafka_python_options(kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert _ca_names(options["ssl_context"]) == ["Shinrai test CA"]
    creds = faust_options(kafka)["broker_credentials"]
    assert creds.protocol.value == "SASL_SSL"
    assert _ca_names(creds.ssl_context) == ["Shinrai test CA"]


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": None}, "SASL_MECHANISM"),
        ({"sasl_mechanism": "GSSAPI"}, "SASL_MECHANISM"),
        ({"sasl_password": None}, "SASL_PASSWORD"),
        ({"sasl_username": None}, "SASL_USERNAME"),
        # Credentials without a SASL protocol would be silently unused.
        ({"security_protocol": "PLAINTEXT"}, "SASL_PASSWORD"),
        ({"security_protocol": "SSL"}, "SECURITY_PROTOCOL"),
        ({"security_protocol": "TLS"}, "SECURITY_PROTOCOL"),
        ({"ssl_cafile": Path("/nonexistent/ca.pem")}, "SSL_CAFILE"),
        ({"bootstrap": " , "}, "BOOTSTRAP"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_variable(
    update: dict[str, Any], named: str
) -> None:
    kafka = sasl(**update)
    for build in (kafka_python_options, aiokafka_options, faust_options):
        with pytest.raises(ConfigError) as info:
            build(kafka)
        message = str(info.value)
        assert f"SHINRAI_KAFKA__{named}" in message
        assert "\n" not in message
        assert SECRET not in message


def test_tls_files_need_a_tls_protocol_and_go_in_pairs(ca: CertAuthority) -> None:
    with pytest.raises(ConfigError, match="SHINRAI_KAFKA__SSL_CAFILE set but"):
        kafka_python_options(KafkaSettings(ssl_cafile=ca.ca_pem))
    lone = KafkaSettings(security_protocol="SSL", ssl_certfile=ca.client_pem)
    with pytest.raises(ConfigError, match="SHINRAI_KAFKA__SSL_KEYFILE go together"):
        aiokafka_options(lone)
    not_a_ca = KafkaSettings(security_protocol="SSL", ssl_cafile=ca.client_key)
    with pytest.raises(ConfigError, match="SHINRAI_KAFKA__SSL_CAFILE="):
        kafka_python_options(not_a_ca)


def test_env_name_matches_the_settings_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_name("sasl_password"), SECRET)
    monkeypatch.setenv(env_name("ssl_certfile"), "/etc/client.pem")
    kafka = Settings().kafka
    assert kafka.sasl_password is not None
    assert kafka.sasl_password.get_secret_value() == SECRET
    assert kafka.ssl_certfile == Path("/etc/client.pem")


def test_a_refused_login_is_explained_with_the_setting_and_without_the_secret() -> None:
    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

    cause = SaslAuthenticationFailed("Authentication failed: Invalid username or password")
    try:
        try:
            raise cause
        except SaslAuthenticationFailed as exc:
            raise KafkaConnectionError("Unable to bootstrap") from exc
    except KafkaConnectionError as wrapped:
        error = explain(sasl(), wrapped, "b1:9092")
    assert isinstance(error, KafkaRejected)
    assert isinstance(error, ConfigError)  # the worker exits 2: retrying will not help
    message = str(error)
    assert "SHINRAI_KAFKA__SASL_PASSWORD" in message
    assert "'svc'" in message
    assert SECRET not in message
    assert "\n" not in message


def test_certificate_and_network_failures_are_told_apart(ca: CertAuthority) -> None:
    kafka = KafkaSettings(bootstrap="b1:9093", security_protocol="SSL", ssl_cafile=ca.ca_pem)
    bad_cert = explain(kafka, ssl.SSLCertVerificationError("certificate verify failed"), "b1:9093")
    assert isinstance(bad_cert, KafkaRejected)
    assert "SHINRAI_KAFKA__SSL_CAFILE" in str(bad_cert)
    down = explain(kafka, ConnectionRefusedError(111, "Connection refused"), "b1:9093")
    assert isinstance(down, KafkaUnavailable)
    assert not isinstance(down, KafkaRejected)
    assert "SHINRAI_KAFKA__BOOTSTRAP" in str(down)


def test_local_kafka_writes_extra_listeners_with_their_own_settings(tmp_path: Path) -> None:
    broker = LocalKafka(
        LocalKafkaSettings(port=39092, controller_port=39093, data_dir=tmp_path / "data"),
        listeners=[Listener("SASL", "SASL_PLAINTEXT", 39094, {"sasl.enabled.mechanisms": "PLAIN"})],
        run_dir=tmp_path / "run",
    )
    broker.run_dir.mkdir()
    props = dict(
        line.split("=", 1)
        for line in broker._render_config().read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093,SASL://127.0.0.1:39094"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092,SASL://127.0.0.1:39094"
    assert props["listener.security.protocol.map"].endswith(",SASL:SASL_PLAINTEXT")
    assert props["listener.name.sasl.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
