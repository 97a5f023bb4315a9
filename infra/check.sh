#!/usr/bin/env bash
# Checks infra/ as CI does: every .bicep file parses (tree-sitter-bicep), checkov passes with parse
# errors counted as failures and every suppression justified, and app-settings.txt names exactly
# the app settings the Bicep sets; then the checker's own tests. Exits non-zero on any failure.
#
# The tools come from PyPI, pinned in tools/requirements.txt, into a virtualenv outside the
# checkout ($BERTH_CACHE/infra-venv-<python version>, default ~/.cache/berth/...), one per Python
# version so that shells with different interpreters do not rebuild each other's, and rebuilt when
# the pins change. No Azure access and no Bicep CLI needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_CACHE:-$HOME/.cache/berth}
python=${BERTH_PYTHON:-python3}

log() { printf 'infra: %s\n' "$*" >&2; }

command -v "$python" >/dev/null 2>&1 || { log "needs $python (3.10 or newer) on PATH"; exit 1; }
version=$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
venv=$cache/infra-venv-$version
stamp=$(sha256sum "$here/tools/requirements.txt" | cut -d' ' -f1)

mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "installing checkov and tree-sitter-bicep into $venv (takes a minute or two once)"
  rm -rf "$venv"
  "$python" -m venv "$venv" || { log "$python cannot make a virtualenv (on Debian: apt-get install python3-venv)"; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$here/tools/requirements.txt"
  printf '%s\n' "$stamp" >"$venv/.stamp"
fi
flock -u 9

# No __pycache__ in the checkout.
export PYTHONDONTWRITEBYTECODE=1
status=0
"$venv/bin/python" "$here/tools/check.py" "$here" || status=1
"$venv/bin/python" -m unittest discover --start-directory "$here/tools" --pattern 'test_*.py' || status=1
if [ "$status" = 0 ]; then log "all checks passed"; else log "FAILED (see above)"; fi
exit "$status"
