"""``shinrai worker``: run the SLA processor and the sink runners until SIGTERM/SIGINT.

Why our own asyncio main instead of ``faust.Worker(...).execute_from_commandline()``: the
Faust worker owns the loop, its signal handlers and logging setup, and exits through
``sys.exit`` with its own code; it knows nothing of the sink runners, whose flush-then-commit
on shutdown is what at-least-once rests on. Here one handler sets one event, ``Worker.stop``
runs the documented order (runners flush and commit, then the Faust app stops and commits its
offsets), and the exit status says what happened: 0 after a requested shutdown, 1 when a
component failed, 2 for bad configuration. A second signal exits at once (status 130), for an
operator who does not want to wait for a slow shutdown. (Status 1 and its one error line come
from the CLI's error mapping; a ConfigError met while starting is reported here as status 2.)
"""

from __future__ import annotations

import click

from shinrai.commands._context import SettingsInvalid, get_settings

_ENV_HELP = """
\b
Settings come from the environment (nested groups use a double underscore), e.g.:
  SHINRAI_KAFKA__BOOTSTRAP=127.0.0.1:19092
  SHINRAI_CLICKHOUSE__URL=chdb:///var/lib/shinrai/chdb   (or https://host:8443)
  SHINRAI_CLICKHOUSE__DATABASE=shinrai
  SHINRAI_ALERTS__WEBHOOK_URL=https://hooks.example/shinrai
  SHINRAI_ALERTS__SIGNING_SECRET=...                     (required with the alert sink)
  SHINRAI_WORKER__APP_ID=shinrai                          (Faust group; sink groups derive)
  SHINRAI_WORKER__DATA_DIR=/var/lib/shinrai/worker        (RocksDB, delivered store, logs)
  SHINRAI_WORKER__STORE=rocksdb://
  SHINRAI_WORKER__TOPIC_SUFFIX=                           (appended to every topic name)
  SHINRAI_WORKER__METRICS_PORT=9464                       (Prometheus /metrics)
  SHINRAI_WORKER__ALERT_ROUTING_FILE=routing.yaml
  SHINRAI_WORKER__RUN_PROCESSOR=true
  SHINRAI_WORKER__RUN_CLICKHOUSE_SINK=true / SHINRAI_WORKER__RUN_ALERT_SINK=true
  SHINRAI_WORKER__SHUTDOWN_TIMEOUT_S=20
  SHINRAI_LOG_LEVEL=INFO  SHINRAI_LOG_JSON=false
  SHINRAI_DASHBOARD__PORT=8088                            (dashboard + POST /api/sql; __HOST,
  SHINRAI_DASHBOARD__BEARER_TOKENS='["..."]'              a login off loopback; __IN_WORKER)
"""


@click.command("worker", epilog=_ENV_HELP)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve Prometheus metrics on this port (0: any free port). Overrides the environment.",
)
@click.option("--no-metrics", is_flag=True, help="Do not serve /metrics.")
@click.option(
    "--processor/--no-processor",
    default=None,
    help="Run the Faust SLA processor in this process (default: from settings, on). "
    "--no-processor makes a sinks-only worker: run it beside processor-only workers "
    "(--no-clickhouse-sink --no-alert-sink) to give the sinks their own process.",
)
@click.option(
    "--clickhouse-sink/--no-clickhouse-sink",
    default=None,
    help="Run the ClickHouse runner in this process (default: from settings, on).",
)
@click.option(
    "--alert-sink/--no-alert-sink",
    default=None,
    help="Run the alert runner in this process (default: from settings, on).",
)
@click.option("--topic-suffix", default=None, help="Append this to every topic name.")
def command(
    metrics_port: int | None,
    no_metrics: bool,
    processor: bool | None,
    clickhouse_sink: bool | None,
    alert_sink: bool | None,
    topic_suffix: str | None,
) -> None:
    """Run the SLA processor (Faust) with the ClickHouse and alert sink runners.

    Creates missing topics, migrates an embedded ClickHouse, then processes events until
    SIGTERM or SIGINT, on which it flushes the sinks, commits offsets, stops and exits 0.
    With embedded ClickHouse (chdb://) run one worker per data directory; with an https://
    ClickHouse run as many as there are partitions to share.
    """
    import asyncio
    import os
    import signal
    import sys

    from shinrai.errors import ConfigError
    from shinrai.logging import configure, get_logger

    settings = get_settings()
    updates: dict[str, object] = {}
    if no_metrics:
        updates["metrics_port"] = None
    elif metrics_port is not None:
        updates["metrics_port"] = metrics_port
    if processor is not None:
        updates["run_processor"] = processor
    if clickhouse_sink is not None:
        updates["run_clickhouse_sink"] = clickhouse_sink
    if alert_sink is not None:
        updates["run_alert_sink"] = alert_sink
    if topic_suffix is not None:
        updates["topic_suffix"] = topic_suffix
    if updates:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update=updates)}
        )
    if settings.worker.metrics_port is not None:
        from shinrai.ports import require_free

        # Now, before topics, ClickHouse and Faust start: a taken port is one line at once.
        require_free(
            settings.worker.metrics_port,
            setting="SHINRAI_WORKER__METRICS_PORT (or --metrics-port, --no-metrics)",
            what="the worker's /metrics",
        )
    configure(settings.log_level, json=settings.log_json)
    log = get_logger("shinrai.worker")

    from shinrai.jobs.worker import build_worker

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = 0

        def on_signal(signum: int) -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                log.error("second_signal_exiting_now", signal=signal.Signals(signum).name)
                os._exit(130)
            log.info("shutdown_requested", signal=signal.Signals(signum).name)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        worker = build_worker(settings)
        log.info(
            "worker_starting",
            app_id=settings.worker.app_id,
            topic_suffix=settings.worker.topic_suffix,
            processor=settings.worker.run_processor,
            clickhouse_sink=settings.worker.run_clickhouse_sink,
            alert_sink=settings.worker.run_alert_sink,
        )
        return await worker.run(stop)

    try:
        code = asyncio.run(main())
    except ConfigError as exc:  # the worker's documented status for bad configuration
        raise SettingsInvalid(f"configuration error: {exc}") from exc
    sys.exit(code)
