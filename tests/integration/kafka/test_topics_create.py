"""``shinrai topics create`` on the real broker: the worker's topic names (suffix included) and
min.insync.replicas on every topic it makes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from schemas.topics import ALL_TOPICS
from shinrai.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def suffix(kafka_bootstrap: str) -> Iterator[str]:
    from kafka import KafkaAdminClient

    suffix = f".t{uuid.uuid4().hex[:8]}"
    yield suffix
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_topics([spec.name + suffix for spec in ALL_TOPICS])
    finally:
        admin.close()


def test_topics_create_uses_the_topic_suffix_and_sets_min_insync_replicas(
    kafka_bootstrap: str, suffix: str
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    env = {"SHINRAI_KAFKA__BOOTSTRAP": kafka_bootstrap, "SHINRAI_WORKER__TOPIC_SUFFIX": suffix}
    result = CliRunner().invoke(main, ["topics", "create"], env=env)
    assert result.exit_code == 0, result.output
    names = [spec.name + suffix for spec in ALL_TOPICS]
    for name in names:
        assert f"created {name} (" in result.output

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert set(names) <= set(admin.list_topics())
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        described = admin.describe_configs(resources)
    finally:
        admin.close()
    # kafka-python 3: {"topic": {name: {config: {"value": ..., ...}}}} (non-default ones)
    found = {
        name: configs["min.insync.replicas"]["value"]
        for name, configs in described["topic"].items()
    }
    assert found == dict.fromkeys(names, "1")  # one replica on the single test broker

    again = CliRunner().invoke(main, ["topics", "create"], env=env)
    assert again.exit_code == 0
    assert all(f"exists  {name} (" in again.output for name in names)
