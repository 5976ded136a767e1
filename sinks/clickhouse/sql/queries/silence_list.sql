-- Clients in silence at `now`: their latest SILENCE fact is later than their last outbound
-- interaction (nothing sent since the engine flagged the silence). Longest silence first.
-- Day resolution: rollup rows of days after `now`'s UTC day are ignored, those of that day count.
-- Reads client_activity only (per client and day: silences, latest silence, latest outbound).
-- Parameters: now DateTime64(6, 'UTC').
SELECT
    a.client_id AS client_id,
    c.name AS client_name,
    c.owner AS owner,
    a.last_silence_at AS last_silence_at,
    a.last_outbound_at AS last_outbound_at,
    dateDiff('second', a.last_outbound_at, {now:DateTime64(6, 'UTC')}) / 86400
        AS days_since_outbound
FROM
(
    SELECT
        client_id,
        sum(silences) AS silences,
        max(last_silence_at) AS last_silence_at,
        max(last_outbound_at) AS last_outbound_at
    FROM client_activity
    WHERE day <= toDate({now:DateTime64(6, 'UTC')})
    GROUP BY client_id
    HAVING silences > 0 AND (last_outbound_at IS NULL OR last_outbound_at < last_silence_at)
) AS a
LEFT JOIN
(
    SELECT client_id, name, owner FROM clients FINAL
) AS c ON c.client_id = a.client_id
ORDER BY last_outbound_at ASC NULLS FIRST, client_id
