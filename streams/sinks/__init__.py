"""Sink runners: plain aiokafka consumers that move topic records into the sinks.

Each runner has its own consumer group (never the Faust app's), commits offsets by hand and only
after its sink made the records durable: ``clickhouse_runner`` (facts and raw interactions into
ClickHouse) and ``alert_runner`` (alerts to webhooks).
"""
