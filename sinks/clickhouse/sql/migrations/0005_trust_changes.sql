-- 0005: trust_changes, the trust ladder history with corrections applied.
--
-- Why: trust_history (0001) keeps every TRUST_CHANGED fact. When late data retracts a breach,
-- the engine also retracts the trust change that breach caused (a RETRACTED fact whose
-- `retracts` names it) and stamps the corrected change after it; trust_history cannot drop the
-- retracted row, so "the latest change by time" kept showing the superseded level.
--
-- How: one row per trust change, keyed like trust_history (client_id, at, fact_id). A retraction
-- writes a row with the same key (the sink resolves the retracted fact's `at` into
-- sla_facts.retracted_at) and retracted = 1; ReplacingMergeTree(retracted) keeps that row over
-- the original whatever the insert order, so `FINAL ... WHERE retracted = 0` holds the changes
-- still standing. The engine stamps a client's trust changes at strictly increasing instants,
-- so the latest standing one is unique. trust_history stays as it was (raw history).
--
-- Rebuild: from sla_facts, before the view exists, with a fixed insert_deduplication_token, so
-- a re-run does not write twice. Run migrations before starting writers (the sink does).

CREATE TABLE IF NOT EXISTS {db}.trust_changes
(
    client_id String,
    at DateTime64(6, 'UTC'),
    fact_id String,
    trust_from LowCardinality(Nullable(String)),
    trust_to LowCardinality(Nullable(String)),
    reason Nullable(String),
    policy_version UInt32,
    retracted UInt8 COMMENT '1: a later fact retracted this change (wins over the change in FINAL)'
)
ENGINE = ReplacingMergeTree(retracted)
ORDER BY (client_id, at, fact_id)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO {db}.trust_changes
SELECT client_id,
    if(kind = 'retracted', assumeNotNull(retracted_at), at) AS at,
    if(kind = 'retracted', assumeNotNull(retracts), fact_id) AS fact_id,
    trust_from, trust_to, reason, policy_version,
    toUInt8(kind = 'retracted') AS retracted
FROM {db}.sla_facts
WHERE kind = 'trust_changed'
    OR (kind = 'retracted' AND retracted_kind = 'trust_changed' AND retracted_at IS NOT NULL
        AND retracts IS NOT NULL)
ORDER BY client_id, at, fact_id, retracted
SETTINGS insert_deduplication_token = '0005-rebuild-trust_changes', max_threads = 1,
    max_insert_threads = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.trust_changes_mv TO {db}.trust_changes AS
SELECT client_id,
    if(kind = 'retracted', assumeNotNull(retracted_at), at) AS at,
    if(kind = 'retracted', assumeNotNull(retracts), fact_id) AS fact_id,
    trust_from, trust_to, reason, policy_version,
    toUInt8(kind = 'retracted') AS retracted
FROM {db}.sla_facts
WHERE kind = 'trust_changed'
    OR (kind = 'retracted' AND retracted_kind = 'trust_changed' AND retracted_at IS NOT NULL
        AND retracts IS NOT NULL);
