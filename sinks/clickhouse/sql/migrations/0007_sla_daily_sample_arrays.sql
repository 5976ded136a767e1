-- 0007: sla_daily keeps its quantile samples as plain arrays instead of quantile states.
--
-- Why (bench/sink.py --ceiling, docs/benchmarks.md, 2026-12-07 19:40): sla_daily_mv was most of
-- what the views add to a sla_facts insert, and half of that was building and writing the four
-- quantilesExactInclusive states per (day, client, channel) group. A quantilesExactInclusive
-- state is every sample of its group; an array of the same samples holds exactly what it holds,
-- costs ~40% less to build and write (groupArrayIf, Array(Float64) columns), and
-- merges by concatenation (SimpleAggregateFunction(groupArrayArray)). Readers use
-- quantilesExactInclusiveArray(0.5, 0.9, 0.99)(column) where they used
-- quantilesExactInclusiveMerge(0.5, 0.9, 0.99)(column): the same sorted samples, the same
-- interpolation, the same numbers (NaN for a group without samples, as before). The counters
-- and their retraction rules are unchanged.
--
-- How: a new table built from `sla_facts FINAL` (the base table is the truth), then swapped in
-- under the old name. The view is dropped BEFORE the rebuild and created AFTER the swap, so a
-- record is never counted twice; run migrations before starting writers (the sink does it in
-- setup). A run that died half-way is finished by the next run: the rebuild carries a fixed
-- insert_deduplication_token (a re-run into the same new table writes nothing), and a re-run
-- after the swap builds a fresh new table from the base table again before replacing.

CREATE TABLE IF NOT EXISTS {db}.sla_daily_0007
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
    response_business_q SimpleAggregateFunction(groupArrayArray, Array(Float64))
        COMMENT 'business seconds of each FULFILLED fact (quantilesExactInclusiveArray)',
    response_calendar_q SimpleAggregateFunction(groupArrayArray, Array(Float64))
        COMMENT 'calendar seconds of each FULFILLED fact',
    answer_wait_q SimpleAggregateFunction(groupArrayArray, Array(Float64))
        COMMENT 'wait seconds of each answered call',
    abandon_wait_q SimpleAggregateFunction(groupArrayArray, Array(Float64))
        COMMENT 'wait seconds of each abandoned call'
)
ENGINE = AggregatingMergeTree
ORDER BY (day, client_id, channel)
SETTINGS non_replicated_deduplication_window = 1000;

DROP VIEW IF EXISTS {db}.sla_daily_mv;

INSERT INTO {db}.sla_daily_0007
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
    groupArrayIf(ifNull(business_seconds, 0),
        kind = 'fulfilled' AND business_seconds IS NOT NULL) AS response_business_q,
    groupArrayIf(ifNull(calendar_seconds, 0),
        kind = 'fulfilled' AND calendar_seconds IS NOT NULL) AS response_calendar_q,
    groupArrayIf(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'answered' AND wait_seconds IS NOT NULL)
        AS answer_wait_q,
    groupArrayIf(ifNull(wait_seconds, 0),
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
SETTINGS insert_deduplication_token = '0007-rebuild-sla_daily', max_threads = 1,
    max_insert_threads = 1;

DROP TABLE IF EXISTS {db}.sla_daily;

RENAME TABLE {db}.sla_daily_0007 TO {db}.sla_daily;

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
    groupArrayIf(ifNull(business_seconds, 0),
        kind = 'fulfilled' AND business_seconds IS NOT NULL) AS response_business_q,
    groupArrayIf(ifNull(calendar_seconds, 0),
        kind = 'fulfilled' AND calendar_seconds IS NOT NULL) AS response_calendar_q,
    groupArrayIf(ifNull(wait_seconds, 0),
        kind = 'speed_of_answer' AND call_outcome = 'answered' AND wait_seconds IS NOT NULL)
        AS answer_wait_q,
    groupArrayIf(ifNull(wait_seconds, 0),
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
