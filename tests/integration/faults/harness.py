"""What the fault tests share: the oracle's verdict in one call, metrics scraping, a chdb
directory made unwritable, and a worker subprocess's log checked for tracebacks.

Every fault test ends the same way: the facts ClickHouse kept and the alerts the loopback
receiver acknowledged are compared with a replay of what the worker read
(``tests/integration/pipeline/oracle.py``), and the time the pipeline took to recover is printed
(``-s`` or the junit report shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from shinrai.settings import Settings
from tests.integration.alerts.harness import Received
from tests.integration.pipeline.oracle import (
    LiveFact,
    Oracle,
    Verdict,
    acknowledged_alerts,
    compare,
    replay_of_what_was_read,
)
from tests.integration.pipeline.scenario import group_caught_up


def verdict(
    name: str,
    settings: Settings,
    until: datetime,
    live: Sequence[LiveFact],
    requests: Sequence[Received],
) -> tuple[Oracle, Verdict]:
    """The oracle's replay of what the worker read, and the verdict on ``live`` and the alerts."""
    oracle = replay_of_what_was_read(settings, until)
    acked, redelivered = acknowledged_alerts(requests)
    return oracle, compare(
        name, oracle, live, acked, redelivered=redelivered, until=until, expected_dead={}
    )


def assert_equal_to_replay(name: str, oracle: Oracle, v: Verdict, *, min_alerts: int = 1) -> None:
    """Fail with the verdict's figures unless live equals the replay (and the run had alerts)."""
    print(f"\n{name}: read {oracle.read}, replayed {oracle.replayed}; {v.counts()}")
    assert oracle.read > 0, "a replay of nothing equals nothing"
    assert v.expected_facts > 0, "a replay of nothing equals nothing"
    assert v.alerts_expected >= min_alerts, f"{name}: the workload raised too few alerts"
    problems = v.problems()
    if problems:
        pytest.fail(problems, pytrace=False)


async def metric(port: int, name: str, labels: dict[str, str] | None = None) -> float | None:
    """One sample from a worker's /metrics (None if absent or the worker does not answer)."""
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=2)).text
    except httpx.HTTPError:
        return None
    want = ",".join(f'{k}="{v}"' for k, v in (labels or {}).items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.M)
    return float(found.group(1)) if found else None


async def wait_for_groups(
    settings: Settings, groups: dict[str, list[str]], within: float, what: str
) -> float:
    """Wait until every group committed the log end of its topics (suffixed); seconds taken."""
    bootstrap, suffix = settings.kafka.bootstrap, settings.worker.topic_suffix
    app = settings.worker.app_id
    began = time.monotonic()

    def done() -> bool:
        return all(
            group_caught_up(bootstrap, app + g, [t + suffix for t in topics])
            for g, topics in groups.items()
        )

    while not await asyncio.to_thread(done):
        if time.monotonic() - began > within:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.5)
    return time.monotonic() - began


PROCESSOR = {"": ["interactions.v1", "sla-ticks.v1"]}
ALERTS = {"-sink-alerts": ["sla-alerts.v1"]}
CLICKHOUSE = {"-sink-clickhouse": ["sla-facts.v1", "interactions.accepted.v1"]}


def _dirs(root: Path) -> list[Path]:
    return [Path(d) for d, _, _ in os.walk(root)]


@contextlib.contextmanager
def unwritable(root: Path) -> Iterator[None]:
    """No file or directory can be created anywhere under ``root`` until the block ends.

    As root (who ignores permission bits) every directory is made immutable (``chattr +i``);
    otherwise its write bits are cleared. ClickHouse writes every insert as a new part
    directory, so each insert fails meanwhile, as on a full or read-only disk.
    """
    dirs = _dirs(root)
    as_root = os.geteuid() == 0
    modes = {d: d.stat().st_mode for d in dirs}
    for d in dirs:
        if as_root:
            subprocess.run(["chattr", "+i", str(d)], check=True)
        else:
            d.chmod(modes[d] & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        for d in reversed(dirs):
            if as_root:
                subprocess.run(["chattr", "-i", str(d)], check=True)
            else:
                d.chmod(modes[d])


def assert_clean_log(text: str) -> None:
    """No traceback, exception group or unclosed client in a worker's output."""
    for bad in ("Traceback", "ExceptionGroup", "Unclosed AIOKafka"):
        assert bad not in text, f"{bad!r} in the worker's output:\n{text[-3000:]}"
