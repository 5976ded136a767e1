-- How far the stored data reaches at `now`: the newest interaction stored (event time, from the
-- interactions_daily rollup) and the newest SLA fact instant, both at or before `now`. While the
-- worker reads a backlog these trail the clock by how far behind it is.
-- Parameters: now DateTime64(6, 'UTC').
SELECT
    (
        SELECT max(last_at) FROM interactions_daily
        WHERE day <= toDate({now:DateTime64(6, 'UTC')})
            AND last_at <= {now:DateTime64(6, 'UTC')}
    ) AS newest_interaction,
    (
        SELECT max(at) FROM sla_facts WHERE at <= {now:DateTime64(6, 'UTC')}
    ) AS newest_fact
