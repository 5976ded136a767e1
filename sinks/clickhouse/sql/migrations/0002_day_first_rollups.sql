-- 0002: day-first rollups with exact quantile states, and a per-client activity rollup.
--
-- Why (bench/sink.py, bench/queries.py; numbers in deploy/clickhouse/README.md):
--   * Every dashboard reads a range of days. 0001's rollups are ordered by client_id first, so a
--     one-month query read (and, for client_daily, deserialized the quantile states of) every
--     row. The new rollups are ordered by day first: the primary key skips the other days.
--   * client_id is LowCardinality in the rollups: GROUP BY client_id hashes small integers.
--   * quantilesExactInclusive states (all samples, PERCENTILE.INC interpolation) replace
--     quantiles (reservoir sampler): ~2x cheaper to build per insert (the reservoir states were
--     most of the cost of an sla_facts insert), and exact at any sample count. The numbers are
--     the same as 0001's below 8192 samples per merged state (where the reservoir kept every
--     sample and interpolated the same way) and exact above.
--   * silence_list needed, per client, the latest silence and the latest outbound instant up to
--     a day; client_activity holds just that, ordered by client, fed only by SILENCE facts (and
--     their retractions) and outbound interactions.
--   * The 0001 views are dropped (an insert no longer pays for both generations) and their
--     tables are dropped after the new rollups were rebuilt from the base tables.
--
-- Rebuild: the new rollups are filled from `sla_facts FINAL` / `interactions FINAL` (the base
-- tables are the truth; FINAL also drops any duplicate row a rollup would have counted twice).
-- The 0001 views are dropped BEFORE the rebuild and the new views created AFTER it, so a record
-- is never counted by both; run migrations before starting writers (the sink does it in setup).
-- The rebuild inserts carry a fixed insert_deduplication_token and sort their output, so a run
-- that died after a rebuild and is re-run does not count twice.

CREATE TABLE IF NOT EXISTS {db}.sla_daily
(
    day Date,
    client_id LowCardinality(String),
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
    response_business_q AggregateFunction(quantilesExactInclusive(0.5, 0.9, 0.99), Float64),
    response_calendar_q AggregateFunction(quantilesExactInclusive(0.5, 0.9, 0.99), Float64),
    answer_wait_q AggregateFunction(quantilesExactInclusive(0.5, 0.9, 0.99), Float64),
    abandon_wait_q AggregateFunction(quantilesExactInclusive(0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, client_id, channel)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.interactions_daily
(
    day Date,
    client_id LowCardinality(String),
    channel LowCardinality(String),
    direction LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    last_at SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (day, client_id, channel, direction)
SETTINGS non_replicated_deduplication_window = 1000;

-- Per client and UTC day: SILENCE facts (signed like sla_daily: a retraction subtracts one in
-- the retracted fact's day), the latest silence instant (retractions ignored, as in sla_daily),
-- and the latest outbound interaction. NULL where the day had none.
CREATE TABLE IF NOT EXISTS {db}.client_activity
(
    client_id LowCardinality(String),
    day Date,
    silences SimpleAggregateFunction(sum, Int64),
    last_silence_at SimpleAggregateFunction(max, Nullable(DateTime64(6, 'UTC'))),
    last_outbound_at SimpleAggregateFunction(max, Nullable(DateTime64(6, 'UTC')))
)
ENGINE = AggregatingMergeTree
ORDER BY (client_id, day)
SETTINGS non_replicated_deduplication_window = 1000;

DROP VIEW IF EXISTS {db}.client_daily_mv;

DROP VIEW IF EXISTS {db}.interaction_daily_mv;

INSERT INTO {db}.sla_daily
SELECT
    day,
    client_id,
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
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(business_seconds, 0),
        kind = 'fulfilled' AND business_seconds IS NOT NULL) AS response_business_q,
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(calendar_seconds, 0),
        kind = 'fulfilled' AND calendar_seconds IS NOT NULL) AS response_calendar_q,
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'answered' AND wait_seconds IS NOT NULL)
        AS answer_wait_q,
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'abandoned' AND wait_seconds IS NOT NULL)
        AS abandon_wait_q
FROM
(
    SELECT
        toLowCardinality(client_id) AS client_id,
        kind,
        at,
        business_seconds,
        calendar_seconds,
        wait_seconds,
        call_outcome,
        if(kind = 'retracted', -1, 1) AS sign,
        if(kind = 'retracted', retracted_kind, kind) AS ek,
        toDate(if(kind = 'retracted', ifNull(retracted_at, at), at)) AS day,
        toLowCardinality(ifNull(if(kind = 'retracted', retracted_channel, channel), ''))
            AS channel,
        ifNull(if(kind = 'retracted', retracted_outcome,
            if(kind = 'speed_of_answer', call_outcome, outcome)), '') AS eo,
        ifNull(if(kind = 'retracted', retracted_within, answered_within_target), false) AS ew
    FROM {db}.sla_facts FINAL
)
GROUP BY day, client_id, channel
ORDER BY day, client_id, channel
SETTINGS insert_deduplication_token = '0002-rebuild-sla_daily', max_threads = 1,
    max_insert_threads = 1;

INSERT INTO {db}.interactions_daily
SELECT
    toDate(occurred_at) AS day,
    toLowCardinality(client_id) AS client_id,
    channel,
    direction,
    count() AS events,
    max(occurred_at) AS last_at
FROM {db}.interactions FINAL
GROUP BY day, client_id, channel, direction
ORDER BY day, client_id, channel, direction
SETTINGS insert_deduplication_token = '0002-rebuild-interactions_daily', max_threads = 1,
    max_insert_threads = 1;

INSERT INTO {db}.client_activity
SELECT client_id, day, sum(silences), max(last_silence_at), max(last_outbound_at)
FROM
(
    SELECT
        toLowCardinality(client_id) AS client_id,
        toDate(if(kind = 'retracted', ifNull(retracted_at, at), at)) AS day,
        if(kind = 'retracted', -1, 1) AS silences,
        if(kind = 'silence', toNullable(at), NULL) AS last_silence_at,
        CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS last_outbound_at
    FROM {db}.sla_facts FINAL
    WHERE kind = 'silence' OR (kind = 'retracted' AND retracted_kind = 'silence')
    UNION ALL
    SELECT
        toLowCardinality(client_id) AS client_id,
        toDate(occurred_at) AS day,
        0 AS silences,
        CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS last_silence_at,
        toNullable(occurred_at) AS last_outbound_at
    FROM {db}.interactions FINAL
    WHERE direction = 'outbound'
)
GROUP BY client_id, day
ORDER BY client_id, day
SETTINGS insert_deduplication_token = '0002-rebuild-client_activity', max_threads = 1,
    max_insert_threads = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sla_daily_mv TO {db}.sla_daily AS
SELECT
    day,
    client_id,
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
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(business_seconds, 0),
        kind = 'fulfilled' AND business_seconds IS NOT NULL) AS response_business_q,
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(calendar_seconds, 0),
        kind = 'fulfilled' AND calendar_seconds IS NOT NULL) AS response_calendar_q,
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'answered' AND wait_seconds IS NOT NULL)
        AS answer_wait_q,
    quantilesExactInclusiveStateIf(0.5, 0.9, 0.99)(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'abandoned' AND wait_seconds IS NOT NULL)
        AS abandon_wait_q
FROM
(
    SELECT
        toLowCardinality(client_id) AS client_id,
        kind,
        at,
        business_seconds,
        calendar_seconds,
        wait_seconds,
        call_outcome,
        if(kind = 'retracted', -1, 1) AS sign,
        if(kind = 'retracted', retracted_kind, kind) AS ek,
        toDate(if(kind = 'retracted', ifNull(retracted_at, at), at)) AS day,
        toLowCardinality(ifNull(if(kind = 'retracted', retracted_channel, channel), ''))
            AS channel,
        ifNull(if(kind = 'retracted', retracted_outcome,
            if(kind = 'speed_of_answer', call_outcome, outcome)), '') AS eo,
        ifNull(if(kind = 'retracted', retracted_within, answered_within_target), false) AS ew
    FROM {db}.sla_facts
)
GROUP BY day, client_id, channel;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.interactions_daily_mv TO {db}.interactions_daily AS
SELECT
    toDate(occurred_at) AS day,
    toLowCardinality(client_id) AS client_id,
    channel,
    direction,
    count() AS events,
    max(occurred_at) AS last_at
FROM {db}.interactions
GROUP BY day, client_id, channel, direction;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.client_activity_silence_mv TO {db}.client_activity AS
SELECT
    toLowCardinality(client_id) AS client_id,
    toDate(if(kind = 'retracted', ifNull(retracted_at, at), at)) AS day,
    sum(if(kind = 'retracted', -1, 1)) AS silences,
    maxIf(toNullable(at), kind = 'silence') AS last_silence_at,
    CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS last_outbound_at
FROM {db}.sla_facts
WHERE kind = 'silence' OR (kind = 'retracted' AND retracted_kind = 'silence')
GROUP BY client_id, day;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.client_activity_outbound_mv TO {db}.client_activity AS
SELECT
    toLowCardinality(client_id) AS client_id,
    toDate(occurred_at) AS day,
    toInt64(0) AS silences,
    CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS last_silence_at,
    max(toNullable(occurred_at)) AS last_outbound_at
FROM {db}.interactions
WHERE direction = 'outbound'
GROUP BY client_id, day;

DROP TABLE IF EXISTS {db}.client_daily;

DROP TABLE IF EXISTS {db}.interaction_daily;
