"""Follow the compacted directory topic into the sinks: client rows in ClickHouse, alert routing.

The directory topic is small and compacted, so the follower assigns its one partition(s) itself
(no consumer group, nothing to commit) and reads it from the beginning on every start. Each
batch rebuilds the directory (latest record per key wins); clients whose record changed are
upserted into ClickHouse's ``clients`` table with their record's offset as the version (so the
newest directory wins over an older backfill), and the alert runner gets the new directory so
owner and escalation routes resolve. A record that does not validate is logged and skipped: the
previous directory stays in force. Client rows ClickHouse did not take (it is down) are written
again every few seconds, whether or not new directory records arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from schemas.directory import Client, ClientDirectory
from schemas.directory_records import directory_from_records
from shinrai.errors import ShinraiError
from shinrai.kafka_options import aiokafka_options
from shinrai.logging import get_logger
from shinrai.settings import KafkaSettings
from sinks.consumer_stop import stop_consumer

log = get_logger("sinks.directory_follower")

ClientWriter = Callable[[Client, int], Awaitable[None]]
DirectoryListener = Callable[[ClientDirectory], None]


class DirectoryFollower:
    """Reads ``topic`` from the start and keeps the sinks' view of the directory current."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        *,
        write_client: ClientWriter | None = None,
        on_directory: DirectoryListener | None = None,
        poll_timeout_s: float = 0.5,
        retry_s: float = 5.0,
    ) -> None:
        """Remember configuration only; :meth:`start` connects."""
        self._kafka = kafka
        self._topic = topic
        self._write_client = write_client
        self._on_directory = on_directory
        self._poll_ms = int(poll_timeout_s * 1000)
        self._retry_s = retry_s
        self._retry_at: float | None = None  # client rows to write again (ClickHouse was down)
        self._failing = False
        self._records: dict[bytes, tuple[int, bytes | None]] = {}
        self._written: dict[str, str] = {}  # client_id -> JSON last written to ClickHouse
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self.directory: ClientDirectory | None = None
        self.records_in = 0

    async def start(self) -> None:
        """Assign every partition of the topic from offset 0 and start following it."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            enable_auto_commit=False, client_id="shinrai-directory", **aiokafka_options(self._kafka)
        )
        await consumer.start()
        partitions = consumer.partitions_for_topic(self._topic) or {0}
        assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="shinrai-directory-follower")

    async def stop(self) -> None:
        """Stop following (nothing to flush or commit)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await stop_consumer(consumer, name="directory-follower")

    async def _run(self) -> None:
        consumer = self._consumer
        while True:
            batch = await consumer.getmany(timeout_ms=self._poll_ms)
            if not batch:
                if self._retry_at is not None and time.monotonic() >= self._retry_at:
                    await self._apply()
                continue
            for messages in batch.values():
                for message in messages:
                    if message.key is not None:
                        self._records[message.key] = (message.offset, message.value)
                        self.records_in += 1
            await self._apply()

    async def _apply(self) -> None:
        latest = [(key, value) for key, (_, value) in self._records.items()]
        try:
            directory = directory_from_records(latest)
        except ShinraiError as exc:
            log.error("directory_record_invalid", error=str(exc)[:500])
            return
        self.directory = directory
        if self._on_directory is not None:
            self._on_directory(directory)
        if self._write_client is None:
            return
        self._retry_at = None
        for client in directory.clients:
            as_json = client.model_dump_json()
            if self._written.get(client.client_id) == as_json:
                continue
            offset = self._records[client.client_id.encode()][0]
            try:
                await self._write_client(client, offset)
            except ShinraiError as exc:  # the sink is down: retried in a few seconds
                if not self._failing:  # one line when writes start failing, not per retry
                    log.warning(
                        "directory_client_write_failed",
                        client=client.client_id,
                        error=str(exc)[:300],
                        retry_s=self._retry_s,
                    )
                self._failing = True
                self._retry_at = time.monotonic() + self._retry_s
                return  # the rest would fail alike
            self._written[client.client_id] = as_json
        if self._failing:
            log.info("directory_clients_written", clients=len(self._written))
            self._failing = False
