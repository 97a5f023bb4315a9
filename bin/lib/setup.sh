# Shared set-up for bin/handler, bin/berth, bin/test, infra/check.sh and tests/clients/venv.sh:
# installs what Berth needs beyond the Rust toolchain.
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

# ensure_venv NAME REQUIREMENTS...: makes the virtualenv $BERTH_CACHE/NAME-<python version> from the
# pinned requirements files and sets VENV to it. One per Python version, so that shells with
# different interpreters do not rebuild each other's; rebuilt only when the pins change (a stamp
# holds their hash), under a lock so that parallel callers do not build it twice. BERTH_PYTHON
# names the interpreter (default python3).
ensure_venv() {
  local name=$1 python=${BERTH_PYTHON:-python3} version stamp
  shift
  command -v "$python" >/dev/null 2>&1 || { log "needs $python (3.10 or newer) on PATH"; return 1; }
  version=$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
  VENV=$BERTH_CACHE/$name-$version
  stamp=$(cat "$@" | sha256sum | cut -d' ' -f1)
  mkdir -p "$BERTH_CACHE"
  exec 9>"$VENV.lock"
  flock 9
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "installing $(grep -hv '^#' "$@" | tr '\n' ' ')into $VENV (a minute or two, once)"
    rm -rf "$VENV"
    "$python" -m venv "$VENV" ||
      { log "$python cannot make a virtualenv (on Debian: apt-get install python3-venv)"; flock -u 9; return 1; }
    local requirements
    for requirements in "$@"; do
      "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
    done
    printf '%s\n' "$stamp" >"$VENV/.stamp"
  fi
  flock -u 9
}
