-- One client's timeline in [since, now], newest first (at most 300 entries): its interactions
-- (channel, kind, direction, staff) and its SLA facts (obligations opened, answered, warned,
-- breached, waived, silences, trust changes), leaving out facts a later correction retracted.
-- Parameters: client_id String, since DateTime64(6, 'UTC'), now DateTime64(6, 'UTC').
SELECT at, source, kind, channel, direction, staff, obligation_id, obligation_kind, outcome,
    warning_fraction, trust_to
FROM
(
    SELECT
        occurred_at AS at,
        'interaction' AS source,
        toString(kind) AS kind,
        toString(channel) AS channel,
        toString(direction) AS direction,
        staff,
        CAST(NULL AS Nullable(String)) AS obligation_id,
        CAST(NULL AS Nullable(String)) AS obligation_kind,
        CAST(NULL AS Nullable(String)) AS outcome,
        CAST(NULL AS Nullable(Float64)) AS warning_fraction,
        CAST(NULL AS Nullable(String)) AS trust_to
    FROM interactions FINAL
    WHERE client_id = {client_id:String}
        AND occurred_at >= {since:DateTime64(6, 'UTC')}
        AND occurred_at <= {now:DateTime64(6, 'UTC')}
    UNION ALL
    SELECT
        at,
        'fact' AS source,
        toString(kind) AS kind,
        toString(ifNull(channel, '')) AS channel,
        '' AS direction,
        CAST(NULL AS Nullable(String)) AS staff,
        obligation_id,
        CAST(obligation_kind AS Nullable(String)) AS obligation_kind,
        CAST(outcome AS Nullable(String)) AS outcome,
        warning_fraction,
        CAST(trust_to AS Nullable(String)) AS trust_to
    FROM sla_facts FINAL
    WHERE client_id = {client_id:String}
        AND kind IN ('obligation_opened', 'fulfilled', 'warning', 'breached', 'waived', 'silence',
            'trust_changed')
        AND at >= {since:DateTime64(6, 'UTC')}
        AND at <= {now:DateTime64(6, 'UTC')}
        AND fact_id NOT IN (
            SELECT retracts FROM sla_facts
            WHERE client_id = {client_id:String} AND kind = 'retracted' AND retracts IS NOT NULL
        )
)
ORDER BY at DESC, source, kind
LIMIT 300
