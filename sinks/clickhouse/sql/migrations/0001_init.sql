-- 0001: base tables, rollups and the materialized views that feed them.
--
-- Conventions (see deploy/clickhouse/README.md):
--   * `{db}` is replaced by the runner with the quoted target database; nothing else is templated,
--     so this file runs unchanged on chdb and on a ClickHouse server.
--   * Statements end with `;` at the end of a line; the runner executes them one at a time.
--   * Every MergeTree table, materialized-view targets included, sets
--     non_replicated_deduplication_window so an insert re-sent with the same
--     insert_deduplication_token is dropped (and, with
--     deduplicate_blocks_in_dependent_materialized_views=1, so is its rollup contribution).
--   * Base tables are not partitioned: one sink flush is one part, so a flush is atomic and the
--     sink can trust max(offset) per (topic, partition) as its replay high-water mark.
--   * Timestamps are DateTime64(6, 'UTC') (microseconds survive a round trip).

-- Raw interaction events (never a body). Source position: offset -1 when unknown.
CREATE TABLE IF NOT EXISTS {db}.interactions
(
    event_id String,
    channel LowCardinality(String),
    kind LowCardinality(String),
    direction LowCardinality(String),
    occurred_at DateTime64(6, 'UTC'),
    recorded_at DateTime64(6, 'UTC'),
    client_id String COMMENT 'empty string when the counterpart is unknown',
    thread_key Nullable(String),
    counterpart Nullable(String),
    staff Nullable(String),
    flags Array(LowCardinality(String)),
    call_outcome LowCardinality(Nullable(String)),
    duration_seconds Nullable(Float64),
    wait_seconds Nullable(Float64),
    source LowCardinality(String),
    subject Nullable(String),
    schema_version UInt16,
    topic LowCardinality(String),
    partition Int32,
    offset Int64
)
ENGINE = ReplacingMergeTree
ORDER BY (client_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- The SLA fact stream: every schemas.facts.Fact field, plus the source position and, for
-- RETRACTED facts, a copy of what the retracted fact contributed to the rollups (the sink looks
-- it up) so the rollup view can subtract it from the right day/channel bucket.
CREATE TABLE IF NOT EXISTS {db}.sla_facts
(
    fact_id String,
    kind LowCardinality(String),
    client_id String,
    at DateTime64(6, 'UTC'),
    policy_id LowCardinality(String),
    policy_version UInt32,
    obligation_id Nullable(String),
    obligation_kind LowCardinality(Nullable(String)),
    thread_key Nullable(String),
    channel LowCardinality(Nullable(String)),
    source_event_id Nullable(String),
    opened_at Nullable(DateTime64(6, 'UTC')),
    deadline Nullable(DateTime64(6, 'UTC')),
    fulfilled_at Nullable(DateTime64(6, 'UTC')),
    fulfilled_by_channel LowCardinality(Nullable(String)),
    outcome LowCardinality(Nullable(String)),
    warning_fraction Nullable(Float64),
    business_seconds Nullable(Float64),
    calendar_seconds Nullable(Float64),
    target_business_seconds Nullable(Float64),
    overage_business_seconds Nullable(Float64),
    overage_calendar_seconds Nullable(Float64),
    call_outcome LowCardinality(Nullable(String)),
    wait_seconds Nullable(Float64),
    answered_within_target Nullable(Bool),
    trust_from LowCardinality(Nullable(String)),
    trust_to LowCardinality(Nullable(String)),
    reason Nullable(String),
    retracts Nullable(String),
    schema_version UInt16,
    retracted_kind LowCardinality(String) COMMENT 'RETRACTED only: kind of the retracted fact',
    retracted_at Nullable(DateTime64(6, 'UTC')),
    retracted_channel LowCardinality(Nullable(String)),
    retracted_outcome LowCardinality(Nullable(String)) COMMENT 'outcome, or call_outcome for calls',
    retracted_within Nullable(Bool),
    topic LowCardinality(String),
    partition Int32,
    offset Int64
)
ENGINE = ReplacingMergeTree
ORDER BY (client_id, fact_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per obligation, latest state (read with FINAL). version = the offset of the fact
-- that produced the row (all of one client's facts share a partition, so offsets order them).
CREATE TABLE IF NOT EXISTS {db}.obligations
(
    obligation_id String,
    client_id String,
    thread_key Nullable(String),
    kind LowCardinality(String),
    channel LowCardinality(Nullable(String)),
    opened_at DateTime64(6, 'UTC'),
    deadline Nullable(DateTime64(6, 'UTC')),
    status LowCardinality(String) COMMENT 'open, met, met_late, breached, waived, retracted',
    fulfilled_at Nullable(DateTime64(6, 'UTC')),
    fulfilled_by_channel LowCardinality(Nullable(String)),
    business_seconds Nullable(Float64),
    calendar_seconds Nullable(Float64),
    overage_business_seconds Nullable(Float64),
    policy_id LowCardinality(String),
    policy_version UInt32,
    opened_fact_id String,
    status_fact_id String,
    updated_at DateTime64(6, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (client_id, obligation_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Client directory (for owner/escalation joins); latest version wins.
CREATE TABLE IF NOT EXISTS {db}.clients
(
    client_id String,
    name String,
    owner String,
    escalation_contact Nullable(String),
    policy_id LowCardinality(String),
    calendar_id LowCardinality(String),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY client_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Alert webhook delivery log (written by the alert hooks through the sink).
CREATE TABLE IF NOT EXISTS {db}.alert_deliveries
(
    alert_id String,
    attempt UInt32,
    at DateTime64(3, 'UTC'),
    target String,
    status_code Nullable(UInt16),
    outcome LowCardinality(String) COMMENT 'delivered, retry, failed, dead_letter',
    error String,
    latency_ms Float64,
    topic LowCardinality(String),
    partition Int32,
    offset Int64
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_id, target, attempt)
SETTINGS non_replicated_deduplication_window = 1000;

-- Trust ladder history, fed from TRUST_CHANGED facts.
CREATE TABLE IF NOT EXISTS {db}.trust_history
(
    client_id String,
    at DateTime64(6, 'UTC'),
    fact_id String,
    trust_from LowCardinality(Nullable(String)),
    trust_to LowCardinality(Nullable(String)),
    reason Nullable(String),
    policy_version UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (client_id, at, fact_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.trust_history_mv TO {db}.trust_history AS
SELECT client_id, at, fact_id, trust_from, trust_to, reason, policy_version
FROM {db}.sla_facts
WHERE kind = 'trust_changed';

-- Per client, per UTC day, per channel: SLA counters and quantile states. Counters are signed:
-- a RETRACTED fact subtracts one from the counter its retracted fact incremented, in that
-- fact's day and channel. Quantile states cannot subtract: a retracted FULFILLED or
-- SPEED_OF_ANSWER sample stays in the state (see README, "Retractions").
CREATE TABLE IF NOT EXISTS {db}.client_daily
(
    client_id String,
    day Date,
    channel LowCardinality(String),
    opened SimpleAggregateFunction(sum, Int64),
    met SimpleAggregateFunction(sum, Int64),
    met_late SimpleAggregateFunction(sum, Int64),
    breached SimpleAggregateFunction(sum, Int64),
    waived SimpleAggregateFunction(sum, Int64),
    warnings SimpleAggregateFunction(sum, Int64),
    calls SimpleAggregateFunction(sum, Int64),
    answered SimpleAggregateFunction(sum, Int64),
    answered_within_target SimpleAggregateFunction(sum, Int64),
    abandoned SimpleAggregateFunction(sum, Int64),
    missed SimpleAggregateFunction(sum, Int64),
    silences SimpleAggregateFunction(sum, Int64),
    last_silence_at SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    response_business_q AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64),
    response_calendar_q AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64),
    answer_wait_q AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64),
    abandon_wait_q AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
ORDER BY (client_id, day, channel)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.client_daily_mv TO {db}.client_daily AS
SELECT
    client_id,
    day,
    channel,
    sumIf(sign, ek = 'obligation_opened') AS opened,
    sumIf(sign, ek = 'fulfilled' AND eo = 'met') AS met,
    sumIf(sign, ek = 'fulfilled' AND eo = 'met_late') AS met_late,
    sumIf(sign, ek = 'breached') AS breached,
    sumIf(sign, ek = 'waived') AS waived,
    sumIf(sign, ek = 'warning') AS warnings,
    sumIf(sign, ek = 'speed_of_answer') AS calls,
    sumIf(sign, ek = 'speed_of_answer' AND eo = 'answered') AS answered,
    sumIf(sign, ek = 'speed_of_answer' AND ew) AS answered_within_target,
    sumIf(sign, ek = 'speed_of_answer' AND eo = 'abandoned') AS abandoned,
    sumIf(sign, ek = 'speed_of_answer' AND eo = 'missed') AS missed,
    sumIf(sign, ek = 'silence') AS silences,
    maxIf(at, kind = 'silence') AS last_silence_at,
    quantilesStateIf(0.5, 0.9, 0.99)(ifNull(business_seconds, 0),
        kind = 'fulfilled' AND business_seconds IS NOT NULL) AS response_business_q,
    quantilesStateIf(0.5, 0.9, 0.99)(ifNull(calendar_seconds, 0),
        kind = 'fulfilled' AND calendar_seconds IS NOT NULL) AS response_calendar_q,
    quantilesStateIf(0.5, 0.9, 0.99)(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'answered' AND wait_seconds IS NOT NULL)
        AS answer_wait_q,
    quantilesStateIf(0.5, 0.9, 0.99)(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'abandoned' AND wait_seconds IS NOT NULL)
        AS abandon_wait_q
FROM
(
    SELECT
        client_id,
        kind,
        at,
        business_seconds,
        calendar_seconds,
        wait_seconds,
        call_outcome,
        if(kind = 'retracted', -1, 1) AS sign,
        if(kind = 'retracted', retracted_kind, kind) AS ek,
        toDate(if(kind = 'retracted', ifNull(retracted_at, at), at)) AS day,
        ifNull(if(kind = 'retracted', retracted_channel, channel), '') AS channel,
        ifNull(if(kind = 'retracted', retracted_outcome,
            if(kind = 'speed_of_answer', call_outcome, outcome)), '') AS eo,
        ifNull(if(kind = 'retracted', retracted_within, answered_within_target), false) AS ew
    FROM {db}.sla_facts
)
GROUP BY client_id, day, channel;

-- Per client, per UTC day, per channel and direction: interaction counts (channel mix) and the
-- latest interaction instant (silence list).
CREATE TABLE IF NOT EXISTS {db}.interaction_daily
(
    client_id String,
    day Date,
    channel LowCardinality(String),
    direction LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    last_at SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (client_id, day, channel, direction)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.interaction_daily_mv TO {db}.interaction_daily AS
SELECT
    client_id,
    toDate(occurred_at) AS day,
    channel,
    direction,
    count() AS events,
    max(occurred_at) AS last_at
FROM {db}.interactions
GROUP BY client_id, day, channel, direction;
