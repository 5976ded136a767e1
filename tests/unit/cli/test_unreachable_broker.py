"""No broker where SHINRAI_KAFKA__BOOTSTRAP points: one line, in seconds, naming the setting and,
for a broker on this machine, ``shinrai kafka start`` (real ``shinrai`` subprocesses; the broker
that is not there is a free port, or a socket that accepts and never answers)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shinrai.errors import KafkaUnavailable
from shinrai.kafka_check import explain
from shinrai.settings import KafkaSettings
from tests.builders import client, directory, jsonl, numbered_event
from tests.unit.cli.test_busy_ports import free_port
from tests.unit.cli.test_cli_errors import run_shinrai

pytestmark = pytest.mark.unit


def commands(tmp_path: Path) -> dict[str, list[str]]:
    """The commands that need the broker first, each with a valid command line."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(jsonl([numbered_event(1, "c1")]))
    clients = tmp_path / "clients.yaml"
    clients.write_text(yaml.safe_dump(directory(client("c1")).model_dump(mode="json")))
    return {
        "produce": ["produce", str(events), "--format", "jsonl", "--no-progress"],
        "worker": ["worker", "--no-metrics"],
        "topics create": ["topics", "create"],
        "directory publish": ["directory", "publish", str(clients)],
    }


def check_error(stderr: str, server: str) -> str:
    """The error line: last, alone among at most two of our own log lines, no client logs."""
    lines = stderr.strip().splitlines()
    assert lines, stderr
    error = lines[-1]
    assert error.startswith(f"Error: no Kafka broker answers at {server} "), stderr
    assert "SHINRAI_KAFKA__BOOTSTRAP" in error
    assert "Traceback" not in stderr
    assert not any(name in stderr for name in ("kafka.conn", "aiokafka", "kafka.client"))
    assert len(lines) <= 3, stderr  # the worker's own starting/stopped lines at most
    return error


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SHINRAI_WORKER__DATA_DIR": str(tmp_path / "worker"),
        "SHINRAI_CLICKHOUSE__URL": f"chdb://{tmp_path / 'chdb'}",
    }


@pytest.mark.parametrize("name", ["produce", "worker", "topics create", "directory publish"])
def test_nothing_listening_is_one_line_with_the_kafka_start_hint(
    name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    server = f"127.0.0.1:{free_port()}"
    result = run_shinrai(
        commands(tmp_path)[name], {**env, "SHINRAI_KAFKA__BOOTSTRAP": server}, tmp_path
    )
    assert result.returncode == 1
    error = check_error(result.stderr, server)
    assert "connection refused" in error
    assert f"`shinrai kafka start --port {server.rpartition(':')[2]}`" in error
    assert "produced" not in result.stdout + result.stderr  # no empty summary before it


def test_the_local_default_needs_no_port_in_the_hint() -> None:
    error = explain(KafkaSettings(), ConnectionRefusedError(111, "refused"), "127.0.0.1:19092")
    assert isinstance(error, KafkaUnavailable)
    assert "`shinrai kafka start`," in str(error)
    assert "SHINRAI_KAFKA__BOOTSTRAP" in str(error)


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never answers (a hung broker, a wrong service)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("name", ["produce", "topics create"])
def test_a_broker_that_never_answers_is_an_error_within_the_probe_timeout(
    name: str, silent: str, tmp_path: Path, env: dict[str, str]
) -> None:
    settings = {**env, "SHINRAI_KAFKA__BOOTSTRAP": silent, "SHINRAI_KAFKA__REQUEST_TIMEOUT_S": "1"}
    result = run_shinrai(commands(tmp_path)[name], settings, tmp_path)
    assert result.returncode == 1
    assert "no answer within 1 s" in check_error(result.stderr, silent)


def test_a_remote_bootstrap_gets_no_local_hint(tmp_path: Path, env: dict[str, str]) -> None:
    server = "kafka.invalid:9092"  # .invalid never resolves (RFC 6761)
    result = run_shinrai(
        ["topics", "create"], {**env, "SHINRAI_KAFKA__BOOTSTRAP": server}, tmp_path
    )
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: cannot connect to Kafka at {server} ")
    assert "SHINRAI_KAFKA__BOOTSTRAP" in line
    assert "kafka start" not in line
