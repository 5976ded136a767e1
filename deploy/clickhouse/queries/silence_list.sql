-- Clients in silence at `now`: their latest SILENCE fact is later than their last outbound
-- interaction (nothing sent since the engine flagged the silence). Longest silence first.
-- Day resolution: rollup rows of days after `now`'s UTC day are ignored, those of that day count.
-- Parameters: now DateTime64(6, 'UTC').
SELECT
    s.client_id AS client_id,
    c.name AS client_name,
    c.owner AS owner,
    s.last_silence_at AS last_silence_at,
    if(o.client_id = '', NULL, o.last_outbound_at) AS last_outbound_at,
    if(o.client_id = '', NULL,
        dateDiff('second', o.last_outbound_at, {now:DateTime64(6, 'UTC')}) / 86400)
        AS days_since_outbound
FROM
(
    SELECT client_id, max(last_silence_at) AS last_silence_at, sum(silences) AS silences
    FROM client_daily
    WHERE day <= toDate({now:DateTime64(6, 'UTC')})
    GROUP BY client_id
    HAVING silences > 0
) AS s
LEFT JOIN
(
    SELECT client_id, max(last_at) AS last_outbound_at
    FROM interaction_daily
    WHERE direction = 'outbound' AND day <= toDate({now:DateTime64(6, 'UTC')})
    GROUP BY client_id
) AS o ON o.client_id = s.client_id
LEFT JOIN
(
    SELECT client_id, name, owner FROM clients FINAL
) AS c ON c.client_id = s.client_id
WHERE o.client_id = '' OR o.last_outbound_at < s.last_silence_at
ORDER BY last_outbound_at ASC NULLS FIRST, client_id
