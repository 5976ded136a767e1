-- One client's obligations opened in [since, now] or still owed at `now`, latest state, soonest
-- deadline first: kind, channel, status (open, met, met_late, breached, waived), opened, deadline,
-- answered at, business seconds taken and the seconds left until the deadline (negative once
-- overdue). Retracted obligations are left out. At most 1000.
-- Parameters: client_id String, since DateTime64(6, 'UTC'), now DateTime64(6, 'UTC').
SELECT
    obligation_id,
    kind,
    channel,
    thread_key,
    status,
    opened_at,
    deadline,
    fulfilled_at,
    business_seconds,
    dateDiff('microsecond', {now:DateTime64(6, 'UTC')}, deadline) / 1000000 AS seconds_left
FROM obligations FINAL
WHERE client_id = {client_id:String}
    AND opened_at <= {now:DateTime64(6, 'UTC')}
    AND (opened_at >= {since:DateTime64(6, 'UTC')} OR status IN ('open', 'breached'))
    AND status != 'retracted'
ORDER BY deadline, obligation_id
LIMIT 1000
