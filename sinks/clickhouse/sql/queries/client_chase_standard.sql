-- The client's observed standard (issue 19): the waiting time at which it chases us, from every
-- chase still standing up to `now` (client_chases, 0006): how many, how many came before our
-- deadline, the median and the 10th percentile of the wait (calendar and business seconds), and
-- our median target for the obligations it chased (the policy's guess, to compare with).
-- One row per client that ever chased; client_id '' = every client.
-- Parameters: client_id String, now DateTime64(6, 'UTC').
SELECT
    client_id,
    count() AS chases,
    countIf(deadline_passed = 0) AS before_deadline,
    quantileExact(0.5)(waited_calendar_seconds) AS median_wait_seconds,
    quantileExact(0.1)(waited_calendar_seconds) AS p10_wait_seconds,
    quantileExact(0.5)(waited_business_seconds) AS median_wait_business_seconds,
    quantileExact(0.1)(waited_business_seconds) AS p10_wait_business_seconds,
    quantileExact(0.5)(target_business_seconds) AS median_target_business_seconds,
    max(at) AS last_chase_at
FROM client_chases FINAL
WHERE retracted = 0
    AND ({client_id:String} = '' OR client_id = {client_id:String})
    AND at <= {now:DateTime64(6, 'UTC')}
GROUP BY client_id
ORDER BY client_id
