#!/usr/bin/env bash
# Maintenance at 1,000,000 realistic events (issue 5), whole process, hyperfine medians:
# prune of the older half, backup, vacuum, and the bytes prune gives back.
# Usage: benches/ops.sh [work dir]   (needs hyperfine; reuses <work>/big.jsonl from queries.sh)
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
base="$work/ops-base"
if [[ ! -d "$base" ]]; then
  # No grace period: the plain copies of sealed segments go at once, as they would after an hour.
  DOKKU_AUDIT_DURABILITY=relaxed DOKKU_AUDIT_SEAL_GRACE_SECONDS=0 \
    "$B" --data-dir "$base" import "$work/big.jsonl" >/dev/null
  # One more append removes the plain copies the import's own seals left behind.
  DOKKU_AUDIT_SEAL_GRACE_SECONDS=0 "$B" --data-dir "$base" report-deploy-status bench failed
  "$B" --data-dir "$base" reindex >/dev/null
fi
D="$work/ops"
# "now" = the last event's day, so --older-than 90 removes the older half of the 180 days.
now="$(tail -n 1 "$work/big.jsonl" | jq -r .ts)"
export DOKKU_AUDIT_NOW="$now"
copy="rm -rf $D $work/ops-backup-run && cp -a $base $D"
warm="$copy && $B --data-dir $D backup --output $work/ops-backup-warm >/dev/null && rm -rf $work/ops-backup-warm"
hyperfine -N --runs "${RUNS:-5}" --export-json "$work/ops.json" \
  --prepare "sh -c '$copy'" \
  --prepare "sh -c '$copy'" \
  --prepare "sh -c '$warm'" \
  --prepare "sh -c '$copy'" \
  --command-name "prune --older-than 90 --yes (half of 1M)" "$B --data-dir $D prune --older-than 90 --yes" \
  --command-name "backup (first: hashes every sealed segment)" "$B --data-dir $D backup --output $work/ops-backup-run" \
  --command-name "backup (later: hashes cached)" "$B --data-dir $D backup --output $work/ops-backup-run" \
  --command-name "vacuum" "$B --data-dir $D vacuum"
jq -r '.results[] | "\(.command)\t\(.median * 1000 | round) ms"' "$work/ops.json" | column -t -s $'\t'
sh -c "$copy"
before=$(du -sb "$D/segments" | cut -f1)
"$B" --data-dir "$D" prune --older-than 90 --yes
after=$(du -sb "$D/segments" | cut -f1)
echo "segments before: $before bytes, after prune: $after bytes, reclaimed: $((before - after)) bytes"
"$B" --data-dir "$D" verify | tail -n 1
