#!/usr/bin/env bash
# Query latencies at 1,000,000 realistic events (issue 4), whole process, hyperfine medians.
# Usage: benches/queries.sh [work dir]   (needs hyperfine; ~3 minutes; ~2 GB of disk)
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
D="$work/data"
rm -rf "$D"
DOKKU_AUDIT_DURABILITY=relaxed "$B" --data-dir "$D" import "$work/big.jsonl" >/dev/null
echo "== reindex"; /usr/bin/time -f '%e s, %M KB peak RSS' "$B" --data-dir "$D" reindex
echo "== index size: $(du -sb "$D/index" | cut -f1) bytes for $("$B" --data-dir "$D" status | sed -n 's/^total events: //p') events"
rare="$(grep -m1 -o '"container_id":"[0-9a-f]\{12\}"' <(tail -n 300000 "$work/big.jsonl") | cut -d'"' -f4)"
"$B" --data-dir "$D" export | tail -n 1000 | sed 's/"id":[0-9]*,/"id":0,/' >"$work/thousand.jsonl"
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$work/queries.json" \
  --command-name "last-deploys" "$B --data-dir $D last-deploys" \
  --command-name "timeline APP --limit 50" "$B --data-dir $D timeline api --limit 50" \
  --command-name "recent --category config" "$B --data-dir $D recent --category config" \
  --command-name "search rare term" "$B --data-dir $D search --query $rare" \
  --command-name "search common term" "$B --data-dir $D search --query deploy" \
  --command-name "export --format jsonl (1M)" "$B --data-dir $D export"
# Catch-up: each run first appends 1,000 events stamped with the current time (not timed),
# then the query indexes them.
cat >"$work/append-1000.sh" <<SCRIPT
#!/bin/sh
now=\$(date -u +%Y-%m-%dT%H:%M:%SZ)
sed "s/\"ts\":\"[^\"]*\"/\"ts\":\"\$now\"/; s/\"created_at\":\"[^\"]*\"/\"created_at\":\"\$now\"/" "$work/thousand.jsonl" >"$work/stamped.jsonl"
DOKKU_AUDIT_DURABILITY=relaxed "$B" --data-dir "$D" import "$work/stamped.jsonl" >/dev/null
SCRIPT
chmod +x "$work/append-1000.sh"
hyperfine -N --warmup 1 --runs 10 --export-json "$work/catchup.json" \
  --prepare "$work/append-1000.sh" \
  --prepare "true" \
  --command-name "recent --limit 1 after 1,000 new events (catch-up)" "$B --data-dir $D recent --limit 1" \
  --command-name "recent --limit 1, nothing new" "$B --data-dir $D recent --limit 1"
echo "== index segments after the runs: $(find "$D/index" -name '*.idx' | wc -l)"
jq -r '.results[] | "\(.command)\t\(.median * 1000 * 10 | round / 10) ms"' \
  "$work/queries.json" "$work/catchup.json" | column -t -s $'\t'
/usr/bin/time -f 'export peak RSS: %M KB' "$B" --data-dir "$D" export >/dev/null
