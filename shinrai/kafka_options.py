"""The one translation of ``Settings.kafka`` into client options: kafka-python, aiokafka, Faust.

Every Kafka client Shinrai builds (the Faust SLA processor, the sink runners, the changelog
restore, the directory reader and follower, the ingestion producer and gateway, the topic admin,
the benches) takes its connection and security options from here, so a secured cluster is
configured once and every client authenticates the same way. The TLS context is built once per
call by the standard library and handed to all three libraries (kafka-python and aiokafka take an
``ssl_context``, Faust wraps it in its credentials), so certificate checks cannot differ between
them.

Settings that cannot work together are refused before any connection, with one line naming the
environment variable to fix (``ConfigError``). The SASL password stays a ``SecretStr`` in the
settings and is unwrapped only into the dictionaries handed to a client constructor; nothing here
logs those dictionaries or puts the secret in an error message.
"""

from __future__ import annotations

import ssl
from typing import Any

from shinrai.errors import ConfigError
from shinrai.settings import KafkaSettings

ENV_PREFIX = "SHINRAI_KAFKA__"
"""Environment prefix of ``KafkaSettings`` (error messages name the variable to fix)."""

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# GSSAPI needs Kerberos libraries and OAUTHBEARER a token provider: neither is wired up here.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def env_name(field: str) -> str:
    """The environment variable of a ``KafkaSettings`` field, e.g. ``SHINRAI_KAFKA__SASL_PASSWORD``."""
    return ENV_PREFIX + field.upper()


def bootstrap_servers(kafka: KafkaSettings) -> list[str]:
    """The bootstrap list as ``host:port`` strings (blanks around commas ignored)."""
    servers = [s.strip() for s in kafka.bootstrap.split(",") if s.strip()]
    if not servers:
        raise ConfigError(f"{env_name('bootstrap')} is empty: give host:port[,host:port]")
    return servers


def uses_tls(kafka: KafkaSettings) -> bool:
    """True for SSL and SASL_SSL."""
    return _protocol(kafka) in ("SSL", "SASL_SSL")


def uses_sasl(kafka: KafkaSettings) -> bool:
    """True for SASL_PLAINTEXT and SASL_SSL."""
    return _protocol(kafka).startswith("SASL_")


def _protocol(kafka: KafkaSettings) -> str:
    protocol = kafka.security_protocol.strip().upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"{env_name('security_protocol')}={kafka.security_protocol!r} is not one of "
            f"{', '.join(PROTOCOLS)}"
        )
    return protocol


def check(kafka: KafkaSettings) -> None:
    """Refuse settings that cannot work together, naming the variable (``ConfigError``).

    The usual mistake is half a configuration: credentials without a SASL protocol (the client
    would connect without them) or a SASL protocol without credentials.
    """
    protocol = _protocol(kafka)
    bootstrap_servers(kafka)
    sasl_fields = {
        "sasl_mechanism": kafka.sasl_mechanism,
        "sasl_username": kafka.sasl_username,
        "sasl_password": kafka.sasl_password,
    }
    if uses_sasl(kafka):
        if not kafka.sasl_mechanism:
            raise ConfigError(
                f"{env_name('security_protocol')}={protocol} needs {env_name('sasl_mechanism')} "
                f"({', '.join(SASL_MECHANISMS)})"
            )
        if kafka.sasl_mechanism.upper() not in SASL_MECHANISMS:
            raise ConfigError(
                f"{env_name('sasl_mechanism')}={kafka.sasl_mechanism!r} is not supported "
                f"(use one of {', '.join(SASL_MECHANISMS)})"
            )
        missing = [env_name(f) for f in ("sasl_username", "sasl_password") if not sasl_fields[f]]
        if missing:
            raise ConfigError(
                f"{env_name('security_protocol')}={protocol} with "
                f"{kafka.sasl_mechanism.upper()} needs {' and '.join(missing)}"
            )
    else:
        stray = [env_name(f) for f, value in sasl_fields.items() if value]
        if stray:
            raise ConfigError(
                f"{', '.join(stray)} set but {env_name('security_protocol')}={protocol}: the "
                "credentials would not be used (use SASL_PLAINTEXT or SASL_SSL)"
            )
    tls_files = {
        "ssl_cafile": kafka.ssl_cafile,
        "ssl_certfile": kafka.ssl_certfile,
        "ssl_keyfile": kafka.ssl_keyfile,
    }
    if not uses_tls(kafka):
        stray = [env_name(f) for f, value in tls_files.items() if value is not None]
        if stray:
            raise ConfigError(
                f"{', '.join(stray)} set but {env_name('security_protocol')}={protocol}: TLS "
                "would not be used (use SSL or SASL_SSL)"
            )
    if (kafka.ssl_certfile is None) != (kafka.ssl_keyfile is None):
        raise ConfigError(
            f"{env_name('ssl_certfile')} and {env_name('ssl_keyfile')} go together (mutual TLS)"
        )
    for field, path in tls_files.items():
        if path is not None and not path.is_file():
            raise ConfigError(f"{env_name(field)}={path}: no such file")


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL/SASL_SSL (None otherwise): verifies the broker's certificate and
    host name against ``ssl_cafile`` (or the system's CAs), presents the client certificate when
    ``ssl_certfile``/``ssl_keyfile`` are set."""
    check(kafka)
    if not uses_tls(kafka):
        return None
    cafile = None if kafka.ssl_cafile is None else str(kafka.ssl_cafile)
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{env_name('ssl_cafile')}={cafile}: not a PEM CA bundle ({exc})"
        ) from exc
    if kafka.ssl_certfile is not None and kafka.ssl_keyfile is not None:
        try:
            context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile))
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{env_name('ssl_certfile')} / {env_name('ssl_keyfile')}: not a PEM certificate "
                f"and its unencrypted key ({exc})"
            ) from exc
    return context


def _common(kafka: KafkaSettings, request_timeout_ms: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(kafka),
        "request_timeout_ms": request_timeout_ms,
        "security_protocol": _protocol(kafka),
    }
    context = ssl_context(kafka)  # also runs check()
    if context is not None:
        options["ssl_context"] = context
    login = _sasl_login(kafka)
    if login is not None:
        mechanism, username, password = login
        options["sasl_mechanism"] = mechanism
        options["sasl_plain_username"] = username
        options["sasl_plain_password"] = password
    return options


def _sasl_login(kafka: KafkaSettings) -> tuple[str, str, str] | None:
    """(mechanism, username, password) of a SASL protocol, None otherwise. The password is
    unwrapped only here, into the options handed to a client; it is never logged."""
    check(kafka)
    if not (uses_sasl(kafka) and kafka.sasl_mechanism and kafka.sasl_username):
        return None
    if kafka.sasl_password is None:  # check() refused it already; this satisfies the types
        return None
    return kafka.sasl_mechanism.upper(), kafka.sasl_username, kafka.sasl_password.get_secret_value()


def kafka_python_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security options of a kafka-python producer, consumer or admin client."""
    return _common(kafka, int(kafka.request_timeout_s * 1000))


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security options of an aiokafka consumer, producer or admin client.

    The request timeout is the setting plus 30 s: an aiokafka consumer's join request waits up to
    its session timeout (30 s by default) and must not time out before the broker answers it.
    """
    return _common(kafka, int(kafka.request_timeout_s * 1000) + 30_000)


def faust_broker_url(kafka: KafkaSettings) -> str:
    """Faust's broker URL(s): ``kafka://host:port;kafka://host:port``."""
    return ";".join(f"kafka://{host}" for host in bootstrap_servers(kafka))


def faust_options(kafka: KafkaSettings) -> dict[str, Any]:
    """``faust.App`` options: ``broker`` and, on a secured cluster, ``broker_credentials``.

    Faust hands ``broker_credentials`` to every client it builds (consumer, producer, and the
    topic creation that goes through the producer's connection); a bare ``kafka://`` URL would
    connect without TLS or SASL whatever the settings say.
    """
    import faust

    check(kafka)
    options: dict[str, Any] = {"broker": faust_broker_url(kafka)}
    context = ssl_context(kafka)
    login = _sasl_login(kafka)
    if login is not None:
        mechanism, username, password = login
        options["broker_credentials"] = faust.SASLCredentials(
            username=username,
            password=password,
            ssl_context=context,  # None: SASL_PLAINTEXT; a context: SASL_SSL
            mechanism=mechanism,
        )
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options
