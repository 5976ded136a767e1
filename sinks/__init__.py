"""Sinks: the ClickHouse writer and the alert hooks (setup, add, flush; no I/O in constructors)."""
