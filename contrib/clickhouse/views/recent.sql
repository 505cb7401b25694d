-- recent [--app APP] [--category V] [--classification V] [--status V] [--actor A]
-- [--action GLOB] [--since T] [--until T] [--limit N]: every app, newest first.
-- Parameters: {host_id} (NULL: every host), {app}, {category}, {classification}, {status},
-- {actor} (an actor label or an actor name), {action_re} (the --action glob as an anchored
-- regular expression) (NULL: no filter), {since}, {until} (epoch seconds, inclusive; 0 and
-- 4294967295 when not given), {limit}.
SELECT host_id, host_name, id, formatDateTime(t, '%Y-%m-%dT%H:%M:%SZ') AS ts, app,
       actor_label, category, action, classification, status, message
FROM
(
    SELECT host_id, host_name, id, ts AS t, app, actor_label, category, action,
           classification, status, message
    FROM dokku_audit.events FINAL
    WHERE ({host_id} IS NULL OR host_id = {host_id})
      AND ({app} IS NULL OR app = {app})
      AND ({category} IS NULL OR category = {category})
      AND ({classification} IS NULL OR classification = {classification})
      AND ({status} IS NULL OR status = {status})
      AND ({actor} IS NULL OR actor_label = {actor} OR actor_name = {actor})
      AND ({action_re} IS NULL OR match(action, {action_re}))
      AND ts >= {since}
      AND ts <= {until}
)
ORDER BY t DESC, host_id, id DESC
LIMIT {limit}
