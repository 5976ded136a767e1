-- Per-client phone figures over the UTC days [since, until): inbound calls (one
-- SPEED_OF_ANSWER fact each), answered, answered within the policy's answer target, abandoned,
-- missed, answer rate (answered / calls), abandonment rate (abandoned / calls) and the median
-- and p90 wait of answered calls in seconds (NULL when none). Clients without calls are absent.
-- Parameters: since Date, until Date.
SELECT
    client_id,
    calls,
    answered,
    within_target,
    abandoned,
    missed,
    answered / calls AS answer_rate,
    abandoned / calls AS abandon_rate,
    if(isNaN(q[1]), NULL, q[1]) AS p50_answer_wait_seconds,
    if(isNaN(q[2]), NULL, q[2]) AS p90_answer_wait_seconds
FROM
(
    SELECT
        client_id,
        sum(calls) AS calls,
        sum(answered) AS answered,
        sum(answered_within_target) AS within_target,
        sum(abandoned) AS abandoned,
        sum(missed) AS missed,
        quantilesExactInclusiveArray(0.5, 0.9, 0.99)(answer_wait_q) AS q
    FROM sla_daily
    WHERE day >= {since:Date} AND day < {until:Date}
    GROUP BY client_id
    HAVING calls > 0
)
ORDER BY client_id
