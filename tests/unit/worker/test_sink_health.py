"""The ClickHouse sink's health: a gauge and one log line per change of state, never per retry;
and a worker start that fails in an overlapped step raises one error, not an ExceptionGroup."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from structlog.testing import capture_logs

from shinrai.errors import ShinraiError, SinkUnavailable
from shinrai.jobs.worker import _first_error
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse import runner as runner_module
from sinks.clickhouse.runner import ClickHouseRunner, SinkHealth
from sinks.clickhouse.sink import ClickHouseSink

pytestmark = pytest.mark.unit

UP = "shinrai_sink_up"


@pytest.fixture(autouse=True)
def _uncached_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger another test already used is cached past ``capture_logs``: a fresh one."""
    monkeypatch.setattr(runner_module, "log", structlog.get_logger("sinks.clickhouse.runner"))


def events(logs: list[dict[str, object]]) -> list[object]:
    return [e["event"] for e in logs if str(e["event"]).startswith("clickhouse_")]


def test_one_line_when_it_goes_down_and_one_when_it_comes_back() -> None:
    metrics = WorkerMetrics()
    with capture_logs() as logs:
        health = SinkHealth(metrics, "clickhouse", "g")
        assert metrics.value(UP, {"sink": "clickhouse"}) == 1
        for n in range(5):  # five failed retries
            health.down(f"connection refused #{n}", during="flush (batch)")
        assert metrics.value(UP, {"sink": "clickhouse"}) == 0
        assert not health.up
        health.restored()
        health.restored()  # every later successful flush: no line
        health.down("again", during="setup")
    assert events(logs) == [
        "clickhouse_unavailable",
        "clickhouse_available",
        "clickhouse_unavailable",
    ]
    first = logs[0]
    assert first["error"] == "connection refused #0"
    assert "SLA processing and alerts go on" in str(first["action"])
    assert isinstance(logs[1]["down_s"], float)
    assert metrics.value(UP, {"sink": "clickhouse"}) == 0


def test_a_runner_handed_a_sink_that_failed_setup_reports_it_down() -> None:
    metrics = WorkerMetrics()
    sink = ClickHouseSink(ClickHouseSettings(url="http://127.0.0.1:1"))  # no I/O until setup
    with capture_logs() as logs:
        runner = ClickHouseRunner(
            KafkaSettings(), sink, facts_topic="f", interactions_topic="i", group_id="g",
            metrics=metrics, executor=None, batch_rows=10,  # type: ignore[arg-type]
            setup_error="connect http://127.0.0.1:1: ClickHouse unreachable",
        )  # fmt: skip
    assert not runner.ready
    assert metrics.value(UP, {"sink": "clickhouse"}) == 0
    assert [e.get("during") for e in logs if e["event"] == "clickhouse_unavailable"] == ["setup"]


def test_the_first_error_of_a_group_is_raised_alone() -> None:
    inner = SinkUnavailable("ClickHouse unreachable at http://127.0.0.1:1")
    group = ExceptionGroup("start", [ExceptionGroup("nested", [inner]), ValueError("second")])
    assert _first_error(group) is inner
    other = _first_error(ExceptionGroup("start", [KeyError("state")]))
    assert isinstance(other, ShinraiError)
    assert str(other) == "worker failed to start: KeyError: 'state'"
    cancelled = asyncio.CancelledError()
    assert _first_error(BaseExceptionGroup("start", [cancelled])) is cancelled
