-- The target the client's chases suggest (issue 19 item 3): its latest TARGET_SUGGESTED fact at
-- or before `now` (the engine emits one when the suggested value changes; see engine/chase.py):
-- the suggested first-response target and the median wait at chase, in business seconds, with
-- the reason. Advice for the owner: nothing changes until a directory policy change accepts it.
-- Parameters: client_id String, now DateTime64(6, 'UTC').
SELECT
    at,
    target_business_seconds AS suggested_business_seconds,
    business_seconds AS median_wait_business_seconds,
    policy_id,
    policy_version,
    reason
FROM sla_facts FINAL
WHERE client_id = {client_id:String}
    AND kind = 'target_suggested'
    AND at <= {now:DateTime64(6, 'UTC')}
ORDER BY at DESC, fact_id
LIMIT 1
