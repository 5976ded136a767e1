"""`shinrai db query` and `shinrai dashboard` beside a running `shinrai worker` (embedded chdb).

Real parts only: the live broker (private topics), a `shinrai worker` subprocess holding its
own chdb directory and serving the dashboard on a free loopback port, and the CLI run as
subprocesses. chdb lets one process open a directory, so the CLI must go through the worker's
endpoint; its answers must equal what the worker's POST /api/sql itself returns.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from producers.kafka_producer import KafkaRecordProducer, send_event
from schemas.directory_records import directory_records
from shinrai.settings import KafkaSettings
from tests.builders import client, directory, inbound_email
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

MARKER_CLIENT = "zz-marker-client-7f3a"
CLIENTS = ("acme-kk", "beta-gk", MARKER_CLIENT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Beside:
    """The worker subprocess, its settings as environment, and how to run the CLI beside it."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['SHINRAI_DASHBOARD__PORT']}"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shinrai", "worker"],
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shinrai", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def sql(self, statement: str) -> httpx.Response:
        return httpx.post(f"{self.url}/api/sql", json={"sql": statement}, timeout=30)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by its handle
                self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


@pytest.fixture
def beside(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[Beside]:
    suffix = f"-{uuid.uuid4().hex[:10]}"
    app_id = f"test-beside-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINRAI_")}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "SHINRAI_KAFKA__BOOTSTRAP": kafka_settings.bootstrap,
            "SHINRAI_KAFKA__TOPIC_PARTITIONS": "2",
            "SHINRAI_CLICKHOUSE__URL": f"chdb://{tmp_path / 'chdb'}",
            "SHINRAI_CLICKHOUSE__DATABASE": "beside",
            "SHINRAI_CLICKHOUSE__BATCH_AGE_S": "0.2",
            "SHINRAI_ALERTS__WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "SHINRAI_ALERTS__SIGNING_SECRET": "beside-secret",
            "SHINRAI_WORKER__APP_ID": app_id,
            "SHINRAI_WORKER__DATA_DIR": str(tmp_path / "worker"),
            "SHINRAI_WORKER__TOPIC_SUFFIX": suffix,
            "SHINRAI_WORKER__METRICS_PORT": "0",
            "SHINRAI_WORKER__SESSION_TIMEOUT_S": "6",
            "SHINRAI_WORKER__SHUTDOWN_TIMEOUT_S": "10",
            "SHINRAI_DASHBOARD__PORT": str(_free_port()),
            "SHINRAI_LOG_LEVEL": "INFO",
        }
    )
    worker = Beside(env, tmp_path / "worker.log", tmp_path)
    worker.start()
    try:
        yield worker
    finally:
        code = worker.stop()
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
        try:
            doomed = [n for n in admin.list_topics() if n.endswith(suffix) or n.startswith(app_id)]
            if doomed:
                admin.delete_topics(doomed)
        except Exception:
            pass  # best effort: a leftover private topic harms no other test
        finally:
            admin.close()
        assert code == 0, worker.log()[-3000:]


def _wait_for(beside: Beside, statement: str, expected: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert beside.running(), beside.log()[-3000:]
        try:
            answer = beside.sql(statement)
            last = answer.json()
            if answer.status_code == 200 and answer.json()["rows"] == expected:
                return
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise AssertionError(f"{statement!r} never gave {expected!r}; last {last!r}")


def _publish(kafka: KafkaSettings, suffix: str) -> None:
    now = datetime.now(UTC)
    book = directory(*(client(c, name=f"{c} name") for c in CLIENTS))
    with KafkaRecordProducer(kafka, client_id="test-beside") as producer:
        for key, value in directory_records(book):
            producer.send(f"directory.v1{suffix}", key=key, value=value)
        for i, c in enumerate(CLIENTS):
            send_event(
                producer,
                f"interactions.v1{suffix}",
                inbound_email(c, now - timedelta(minutes=30 - i)),
            )
        producer.flush()


def test_db_query_and_dashboard_beside_a_running_worker(
    beside: Beside, kafka_settings: KafkaSettings
) -> None:
    chdb = Path(beside.env["SHINRAI_CLICKHOUSE__URL"].removeprefix("chdb://"))
    record_file = chdb / "shinrai-endpoint.json"
    deadline = time.monotonic() + 90
    while not record_file.exists():
        assert beside.running(), beside.log()[-3000:]
        assert time.monotonic() < deadline, beside.log()[-3000:]
        time.sleep(0.2)
    record = json.loads(record_file.read_text())
    assert beside.proc is not None
    assert record["pid"] == beside.proc.pid
    assert record["url"] == beside.url
    assert record["login"] is False

    _publish(kafka_settings, beside.env["SHINRAI_WORKER__TOPIC_SUFFIX"])
    _wait_for(
        beside,
        "SELECT client_id FROM clients FINAL ORDER BY client_id",
        [[c] for c in sorted(CLIENTS)],
    )
    _wait_for(beside, "SELECT count() FROM interactions", [[len(CLIENTS)]])

    # db query --sql through the worker: the same answer as the worker's own endpoint.
    statement = (
        "SELECT client_id, name, owner FROM clients FINAL "
        f"WHERE client_id != '{MARKER_CLIENT}' ORDER BY client_id"
    )
    direct = beside.sql(statement).json()
    as_json = beside.cli("db", "query", "--sql", statement, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert [list(r.values()) for r in json.loads(as_json.stdout)] == direct["rows"]
    assert [list(r) for r in json.loads(as_json.stdout)] == [direct["columns"]] * len(
        direct["rows"]
    )
    as_csv = beside.cli("db", "query", "--sql", statement, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines() == [",".join(direct["columns"])] + [
        ",".join(row) for row in direct["rows"]
    ]
    table = beside.cli("db", "query", "--sql", statement)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == direct["columns"]
    assert [line.split() for line in lines[2:]] == [
        [word for value in row for word in value.split()] for row in direct["rows"]
    ]

    # A named query through the worker equals the worker's GET /api/<name>.
    named = beside.cli("db", "query", "dashboard_clients", "--format", "json")
    assert named.returncode == 0, named.stderr
    api = httpx.get(f"{beside.url}/api/dashboard_clients", timeout=30).json()["rows"]
    assert json.loads(named.stdout) == json.loads(json.dumps(api))
    assert {r["client_id"] for r in api} == set(CLIENTS)

    # A write is refused with one clear line, and nothing changed.
    for write in ("DROP TABLE clients", "INSERT INTO clients SELECT * FROM clients",
                  "SELECT * FROM file('/etc/hostname', 'LineAsString')"):  # fmt: skip
        refused = beside.cli("db", "query", "--sql", write)
        assert refused.returncode == 1, refused.stdout
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert refused.stderr.startswith("Error: refused: read-only endpoint"), refused.stderr
    assert beside.sql("SELECT count() FROM clients FINAL").json()["rows"] == [[len(CLIENTS)]]

    # `shinrai dashboard` on the worker's own address says where it is; elsewhere it forwards.
    same = beside.cli("dashboard")
    assert same.returncode == 0, same.stderr
    assert f"serves the dashboard at {beside.url}/" in same.stdout
    port = _free_port()
    proxy_log = beside.cwd / "dashboard.log"
    with proxy_log.open("wb") as out:
        proxy = subprocess.Popen(
            [sys.executable, "-m", "shinrai", "dashboard", "--port", str(port)],
            env=beside.env,
            cwd=beside.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        forwarded = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proxy.poll() is None, proxy_log.read_text()
            try:
                page = httpx.get(f"{forwarded}/", timeout=30)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        fixed = {"now": datetime.now(UTC).isoformat()}
        assert (
            httpx.get(f"{forwarded}/api/dashboard_clients", params=fixed, timeout=30).json()
            == httpx.get(f"{beside.url}/api/dashboard_clients", params=fixed, timeout=30).json()
        )
        via = httpx.post(f"{forwarded}/api/sql", json={"sql": statement}, timeout=30)
        assert via.json() == direct
    finally:
        proxy.terminate()  # our own child, by its handle
        proxy.wait(timeout=30)

    # Client data never in the worker's log: neither the SQL text nor a client id in a URL.
    httpx.get(f"{beside.url}/api/trust_history", params={"client_id": MARKER_CLIENT}, timeout=30)
    beside.sql(f"SELECT '{MARKER_CLIENT}' AS leaked")
    log = beside.log()
    assert "dashboard_listening" in log
    assert MARKER_CLIENT not in log
    assert "FROM clients" not in log
