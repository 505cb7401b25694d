-- releases APP [--since T] [--limit N]: the app's releases (successful deploys, numbered by
-- meta.release) and failed deploys, newest first, per host: the number (NULL for a failed
-- deploy), whether it is the app's newest release (current), and the earlier release it rolled
-- back to (rollback_to), decided as the CLI does: a release whose code (code_key) is the code
-- of an earlier release vK, and not the code already in effect, is a rollback to the earliest
-- such vK. The CLI's one-line description is not computed here.
-- Parameters: {host_id} (NULL: every host, each with its own numbers), {app}, {since} (epoch
-- seconds, 0 when not given; only shown deploys are cut, rollbacks still look at the whole history), {limit}.
SELECT host_id, host_name, if(tupleElement(d, 3) = 'success' AND tupleElement(d, 4) > 0,
                              toNullable(tupleElement(d, 4)), NULL) AS version,
       tupleElement(d, 2) AS id, formatDateTime(tupleElement(d, 1), '%Y-%m-%dT%H:%M:%SZ') AS ts,
       tupleElement(d, 6) AS actor,
       if(tupleElement(d, 3) = 'success', 'success', 'failed') AS status,
       tupleElement(d, 4) > 0 AND tupleElement(d, 4) = newest AS current,
       if(rollback > 0, toNullable(rollback), NULL) AS rollback_to,
       tupleElement(d, 7) AS rev, tupleElement(d, 8) AS image_tag,
       tupleElement(d, 9) AS source_type, tupleElement(d, 10) AS classification
FROM
(
    -- 4. the rollback of each deploy (0: none): a numbered release whose code is not the code
    --    in effect before it, and that an earlier numbered release had first. ClickHouse 18.16
    --    drops a subquery's column that a query uses only inside a lambda: the arrays the
    --    lambda reads by index (keyed, numbered, numbers) are passed to arrayMap as well.
    SELECT host_id, host_name, deploys, newest,
           arrayMap((i, k, n, u, pad, nb) ->
                        if(k != '' AND n > 0
                           AND if(u - (k != '') = 0, '', keyed[u - (k != '')]) != k
                           AND indexOf(numbered, k) > 0 AND indexOf(numbered, k) < i
                           AND numbers[indexOf(numbered, k)] < n,
                           numbers[indexOf(numbered, k)], toUInt64(0)),
                    arrayEnumerate(deploys), keys, numbers, upto,
                    arrayResize(keyed, length(deploys)), numbered) AS rollbacks
    FROM
    (
        -- 3. numbered: the code of each numbered release ('' otherwise); keyed: the codes of
        --    the releases that have one, in order; upto: how many of them up to each deploy
        --    (the code in effect after deploy i is keyed[upto[i]]); newest: the newest number
        SELECT host_id, host_name, deploys, numbers, keys,
               arrayReduce('max', numbers) AS newest,
               arrayMap((k, n) -> if(k != '' AND n > 0, k, ''), keys, numbers) AS numbered,
               arrayFilter(k -> k != '', keys) AS keyed,
               arrayCumSum(arrayMap(k -> toUInt64(k != ''), keys)) AS upto
        FROM
        (
            -- 2. each deploy's number (0: none) and, for a release, its code ('' if none)
            SELECT host_id, host_name, deploys,
                   arrayMap(d -> tupleElement(d, 4), deploys) AS numbers,
                   arrayMap(d -> if(tupleElement(d, 3) = 'success', tupleElement(d, 5), ''),
                            deploys) AS keys
            FROM
            (
                -- 1. the app's deploy finishes, oldest first, per host
                SELECT host_id, any(host_name) AS host_name,
                       arraySort(groupArray((ts, id, status, ifNull(release, toUInt64(0)),
                                             code_key, actor_label, rev, image_tag,
                                             source_type, classification))) AS deploys
                FROM dokku_audit.events FINAL
                WHERE app = {app} AND category = 'deploy' AND action = 'finish'
                  AND ({host_id} IS NULL OR host_id = {host_id})
                GROUP BY host_id
            )
        )
    )
)
ARRAY JOIN deploys AS d, rollbacks AS rollback
WHERE tupleElement(d, 1) >= {since}
ORDER BY tupleElement(d, 1) DESC, host_id, tupleElement(d, 2) DESC
LIMIT {limit}
