"""Stop an aiokafka consumer without letting a broker outage hang or cancel the caller.

With the broker gone, ``AIOKafkaConsumer.stop()`` cancels the fetcher's pending fetch (which
is sleeping between retries) and then awaits it, so the cancellation of aiokafka's own task
comes out of ``stop()`` as a ``CancelledError``. Raised through a worker's shutdown, it skipped
every later step (the Faust app was never stopped) and ended the demo's main task as if it
had been cancelled; asyncio then waited forever for the Faust agents their supervisors kept
restarting (the demo that outlived its ``--duration`` and SIGTERM with the broker down).
"""

from __future__ import annotations

import asyncio
from typing import Any

from shinrai.logging import get_logger

__all__ = ["stop_consumer"]

log = get_logger("sinks.consumer_stop")


async def stop_consumer(consumer: Any, *, name: str, timeout_s: float = 5.0) -> None:
    """``consumer.stop()``, bounded by ``timeout_s``; aiokafka's own cancellation swallowed.

    The caller's own cancellation still propagates. A stop that takes longer is left to finish
    in the background (logged): the caller's shutdown goes on.
    """
    stopping = asyncio.ensure_future(consumer.stop())
    try:
        done, _ = await asyncio.wait({stopping}, timeout=timeout_s)
    except asyncio.CancelledError:
        stopping.cancel()
        raise
    if not done:
        log.warning("consumer_stop_slow", consumer=name, seconds=timeout_s)
        return
    try:
        stopping.result()
    except asyncio.CancelledError:  # aiokafka's fetch task, not us (see the module docstring)
        log.info("consumer_stop_interrupted_fetch", consumer=name)
    except Exception as exc:  # a connection error while leaving: nothing left to do
        log.warning("consumer_stop_failed", consumer=name, error=str(exc))
