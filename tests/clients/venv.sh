#!/usr/bin/env bash
# Makes (once, cached by the hash of requirements.txt) a virtualenv with the real clients the
# tests drive, and prints its python. Outside the checkout: $BERTH_CACHE/clients-venv-<python>
# (default ~/.cache/berth). Used by bin/test and, when BERTH_CLIENTS_PYTHON is unset, by the tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_CACHE:-$HOME/.cache/berth}
python=${BERTH_PYTHON:-python3}
version=$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
venv=$cache/clients-venv-$version
stamp=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  printf 'clients: installing %s into %s\n' "$(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')" "$venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
  printf '%s\n' "$stamp" >"$venv/.stamp"
fi
printf '%s\n' "$venv/bin/python"
