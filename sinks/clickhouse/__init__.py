"""ClickHouse storage: connection by URL, migrations, the batched idempotent sink, named queries.

Heavy imports (clickhouse_connect, chdb, pyarrow) happen inside the modules that need them, so
importing this package stays cheap.
"""
