-- Breaches per account owner over the UTC days [since, until), from the rollup and the client
-- directory. Clients missing from the directory are grouped under owner ''.
-- Parameters: since Date, until Date.
SELECT
    c.owner AS owner,
    sum(d.breached) AS breaches,
    countIf(d.breached > 0) AS clients_breached,
    sum(d.met) AS met,
    if(sum(d.met) + sum(d.breached) = 0, NULL, sum(d.met) / (sum(d.met) + sum(d.breached)))
        AS attainment
FROM
(
    SELECT client_id, sum(breached) AS breached, sum(met) AS met
    FROM sla_daily
    WHERE day >= {since:Date} AND day < {until:Date}
    GROUP BY client_id
) AS d
LEFT JOIN
(
    SELECT client_id, owner FROM clients FINAL
) AS c ON c.client_id = d.client_id
GROUP BY owner
ORDER BY breaches DESC, owner
