-- Every client's trust level at `now`: the target of its latest TRUST_CHANGED fact at or before
-- `now` (ties on the instant broken by fact_id), with when it was reached. Clients whose trust
-- never moved are absent (they are at the start level, assured).
-- Parameters: now DateTime64(6, 'UTC').
SELECT
    client_id,
    argMax(trust_to, (at, fact_id)) AS trust_level,
    argMax(trust_from, (at, fact_id)) AS previous_level,
    max(at) AS since,
    count() AS changes
FROM trust_history FINAL
WHERE at <= {now:DateTime64(6, 'UTC')}
GROUP BY client_id
ORDER BY client_id
