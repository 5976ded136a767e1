-- The client directory as the dashboards show it: id, name, owner, escalation contact, policy
-- and calendar ids (latest version of each client). No parameters.
SELECT client_id, name, owner, escalation_contact, policy_id, calendar_id
FROM clients FINAL
ORDER BY client_id
