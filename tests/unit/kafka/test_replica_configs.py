"""min.insync.replicas of the topics Shinrai makes: from the replication factor or the setting."""

from __future__ import annotations

import pytest

from shinrai.errors import ConfigError
from shinrai.settings import KafkaSettings
from shinrai.topic_admin import ensure_topics, replica_configs

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("replicas", "expected"), [(1, "1"), (2, "1"), (3, "2"), (5, "2")])
def test_default_is_two_below_the_replicas_but_never_zero(replicas: int, expected: str) -> None:
    settings = KafkaSettings(replication_factor=replicas)
    assert replica_configs(settings) == {"min.insync.replicas": expected}


def test_the_setting_wins() -> None:
    settings = KafkaSettings(replication_factor=5, min_insync_replicas=3)
    assert replica_configs(settings) == {"min.insync.replicas": "3"}


def test_more_in_sync_replicas_than_replicas_is_refused_before_kafka_is_asked() -> None:
    # Nothing listens on port 1: the refusal must come from the settings, not the network.
    settings = KafkaSettings(bootstrap="127.0.0.1:1", replication_factor=1, min_insync_replicas=2)
    with pytest.raises(
        ConfigError, match=r"SHINRAI_KAFKA__MIN_INSYNC_REPLICAS=2 .*REPLICATION_FACTOR=1"
    ):
        ensure_topics(settings)
