"""``shinrai worker``: help text, settings from the environment, configuration errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shinrai.cli import main
from shinrai.jobs.worker import build_worker
from shinrai.kafka_options import aiokafka_options
from shinrai.settings import Settings

pytestmark = pytest.mark.unit


def test_help_names_the_options_and_the_environment() -> None:
    result = CliRunner().invoke(main, ["worker", "--help"])
    assert result.exit_code == 0
    for text in (
        "--metrics-port",
        "--no-clickhouse-sink",
        "--no-processor",
        "--topic-suffix",
        "SIGTERM",
        "SHINRAI_WORKER__TOPIC_SUFFIX",
        "SHINRAI_ALERTS__SIGNING_SECRET",
    ):
        assert text in result.output


def test_an_invalid_variable_is_a_clear_error_not_a_traceback() -> None:
    result = CliRunner().invoke(main, ["worker"], env={"SHINRAI_WORKER__SESSION_TIMEOUT_S": "1"})
    assert result.exit_code == 2  # bad configuration, as the worker documents
    assert "invalid settings" in result.output
    assert "SHINRAI_WORKER__SESSION_TIMEOUT_S" in result.output
    assert "Traceback" not in result.output


def test_worker_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHINRAI_WORKER__TOPIC_SUFFIX", "-t1")
    monkeypatch.setenv("SHINRAI_WORKER__APP_ID", "blue")
    monkeypatch.setenv("SHINRAI_WORKER__SESSION_TIMEOUT_S", "12")
    monkeypatch.setenv("SHINRAI_WORKER__RUN_PROCESSOR", "false")
    monkeypatch.setenv("SHINRAI_WORKER__BATCH_MAX_EVENTS", "250")
    worker = build_worker(Settings())  # constructing does no I/O
    assert worker.topics.facts == "sla-facts.v1-t1"
    assert worker.topics.ticks == "sla-ticks.v1-t1"
    # The sink runners never share the Faust app's group (or each other's).
    assert worker.group_id("clickhouse") == "blue-sink-clickhouse"
    assert worker.group_id("alerts") == "blue-sink-alerts"
    assert worker.settings.worker.session_timeout_s == 12
    assert worker.settings.worker.run_processor is False
    assert worker.settings.worker.batch_max_events == 250


def test_consumer_config_carries_sasl_without_leaking_the_secret_type() -> None:
    settings = Settings.model_validate(
        {
            "kafka": {
                "bootstrap": "a:9092,b:9092",
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "svc",
                "sasl_password": "s3cret",
            }
        }
    )
    config = aiokafka_options(settings.kafka)
    assert config["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert config["sasl_plain_password"] == "s3cret"  # aiokafka wants the plain string
    assert "ssl_context" not in config
