"""Check that the configured Kafka settings get us in, and say which setting is wrong if not.

The clients themselves hide why they could not connect: aiokafka gives up with "Unable to
bootstrap" (the SASL or TLS error only goes to its log), kafka-python retries a refused login
until its bootstrap timeout. ``check_connection`` opens one connection per bootstrap server with
exactly the options of ``shinrai.kafka_options``, asks for metadata, and raises at the first
answer that tells: ``KafkaRejected`` for a refused login, a certificate that does not verify or
a listener that closes on us (naming the ``SHINRAI_KAFKA__*`` variable to fix), or
``KafkaUnavailable`` when no server answers. It is bounded by ``request_timeout_s`` (at most
:data:`PROBE_TIMEOUT_S`) per server, so a wrong password or a broker that is not there is one
error line within seconds, never a hang; when the server is on loopback, the line says how to
start the local broker.

The entry points that build long-lived clients call it first (topic creation, which every worker
does before Faust and the sink runners start; the ingestion producer, hence the gateway and
``shinrai produce``; the directory reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from typing import Any

from shinrai.errors import KafkaRejected, KafkaUnavailable, ShinraiError
from shinrai.kafka_options import aiokafka_options, bootstrap_servers, env_name, uses_tls
from shinrai.settings import KafkaSettings, LocalKafkaSettings


def explain(kafka: KafkaSettings, exc: BaseException, server: str) -> ShinraiError:
    """The error to raise for ``exc`` met while connecting to ``server`` (never the secret)."""
    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

    protocol = kafka.security_protocol.upper()
    chain = _chain(exc)
    detail = str(exc).strip() or type(exc).__name__
    if any(isinstance(e, SaslAuthenticationFailed) for e in chain):
        return KafkaRejected(
            f"Kafka at {server} refused the SASL {kafka.sasl_mechanism} login of user "
            f"{kafka.sasl_username!r}: check {env_name('sasl_username')} and "
            f"{env_name('sasl_password')} ({detail})"
        )
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return KafkaRejected(
            f"the TLS certificate of Kafka at {server} does not verify: check "
            f"{env_name('ssl_cafile')} (the CA that signed the brokers) ({detail})"
        )
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return KafkaRejected(
            f"TLS with Kafka at {server} failed: check {env_name('security_protocol')}={protocol} "
            f"matches that listener, and {env_name('ssl_certfile')} ({detail})"
        )
    if any(isinstance(e, KafkaConnectionError) and "closed" in str(e) for e in chain):
        hint = f" and {env_name('ssl_certfile')} / {env_name('ssl_keyfile')}" * uses_tls(kafka)
        return KafkaRejected(
            f"Kafka at {server} closed the connection during set-up: check "
            f"{env_name('security_protocol')}={protocol} matches that listener{hint} ({detail})"
        )
    reason = _unreachable_reason(chain, detail, probe_timeout_s(kafka))
    if is_local(server):
        # The usual first-run mistake: the project's own broker is not started.
        port = server.rpartition(":")[2]
        flag = "" if port == str(LOCAL_DEFAULT_PORT) else f" --port {port}"
        return KafkaUnavailable(
            f"no Kafka broker answers at {server} ({reason}; {env_name('bootstrap')}): start "
            f"the local one with `shinrai kafka start{flag}`, or point "
            f"{env_name('bootstrap')} at a running cluster"
        )
    return KafkaUnavailable(
        f"cannot connect to Kafka at {server} over {protocol} ({reason}): is it running, and "
        f"are {env_name('bootstrap')} and {env_name('security_protocol')} right?"
    )


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
LOCAL_DEFAULT_PORT: int = LocalKafkaSettings.model_fields["port"].default
PROBE_TIMEOUT_S = 5.0
"""Longest wait for one bootstrap server to answer the probe (below ``request_timeout_s`` when
that is longer): a firewall that drops packets is an error in seconds, not after the clients'
own timeouts (30 s of silence and retry logs)."""


def probe_timeout_s(kafka: KafkaSettings) -> float:
    """How long the probe waits for one server."""
    return min(kafka.request_timeout_s, PROBE_TIMEOUT_S)


def is_local(server: str) -> bool:
    """True for a ``host:port`` on this machine's loopback (where ``shinrai kafka`` runs)."""
    return server.rpartition(":")[0] in LOCAL_HOSTS


def _unreachable_reason(chain: list[BaseException], detail: str, timeout_s: float) -> str:
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"host name not found: {detail}"
    if any(isinstance(e, TimeoutError) for e in chain):
        return f"no answer within {timeout_s:g} s"
    return detail


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


async def probe(kafka: KafkaSettings) -> None:
    """Connect to the bootstrap servers in turn until one answers a metadata request.

    Raises ``KafkaRejected`` at once when a server refuses our settings (another server would
    refuse them too), ``KafkaUnavailable`` when none answers, ``ConfigError`` for settings that
    cannot work together.
    """
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    options = aiokafka_options(kafka)
    connect: dict[str, Any] = {
        "client_id": "shinrai-check",
        "request_timeout_ms": int(probe_timeout_s(kafka) * 1000),
        **{
            k: v for k, v in options.items() if k not in ("bootstrap_servers", "request_timeout_ms")
        },
    }
    failure: ShinraiError | None = None
    for server in bootstrap_servers(kafka):
        host, _, port = server.rpartition(":")
        conn: Any = None
        try:
            async with asyncio.timeout(probe_timeout_s(kafka)):
                conn = await create_conn(host, int(port), **connect)
                await conn.send(MetadataRequest([]))
            return
        except (Exception, TimeoutError) as exc:  # every failure is explained, none escapes raw
            failure = explain(kafka, exc, server)
            if isinstance(failure, KafkaRejected):
                raise failure from exc
        finally:
            if conn is not None:
                await _close(conn)
    assert failure is not None
    raise failure


async def _close(conn: Any) -> None:
    """Close the probe's connection and wait (briefly) until it is closed: a TLS close needs a
    round trip, and ``check_connection`` ends its event loop right after the probe."""
    closed = conn.close()  # aiokafka: a future that is done once the socket is closed
    with contextlib.suppress(Exception, TimeoutError):
        await asyncio.wait_for(asyncio.shield(closed), 1.0)


def check_connection(kafka: KafkaSettings) -> None:
    """``probe`` from synchronous code, also when called inside a running event loop (it runs on
    its own loop in a short-lived thread)."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(probe(kafka))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append(exc)

    thread = threading.Thread(target=run, name="shinrai-kafka-check", daemon=True)
    thread.start()
    thread.join()
    if outcome:
        raise outcome[0]
