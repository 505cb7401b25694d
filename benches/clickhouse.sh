#!/usr/bin/env bash
# ClickHouse as the fleet's central store (docs/fleet-clickhouse.md): how fast 1,000,000 events
# load through contrib/clickhouse/load.sh, how long an append through the plugin takes to be
# queryable in ClickHouse behind a simple poll loop, what the table costs on disk and in RAM, and
# each view's time at 1M events, query.sh against the CLI (whole processes, hyperfine medians).
# Usage: benches/clickhouse.sh [work dir]    (EVENTS=N for another size; RUNS, POLL, APPENDS)
# Needs clickhouse-server and clickhouse-client (Debian: 18.16), jq, zstd, hyperfine. Starts its
# own clickhouse-server (config, data and ports in the work dir; CH_PORT, default 19400, and
# CH_PORT+1 for HTTP), never the system service. ~10 minutes on 2 cores; ~3 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BIN:-}" ]; then
  B=$BIN # another build (a smoke run with target/debug/dokku-audit and EVENTS=20000)
else
  cargo build --release --quiet
  B="$PWD/target/release/dokku-audit"
fi
CH="$PWD/contrib/clickhouse"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
work=$(cd "$work" && pwd)
export CH_HOST=127.0.0.1 CH_PORT="${CH_PORT:-19400}"
sql() { clickhouse-client --host "$CH_HOST" --port "$CH_PORT" --query "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# -- a private server
srv="$work/ch"
rm -rf "$srv"
mkdir -p "$srv"
cat >"$srv/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$srv/server.log</log><errorlog>$srv/error.log</errorlog></logger>
  <http_port>$((CH_PORT + 1))</http_port>
  <tcp_port>$CH_PORT</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$srv/data/</path>
  <tmp_path>$srv/tmp/</tmp_path>
  <user_files_path>$srv/user_files/</user_files_path>
  <format_schema_path>$srv/format_schemas/</format_schema_path>
  <users_config>$srv/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <timezone>UTC</timezone>
</yandex>
XML
cat >"$srv/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
XML
clickhouse-server --config-file="$srv/config.xml" >/dev/null 2>&1 &
server=$!
follower=""
cleanup() {
  rm -f "$work/following"
  if [ -n "$follower" ]; then kill "$follower" 2>/dev/null || true; fi
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
  sql "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "== clickhouse-server $(sql 'SELECT version()') on port $CH_PORT (pid $server)"
clickhouse-client --host "$CH_HOST" --port "$CH_PORT" --multiquery <"$CH/schema.sql"

# -- 1,000,000 events (demo generator, 180 days), as the segments hold them
D="$work/gen"
if [ ! -d "$D/segments" ]; then
  "$B" --data-dir "$D" demo --events "${EVENTS:-1000000}" --days 180 --show 0 >/dev/null
fi
n=$("$B" --data-dir "$D" status | sed -n 's/^total events: //p')
segs=("$D"/segments/*)
echo "== projection alone (zstdcat | jq project.jq) of $n events"
t0=$(now_ms)
for f in "${segs[@]}"; do
  case $f in *.zst) zstdcat -- "$f" ;; *) cat -- "$f" ;; esac
done | jq -cR --arg host_id "" --arg host_name "" -f "$CH/project.jq" >/dev/null
t1=$(now_ms)
echo "$((t1 - t0)) ms = $((n * 1000 / (t1 - t0))) events/s"
echo "== load.sh of the ${#segs[@]} segment files ($n events)"
t0=$(now_ms)
"$CH/load.sh" "${segs[@]}"
t1=$(now_ms)
echo "$((t1 - t0)) ms = $((n * 1000 / (t1 - t0))) events/s; rows: $(sql 'SELECT count() FROM dokku_audit.events')"
echo "== the same files again (duplicates until merged)"
t0=$(now_ms)
"$CH/load.sh" "${segs[@]}"
t1=$(now_ms)
echo "$((t1 - t0)) ms; rows stored: $(sql 'SELECT count() FROM dokku_audit.events'), rows seen with FINAL: $(sql 'SELECT count() FROM dokku_audit.events FINAL')"
t0=$(now_ms)
sql "OPTIMIZE TABLE dokku_audit.events FINAL"
t1=$(now_ms)
echo "OPTIMIZE TABLE FINAL: $((t1 - t0)) ms; rows stored: $(sql 'SELECT count() FROM dokku_audit.events')"
# The active parts (du also counts the merged-away parts, deleted minutes later).
bytes=$(sql "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = 'dokku_audit'")
echo "== disk: $bytes bytes for $n events = $((bytes / n)) B/event (the host's sealed segments: $(cat "$D"/segments/*.zst | wc -c) bytes; du of the table now: $(du -sb "$srv/data/data/dokku_audit/events" | cut -f1))"
sql "SELECT name, sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS raw
     FROM system.columns WHERE database = 'dokku_audit' AND table = 'events'
     GROUP BY name ORDER BY compressed DESC LIMIT 8 FORMAT PrettyCompactNoEscapes"

# -- view times at 1M: query.sh (clickhouse-client process + query) vs the CLI (its index)
"$B" --data-dir "$D" reindex >/dev/null
rare=$("$B" --data-dir "$D" recent --category command --limit 1 --format json |
  jq -r '.[0].meta.container_id // "deploy"')
Q="$CH/query.sh"
hyperfine -N --warmup 2 --runs "${RUNS:-10}" --export-json "$work/views.json" \
  --command-name "CLI last-deploys" "$B --data-dir $D last-deploys --format json" \
  --command-name "CH  last-deploys" "$Q last-deploys" \
  --command-name "CLI timeline api" "$B --data-dir $D timeline api --format json" \
  --command-name "CH  timeline api" "$Q timeline api" \
  --command-name "CLI recent --category config" "$B --data-dir $D recent --category config --format json" \
  --command-name "CH  recent --category config" "$Q recent --category config" \
  --command-name "CLI recent --actor alice --action set*" "$B --data-dir $D recent --actor alice --action set* --format json" \
  --command-name "CH  recent --actor alice --action set*" "$Q recent --actor alice --action set*" \
  --command-name "CLI search rare term" "$B --data-dir $D search --query $rare --format json" \
  --command-name "CH  search rare term" "$Q search --query $rare" \
  --command-name "CLI search deploy finished" "$B --data-dir $D search --query 'deploy finished' --format json" \
  --command-name "CH  search deploy finished" "$Q search --query 'deploy finished'" \
  --command-name "CLI releases api" "$B --data-dir $D releases api --format json" \
  --command-name "CH  releases api" "$Q releases api" >/dev/null
jq -r '.results[] | "\(.command)\t\(.median * 1000 | round) ms"' "$work/views.json" |
  column -t -s $'\t'
grep -E '^(VmRSS|VmHWM)' "/proc/$server/status" | sed 's/^/server memory: /'

# -- append through the plugin -> queryable in ClickHouse, behind a poll loop that loads the
# new complete lines of the active segment every POLL seconds (a stand-in for a shipper).
L="$work/latency"
rm -rf "$L"
export DOKKU_AUDIT_BIN="$B" DOKKU_AUDIT_DATA_DIR="$L" DOKKU_AUDIT_DOKKU_VERSION=0.38.27
"$B" migrate >/dev/null
lat_host=1a7e0000000000000000000000000003
follow() {
  local off=0 seg="" s n chunk="$work/chunk"
  while [ -e "$work/following" ]; do
    s=$(find "$L/segments" -name '*.jsonl' | sort | tail -n 1)
    if [ "$s" != "$seg" ]; then
      seg=$s
      off=0
    fi
    if [ -n "$seg" ] && [ "$(stat -c %s "$seg")" -gt "$off" ]; then
      tail -c +$((off + 1)) "$seg" >"$chunk"
      n=$(wc -c <"$chunk")
      if [ "$(tail -c 1 "$chunk" | od -An -tx1 | tr -d ' ')" != 0a ]; then
        n=$((n - $(tail -n 1 "$chunk" | wc -c)))
      fi
      if [ "$n" -gt 0 ]; then
        head -c "$n" "$chunk" | "$CH/load.sh" --host-id "$lat_host" --host-name latency
        off=$((off + n))
      fi
    fi
    sleep "${POLL:-0.2}"
  done
}
touch "$work/following"
follow &
follower=$!
lat=()
for i in $(seq "${APPENDS:-20}"); do
  t0=$(now_ms)
  DOKKU_PID=$((5000 + i)) plugin/post-create "lat-$i"
  until [ "$(sql "SELECT count() FROM dokku_audit.events WHERE host_id = '$lat_host' AND app = 'lat-$i'")" = 1 ]; do
    sleep 0.02
  done
  t1=$(now_ms)
  lat+=($((t1 - t0)))
  sleep 0.3
done
printf '%s\n' "${lat[@]}" | sort -n | awk -v poll="${POLL:-0.2}" '{a[NR] = $1}
  END {printf "== append -> queryable (%d appends, poll every %s s): median %d ms, min %d ms, max %d ms\n",
       NR, poll, a[int((NR + 1) / 2)], a[1], a[NR]}'
