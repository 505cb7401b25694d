-- dokku-audit events in ClickHouse (written for ClickHouse 18.16, Debian bookworm's; newer
-- versions accept it too). One row per event per host: deduplicated on (host_id, id).
--
--   clickhouse-client --multiquery < contrib/clickhouse/schema.sql
--
-- Loaded by contrib/clickhouse/load.sh (jq projects each shipped segment line into these
-- columns); queried by contrib/clickhouse/query.sh (the CLI's views, views/*.sql).
--
-- Deduplication: ReplacingMergeTree keeps one row per sorting key (host_id, id) when it merges
-- parts, which happens in the background at an unknown time. Until then a line loaded twice is
-- two rows: every query reads the table with FINAL (merge on read), so answers never count a
-- duplicate. `OPTIMIZE TABLE dokku_audit.events FINAL` forces the merge. The partition key is
-- derived from `ts`, which is the same in every copy of an event, so copies always share a
-- partition (ReplacingMergeTree only deduplicates within one).

CREATE DATABASE IF NOT EXISTS dokku_audit;

CREATE TABLE IF NOT EXISTS dokku_audit.events
(
    -- Which host: meta.host_id (32 lower-case hex, a hash of /etc/machine-id) and
    -- meta.host_name; '' for events written before the host fields existed.
    host_id        String,
    host_name      String,
    -- The event's own fields (segments-format.md, interface.md §5), same names.
    id             UInt64,
    ts             DateTime('UTC'),
    app            Nullable(String),
    category       String,
    action         String,
    status         String,
    classification Nullable(String),
    source_trigger String,
    source_type    Nullable(String),
    image_tag      Nullable(String),
    rev            Nullable(String),
    actor_type     String,
    actor_name     Nullable(String),
    actor_label    String,
    correlation_id Nullable(String),
    message        String,
    meta           String,            -- the whole meta object, as JSON text
    created_at     DateTime('UTC'),
    -- Derived by the loader.
    release        Nullable(UInt64),  -- meta.release: the release number of a successful deploy
    chain          String,            -- the line's chain value (tamper evidence), '' if absent
    code_key       String,            -- the code a deploy ran ('rev:<rev>' or 'image:<image>'),
                                      -- as `releases` compares it for rollbacks; '' if none
    search_text    String,            -- what `search` matches: message and meta values
    -- search_text's tokens as the CLI's index makes them (runs of letters and digits,
    -- lower-cased, shorter than 40 bytes), each between spaces: ' config keys set database url '
    -- (a phrase of consecutive tokens is then a substring: position(search_norm, ' a b ') > 0)
    search_norm    String MATERIALIZED concat(' ', arrayStringConcat(arrayFilter(tok -> length(tok) < 40,
        extractAll(lowerUTF8(search_text), '[\\pL\\pN]+')), ' '), ' '),
    loaded_at      DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (host_id, id);
