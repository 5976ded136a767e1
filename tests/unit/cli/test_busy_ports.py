"""A port our servers need is taken: one line naming the port and its setting, before anything
starts (real listening sockets; the commands run as real ``shinrai`` subprocesses)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shinrai.metrics import MetricsServer, WorkerMetrics
from shinrai.ports import PortInUse, bind_error, require_free
from tests.unit.cli.test_cli_errors import run_shinrai

pytestmark = pytest.mark.unit


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another program listens on (all interfaces), for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_a_listening_port_is_taken_and_a_closed_one_is_free(taken: int) -> None:
    assert bind_error(taken) is not None
    with pytest.raises(PortInUse, match=rf"port {taken} .* set SOME_SETTING to another port"):
        require_free(taken, setting="SOME_SETTING", what="a test")
    port = free_port()
    assert bind_error(port) is None
    require_free(port, setting="SOME_SETTING", what="a test")
    require_free(0, setting="SOME_SETTING", what="a test")  # any port: nothing to check


@pytest.mark.parametrize(
    ("which", "setting"),
    [("port", "SHINRAI_LOCAL_KAFKA__PORT"), ("controller", "SHINRAI_LOCAL_KAFKA__CONTROLLER_PORT")],
)
def test_kafka_start_on_a_busy_port_is_one_line_before_java_starts(
    which: str, setting: str, taken: int, tmp_path: Path
) -> None:
    other = free_port()
    port, controller = (taken, other) if which == "port" else (other, taken)
    env = {
        "SHINRAI_LOCAL_KAFKA__PORT": str(port),
        "SHINRAI_LOCAL_KAFKA__CONTROLLER_PORT": str(controller),
        "SHINRAI_LOCAL_KAFKA__DATA_DIR": str(tmp_path / "kafka"),
    }
    result = run_shinrai(["kafka", "start"], env, tmp_path)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert f"port {taken} " in line
    assert setting in line
    assert not (tmp_path / "kafka").exists()  # nothing provisioned, formatted or started


def test_a_taken_metrics_port_stops_the_worker_before_anything_starts(
    taken: int, tmp_path: Path
) -> None:
    env = {
        "SHINRAI_WORKER__METRICS_PORT": str(taken),
        "SHINRAI_WORKER__DATA_DIR": str(tmp_path / "worker"),
        # Nothing listens here: had the worker gone on, it would fail on Kafka instead.
        "SHINRAI_KAFKA__BOOTSTRAP": f"127.0.0.1:{free_port()}",
    }
    result = run_shinrai(["worker"], env, tmp_path)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert f"port {taken} " in line
    assert "SHINRAI_WORKER__METRICS_PORT" in line
    assert not (tmp_path / "worker").exists()
    flag = run_shinrai(["worker", "--metrics-port", str(taken)], env, tmp_path)
    assert f"port {taken} " in one_error_line(flag.stderr)


def test_a_taken_gateway_port_is_one_line(taken: int, tmp_path: Path) -> None:
    env = {"SHINRAI_KAFKA__BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    result = run_shinrai(["gateway", "--host", "0.0.0.0", "--port", str(taken)], env, tmp_path)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert f"port {taken} " in line
    assert "--port" in line


def test_the_metrics_server_names_a_port_taken_after_the_check(taken: int) -> None:
    server = MetricsServer(WorkerMetrics(), taken)
    with pytest.raises(PortInUse, match=f"port {taken} .*SHINRAI_WORKER__METRICS_PORT"):
        server.start()
