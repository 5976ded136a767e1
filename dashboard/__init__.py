"""The built-in dashboard: a Starlette app rendering the named ClickHouse queries as HTML + SVG.

Server-side rendered, no external scripts, styles or fonts, so it works offline. Every number on
the page comes from ``sinks/clickhouse/sql/queries/*.sql`` through ``run_query``; ``/api/<query>``
serves the same rows as JSON.
"""

from dashboard.app import create_app

__all__ = ["create_app"]
