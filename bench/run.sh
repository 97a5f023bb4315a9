#!/usr/bin/env bash
# Berth's benchmarks in one command: builds handler, aci-emulator, the bench and its duroxide side
# in release mode, starts Azurite on loopback (ports of its own, data in a temporary folder), runs
# berth-bench, prints a table and writes target/bench/results.json.
#
#   bench/run.sh            the full run (about 10 minutes on 2 cores once built)
#   bench/run.sh --quick    under two minutes once built
#   bench/run.sh --only throughput,duroxide --repeats 1      any berth-bench flags pass through
#
# BERTH_BENCH_NO_AZURITE=1 skips Azurite; BERTH_BENCH_NO_DUROXIDE=1 skips the duroxide side.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. bin/lib/setup.sh

# The Function App package exactly as azd builds it (same script, same flags), in a folder of the
# bench's own: item 5 measures its binary (packaged_binary_mb). Before the build below, which
# puts the default-features handler (with `dev`) back in the release folder.
log "building the Function App package (infra/hooks/package.sh)"
package_dir=$CARGO_TARGET_DIR/bench-functionapp
BERTH_PACKAGE_DIST=$package_dir infra/hooks/package.sh

log "building handler, aci-emulator and the bench (release)"
cargo build --release --locked -p handler -p emulator -p bench
bin_dir=$CARGO_TARGET_DIR/release

args=(--out "$root/target/bench/results.json" --packaged "$package_dir/handler")
if [ -z "${BERTH_BENCH_NO_DUROXIDE:-}" ]; then
  # Its own lock file and target folder: see bench/duroxide/Cargo.toml for why.
  dx_target=$CARGO_TARGET_DIR/duroxide-bench
  log "building the duroxide side (release)"
  CARGO_TARGET_DIR=$dx_target cargo build --release --locked --manifest-path bench/duroxide/Cargo.toml
  args+=(--duroxide "$dx_target/release/duroxide-bench")
fi

if [ -z "${BERTH_BENCH_NO_AZURITE:-}" ]; then
  ensure_azurite
  azurite_dir=$(mktemp -d)
  blob_port=10110 queue_port=10111 table_port=10112
  "$AZURITE_BIN" --silent --disableTelemetry --skipApiVersionCheck --loose \
    --blobHost 127.0.0.1 --blobPort $blob_port --queueHost 127.0.0.1 --queuePort $queue_port \
    --tableHost 127.0.0.1 --tablePort $table_port --location "$azurite_dir" >"$azurite_dir.log" 2>&1 &
  azurite_pid=$!
  cleanup() { kill "$azurite_pid" 2>/dev/null || true; wait "$azurite_pid" 2>/dev/null || true; rm -rf "$azurite_dir" "$azurite_dir.log"; }
  trap cleanup EXIT
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$blob_port) 2>/dev/null && break
    sleep 0.1
  done
  # Azurite's well-known development account and key.
  key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  args+=(--azurite "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue_port/devstoreaccount1;")
fi

log "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (numbers are best below 1.5)"
"$bin_dir/berth-bench" "${args[@]}" "$@"
