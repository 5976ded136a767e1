-- Interactions per client and channel over the UTC days [since, until): inbound, outbound,
-- total and the channel's share of the client's total. Unresolved clients ('') are left out.
-- Parameters: since Date, until Date.
SELECT
    client_id,
    channel,
    sumIf(events, direction = 'inbound') AS inbound,
    sumIf(events, direction = 'outbound') AS outbound,
    sum(events) AS total,
    total / sum(total) OVER (PARTITION BY client_id) AS share
FROM interactions_daily
WHERE day >= {since:Date} AND day < {until:Date} AND client_id != ''
GROUP BY client_id, channel
ORDER BY client_id, channel
