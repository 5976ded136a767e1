-- One client's answered obligations in [since, now] (FULFILLED facts a correction did not
-- retract): the business seconds each answer took against the client's own target for that
-- obligation (its policy at the time), the ratio of the two, the obligation kind and outcome.
-- Parameters: client_id String, since DateTime64(6, 'UTC'), now DateTime64(6, 'UTC').
SELECT
    at,
    obligation_id,
    obligation_kind,
    outcome,
    business_seconds,
    target_business_seconds,
    if(ifNull(target_business_seconds, 0) > 0, business_seconds / target_business_seconds, NULL)
        AS ratio
FROM sla_facts FINAL
WHERE client_id = {client_id:String}
    AND kind = 'fulfilled'
    AND business_seconds IS NOT NULL
    AND at >= {since:DateTime64(6, 'UTC')}
    AND at <= {now:DateTime64(6, 'UTC')}
    AND fact_id NOT IN (
        SELECT retracts FROM sla_facts
        WHERE client_id = {client_id:String} AND kind = 'retracted' AND retracts IS NOT NULL
    )
ORDER BY at, obligation_id
