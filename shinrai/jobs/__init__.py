"""Jobs: the long-running compositions the CLI starts (worker, demo, backfill)."""
