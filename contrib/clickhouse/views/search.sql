-- search --query TEXT [--app APP] [--category V] [--since T] [--until T] [--limit N]: full
-- text over the message and the meta values (search_text), newest first.
-- Every word and every "quoted phrase" of the query must occur (AND), as consecutive tokens:
-- tokens are runs of letters and digits, lower-cased, shorter than 40 bytes, as the CLI's index
-- makes them (tantivy's default tokenizer); a word that is several tokens (a.b, foo-bar) is a
-- phrase, as in the CLI. search_norm holds an event's tokens each between spaces, so a phrase
-- is the substring ' tok1 tok2 ... ' of it.
-- Parameters: {phrases} (an array of strings: the query's words and phrases), {host_id} (NULL:
-- every host), {app}, {category} (NULL: no filter), {since}, {until} (epoch seconds, inclusive;
-- 0 and 4294967295 when not given), {limit}.
SELECT host_id, host_name, id, formatDateTime(t, '%Y-%m-%dT%H:%M:%SZ') AS ts, app,
       actor_label, category, action, classification, status, message
FROM
(
    SELECT host_id, host_name, id, ts AS t, app, actor_label, category, action, classification,
           status, message, search_norm AS norm
    FROM dokku_audit.events FINAL
    WHERE ({host_id} IS NULL OR host_id = {host_id})
      AND ({app} IS NULL OR app = {app})
      AND ({category} IS NULL OR category = {category})
      AND ts >= {since}
      AND ts <= {until}
)
-- notEmpty(norm): ClickHouse 18.16 drops a subquery's column used only inside a lambda
WHERE notEmpty(norm)
  AND arrayAll(p -> position(norm, p) > 0,
               arrayFilter(p -> p != '  ',
                           arrayMap(s -> concat(' ', arrayStringConcat(
                                                    arrayFilter(tok -> length(tok) < 40,
                                                                extractAll(lowerUTF8(s),
                                                                           '[\\pL\\pN]+')),
                                                    ' '), ' '),
                                    {phrases})))
ORDER BY t DESC, host_id, id DESC
LIMIT {limit}
