-- 0006: client_chases, every chase a client made (issue 19), with corrections applied.
--
-- Why: the client's own standard is the waiting time at which it asks again. The page and any
-- SQL client read it per client (median and a low percentile of the wait at chase, beside the
-- policy target) and list the chases as evidence; scanning sla_facts for one kind and
-- subtracting retractions on every read is what this table saves.
--
-- How: one row per CHASED fact, keyed (client_id, at, fact_id), with the wait in business and
-- calendar seconds, our target, whether our deadline had passed (overage set) and the chase
-- kind (the first word of the fact's reason, see engine/chase.py). A RETRACTED fact of a chase
-- (a late answer dated before it) writes a row with the same key (the sink resolves the
-- retracted fact's `at` into sla_facts.retracted_at) and retracted = 1;
-- ReplacingMergeTree(retracted) keeps that row over the chase whatever the insert order, so
-- `FINAL ... WHERE retracted = 0` holds the chases still standing (the trust_changes pattern).
--
-- Rebuild: from sla_facts, before the view exists, with a fixed insert_deduplication_token, so
-- a re-run does not write twice. Run migrations before starting writers (the sink does).

CREATE TABLE IF NOT EXISTS {db}.client_chases
(
    client_id String,
    at DateTime64(6, 'UTC'),
    fact_id String,
    obligation_id Nullable(String),
    obligation_kind LowCardinality(Nullable(String)),
    thread_key Nullable(String),
    channel LowCardinality(Nullable(String)),
    chase_kind LowCardinality(String),
    source_event_id Nullable(String),
    waited_business_seconds Nullable(Float64),
    waited_calendar_seconds Nullable(Float64),
    target_business_seconds Nullable(Float64),
    deadline Nullable(DateTime64(6, 'UTC')),
    deadline_passed UInt8,
    retracted UInt8 COMMENT '1: a later fact retracted this chase (wins over the chase in FINAL)'
)
ENGINE = ReplacingMergeTree(retracted)
ORDER BY (client_id, at, fact_id)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO {db}.client_chases
SELECT client_id,
    if(kind = 'retracted', assumeNotNull(retracted_at), at) AS at,
    if(kind = 'retracted', assumeNotNull(retracts), fact_id) AS fact_id,
    obligation_id, obligation_kind, thread_key, channel,
    if(kind = 'retracted', '', splitByChar(':', ifNull(reason, ''))[1]) AS chase_kind,
    source_event_id,
    business_seconds AS waited_business_seconds,
    calendar_seconds AS waited_calendar_seconds,
    target_business_seconds, deadline,
    toUInt8(overage_calendar_seconds IS NOT NULL) AS deadline_passed,
    toUInt8(kind = 'retracted') AS retracted
FROM {db}.sla_facts
WHERE kind = 'chased'
    OR (kind = 'retracted' AND retracted_kind = 'chased' AND retracted_at IS NOT NULL
        AND retracts IS NOT NULL)
ORDER BY client_id, at, fact_id, retracted
SETTINGS insert_deduplication_token = '0006-rebuild-client_chases', max_threads = 1,
    max_insert_threads = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.client_chases_mv TO {db}.client_chases AS
SELECT client_id,
    if(kind = 'retracted', assumeNotNull(retracted_at), at) AS at,
    if(kind = 'retracted', assumeNotNull(retracts), fact_id) AS fact_id,
    obligation_id, obligation_kind, thread_key, channel,
    if(kind = 'retracted', '', splitByChar(':', ifNull(reason, ''))[1]) AS chase_kind,
    source_event_id,
    business_seconds AS waited_business_seconds,
    calendar_seconds AS waited_calendar_seconds,
    target_business_seconds, deadline,
    toUInt8(overage_calendar_seconds IS NOT NULL) AS deadline_passed,
    toUInt8(kind = 'retracted') AS retracted
FROM {db}.sla_facts
WHERE kind = 'chased'
    OR (kind = 'retracted' AND retracted_kind = 'chased' AND retracted_at IS NOT NULL
        AND retracts IS NOT NULL);
