# Shared set-up for bin/handler, bin/berth and bin/test: installs what Berth needs beyond the Rust toolchain.
# Sourced, not run. Everything installed lives outside the checkout (Debian packages, ~/.cache/berth).

BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$BERTH_CACHE/target}
AZURITE_VERSION=3.37.0

log() { printf 'berth: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

# The emulator runs containers under bubblewrap.
ensure_bubblewrap() {
  command -v bwrap >/dev/null 2>&1 && return 0
  log "installing bubblewrap (Debian package) for the ACI emulator"
  as_root apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
    { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq bubblewrap >/dev/null; }
}

# The dashboard's browser tests drive headless Chromium (Debian's package) over the DevTools protocol.
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  log "installing chromium (Debian package) for the dashboard's browser tests"
  as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
}

# Azurite (npm) stands in for Azure Storage in tests.
ensure_azurite() {
  local dir=$BERTH_CACHE/azurite-$AZURITE_VERSION
  if [ ! -x "$dir/node_modules/.bin/azurite" ]; then
    log "installing azurite@$AZURITE_VERSION from npm"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "azurite@$AZURITE_VERSION" >/dev/null 2>&1 ||
      npm install --no-audit --no-fund --prefix "$dir" "azurite@$AZURITE_VERSION"
  fi
  AZURITE_BIN=$dir/node_modules/.bin/azurite
}
