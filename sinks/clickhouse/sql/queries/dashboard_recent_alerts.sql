-- Breaches and warnings in [since, now], newest first (at most 100), leaving out any that a
-- later correction retracted, with the client's name and owner and whether the obligation has
-- been answered since (its latest status).
-- Parameters: since DateTime64(6, 'UTC'), now DateTime64(6, 'UTC').
SELECT
    f.at AS at,
    f.kind AS kind,
    f.client_id AS client_id,
    c.name AS client_name,
    c.owner AS owner,
    f.obligation_id AS obligation_id,
    f.channel AS channel,
    f.warning_fraction AS warning_fraction,
    f.deadline AS deadline,
    o.status AS status
FROM
(
    SELECT at, kind, client_id, obligation_id, channel, warning_fraction, deadline, fact_id
    FROM sla_facts FINAL
    WHERE kind IN ('breached', 'warning')
        AND at >= {since:DateTime64(6, 'UTC')}
        AND at <= {now:DateTime64(6, 'UTC')}
        AND fact_id NOT IN (
            SELECT retracts FROM sla_facts WHERE kind = 'retracted' AND retracts IS NOT NULL
        )
) AS f
LEFT JOIN
(
    SELECT client_id, name, owner FROM clients FINAL
) AS c ON c.client_id = f.client_id
LEFT JOIN
(
    SELECT obligation_id, status FROM obligations FINAL
) AS o ON o.obligation_id = ifNull(f.obligation_id, '')
ORDER BY at DESC, f.fact_id
LIMIT 100
