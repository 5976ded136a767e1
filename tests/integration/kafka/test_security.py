"""Every client authenticates on a secured broker, and a wrong password is one clear error.

A second local broker (``secure_broker``) has a SASL_PLAINTEXT/PLAIN listener and an SSL listener
that requires a client certificate, both from a CA made for this session. Over SASL the whole
worker runs (topic creation, changelog restore, the Faust SLA processor, the ClickHouse sink
runner, the directory follower) fed by the ingestion producer and the HTTP gateway; over TLS the
producer, an aiokafka consumer and a Faust agent connect. With a wrong password the worker, the
producer and the gateway each stop within seconds with one line naming the setting.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from producers.gateway.app import create_app
from producers.gateway.settings import GatewaySettings
from producers.kafka_producer import KafkaRecordProducer, send_event
from schemas.base import encode
from schemas.topics import ALL_TOPICS, DLQ, INTERACTIONS
from shinrai.errors import KafkaRejected
from shinrai.jobs.worker import build_worker
from shinrai.kafka_options import aiokafka_options
from shinrai.settings import ClickHouseSettings, KafkaSettings, Settings, WorkerSettings
from shinrai.topic_admin import ensure_topics
from tests.builders import inbound_email, policy_event
from tests.integration.pipeline.scenario import facts_query, now, wait_until

from .secure_broker import SecureBroker

pytestmark = pytest.mark.integration

BEARER = "gateway-bearer-for-tests"
WRONG = "not-the-password"
REPO_ROOT = Path(__file__).resolve().parents[3]


async def test_worker_producer_and_gateway_authenticate_over_sasl(
    secure_broker: SecureBroker, chdb_dir: Path, tmp_path: Path
) -> None:
    kafka = secure_broker.sasl(topic_partitions=3)
    suffix = f"-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        kafka=kafka,
        clickhouse=ClickHouseSettings(
            url=f"chdb://{chdb_dir}", database=f"t_{uuid.uuid4().hex[:12]}", batch_age_s=0.2
        ),
        worker=WorkerSettings(
            app_id=f"test-sasl-{uuid.uuid4().hex[:8]}",
            data_dir=tmp_path / "worker",
            store="rocksdb://",
            topic_suffix=suffix,
            tick_interval_s=0.1,
            metrics_port=None,
            run_alert_sink=False,
            session_timeout_s=6,
            shutdown_timeout_s=10,
        ),
    )
    worker = build_worker(settings)
    # Topics (kafka-python admin), the changelog restore (aiokafka), the Faust app, the
    # ClickHouse runner and the directory follower (aiokafka): all over SASL.
    await worker.start()
    try:
        assert worker.stats is not None
        assert worker.sink is not None
        stats, sink, database = worker.stats, worker.sink, worker.sink.database
        client = f"sasl-{uuid.uuid4().hex[:6]}"
        interactions = INTERACTIONS.name + suffix

        # The ingestion producer (kafka-python) sends the client's policy ...
        def send_policy() -> None:
            with KafkaRecordProducer(kafka, client_id="test-sasl") as producer:
                send_event(
                    producer, interactions, policy_event(client, now() - timedelta(minutes=2))
                )
                producer.flush()

        await asyncio.to_thread(send_policy)

        # ... and the gateway's producer an inbound e-mail, which opens an obligation.
        gateway = create_app(
            settings,
            GatewaySettings(
                bearer_tokens=(SecretStr(BEARER),), topic=interactions, dlq_topic=DLQ.name + suffix
            ),
        )

        async with gateway.router.lifespan_context(gateway):  # the producer connects here
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
                response = await http.post(
                    "/v1/events",
                    content=encode(inbound_email(client, now())),
                    headers={"authorization": f"Bearer {BEARER}"},
                )
        assert response.status_code == 202, response.text

        # The processor read both, and its facts went through Kafka into ClickHouse.
        await wait_until(lambda: stats.events_in >= 2, 60, "the processor to read both events")

        def fact_clients() -> list[str]:
            rows = sink.client.query(facts_query(database)).result_rows
            return [row[2] for row in rows]

        got: list[str] = []
        deadline = time.monotonic() + 60
        while client not in got:
            assert time.monotonic() < deadline, "no fact of the client reached ClickHouse"
            await asyncio.sleep(0.2)
            got = await worker.in_sink_thread(fact_clients)
    finally:
        await worker.stop()


def test_wrong_password_fails_fast_naming_the_setting_in_process(
    secure_broker: SecureBroker,
) -> None:
    wrong = secure_broker.sasl(password=WRONG)
    for connect in (
        lambda: KafkaRecordProducer(wrong, client_id="test-wrong"),
        lambda: ensure_topics(wrong, ALL_TOPICS, suffix="-never"),
    ):
        started = time.monotonic()
        with pytest.raises(KafkaRejected) as info:
            connect()
        assert time.monotonic() - started < 5
        message = str(info.value)
        assert "SHINRAI_KAFKA__SASL_PASSWORD" in message
        assert WRONG not in message
        assert secure_broker.password not in message


def _run_cli(
    secure_broker: SecureBroker, args: list[str], tmp_path: Path, timeout_s: float = 40
) -> tuple[int, str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SHINRAI_KAFKA__BOOTSTRAP": secure_broker.sasl_bootstrap,
        "SHINRAI_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SHINRAI_KAFKA__SASL_MECHANISM": "PLAIN",
        "SHINRAI_KAFKA__SASL_USERNAME": "shinrai-svc",
        "SHINRAI_KAFKA__SASL_PASSWORD": WRONG,
        "SHINRAI_KAFKA__REQUEST_TIMEOUT_S": "5",
        "SHINRAI_WORKER__DATA_DIR": str(tmp_path / "worker"),
        "SHINRAI_WORKER__METRICS_PORT": "0",
        "SHINRAI_CLICKHOUSE__URL": f"chdb://{tmp_path / 'chdb'}",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "shinrai", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout_s,  # a hang fails the test here
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["worker"], 2),  # the processor and the runners: a configuration error
        (["produce", "events.jsonl", "--format", "jsonl"], 1),
        (["gateway", "--port", "0"], 1),
    ],
    ids=["worker", "produce", "gateway"],
)
def test_wrong_password_is_one_error_line_naming_the_setting(
    secure_broker: SecureBroker, tmp_path: Path, args: list[str], exit_code: int
) -> None:
    (tmp_path / "events.jsonl").write_text(encode(policy_event("acme", now())).decode() + "\n")
    code, output, seconds = _run_cli(secure_broker, args, tmp_path)
    assert code == exit_code, output
    naming = [line for line in output.splitlines() if "SHINRAI_KAFKA__SASL_PASSWORD" in line]
    assert len(naming) == 1, output
    assert "refused the SASL PLAIN login of user 'shinrai-svc'" in naming[0]
    assert "Traceback" not in output
    assert WRONG not in output
    assert secure_broker.password not in output
    assert seconds < 30, seconds


async def test_producer_aiokafka_consumer_and_faust_connect_over_mutual_tls(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    from aiokafka import AIOKafkaConsumer

    from streams.app import build_app

    kafka: KafkaSettings = secure_broker.tls(topic_partitions=2)
    suffix = f"-{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(ensure_topics, kafka, [INTERACTIONS], suffix=suffix)
    topic = INTERACTIONS.name + suffix
    events = [policy_event(f"tls-{n}", now()) for n in range(4)]

    def produce() -> None:
        with KafkaRecordProducer(kafka, client_id="test-tls") as producer:
            for event in events:
                send_event(producer, topic, event)
            producer.flush()

    await asyncio.to_thread(produce)

    consumer = AIOKafkaConsumer(
        topic, group_id=None, auto_offset_reset="earliest", **aiokafka_options(kafka)
    )
    await consumer.start()
    read: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(read) < len(events):
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    read.extend(m.value for m in messages if m.value is not None)
    finally:
        await consumer.stop()
    assert sorted(read) == sorted(encode(e) for e in events)

    app = build_app(
        Settings(kafka=kafka),
        app_id=f"test-tls-{uuid.uuid4().hex[:8]}",
        store="memory://",
        datadir=str(tmp_path / "faust"),
        topic_partitions=2,
    )
    seen: list[bytes] = []
    done = asyncio.Event()

    @app.agent(app.topic(topic, key_type=bytes, value_type=bytes))
    async def collect(stream):  # type: ignore[no-untyped-def]
        async for value in stream:
            seen.append(value)
            if len(seen) >= len(events):
                done.set()

    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
    finally:
        await app.stop()
    assert sorted(seen) == sorted(read)
