#!/usr/bin/env bash
# Import of a 1,000,000-event history (issue 15): wall time, peak RSS and the peak disk space of
# the data directory during the import (du sampled every 0.1 s), default settings (durability
# always, seal_grace_seconds 3600). Usage: benches/import.sh [work dir] [binary]
# (reuses <work>/big.jsonl from queries.sh/ops.sh; pass another binary to compare builds).
set -euo pipefail
cd "$(dirname "$0")/.."
B="${2:-}"
if [[ -z "$B" ]]; then
  cargo build --release --quiet
  B="$PWD/target/release/dokku-audit"
fi
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
if [[ ! -f "$work/big.jsonl" ]]; then
  "$B" --data-dir "$work/gen" demo --events 1000000 --days 180 --show 0 >/dev/null
  "$B" --data-dir "$work/gen" export >"$work/big.jsonl"
  rm -rf "$work/gen"
fi
D="$work/import"
rm -rf "$D"
peak=0
/usr/bin/time -f '%e s, %M KiB max RSS' -o "$work/import.time" \
  "$B" --data-dir "$D" import "$work/big.jsonl" >"$work/import.out" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  # du fails when a file goes away under it (a plain copy deleted after its seal): keep its sum.
  now=$({ du -sb "$D" 2>/dev/null || true; } | cut -f1 | head -n 1)
  now=${now:-0}
  ((now > peak)) && peak=$now
  sleep 0.1
done
wait "$pid"
now=$(du -sb "$D" | cut -f1)
((now > peak)) && peak=$now
sealed=$(find "$D/segments" -name '*.jsonl.zst' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
plain=$(find "$D/segments" -name '*.jsonl' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
nplain=$(find "$D/segments" -name '*.jsonl' | wc -l)
echo "input: $(stat -c %s "$work/big.jsonl") bytes, $(wc -l <"$work/big.jsonl") events"
echo "import: $(cat "$work/import.time")"
echo "peak disk of the data directory during the import: $peak bytes"
echo "after: sealed $sealed bytes, plain $plain bytes in $nplain file(s), data dir $now bytes"
tail -n 2 "$work/import.out"
