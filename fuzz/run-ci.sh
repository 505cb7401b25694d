#!/usr/bin/env bash
# Runs every fuzz target for a bounded time with libFuzzer coverage feedback, on stable Rust.
#
# cargo-fuzz needs nightly only for `-Zsanitizer`; the coverage instrumentation libFuzzer steers
# by is plain LLVM SanitizerCoverage, which stable rustc enables with the flags below. They go
# through RUSTFLAGS with an explicit --target, so that build scripts and proc macros (built for
# the host without --target) are not instrumented, and into their own target directory, so this
# build never invalidates the plain `cargo build`/`cargo test` one.
#
#   FUZZ_SECONDS   seconds per target (default 30)
#   FUZZ_TARGETS   space-separated targets (default: all five)
#   FUZZ_JOBS      unused; one process per target, one after the other (2-core CI machine)
#
# Seeds: fuzz/corpus/<target>/ (committed, tiny). The corpus a run grows goes to
# fuzz/target-cov/corpus/<target>/ (not committed), seeded from the committed one. A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-30}"
targets="${FUZZ_TARGETS:-line_decode segment_reader hook_args query_parse http_head}"
host="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="target-cov"

export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks \
--cfg fuzzing"

echo "fuzz: building instrumented targets (${target_dir}, ${host})"
cargo build --quiet --release --bins --target "$host" --target-dir "$target_dir"
bin_dir="${target_dir}/${host}/release"

# Input size limits per target: the segment reader and codec work on lines and small segments;
# the argument parsers get room for long argument lists (hook_args builds its 1 MiB argument
# itself).
max_len() {
  case "$1" in
    segment_reader) echo 8192 ;;
    query_parse) echo 1024 ;;
    http_head) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

failed=0
for t in $targets; do
  bin="${bin_dir}/${t}"
  if [ ! -x "$bin" ]; then
    echo "fuzz ${t}: no such target" >&2
    failed=1
    continue
  fi
  work="${target_dir}/corpus/${t}"
  artifacts="artifacts/${t}"
  mkdir -p "$work" "$artifacts" "corpus/${t}"
  log="${target_dir}/fuzz-${t}.log"
  start=$(date +%s)
  status=0
  # -rss_limit_mb: the targets stay far below; -timeout: one input taking seconds is a bug.
  "$bin" "$work" "corpus/${t}" \
    -max_total_time="$seconds" \
    -max_len="$(max_len "$t")" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="${artifacts}/" \
    >"$log" 2>&1 || status=$?
  end=$(date +%s)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  modules=$(grep -m1 'INFO: Loaded .* inline 8-bit counters' "$log" || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  if [ -z "$modules" ]; then
    echo "fuzz ${t}: no coverage instrumentation found in the binary" >&2
    status=1
  fi
  crashes=0
  if [ "$status" -ne 0 ]; then
    crashes=1
    failed=1
    echo "---- fuzz ${t}: libFuzzer exited with ${status}; last lines of ${log}:" >&2
    tail -n 40 "$log" >&2
  fi
  echo "fuzz ${t}: ${execs:-0} execs in $((end - start)) s, ${crashes} crashes (${cov:-cov: ?})"
done
exit "$failed"
