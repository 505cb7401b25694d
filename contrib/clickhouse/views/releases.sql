-- releases APP [--since T] [--limit N]: the app's releases (successful deploys, numbered by
-- meta.release) and failed deploys, newest first, per host: the number (NULL for a failed
-- deploy), whether it is the app's newest release (current), and the earlier release it rolled
-- back to (rollback_to), decided as the CLI does: a numbered release whose code (code_key) is
-- not the code in effect before it (the code of the last earlier release that has one) and that
-- an earlier numbered release had first, is a rollback to that release's number. The CLI's
-- one-line description is not computed here.
-- Parameters: {host_id} (NULL: every host, each with its own numbers), {app}, {since} (epoch
-- seconds, 0 when not given; it cuts the deploys shown, rollbacks still look at the whole
-- history), {limit}.
--
-- How: per host, the deploys oldest first (arraySort(groupArray(...))), and g, the number of
-- releases with a code up to each one (arrayCumSum); then one row per deploy (ARRAY JOIN). The
-- code in effect before a deploy is the code of the release whose g is the deploy's g_before
-- (a join on g), the first release of each code is an argMin (a join on the code). No lambda
-- captures an array: ClickHouse copies a captured array once per element (quadratic: at 10,000
-- deploys of one app, gigabytes), and 18.16 also drops a column used only inside a lambda.
SELECT host_id, host_name, if(st = 'success' AND n > 0, toNullable(n), NULL) AS version, id,
       formatDateTime(t, '%Y-%m-%dT%H:%M:%SZ') AS ts, actor,
       if(st = 'success', 'success', 'failed') AS status, n > 0 AND n = newest AS current,
       if(k != '' AND n > 0 AND in_effect != k AND first_n > 0 AND first_n < n,
          toNullable(first_n), NULL) AS rollback_to,
       rev, image_tag, source_type, classification
FROM
(
    SELECT *
    FROM
    (
        -- each deploy, with the code in effect before it
        SELECT *
        FROM
        (
                        SELECT host_id, host_name, newest, tupleElement(d, 1) AS t, tupleElement(d, 2) AS id,
                   tupleElement(d, 3) AS st, tupleElement(d, 4) AS n, tupleElement(d, 5) AS k,
                   tupleElement(d, 6) AS actor, tupleElement(d, 7) AS rev,
                   tupleElement(d, 8) AS image_tag, tupleElement(d, 9) AS source_type,
                   tupleElement(d, 10) AS classification, toUInt64(g - (k != '')) AS g_before, g
            FROM
            (
                SELECT host_id, any(host_name) AS host_name,
                       arraySort(groupArray((ts, id, status, ifNull(release, toUInt64(0)),
                                             if(status = 'success', code_key, ''), actor_label,
                                             rev, image_tag, source_type, classification)))
                           AS deploys,
                       arrayReduce('max', arrayMap(x -> tupleElement(x, 4), deploys)) AS newest,
                       arrayCumSum(arrayMap(x -> toUInt64(tupleElement(x, 5) != ''), deploys))
                           AS upto
                FROM dokku_audit.events FINAL
                WHERE app = {app} AND category = 'deploy' AND action = 'finish'
                  AND ({host_id} IS NULL OR host_id = {host_id})
                GROUP BY host_id
            )
            ARRAY JOIN deploys AS d, upto AS g
        )
        ANY LEFT JOIN
        (
            SELECT host_id, g AS g_before, k AS in_effect
            FROM
            (
                                SELECT host_id, host_name, newest, tupleElement(d, 1) AS t, tupleElement(d, 2) AS id,
                       tupleElement(d, 3) AS st, tupleElement(d, 4) AS n, tupleElement(d, 5) AS k,
                       tupleElement(d, 6) AS actor, tupleElement(d, 7) AS rev,
                       tupleElement(d, 8) AS image_tag, tupleElement(d, 9) AS source_type,
                       tupleElement(d, 10) AS classification, toUInt64(g - (k != '')) AS g_before, g
                FROM
                (
                    SELECT host_id, any(host_name) AS host_name,
                           arraySort(groupArray((ts, id, status, ifNull(release, toUInt64(0)),
                                                 if(status = 'success', code_key, ''), actor_label,
                                                 rev, image_tag, source_type, classification)))
                               AS deploys,
                           arrayReduce('max', arrayMap(x -> tupleElement(x, 4), deploys)) AS newest,
                           arrayCumSum(arrayMap(x -> toUInt64(tupleElement(x, 5) != ''), deploys))
                               AS upto
                    FROM dokku_audit.events FINAL
                    WHERE app = {app} AND category = 'deploy' AND action = 'finish'
                      AND ({host_id} IS NULL OR host_id = {host_id})
                    GROUP BY host_id
                )
                ARRAY JOIN deploys AS d, upto AS g
            )
            WHERE k != ''
        ) USING (host_id, g_before)
    )
    ANY LEFT JOIN
    (
        -- the first numbered release of each code
        SELECT host_id, k, argMin(n, (t, id)) AS first_n
        FROM
        (
                        SELECT host_id, host_name, newest, tupleElement(d, 1) AS t, tupleElement(d, 2) AS id,
                   tupleElement(d, 3) AS st, tupleElement(d, 4) AS n, tupleElement(d, 5) AS k,
                   tupleElement(d, 6) AS actor, tupleElement(d, 7) AS rev,
                   tupleElement(d, 8) AS image_tag, tupleElement(d, 9) AS source_type,
                   tupleElement(d, 10) AS classification, toUInt64(g - (k != '')) AS g_before, g
            FROM
            (
                SELECT host_id, any(host_name) AS host_name,
                       arraySort(groupArray((ts, id, status, ifNull(release, toUInt64(0)),
                                             if(status = 'success', code_key, ''), actor_label,
                                             rev, image_tag, source_type, classification)))
                           AS deploys,
                       arrayReduce('max', arrayMap(x -> tupleElement(x, 4), deploys)) AS newest,
                       arrayCumSum(arrayMap(x -> toUInt64(tupleElement(x, 5) != ''), deploys))
                           AS upto
                FROM dokku_audit.events FINAL
                WHERE app = {app} AND category = 'deploy' AND action = 'finish'
                  AND ({host_id} IS NULL OR host_id = {host_id})
                GROUP BY host_id
            )
            ARRAY JOIN deploys AS d, upto AS g
        )
        WHERE n > 0 AND k != ''
        GROUP BY host_id, k
    ) USING (host_id, k)
)
WHERE t >= {since}
ORDER BY t DESC, host_id, id DESC
LIMIT {limit}
