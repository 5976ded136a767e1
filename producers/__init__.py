"""Ingestion edge: the Kafka producer, file importers (`shinrai produce`) and the HTTP gateway."""
