#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS_PER_TARGET (default 20), one after the other.
# Exits non-zero when any target finds a crash, a failed property, a timeout or an out-of-memory;
# the input is saved under fuzz/artifacts/<target>/ and the command that replays it is printed.
#
# Self-sufficient: installs cargo-fuzz if it is missing. Runs on the stable toolchain: libFuzzer's
# coverage instrumentation needs no nightly, only AddressSanitizer does, and `-s none` leaves it
# out (Berth denies unsafe code; see README.md).
#
# Environment: BERTH_FUZZ_TARGET_DIR (build folder, default ~/.cache/berth/fuzz-target, worth
# caching in CI), BERTH_FUZZ_TARGETS (space-separated subset, default all) and BERTH_FUZZ_DEV
# (set: an unoptimised build, as CI's short run uses).
set -euo pipefail

seconds=${1:-20}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: fuzz/run.sh [SECONDS_PER_TARGET]  (a whole number of seconds, got '$seconds')" >&2
  exit 2
fi
CARGO_FUZZ_VERSION=0.13.2
fuzz=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz"
cache=${BERTH_CACHE:-$HOME/.cache/berth}
target_dir=${BERTH_FUZZ_TARGET_DIR:-$cache/fuzz-target}
log() { printf 'fuzz: %s\n' "$*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install, once; cache ~/.cargo/bin)"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

profile=()
if [ -n "${BERTH_FUZZ_DEV:-}" ]; then
  # Unoptimised: builds several times faster and runs slower; enough for CI's short run.
  profile=(--dev)
  target_dir=$target_dir-dev
fi
fuzz_args=(--sanitizer none --target-dir "$target_dir" "${profile[@]}")
targets=${BERTH_FUZZ_TARGETS:-$(cargo fuzz list)}
started=$(date +%s)
log "building ${targets//$'\n'/ }"
cargo fuzz build "${fuzz_args[@]}"
log "built in $(($(date +%s) - started)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $targets; do
  mkdir -p "$work/$target" "artifacts/$target"
  case $target in
    spec_json | spec_secrets) words=(dict/spec.dict) ;;
    spec_yaml) words=(dict/spec.dict dict/yaml.dict) ;;
    host_payload) words=(dict/host.dict) ;;
    http_route) words=(dict/route.dict) ;;
    *) words=() ;;
  esac
  dict=()
  if [ ${#words[@]} -gt 0 ]; then
    cat "${words[@]}" >"$work/$target.dict"
    dict=(-dict="$work/$target.dict")
  fi
  # The first folder receives what the fuzzer finds; the committed seeds are only read.
  set +e
  cargo fuzz run "${fuzz_args[@]}" "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" >"$work/$target.log" 2>&1
  status=$?
  set -e
  stats=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$work/$target.log" | tail -1 || true)
  runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$work/$target.log")
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $target ok: $runs runs in ${seconds} s; last: $stats"
  else
    failed+=("$target")
    echo "fuzz: $target FAILED (exit $status):"
    grep -vE '^(#[0-9]+|INFO:|MERGE|stat::)' "$work/$target.log" | tail -40
    artifact=$(grep -oE "artifacts/$target/[a-z-]+-[0-9a-f]+" "$work/$target.log" | tail -1 || true)
    if [ -n "$artifact" ]; then
      echo "fuzz: replay with: (cd fuzz && cargo fuzz run -s none $target $artifact)"
    fi
  fi
done
log "done in $(($(date +%s) - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
