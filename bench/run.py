"""Every benchmark in one run, against the physical limit of this machine and the goals.

Run: ``.venv/bin/python -m bench.run [--quick] [--only NAME ...]``. Prints a table (measured
figure, goal, verdict) and writes ``bench/results/run-<UTC timestamp>.json``. Sections:

* ``kafka``    raw limit: aiokafka consumer + orjson decode; kafka-python and aiokafka producers;
  the Faust floor (a no-op agent in one process) (``bench.kafka_limits``);
* ``pipeline`` one Worker end to end: sustained events/s into ClickHouse, event→alert latency at
  70% of it, deadline→breach-alert delay (``bench.pipeline``);
* ``pipeline_split`` the same with the processor and the ClickHouse runner as two worker
  processes (``--no-clickhouse-sink`` + ``--no-processor``), rows prefixed "split:";
* ``pipeline_batches`` the backlog of ``pipeline`` produced as batch records of 500 events
  (``schemas.batches``), end to end events/s and per worker CPU second, rows prefixed "batches:";
* ``engine``   ``bench.engine`` replay, events/s;
* ``sink``     ``bench.sink`` add+flush rows/s (facts, interactions);
* ``queries``  ``bench.queries`` dashboard query p50/p95;
* ``recovery`` worker RSS holding N open obligations and restart recovery (``bench.recovery``).
* ``importing`` backfill's parse phase on the shared e-mail samples, messages/s and peak RSS
  (``bench.importing``).

Each section runs in its own child process (``--section``): chdb allows one data directory per
process, and one section's memory must not count in another's. Machine load (``/proc/loadavg``)
is recorded before and after each section; on a shared machine it is part of the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS: tuple[str, ...] = (
    "kafka",
    "pipeline",
    "pipeline_split",
    "pipeline_batches",
    "engine",
    "sink",
    "queries",
    "recovery",
    "importing",
)


@dataclass(frozen=True)
class Metric:
    """One row of the table: where its figure comes from and the goal beside it."""

    key: str
    label: str
    unit: str
    goal: float | None = None
    higher_is_better: bool = True


# Goals: issue 16 (end to end at least half the Faust floor of the same run, alerts within a
# second, the engine at 50k events per CPU s, the runner at 500k rows/s from Kafka bytes).
METRICS: tuple[Metric, ...] = (
    Metric("raw_consume_decode_events_per_s", "raw limit: aiokafka consume + orjson", "events/s"),
    Metric("kafka_python_produce_events_per_s", "kafka-python producer (edge config)", "events/s"),
    Metric("aiokafka_produce_events_per_s", "aiokafka producer", "events/s"),
    Metric("faust_floor_events_per_s", "Faust floor: no-op agent, one process", "events/s"),
    Metric("faust_floor_events_per_cpu_s", "Faust floor per CPU second", "events/s"),
    Metric("e2e_events_per_s", "end to end: Kafka → Worker → ClickHouse", "events/s"),
    Metric("e2e_ratio_to_raw", "end to end / raw limit", "x"),
    Metric("e2e_ratio_to_faust_floor", "end to end / Faust floor", "x", 0.5),
    Metric("processor_events_per_s", "processor alone (backlog read)", "events/s"),
    Metric("e2e_events_per_worker_cpu_s", "end to end per worker CPU second", "events/s"),
    Metric("event_to_alert_p50_ms", "event → alert p50 (70% load)", "ms"),
    Metric("event_to_alert_p99_ms", "event → alert p99 (70% load)", "ms", 1000, False),
    Metric("breach_delay_p50_ms", "deadline → breach alert p50", "ms"),
    Metric("breach_delay_max_ms", "deadline → breach alert max", "ms", 1000, False),
    Metric(
        "split_e2e_events_per_s",
        "split: processor + sinks processes, end to end",
        "events/s",
    ),
    Metric("split_e2e_events_per_worker_cpu_s", "split: per CPU second (both)", "events/s"),
    Metric("split_event_to_alert_p50_ms", "split: event → alert p50 (70% load)", "ms"),
    Metric("split_event_to_alert_p99_ms", "split: event → alert p99 (70% load)", "ms", 1000, False),
    Metric("split_breach_delay_max_ms", "split: deadline → breach alert max", "ms", 1000, False),
    Metric("engine_events_per_s", "engine replay", "events/s", 50_000),
    Metric(
        "batches_e2e_events_per_s",
        "batches: end to end from batch records (one worker)",
        "events/s",
        25_000,
    ),
    Metric("batches_e2e_events_per_worker_cpu_s", "batches: per worker CPU second", "events/s"),
    Metric("batches_e2e_worker_cpu_s", "batches: worker CPU seconds", "s"),
    Metric("sink_facts_rows_per_s", "sink add+flush, facts", "rows/s"),
    Metric("sink_interactions_rows_per_s", "sink add+flush, interactions", "rows/s"),
    Metric(
        "sink_runner_facts_rows_per_s", "sink runner, Kafka bytes → rows, facts", "rows/s", 500_000
    ),
    Metric(
        "sink_runner_interactions_rows_per_s",
        "sink runner, bytes → rows, interactions",
        "rows/s",
        500_000,
    ),
    Metric("dashboard_p50_ms", "dashboard queries p50 (slowest query)", "ms"),
    Metric("dashboard_p95_ms", "dashboard queries p95 (slowest query)", "ms", 50, False),
    Metric("open_obligations", "open obligations held by the worker", "count"),
    Metric("worker_rss_mb", "worker RSS holding them", "MB", 1536, False),
    Metric("recovery_cold_s", "restart recovery, empty disk (changelog)", "s", 10, False),
    Metric("recovery_warm_s", "restart recovery, local RocksDB", "s", 10, False),
    Metric("import_messages_per_s", "e-mail import (backfill parse), samples", "msg/s", 3_000),
    Metric("import_peak_rss_mb", "e-mail import peak RSS (main process)", "MB"),
)


def loadavg() -> str:
    """The first three fields of /proc/loadavg."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


# -- sections (each runs in a child process) -------------------------------------------------------


def _kafka(quick: bool) -> dict[str, float]:
    from bench.kafka_limits import measure
    from shinrai.settings import Settings

    return measure(Settings().kafka, 20_000 if quick else 100_000)


def _pipeline(quick: bool) -> dict[str, float]:
    from bench.pipeline import measure

    return measure(quick, 3_000 if quick else 100_000)


def _pipeline_batches(quick: bool) -> dict[str, float]:
    from bench.pipeline import measure

    keep = ("e2e_events_per_s", "e2e_events_per_worker_cpu_s", "e2e_worker_cpu_s")
    got = measure(quick, 3_000 if quick else 100_000, batch_records=500)
    return {f"batches_{k}": got[k] for k in keep}


def _pipeline_split(quick: bool) -> dict[str, float]:
    from bench.pipeline import measure

    keep = ("e2e_events_per_s", "e2e_events_per_worker_cpu_s", "event_to_alert_p50_ms",
            "event_to_alert_p99_ms", "breach_delay_max_ms")  # fmt: skip
    got = measure(quick, 3_000 if quick else 100_000, split=True)
    return {f"split_{k}": got[k] for k in keep}


def _engine(quick: bool) -> dict[str, float]:
    from datetime import timedelta

    from bench.engine import generate_realistic, run

    n = 20_000 if quick else 300_000
    events = generate_realistic(n, clients=max(10, n // 50), days=90)
    lateness = timedelta(seconds=300)
    run(events[:5000], lateness)  # warm caches, as bench.engine does
    seconds, cpu_s, kinds = run(events, lateness)
    return {
        "engine_events": float(len(events)),
        "engine_events_per_s": len(events) / seconds,
        "engine_events_per_cpu_s": len(events) / cpu_s,
        "engine_facts": float(sum(kinds.values())),
    }


def _sink(quick: bool) -> dict[str, float]:
    import gc
    import random

    from bench.sink import (
        FACTS_TOPIC,
        INTERACTIONS_TOPIC,
        _through_runner,
        _through_sink,
        make_events,
        make_facts,
    )
    from shinrai.settings import ClickHouseSettings

    n = 20_000 if quick else 200_000
    rng = random.Random(1)
    facts, events = make_facts(n, rng), make_events(n, rng)
    gc.collect()
    gc.freeze()
    root = Path(tempfile.mkdtemp(prefix="bench-run-sink-"))
    settings = ClickHouseSettings(url=f"chdb://{root}", database="bench_sink")
    out: dict[str, float] = {"sink_rows": float(n)}
    topics = {"facts": FACTS_TOPIC, "interactions": INTERACTIONS_TOPIC}
    for label, db, records in (("facts", "b_f", facts), ("interactions", "b_i", events)):
        wall, cpu = _through_sink(settings.model_copy(update={"database": db}), records)
        out[f"sink_{label}_rows_per_s"] = wall
        out[f"sink_{label}_rows_per_cpu_s"] = cpu
        # The live path: raw Kafka value bytes -> rows, through the runner's decode (no Kafka I/O).
        runner_settings = settings.model_copy(update={"database": f"{db}_runner"})
        wall, cpu = _through_runner(runner_settings, topics[label], records, settings.batch_rows)
        out[f"sink_runner_{label}_rows_per_s"] = wall
        out[f"sink_runner_{label}_rows_per_cpu_s"] = cpu
    return out


def _queries(quick: bool) -> dict[str, float]:
    import bench.queries as queries

    started = time.time()
    argv = ["bench.queries", "--runs", "20"] + (["--quick"] if quick else ["--rows", "10000000"])
    saved, sys.argv = sys.argv, argv
    try:
        queries.main()
    finally:
        sys.argv = saved
    written = [p for p in RESULTS.glob("queries-*.json") if p.stat().st_mtime >= started - 1]
    record = json.loads(max(written, key=lambda p: p.stat().st_mtime).read_text())
    per_query = record["queries"]
    return {
        "dashboard_rows": float(record["interactions"]),
        "dashboard_p50_ms": max(q["p50_ms"] for q in per_query.values()),
        "dashboard_p95_ms": max(q["p95_ms"] for q in per_query.values()),
        **{f"query_{name}_p95_ms": q["p95_ms"] for name, q in per_query.items()},
    }


def _recovery(quick: bool) -> dict[str, float]:
    from bench.recovery import measure

    out = measure(quick, 10_000 if quick else 1_000_000)
    out["open_obligations"] = out["open_obligations_cold"]
    out["worker_rss_mb"] = max(out["worker_rss_cold_mb"], out["worker_rss_warm_mb"])
    return out


def _importing(quick: bool) -> dict[str, float]:
    from bench.importing import measure

    return measure(copies=1, repeat=1 if quick else 3)


RUNNERS: dict[str, Callable[[bool], dict[str, float]]] = {
    "kafka": _kafka,
    "pipeline": _pipeline,
    "pipeline_split": _pipeline_split,
    "pipeline_batches": _pipeline_batches,
    "engine": _engine,
    "sink": _sink,
    "queries": _queries,
    "recovery": _recovery,
    "importing": _importing,
}


# -- the parent ------------------------------------------------------------------------------------


def _run_section(name: str, quick: bool, log_dir: Path) -> dict[str, Any]:
    out = log_dir / f"{name}.json"
    cmd = [sys.executable, "-m", "bench.run", "--section", name, "--out", str(out)]
    if quick:
        cmd.append("--quick")
    before = loadavg()
    started = time.perf_counter()
    with (log_dir / f"{name}.log").open("wb") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    took = time.perf_counter() - started
    record: dict[str, Any] = {"seconds": took, "load_before": before, "load_after": loadavg()}
    if proc.returncode == 0 and out.exists():
        record["metrics"] = json.loads(out.read_text())
    else:
        tail = (log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
        record["error"] = f"exit {proc.returncode}: {tail}"
    return record


def versions() -> dict[str, str]:
    """Versions of everything the figures depend on."""
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for dist in ("aiokafka", "kafka-python", "faust-streaming", "chdb", "clickhouse-connect",
                 "orjson", "pydantic"):  # fmt: skip
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "n/a"
    from shinrai.errors import LocalKafkaError
    from shinrai.local_kafka import pinned_version

    try:
        out["kafka_broker"] = pinned_version()
    except (LocalKafkaError, OSError):
        out["kafka_broker"] = "n/a"
    out["cpus"] = str(os.cpu_count())
    return out


def _verdict(metric: Metric, value: float | None) -> str:
    if value is None:
        return "-"
    if metric.goal is None:
        return ""
    ok = value >= metric.goal if metric.higher_is_better else value <= metric.goal
    return "met" if ok else "MISSED"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) < 1:
        return f"{value:.4f}"
    return f"{value:,.2f}"


def table_rows(metrics: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """(what, measured, goal, verdict) per metric."""
    rows = []
    for m in METRICS:
        value = metrics.get(m.key)
        goal = "" if m.goal is None else ("≥ " if m.higher_is_better else "≤ ") + _fmt(m.goal)
        rows.append((f"{m.label} ({m.unit})", _fmt(value), goal, _verdict(m, value)))
    return rows


def _print(metrics: dict[str, float], record: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench.run {'--quick ' if record['quick'] else ''}{record['at']}")
    for col in ("measurement", "measured", "goal", ""):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for what, value, goal, verdict in table_rows(metrics):
        style = "red" if verdict == "MISSED" else ("green" if verdict == "met" else None)
        table.add_row(what, value, goal, verdict, style=style)
    console = Console()
    console.print(table)
    for name, section in record["sections"].items():
        status = "ok" if "metrics" in section else "FAILED"
        console.print(f"  {name:<9} {status:<6} {section['seconds']:6.1f} s   "
                      f"load {section['load_before']} → {section['load_after']}")  # fmt: skip
        if "error" in section:
            console.print(section["error"], markup=False)


def main(argv: list[str] | None = None) -> int:
    """Run the sections (each in a child process), print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke, ~3 min)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="NAME",
                        help=f"run only these sections ({', '.join(SECTIONS)})")  # fmt: skip
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where run-*.json goes")
    args = parser.parse_args(argv)

    if args.section:  # a child: one section, figures to --out
        figures = RUNNERS[args.section](args.quick)
        args.out.write_text(json.dumps(figures, indent=2))
        return 0

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record: dict[str, Any] = {
        "at": stamp,
        "quick": args.quick,
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "versions": versions(),
        "load_start": loadavg(),
        "sections": {},
    }
    log_dir = Path(tempfile.mkdtemp(prefix="bench-run-"))
    started = time.perf_counter()
    for name in args.only or SECTIONS:
        print(f"[bench.run] {name} ... (load {loadavg()})", flush=True)
        record["sections"][name] = _run_section(name, args.quick, log_dir)
    record["seconds"] = time.perf_counter() - started
    record["load_end"] = loadavg()
    metrics: dict[str, float] = {}
    for section in record["sections"].values():
        metrics.update(section.get("metrics", {}))
    if "e2e_events_per_s" in metrics and "raw_consume_decode_events_per_s" in metrics:
        metrics["e2e_ratio_to_raw"] = (
            metrics["e2e_events_per_s"] / metrics["raw_consume_decode_events_per_s"]
        )
    if "e2e_events_per_s" in metrics and "faust_floor_events_per_s" in metrics:
        metrics["e2e_ratio_to_faust_floor"] = (
            metrics["e2e_events_per_s"] / metrics["faust_floor_events_per_s"]
        )
    record["metrics"] = metrics
    record["table"] = table_rows(metrics)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"run-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    _print(metrics, record)
    print(f"wrote {path} (logs in {log_dir}); {record['seconds']:.0f} s in all")
    failed = [n for n, s in record["sections"].items() if "metrics" not in s]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
