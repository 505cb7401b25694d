#!/usr/bin/env bash
# `releases APP` vs `last-deploys --app APP` (issue 17), whole process, hyperfine medians: a store
# of ~1,000,000 realistic events (the demo generator) in which one app, `bigapp`, has 20,000
# deploys (19,000 successful: releases v1…v19000, 1,000 failed; some pushes repeat an older
# revision, so rollbacks are found).
# Usage: benches/releases.sh [work dir] [demo events]   (needs hyperfine, python3; ~2 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
B="$PWD/target/release/dokku-audit"
work="${1:-$(mktemp -d)}"
demo="${2:-980000}"
mkdir -p "$work"
if [[ ! -f "$work/rel.jsonl" ]]; then
  "$B" --data-dir "$work/gen" demo --events "$demo" --days 180 --show 0 >/dev/null
  "$B" --data-dir "$work/gen" export >"$work/demo.jsonl"
  rm -rf "$work/gen"
  # 20,000 deploy finishes of bigapp spread over the same days, merged in time order.
  python3 - "$work/demo.jsonl" "$work/rel.jsonl" <<'PY'
import datetime, heapq, json, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    first = json.loads(f.readline())["ts"]
    last = first
    for line in f:
        pass
    last = json.loads(line)["ts"]
p = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
t0, t1 = p(first), p(last)
n = 20000
def big():
    for i in range(n):
        ts = (t0 + (t1 - t0) * i / n).strftime("%Y-%m-%dT%H:%M:%SZ")
        failed = i % 20 == 7
        rev = "%040x" % (i % 5000 if i % 10 == 3 else i)
        ev = {"id": 0, "ts": ts, "app": "bigapp", "category": "deploy", "action": "finish",
              "status": "failed" if failed else "success",
              "classification": "deploy_failed" if failed else "source_deploy",
              "source_trigger": "post-deploy", "source_type": "git-push",
              "image_tag": None if failed else "latest", "rev": rev,
              "actor_type": "user", "actor_name": "alice", "actor_label": "ssh-key:alice",
              "correlation_id": "dokku-%d-1" % i,
              "message": "deploy failed: exit code 1" if failed else "source deploy finished",
              "meta": {"exit_code": 1} if failed else {"triggered_by_command": "git push bigapp",
                                                        "triggered_by_subcommand": "git:push"},
              "created_at": ts}
        yield ts, json.dumps(ev, separators=(",", ":"))
def demo():
    with open(src) as f:
        for line in f:
            at = line.index('"ts":"') + 6
            yield line[at:at + 20], line.rstrip("\n")
with open(dst, "w") as out:
    for _, line in heapq.merge(demo(), big(), key=lambda x: x[0]):
        out.write(line + "\n")
PY
  rm -f "$work/demo.jsonl"
fi
D="$work/data"
rm -rf "$D"
DOKKU_AUDIT_DURABILITY=relaxed "$B" --data-dir "$D" import "$work/rel.jsonl" >/dev/null
"$B" --data-dir "$D" reindex
echo "== $("$B" --data-dir "$D" status | sed -n 's/^total events: //p') events"
"$B" --data-dir "$D" releases bigapp --limit 5
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$work/releases.json" \
  --command-name "last-deploys --app bigapp" "$B --data-dir $D last-deploys --app bigapp" \
  --command-name "last-deploys --app bigapp --format json" "$B --data-dir $D last-deploys --app bigapp --format json" \
  --command-name "releases bigapp" "$B --data-dir $D releases bigapp" \
  --command-name "releases bigapp --format json" "$B --data-dir $D releases bigapp --format json" \
  --command-name "releases:info bigapp v100" "$B --data-dir $D releases:info bigapp v100"
# Median and minimum wall time, and mean CPU (user + system): on a busy machine the CPU time is
# the steadier figure.
jq -r '.results[] | "\(.command)\tmedian \(.median * 1000 * 10 | round / 10) ms\tmin \(.min * 1000 * 10 | round / 10) ms\tcpu \((.user + .system) * 1000 * 10 | round / 10) ms"' \
  "$work/releases.json" | column -t -s $'\t'
