#!/usr/bin/env bash
# Loads shipped dokku-audit segment lines into ClickHouse (dokku_audit.events, schema.sql).
#
#   load.sh [--host-id ID] [--host-name NAME] [FILE...]
#
# FILE: a segment (.jsonl, or a sealed .jsonl.zst), an export (export --format jsonl), or - for
# stdin; no FILE: stdin. The host of an event is its meta.host_id and meta.host_name; for events
# without them (written before the host fields existed) it is --host-id/--host-name when given
# (the lines come from a known host), else ''. Events of different hosts that all have host id
# '' are one host to the table: their ids collide, and only one of each id is kept.
#
# Each line is projected by project.jq into the table's columns (lines that are not event
# objects, such as a torn last line after a crash, are skipped) and inserted with
# clickhouse-client in JSONEachRow. Loading the same lines again is harmless: the table keeps one
# row per (host_id, id) and the views read it with FINAL.
#
# Several files are loaded by LOAD_JOBS (default: the number of CPUs) loaders at once, each a
# jq and a clickhouse-client of its own (jq is the slow part: about 10k lines/s per core).
#
# Environment: CH_HOST (localhost), CH_PORT (9000), CH_USER (default), CH_PASSWORD (none),
# CLICKHOUSE_CLIENT (clickhouse-client), LOAD_JOBS, LOAD_BLOCK_ROWS (rows per insert block,
# default 100000: the server holds a block in memory while it writes it, ~1 KB per row).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
client=${CLICKHOUSE_CLIENT:-clickhouse-client}
args=(--host "${CH_HOST:-localhost}" --port "${CH_PORT:-9000}" --user "${CH_USER:-default}")
if [ -n "${CH_PASSWORD:-}" ]; then
  args+=(--password "$CH_PASSWORD")
fi

host_id=""
host_name=""
while [ $# -gt 0 ]; do
  case $1 in
    --host-id)
      if [ $# -lt 2 ] || ! [[ $2 =~ ^([0-9a-f]{32})?$ ]]; then
        echo " !     --host-id needs 32 lower-case hex characters (or '')" >&2
        exit 1
      fi
      host_id=$2
      shift 2
      ;;
    --host-name)
      if [ $# -lt 2 ]; then
        echo " !     --host-name needs a value" >&2
        exit 1
      fi
      host_name=$2
      shift 2
      ;;
    --)
      shift
      break
      ;;
    *) break ;;
  esac
done

jobs=${LOAD_JOBS:-$(nproc 2>/dev/null || echo 1)}
if [ $# -gt 1 ] && [ "$jobs" -gt 1 ] && ! printf '%s\n' "$@" | grep -qx -- -; then
  # The files in `jobs` groups, each loaded by this script with one job.
  printf '%s\0' "$@" | LOAD_JOBS=1 xargs -0 -n $((($# + jobs - 1) / jobs)) -P "$jobs" \
    "${BASH_SOURCE[0]}" --host-id "$host_id" --host-name "$host_name" --
  exit
fi

lines() {
  if [ $# -eq 0 ]; then
    cat
    return
  fi
  local f
  for f in "$@"; do
    case "$f" in
      -) cat ;;
      *.zst) zstdcat -- "$f" ;;
      *) cat -- "$f" ;;
    esac
  done
}

lines "$@" \
  | jq -cR --arg host_id "$host_id" --arg host_name "$host_name" -f "$here/project.jq" \
  | "$client" "${args[@]}" --max_insert_block_size="${LOAD_BLOCK_ROWS:-100000}" \
    --query "INSERT INTO dokku_audit.events
      (host_id, host_name, id, ts, app, category, action, status, classification,
       source_trigger, source_type, image_tag, rev, actor_type, actor_name, actor_label,
       correlation_id, message, meta, created_at, release, chain, code_key, search_text)
      FORMAT JSONEachRow"
