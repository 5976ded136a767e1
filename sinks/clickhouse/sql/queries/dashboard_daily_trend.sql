-- All clients, per UTC day in [since, until): obligations opened, answered on time, answered
-- late, breaches, warnings, calls and abandoned calls, attainment (met / (met + breached), NULL
-- when nothing was due) and the median and p90 business response time of that day's answers.
-- Days without any fact are absent. Parameters: since Date, until Date.
SELECT
    day,
    opened,
    met,
    met_late,
    breached,
    warnings,
    calls,
    abandoned,
    if(met + breached = 0, NULL, met / (met + breached)) AS attainment,
    if(isNaN(q[1]), NULL, q[1]) AS p50_business_seconds,
    if(isNaN(q[2]), NULL, q[2]) AS p90_business_seconds
FROM
(
    SELECT
        day,
        sum(opened) AS opened,
        sum(met) AS met,
        sum(met_late) AS met_late,
        sum(breached) AS breached,
        sum(warnings) AS warnings,
        sum(calls) AS calls,
        sum(abandoned) AS abandoned,
        quantilesExactInclusiveArray(0.5, 0.9, 0.99)(response_business_q) AS q
    FROM sla_daily
    WHERE day >= {since:Date} AND day < {until:Date}
    GROUP BY day
)
ORDER BY day
