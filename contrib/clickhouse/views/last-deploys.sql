-- last-deploys [--app APP] [--classification V] [--limit N]: completed deploys (every
-- deploy/finish event, successful or failed), newest first.
-- Parameters (query.sh fills them in as SQL literals): {host_id} (NULL: every host), {app},
-- {classification} (NULL: any), {limit}.
SELECT host_id, host_name, id, formatDateTime(t, '%Y-%m-%dT%H:%M:%SZ') AS ts, app,
       classification, source_type, rev, image_tag, status, actor_label, message
FROM
(
    SELECT host_id, host_name, id, ts AS t, app, classification, source_type, rev, image_tag,
           status, actor_label, message
    FROM dokku_audit.events FINAL
    WHERE category = 'deploy' AND action = 'finish'
      AND ({host_id} IS NULL OR host_id = {host_id})
      AND ({app} IS NULL OR app = {app})
      AND ({classification} IS NULL OR classification = {classification})
)
ORDER BY t DESC, host_id, id DESC
LIMIT {limit}
