#!/usr/bin/env bash
# Events per second through the fleet's RELP collector (docs/fleet.md "Measured"): three hosts
# (data directories with their own host ids), each with its own sender rsyslogd, one collector
# rsyslogd; the configurations are contrib/rsyslog/*.conf, filled in as tests/fleet.rs does.
#
#   live:     collector up; each host imports N events at once (three imports in parallel);
#             time from the start of the imports until all 3×N lines are in the collector's file.
#   backlog:  collector down while the hosts import N events each (the senders queue them: memory,
#             then disk past the queue's high watermark); time from starting the collector until
#             all 3×N lines arrived. This is the collector's and RELP's own rate.
#
# Usage: benches/fleet.sh [events per host, default 20000] [work dir]
# Needs rsyslogd with imfile/imrelp/omrelp (apt-get install rsyslog rsyslog-relp) and python3.
# Uses target/release/dokku-audit (built if missing), or DOKKU_AUDIT_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
n="${1:-20000}"
work="${2:-$(mktemp -d)}"
if [[ -n "${DOKKU_AUDIT_BIN:-}" ]]; then
  bin="$DOKKU_AUDIT_BIN"
else
  cargo build --release --quiet
  bin="$root/target/release/dokku-audit"
fi
mkdir -p "$work"
# One segment per host for the whole run (an import seals full segments without keeping plain
# copies, which a shipper would then never see); no daily rotation across the demo's days.
export DOKKU_AUDIT_SEGMENT_MAX_BYTES=1073741824 DOKKU_AUDIT_SEGMENT_ROTATE_DAILY=false
export DOKKU_AUDIT_DURABILITY=relaxed

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

fill() { # fill <template> <output> <NAME=value>...
  local text
  text="$(cat "$root/contrib/rsyslog/$1")"
  local out="$2"
  shift 2
  for kv in "$@"; do
    text="${text//@${kv%%=*}@/${kv#*=}}"
  done
  printf '%s\n' "$text" >"$out"
}

start() { # start <name>: rsyslogd with <work>/<name>.conf, pid file and log
  rm -f "$work/$1.pid"
  /usr/sbin/rsyslogd -n -f "$work/$1.conf" -i "$work/$1.pid" >>"$work/$1.log" 2>&1 &
  pids+=("$!")
}

lines() { # unique (host, id) pairs received so far
  [[ -f "$work/fleet.jsonl" ]] || { echo 0; return; }
  python3 - "$work/fleet.jsonl" <<'PY'
import json, sys
seen = set()
with open(sys.argv[1], "rb") as f:
    for line in f:
        try:
            v = json.loads(line)
            seen.add((v["meta"]["host_id"], v["id"]))
        except Exception:
            pass
print(len(seen))
PY
}

wait_for() { # wait_for <count>: until the collector has it (10 minutes at most)
  local deadline=$((SECONDS + 600))
  while [[ "$(lines)" -lt "$1" ]]; do
    if [[ $SECONDS -gt $deadline ]]; then
      echo "timed out: $(lines) of $1 arrived; see $work/*.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

now() { date +%s.%N; }

# N events per host, each host's copy with its own host id.
rm -rf "$work/gen"
"$bin" --data-dir "$work/gen" demo --events "$n" --days 1 --show 0 >/dev/null
"$bin" --data-dir "$work/gen" export >"$work/demo.jsonl"

run() { # run <phase>: live or backlog
  local phase="$1" out="$work/fleet.jsonl"
  rm -rf "$work/collector-work" "$out" "$work"/host-* && mkdir -p "$work/collector-work"
  fill collector.conf "$work/collector.conf" "WORK_DIR=$work/collector-work" \
    "ADDRESS=127.0.0.1" "PORT=$port" "OUTPUT=$out"
  for h in 0 1 2; do
    local d="$work/host-$h"
    mkdir -p "$d/data/segments" "$d/work"
    hid="$(printf '%032x' $((0xbe0c0 + h)))"
    python3 - "$work/demo.jsonl" "$d/events.jsonl" "$hid" "bench-host-$h" <<'PY'
import json, sys
src, dst, hid, name = sys.argv[1:]
with open(src) as f, open(dst, "w") as o:
    for line in f:
        v = json.loads(line)
        v["meta"]["host_id"], v["meta"]["host_name"] = hid, name
        o.write(json.dumps(v, separators=(",", ":")) + "\n")
PY
    fill sender.conf "$work/sender-$h.conf" "WORK_DIR=$d/work" "SEGMENTS=$d/data/segments" \
      "COLLECTOR=127.0.0.1" "PORT=$port"
    start "sender-$h"
  done
  [[ "$phase" == live ]] && start collector
  sleep 1
  local t0 t1 t2 tfrom
  t0="$(now)"
  local imports=()
  for h in 0 1 2; do
    DOKKU_AUDIT_HOST_ID="$(printf '%032x' $((0xbe0c0 + h)))" \
      "$bin" --data-dir "$work/host-$h/data" import "$work/host-$h/events.jsonl" >/dev/null &
    imports+=("$!")
  done
  wait "${imports[@]}"
  t1="$(now)"
  tfrom="$t0"
  if [[ "$phase" == backlog ]]; then
    sleep 2 # let the senders read everything into their queues
    tfrom="$(now)"
    start collector
  fi
  # What the hosts hold: the imported events and each import's own maintenance event.
  local stored
  stored="$(cat "$work"/host-*/data/segments/*.jsonl | wc -l)"
  wait_for "$stored"
  t2="$(now)"
  python3 -c "import sys; t0, t1, tf, t2, n = map(float, sys.argv[1:]); print('%-8s 3 hosts, %d events: imports took %.1f s; all arrived %.1f s after %s: %.0f events/s through the collector' % ('$phase', n, t1 - t0, t2 - tf, 'the imports started' if tf == t0 else 'the collector started', n / (t2 - tf)))" "$t0" "$t1" "$tfrom" "$t2" "$stored"
  sleep 1
  local total
  total="$(wc -l <"$out")"
  echo "         lines received: $total ($((total - stored)) duplicates)"
  cleanup
  pids=()
  sleep 1
}

run live
run backlog
echo "work dir: $work"
