#!/usr/bin/env bash
# Makes the virtualenvs of the emulator's client tests (emulator/tests/clients.rs): `sdk` with the
# official ACI SDK (requirements.txt) and `cli` with the Azure CLI's container code
# (requirements-cli.txt), from PyPI, under $BERTH_CACHE/aci-clients-<python version> (default
# ~/.cache/berth/...). Idempotent: rebuilt only when the pins change (a stamp holds their hash).
#
#   setup.sh          build when missing or stale
#   setup.sh --path   print the folder holding both virtualenvs when it is up to date; exit 1
#                     (saying what to run) otherwise. The tests call this.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_CACHE:-$HOME/.cache/berth}
python=${BERTH_PYTHON:-python3}

log() { printf 'aci-clients: %s\n' "$*" >&2; }

command -v "$python" >/dev/null 2>&1 || { log "needs $python (3.10 or newer) on PATH"; exit 1; }
version=$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
root=$cache/aci-clients-$version
stamp=$(cat "$here/requirements.txt" "$here/requirements-cli.txt" | sha256sum | cut -d' ' -f1)

fresh() { [ -x "$root/sdk/bin/python" ] && [ -x "$root/cli/bin/python" ] && [ "$(cat "$root/.stamp" 2>/dev/null)" = "$stamp" ]; }

if [ "${1:-}" = "--path" ]; then
  if fresh; then
    printf '%s\n' "$root"
    exit 0
  fi
  log "the client virtualenvs in $root are missing or stale: run emulator/tests/clients/setup.sh (bin/test does)"
  exit 1
fi

mkdir -p "$cache"
exec 9>"$root.lock"
flock 9
if ! fresh; then
  log "installing the ACI SDK and the Azure CLI's container code into $root (about a minute, once)"
  rm -rf "$root"
  for name in sdk cli; do
    "$python" -m venv "$root/$name" || { log "$python cannot make a virtualenv (on Debian: apt-get install python3-venv)"; exit 1; }
  done
  pip() { "$root/$1/bin/pip" install --quiet --disable-pip-version-check --no-input --no-deps -r "$2"; }
  pip sdk "$here/requirements.txt"
  pip cli "$here/requirements-cli.txt"
  printf '%s\n' "$stamp" >"$root/.stamp"
fi
flock -u 9
