-- One client's trust-ladder changes in [since, until), oldest first, corrections applied: a
-- change that late data retracted is left out (trust_changes, migration 0005). A client's
-- changes have strictly increasing instants; fact_id only makes the order total.
-- Parameters: client_id String, since DateTime64(6, 'UTC'), until DateTime64(6, 'UTC').
SELECT client_id, at, trust_from, trust_to, reason, fact_id, policy_version
FROM trust_changes FINAL
WHERE client_id = {client_id:String}
    AND at >= {since:DateTime64(6, 'UTC')}
    AND at < {until:DateTime64(6, 'UTC')}
    AND retracted = 0
ORDER BY at, fact_id
