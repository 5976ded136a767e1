-- Per-client SLA attainment and business response time over the UTC days [since, until).
-- Parameters: since Date, until Date.
-- attainment = met / (met + breached). A late answer is not added to the denominator again: its
-- obligation already counted once, as a breach at the deadline. NULL when nothing was due.
-- p50/p90 are over FULFILLED facts' business_seconds (NULL when there were none).
SELECT
    client_id,
    opened,
    met,
    met_late,
    breached,
    waived,
    if(met + breached = 0, NULL, met / (met + breached)) AS attainment,
    if(isNaN(q[1]), NULL, q[1]) AS p50_business_seconds,
    if(isNaN(q[2]), NULL, q[2]) AS p90_business_seconds
FROM
(
    SELECT
        client_id,
        sum(opened) AS opened,
        sum(met) AS met,
        sum(met_late) AS met_late,
        sum(breached) AS breached,
        sum(waived) AS waived,
        quantilesExactInclusiveArray(0.5, 0.9, 0.99)(response_business_q) AS q
    FROM sla_daily
    WHERE day >= {since:Date} AND day < {until:Date}
    GROUP BY client_id
)
ORDER BY client_id
