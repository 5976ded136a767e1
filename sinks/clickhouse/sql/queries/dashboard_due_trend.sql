-- Obligations by the day they fell due, in the team's time zone `tz` (not by the day they were
-- answered): for every obligation whose deadline is in [since, now], its outcome as of `now`:
-- met (answered by the deadline), met late (answered after it, by `now`), breached (still
-- unanswered at `now`), waived. attainment = met / (met + met_late + breached), NULL when
-- nothing fell due. Retracted obligations are left out; days without a deadline are absent.
-- `owner` / `client_id` narrow it to one owner's clients / one client ('' = all).
-- Reads `obligations FINAL` (each obligation's latest state).
-- Parameters: since DateTime64(6, 'UTC'), now DateTime64(6, 'UTC'), tz String, owner String,
-- client_id String.
SELECT
    toDate(deadline, {tz:String}) AS day,
    count() AS due,
    countIf(status = 'met' AND fulfilled_at <= {now:DateTime64(6, 'UTC')}) AS met,
    countIf(status = 'met_late' AND fulfilled_at <= {now:DateTime64(6, 'UTC')}) AS met_late,
    countIf(status = 'waived') AS waived,
    due - met - met_late - waived AS breached,
    if(due - waived = 0, NULL, met / (due - waived)) AS attainment
FROM obligations FINAL
WHERE deadline IS NOT NULL
    AND deadline >= {since:DateTime64(6, 'UTC')}
    AND deadline <= {now:DateTime64(6, 'UTC')}
    AND status != 'retracted'
    AND ({client_id:String} = '' OR client_id = {client_id:String})
    AND ({owner:String} = ''
        OR client_id IN (SELECT client_id FROM clients FINAL WHERE owner = {owner:String}))
GROUP BY day
ORDER BY day
