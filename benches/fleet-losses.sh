#!/usr/bin/env bash
# The three ways the RELP fleet setup (contrib/rsyslog/*.conf) can lose lines, each reproduced
# with one host and one collector (docs/fleet.md "Failure modes"); tests/fleet.rs covers the
# cases that lose nothing. Each scenario prints how many lines were lost and duplicated, and
# the gaps `fleet-heads` reports, which is how a loss is found in production.
#
#   kill-sender:      60 events; the collector is down for events 20..40; the sender is
#                     SIGKILLed and started again at event 50.
#   stop-while-down:  60 events; the collector is down for events 20..40; the sender is
#                     stopped (SIGTERM) and started again at event 30, while it is down.
#   queue-full:       20 000 events imported while the collector is down, into a sender whose
#                     disk queue is 1 MiB; then the collector starts.
#
# Usage: benches/fleet-losses.sh [scenario…]   (default: all three)
# Needs rsyslogd with imfile/imrelp/omrelp and python3; uses DOKKU_AUDIT_BIN or
# target/debug/dokku-audit (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
bin="${DOKKU_AUDIT_BIN:-$root/target/debug/dokku-audit}"
[[ -x "$bin" ]] || cargo build --quiet
export DOKKU_AUDIT_HOST_ID=0000000000000000000000000000105e DOKKU_AUDIT_DURABILITY=relaxed

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

fill() { # fill <template> <output> <NAME=value>...
  local text out="$2"
  text="$(cat "$root/contrib/rsyslog/$1")"
  shift 2
  for kv in "$@"; do
    text="${text//@${kv%%=*}@/${kv#*=}}"
  done
  printf '%s\n' "$text" >"$out"
}

# start <name>: rsyslogd with $work/<name>.conf; its pid in $started
start() {
  rm -f "$work/$1.pid"
  /usr/sbin/rsyslogd -n -f "$work/$1.conf" -i "$work/$1.pid" >>"$work/$1.log" 2>&1 &
  started=$!
  pids+=("$started")
}

setup() { # setup [sed expression for the sender config]
  work="$(mktemp -d)"
  mkdir -p "$work/cw" "$work/sw" "$work/data/segments"
  local port
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  fill collector.conf "$work/collector.conf" "WORK_DIR=$work/cw" "ADDRESS=127.0.0.1" \
    "PORT=$port" "OUTPUT=$work/out.jsonl"
  fill sender.conf "$work/sender.conf" "WORK_DIR=$work/sw" "SEGMENTS=$work/data/segments" \
    "COLLECTOR=127.0.0.1" "PORT=$port"
  if [[ -n "${1:-}" ]]; then sed -i -e "$1" "$work/sender.conf"; fi
}

event() { # event <n>: one event on the host, rotating every few events
  DOKKU_AUDIT_SEGMENT_MAX_BYTES=4096 "$bin" --data-dir "$work/data" \
    report-deploy-status "app$1" failed >/dev/null
}

report() { # report <scenario>: wait (60 s at most) for the collector, then count
  local stored have t
  stored="$(cat "$work"/data/segments/*.jsonl | wc -l)"
  for t in $(seq 1 60); do
    have="$( (cut -d, -f1 "$work/out.jsonl" 2>/dev/null || true) | sort -u | wc -l)"
    [[ "$have" -ge "$stored" ]] && break
    sleep 1
  done
  local total
  total="$(wc -l <"$work/out.jsonl" 2>/dev/null || echo 0)"
  echo "$1: $stored events stored, $have arrived ($((stored - have)) lost), $((total - have)) duplicates (waited ${t} s)"
  "$bin" fleet-heads "$work/out.jsonl" 2>&1 >/dev/null | sed 's/^/    fleet-heads: /' || true
  cleanup
  echo "    work dir: $work"
}

kill_sender() {
  setup
  local collector sender
  start collector && collector=$started
  start sender && sender=$started
  sleep 1
  for i in $(seq 1 60); do
    event "$i"
    if [[ $i == 20 ]]; then kill -KILL "$collector"; fi
    if [[ $i == 40 ]]; then start collector; fi
    if [[ $i == 50 ]]; then kill -KILL "$sender"; start sender && sender=$started; fi
    sleep 0.05
  done
  report kill-sender
}

stop_while_down() {
  setup
  local collector sender
  start collector && collector=$started
  start sender && sender=$started
  sleep 1
  for i in $(seq 1 60); do
    event "$i"
    if [[ $i == 20 ]]; then kill -KILL "$collector"; fi
    if [[ $i == 30 ]]; then
      kill -TERM "$sender"
      while kill -0 "$sender" 2>/dev/null; do sleep 0.1; done
      start sender && sender=$started
    fi
    if [[ $i == 40 ]]; then start collector; fi
    sleep 0.05
  done
  report stop-while-down
}

queue_full() {
  setup 's/queue.size="100000" queue.highWatermark="20000" queue.lowWatermark="2000"/queue.size="1000" queue.highWatermark="500" queue.lowWatermark="100"/; s/queue.maxDiskSpace="1g"/queue.maxDiskSpace="1m"/'
  start sender
  sleep 1
  "$bin" --data-dir "$work/gen" demo --events 20000 --days 1 --show 0 >/dev/null
  "$bin" --data-dir "$work/gen" export >"$work/events.jsonl"
  DOKKU_AUDIT_SEGMENT_ROTATE_DAILY=false DOKKU_AUDIT_SEGMENT_MAX_BYTES=1073741824 \
    "$bin" --data-dir "$work/data" \
    import "$work/events.jsonl" >/dev/null
  sleep 15 # the sender reads everything; its queue fills
  start collector
  report queue-full
}

for s in "${@:-kill-sender stop-while-down queue-full}"; do
  for one in $s; do
    case "$one" in
      kill-sender) kill_sender ;;
      stop-while-down) stop_while_down ;;
      queue-full) queue_full ;;
      *) echo "unknown scenario: $one" >&2; exit 1 ;;
    esac
  done
done
