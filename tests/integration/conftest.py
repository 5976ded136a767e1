"""Integration fixtures: the real Kafka broker, checked once and failed fast when it is down.

Integration tests never skip for a missing service: they fail, naming the address, so a CI run
(or a developer) cannot mistake "not tested" for "passed". Start the broker with
``shinrai kafka start`` (``make test`` does it for you).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from shinrai.settings import KafkaSettings

BOOTSTRAP = os.environ.get("SHINRAI_KAFKA__BOOTSTRAP", "127.0.0.1:19092")
_broker_error: list[str] = []
_broker_checked: list[bool] = []


def _check_broker() -> str | None:
    host, _, port = BOOTSTRAP.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        return (
            f"Kafka broker at {BOOTSTRAP} is unreachable ({exc}); "
            "start it with `shinrai kafka start` (or run `make test`)"
        )
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000)
        try:
            admin.describe_cluster()
        finally:
            admin.close()
    except (KafkaError, OSError) as exc:
        return f"Kafka broker at {BOOTSTRAP} does not answer a metadata request: {exc}"
    return None


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONE embedded ClickHouse (chdb) data directory of this pytest process.

    chdb binds its engine to the first data directory a process opens, so every integration
    test shares this one and isolates itself with a random database name.
    """
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The address of a live broker; every test using it fails fast when the broker is down."""
    if not _broker_checked:
        error = _check_broker()
        _broker_checked.append(True)
        if error:
            _broker_error.append(error)
    if _broker_error:
        pytest.fail(_broker_error[0], pytrace=False)
    return BOOTSTRAP


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """KafkaSettings pointing at the live broker."""
    return KafkaSettings(bootstrap=kafka_bootstrap, request_timeout_s=10)


@pytest.fixture
def topic_factory(kafka_settings: KafkaSettings) -> Callable[..., str]:
    """Create a private topic with a random name: ``topic_factory(partitions=4) -> name``."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    created: list[str] = []

    def make(prefix: str = "test", partitions: int = 4) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()
        created.append(name)
        return name

    yield make  # type: ignore[misc]
    if created:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
        try:
            admin.delete_topics(created)
        except Exception:
            pass
        finally:
            admin.close()
