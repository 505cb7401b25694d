-- timeline APP [--category V] [--since T] [--until T] [--limit N]: one app's history, newest
-- first.
-- Parameters: {host_id} (NULL: every host), {app}, {category} (NULL: any), {since}, {until}
-- (epoch seconds, inclusive: 0 and 4294967295 when not given), {limit}.
SELECT host_id, host_name, id, formatDateTime(t, '%Y-%m-%dT%H:%M:%SZ') AS ts, app, category,
       action, classification, status, actor_label, message
FROM
(
    SELECT host_id, host_name, id, ts AS t, app, category, action, classification, status,
           actor_label, message
    FROM dokku_audit.events FINAL
    WHERE app = {app}
      AND ({host_id} IS NULL OR host_id = {host_id})
      AND ({category} IS NULL OR category = {category})
      AND ts >= {since}
      AND ts <= {until}
)
ORDER BY t DESC, host_id, id DESC
LIMIT {limit}
