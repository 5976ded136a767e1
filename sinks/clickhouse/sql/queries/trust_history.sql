-- One client's trust-ladder changes in [since, until), oldest first.
-- Parameters: client_id String, since DateTime64(6, 'UTC'), until DateTime64(6, 'UTC').
SELECT client_id, at, trust_from, trust_to, reason, fact_id, policy_version
FROM trust_history FINAL
WHERE client_id = {client_id:String}
    AND at >= {since:DateTime64(6, 'UTC')}
    AND at < {until:DateTime64(6, 'UTC')}
ORDER BY at, fact_id
