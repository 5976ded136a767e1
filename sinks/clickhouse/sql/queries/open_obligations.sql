-- Obligations still owed at `now` (open, or breached and not yet answered), soonest deadline
-- first (the 1000 most urgent: a dashboard list, not an export; the limit is applied before the
-- directory join), with the seconds left until the deadline (negative once overdue).
-- Reads obligations_owed (migration 0004: each obligation's latest row, deleted once it is no
-- longer owed, so FINAL leaves exactly the open and breached ones), not obligations FINAL.
-- Parameters: now DateTime64(6, 'UTC').
SELECT
    o.obligation_id AS obligation_id,
    o.client_id AS client_id,
    c.name AS client_name,
    c.owner AS owner,
    o.kind AS kind,
    o.channel AS channel,
    o.thread_key AS thread_key,
    o.status AS status,
    o.opened_at AS opened_at,
    o.deadline AS deadline,
    dateDiff('microsecond', {now:DateTime64(6, 'UTC')}, o.deadline) / 1000000 AS seconds_left
FROM
(
    SELECT obligation_id, client_id, kind, channel, thread_key, status, opened_at, deadline
    FROM obligations_owed FINAL
    WHERE opened_at <= {now:DateTime64(6, 'UTC')}
    ORDER BY deadline, obligation_id
    LIMIT 1000
) AS o
LEFT JOIN
(
    SELECT client_id, name, owner FROM clients FINAL
) AS c ON c.client_id = o.client_id
ORDER BY o.deadline, o.obligation_id
