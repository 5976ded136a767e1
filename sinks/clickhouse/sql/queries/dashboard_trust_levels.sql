-- Every client's trust level at `now`: the target of its latest standing TRUST_CHANGED fact at
-- or before `now` (a change that late data retracted does not count: trust_changes, migration
-- 0005; a client's changes have strictly increasing instants, fact_id only breaks a tie), with
-- when it was reached. Clients whose trust never moved are absent (they are at the start level,
-- assured).
-- Parameters: now DateTime64(6, 'UTC').
SELECT
    client_id,
    argMax(trust_to, (at, fact_id)) AS trust_level,
    argMax(trust_from, (at, fact_id)) AS previous_level,
    max(at) AS since,
    count() AS changes
FROM trust_changes FINAL
WHERE at <= {now:DateTime64(6, 'UTC')} AND retracted = 0
GROUP BY client_id
ORDER BY client_id
