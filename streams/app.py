"""Build the Faust app in one place, with no import-time side effects.

``build_app`` returns a configured ``faust.App``; agents are attached by the modules that own them
(``streams.agents``). Nothing connects until the app is started by a worker or a test.
"""

from __future__ import annotations

from typing import Any

from shinrai.kafka_options import faust_options
from shinrai.settings import Settings


def build_app(
    settings: Settings,
    *,
    app_id: str = "shinrai",
    store: str = "rocksdb://",
    datadir: str | None = None,
    **overrides: Any,
) -> Any:
    """A Faust app on the configured broker, authenticating as every other client does
    (``shinrai.kafka_options.faust_options``: broker URLs and TLS/SASL credentials).

    ``store`` is ``rocksdb://`` for workers (fast restart from local state + changelog) and
    ``memory://`` only in unit tests. JSON is the only codec: no pickle anywhere.
    """
    import faust

    options: dict[str, Any] = {
        **faust_options(settings.kafka),
        "store": store,
        "value_serializer": "raw",
        "key_serializer": "raw",
        "topic_partitions": settings.kafka.topic_partitions,
        "topic_replication_factor": settings.kafka.replication_factor,
        "web_enabled": False,
        "consumer_auto_offset_reset": "earliest",
    }
    if datadir is not None:
        options["datadir"] = datadir
    options.update(overrides)
    return faust.App(app_id, **options)
