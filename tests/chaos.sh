#!/usr/bin/env bash
# The chaos run: tests/chaos.sh [DEPLOYMENTS] [KILLS] [chaos options…] (defaults 200 and 50).
# Installs bubblewrap and Azurite if missing, builds handler, aci-emulator and chaos (profile
# CHAOS_PROFILE, default release), and runs the harness on loopback. It prints one line,
# `chaos: N deployments, K kills, L lost, D duplicate creates, O orphans, M missing logs,
# Q quota holds, E evictions, F fallbacks, T notified (R redelivered),
# S scheduled runs (X missed)`, and exits non-zero unless
# L, D, O and M are all zero, every notification checked out and every scheduled time is
# accounted for.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. bin/lib/setup.sh
ensure_bubblewrap
ensure_azurite

deployments=${1:-200}
kills=${2:-50}
shift $(( $# < 2 ? $# : 2 ))
profile=${CHAOS_PROFILE:-release}
case $profile in
  dev|debug) flag=(); dir=debug ;;
  release) flag=(--release); dir=release ;;
  *) flag=(--profile "$profile"); dir=$profile ;;
esac

log "building handler, aci-emulator and chaos ($profile)"
cargo build --locked "${flag[@]}" -p handler -p emulator -p berth-tests \
  --bin handler --bin aci-emulator --bin chaos
exec "$CARGO_TARGET_DIR/$dir/chaos" "$deployments" "$kills" --azurite "$AZURITE_BIN" "$@"
