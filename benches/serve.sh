#!/usr/bin/env bash
# HTTP API under load at 1,000,000 events (issues 8, 18): requests/s and latency percentiles of a
# filtered page with 32 connections (wrk -c32 -t2 -d10s), then the same load while bursts of 300
# concurrent triggers append (BURST), checking that every appended event is in the store, in the
# API's answer and on an open event stream exactly once.
# Usage: benches/serve.sh [work dir]   (needs wrk, curl, jq, bc; ~5 minutes the first time, ~2 GB)
# BEFORE_BIN=path/to/old/dokku-audit benches/serve.sh DIR  measures that binary first, then this
# tree's, on the same data in the same run, and prints both side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
B="$PWD/target/release/dokku-audit"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
if [[ ! -f "$work/big.jsonl" ]]; then
  "$B" --data-dir "$work/gen" demo --events 1000000 --days 180 --show 0 >/dev/null
  "$B" --data-dir "$work/gen" export >"$work/big.jsonl"
  rm -rf "$work/gen"
fi
D="$work/serve-data"
if [[ ! -f "$D/FORMAT" ]]; then
  DOKKU_AUDIT_DURABILITY=relaxed "$B" --data-dir "$D" import "$work/big.jsonl" >/dev/null
  "$B" --data-dir "$D" reindex >/dev/null
fi
echo "== events: $("$B" --data-dir "$D" status | sed -n 's/^total events: //p')"

server=""
stream=""
cleanup() {
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi
  if [[ -n "$stream" ]]; then kill "$stream" 2>/dev/null || true; fi
}
trap cleanup EXIT

# measure LABEL BINARY: one server of BINARY, three loads; results in $work/LABEL-*.txt.
measure() {
  local label="$1" S="$2" out="$work/$1"
  echo "==== $label: $S"
  # The index as this binary builds it (the schema changed between versions): not measured.
  "$S" --data-dir "$D" reindex >/dev/null
  # wrk opens 32 connections from 127.0.0.1 next to curl and the stream: above the default
  # per-address cap (32), which is meant for one client, not a load generator.
  "$S" --data-dir "$D" serve --listen 127.0.0.1:0 --max-per-peer 128 >"$out-serve.out" 2>"$out-serve.err" &
  server=$!
  for _ in $(seq 300); do
    grep -q '^serving' "$out-serve.out" 2>/dev/null && break
    sleep 0.1
  done
  local addr token auth url
  # settle: the requests a finished wrk left in flight are answered before the next load starts,
  # so one load's queue is not measured as the next one's latency.
  settle() {
    local t
    for _ in $(seq 100); do
      t="$(curl -s -o /dev/null -w '%{time_total}' -H "$auth" "http://$addr/api/health")"
      if [[ "$(echo "$t < 0.02" | bc)" == 1 ]]; then return; fi
      sleep 0.2
    done
  }
  addr="$(sed -n 's#^serving http://\([^/]*\)/.*#\1#p' "$out-serve.out")"
  token="$(cat "$D/serve-token")"
  auth="Authorization: Bearer $token"
  url="http://$addr/api/events?app=api&category=config&per_page=50"
  echo "== $url"
  curl -fsS -H "$auth" "$url" | jq -c '{total, pages, first: .events[0].id, n: (.events | length)}'

  echo "== load: wrk -c32 -t2 -d10s, filtered page (app + category, 50 full events)"
  wrk -c32 -t2 -d10s --latency -H "$auth" "$url" | tee "$out-wrk-read.txt"

  settle
  echo "== load: the filtered page, a different query every request (random since, no memo)"
  wrk -c32 -t2 -d10s --latency -H "$auth" -s benches/wrk/varied.lua "http://$addr" \
    | tee "$out-wrk-varied.txt"

  settle
  echo "== load: a different page each request (8 apps x 5 categories x 40 pages, mostly no memo)"
  wrk -c32 -t2 -d10s --latency -H "$auth" -s benches/wrk/varied-pages.lua "http://$addr" \
    | tee "$out-wrk-pages.txt"

  settle
  echo "== load: a full-text page (q=deploy AND app)"
  wrk -c32 -t2 -d10s --latency -H "$auth" \
    "http://$addr/api/events?q=deploy&app=api&per_page=50" | tee "$out-wrk-search.txt"

  settle
  # Concurrent appends: a stream records what it sees while bursts of BURST triggers (all at
  # once) append, one burst after another, for the whole 10 s of the load. A trigger that finds
  # the writer lock busy for longer than its budget spools; the next writer drains the spool
  # (segments-format.md §7.7).
  local burst="${BURST:-300}" N=0 rounds=0 app="loadtest-$$-$label" before after started ended
  # What an earlier run left in the spool is drained into the store by this run's first writer.
  before="$(($("$B" --data-dir "$D" status | sed -n 's/^total events: //p') \
    + $(find "$D/spool" -name '*.spool.jsonl' -exec cat {} + 2>/dev/null | wc -l)))"
  curl -sN -H "$auth" "http://$addr/api/events/stream" >"$out-stream.txt" &
  stream=$!
  sleep 0.5
  wrk -c32 -t2 -d10s --latency -H "$auth" "$url" >"$out-wrk-append.txt" &
  local load=$!
  : >"$out-append.err"
  started=$(date +%s.%N)
  while kill -0 "$load" 2>/dev/null; do
    seq $((N + 1)) $((N + burst)) | DOKKU_AUDIT_DATA_DIR="$D" xargs -P "$burst" -I{} \
      "$S" hook post-config-update "$app" set "KEY_{}" 2>>"$out-append.err"
    N=$((N + burst))
    rounds=$((rounds + 1))
  done
  ended=$(date +%s.%N)
  wait "$load"
  sleep 1
  kill "$stream" 2>/dev/null || true
  stream=""
  cat "$out-wrk-append.txt"
  echo "== appended $N events in $rounds bursts of $burst concurrent triggers in $(echo "$ended - $started" | bc) s under load;" \
    "$(grep -c 'spooled' "$out-append.err" || true) spooled, $(find "$D/spool" -name '*.spool.jsonl' 2>/dev/null | wc -l) spool files left"
  after="$("$B" --data-dir "$D" status | sed -n 's/^total events: //p')"
  # Events still in spool files are durable but wait for the next writer (none comes here).
  local in_spool in_store=$((after - before)) api_total streamed unique in_order
  in_spool="$(find "$D/spool" -name '*.spool.jsonl' -exec cat {} + 2>/dev/null | wc -l)"
  api_total="$(curl -fsS -H "$auth" "http://$addr/api/events?app=$app&per_page=1" | jq .total)"
  # This run's events on the stream (an earlier run's spooled ones may be drained meanwhile).
  grep '^data: ' "$out-stream.txt" | cut -c7- \
    | jq -r --arg app "$app" 'select(.app == $app) | .id' >"$out-stream-ids.txt"
  streamed="$(wc -l <"$out-stream-ids.txt")"
  unique="$(sort -u "$out-stream-ids.txt" | wc -l)"
  in_order="$(sort -n -c "$out-stream-ids.txt" && echo yes || echo no)"
  echo "store: +$in_store events, $in_spool in the spool; API total for app=$app: $api_total; stream: $streamed ids ($unique unique, ascending: $in_order)"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
  "$B" --data-dir "$D" verify >/dev/null && echo "verify: ok"
  local lost=$((N - in_spool - api_total))
  if ((lost < 0)); then lost=0; fi
  echo "$lost" >"$out-lost.txt"
  if [[ $((in_store + in_spool)) != "$N" || "$api_total" -lt "$in_store" || "$streamed" != "$in_store" || "$unique" != "$in_store" ]]; then
    echo "LOST OR DUPLICATED EVENTS ($label)" >&2
    exit 1
  fi
  echo "== $label: nothing lost, nothing duplicated"
}

labels=()
if [[ -n "${BEFORE_BIN:-}" ]]; then
  measure before "$BEFORE_BIN"
  labels+=(before)
fi
measure after "$B"
labels+=(after)

echo "==== summary (lost: appended events missing from the API's total)"
for label in "${labels[@]}"; do
  for f in wrk-read wrk-varied wrk-pages wrk-search wrk-append; do
    printf '%s\t%s\t%s req/s\tp50 %s\tp99 %s\n' "$label" "$f" \
      "$(sed -n 's/^Requests\/sec: *//p' "$work/$label-$f.txt")" \
      "$(awk '$1 == "50%" {print $2}' "$work/$label-$f.txt")" \
      "$(awk '$1 == "99%" {print $2}' "$work/$label-$f.txt")"
  done
  printf '%s\tlost\t%s\n' "$label" "$(cat "$work/$label-lost.txt")"
done | column -t -s $'\t'
