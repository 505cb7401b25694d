#!/usr/bin/env bash
# Whole-process timings of the hook path, side by side with the physical floor of "one process
# start plus one durable 300-byte append" (dd with O_DSYNC), in the same hyperfine run.
# Usage: benches/hooks.sh [data dir parent]   (needs hyperfine; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
# The shipped binary's profile by default (`make dist`); PROFILE=release for the everyday build.
profile="${PROFILE:-dist}"
cargo build --profile "$profile" --quiet
parent="${1:-$(mktemp -d)}"
export DOKKU_AUDIT_BIN="$PWD/target/$profile/dokku-audit"
export DOKKU_AUDIT_DATA_DIR="$parent/data"
export DOKKU_AUDIT_DOKKU_VERSION=0.38.27 DOKKU_PID=4242
rm -rf "$DOKKU_AUDIT_DATA_DIR"
"$DOKKU_AUDIT_BIN" migrate >/dev/null
floor="$parent/floor"
: >"$floor"
hyperfine --warmup 20 --runs "${RUNS:-300}" -N --export-json "$parent/hooks.json" \
  --prepare "true" \
  --prepare "plugin/receive-app myapp abcdef1234567890" \
  --prepare "true" \
  --prepare "plugin/user-auth dokku alice config:set --no-restart myapp SECRET=x" \
  --prepare "true" \
  --command-name "floor: dd 300 B append+dsync" \
  "dd if=/dev/zero of=$floor bs=300 count=1 oflag=append,dsync conv=notrunc status=none" \
  --command-name "post-deploy (after receive-app)" \
  "plugin/post-deploy myapp '' '' dokku/myapp:latest" \
  --command-name "user-auth config:set" \
  "plugin/user-auth dokku alice config:set myapp SECRET=x" \
  --command-name "post-config-update (after user-auth)" \
  "plugin/post-config-update myapp set SECRET" \
  --command-name "user-auth apps:list (skipped)" \
  "plugin/user-auth dokku alice apps:list"
# Medians, and each as a multiple of the floor's median.
jq -r '.results as $r | ($r[0].median) as $floor | $r[] |
  "\(.command)\t\(.median * 1000 * 100 | round / 100) ms\t\(.median / $floor * 10 | round / 10)x"' \
  "$parent/hooks.json" | column -t -s $'\t'
