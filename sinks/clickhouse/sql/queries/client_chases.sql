-- The evidence behind a client's observed standard: its chases still standing in [since, now],
-- newest first (at most 50): when, how (chase kind and channel), which obligation, how long the
-- client had waited (calendar and business seconds) and whether our deadline had passed.
-- Parameters: client_id String, since DateTime64(6, 'UTC'), now DateTime64(6, 'UTC').
SELECT
    at,
    obligation_id,
    obligation_kind,
    chase_kind,
    channel,
    source_event_id,
    waited_calendar_seconds,
    waited_business_seconds,
    target_business_seconds,
    deadline,
    deadline_passed
FROM client_chases FINAL
WHERE retracted = 0
    AND client_id = {client_id:String}
    AND at >= {since:DateTime64(6, 'UTC')}
    AND at <= {now:DateTime64(6, 'UTC')}
ORDER BY at DESC, fact_id
LIMIT 50
