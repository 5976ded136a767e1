-- 0004: obligations_owed, the obligations still owed (open or breached), for open_obligations.
--
-- Why: open_obligations read `obligations FINAL` (every obligation ever, ~500k rows in the
-- bench) to learn each one's latest status, then sorted the owed ones (~125k) by deadline.
--
-- How it stays exact with the sink's writes (sinks/clickhouse/obligations.py): the sink writes
-- one `obligations` row per changed obligation per flush, version = the offset of the fact that
-- produced it, so an obligation's successive rows have increasing versions. The view copies
-- every row here with is_deleted = 1 when the status is no longer owed (met, met_late, waived,
-- retracted); ReplacingMergeTree(version, is_deleted) read with FINAL keeps each obligation's
-- newest row and drops it when it is deleted, so an answered obligation disappears from the
-- query at once, and a retraction that re-opens it (a newer row, owed again) brings it back.
-- The key must not change between an obligation's rows: opened_at is set when the obligation
-- opens and every later fact carries the same opened_at (engine/core.py `_fact`), and the id
-- never changes. Keying on opened_at first makes the query's `opened_at <= now` a key range;
-- partitions by month of opened_at hold all the rows of an obligation in one partition.
--
-- Storage: without cleanup the deleted rows stay (one per closed obligation). CLEANUP merges
-- remove them: a partition whose parts are all older than an hour is merged down to one part
-- and its deleted rows dropped (min_age_to_force_merge_*, ClickHouse's still-experimental
-- replacing-merge cleanup). That is safe here because a cleanup merge takes every part of the
-- partition (nothing older can resurface) and the sink never writes an obligation row older than
-- one it wrote before. FINAL is exact with or without cleanup; cleanup only makes it cheaper.
--
-- Rebuild: the latest state of each owed obligation from `obligations FINAL` (closed ones need
-- no row: nothing older sits here to delete), before the view exists, with a fixed
-- insert_deduplication_token and a sorted output, so a re-run does not write twice. Run
-- migrations before starting writers (the sink does it in setup).

CREATE TABLE IF NOT EXISTS {db}.obligations_owed
(
    opened_at DateTime64(6, 'UTC'),
    obligation_id String,
    client_id String,
    thread_key Nullable(String),
    kind LowCardinality(String),
    channel LowCardinality(Nullable(String)),
    status LowCardinality(String) COMMENT 'open or breached; anything else is is_deleted',
    deadline Nullable(DateTime64(6, 'UTC')),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (opened_at, obligation_id)
SETTINGS non_replicated_deduplication_window = 1000,
    allow_experimental_replacing_merge_with_cleanup = 1,
    enable_replacing_merge_with_cleanup_for_min_age_to_force_merge = 1,
    min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;

INSERT INTO {db}.obligations_owed
SELECT opened_at, obligation_id, client_id, thread_key, kind, channel, status, deadline, version,
    toUInt8(0) AS is_deleted
FROM {db}.obligations FINAL
WHERE status IN ('open', 'breached')
ORDER BY opened_at, obligation_id
SETTINGS insert_deduplication_token = '0004-rebuild-obligations_owed', max_threads = 1,
    max_insert_threads = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.obligations_owed_mv TO {db}.obligations_owed AS
SELECT opened_at, obligation_id, client_id, thread_key, kind, channel, status, deadline, version,
    toUInt8(status NOT IN ('open', 'breached')) AS is_deleted
FROM {db}.obligations;
