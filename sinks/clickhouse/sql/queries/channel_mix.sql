-- Interactions per client and channel over the UTC days [since, until): inbound, outbound,
-- total and the channel's share of the client's total. Unresolved clients ('') are left out.
-- Whole calendar months inside the range come from interactions_monthly, the days of partial
-- months at either end from interactions_daily (each day is counted by exactly one side).
-- The days side is written as ranges of `day` (before the first whole month, from the end of
-- the last one), so the primary key skips the whole months instead of reading and discarding
-- them; when no whole month fits, the two ranges cover every day of [since, until) (once).
-- `month < until` is implied by the line after it; it is there for the primary key.
-- Parameters: since Date, until Date.
SELECT
    client_id,
    channel,
    sumIf(events, direction = 'inbound') AS inbound,
    sumIf(events, direction = 'outbound') AS outbound,
    sum(events) AS total,
    total / sum(total) OVER (PARTITION BY client_id) AS share
FROM
(
    SELECT client_id, channel, direction, events
    FROM interactions_monthly
    WHERE month >= {since:Date} AND month < {until:Date} AND addMonths(month, 1) <= {until:Date}
    UNION ALL
    SELECT client_id, channel, direction, events
    FROM interactions_daily
    WHERE day >= {since:Date} AND day < {until:Date}
        AND (day < if(toDayOfMonth({since:Date}) = 1, {since:Date},
                addMonths(toStartOfMonth({since:Date}), 1))
            OR day >= toStartOfMonth({until:Date}))
)
WHERE client_id != ''
GROUP BY client_id, channel
ORDER BY client_id, channel
