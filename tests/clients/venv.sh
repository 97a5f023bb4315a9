#!/usr/bin/env bash
# Makes (once, cached by the hash of requirements.txt) a virtualenv with the real clients the
# tests drive, and prints its python. Outside the checkout: $BERTH_CACHE/clients-venv-<python>
# (default ~/.cache/berth). Used by bin/test and, when BERTH_CLIENTS_PYTHON is unset, by the tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../bin/lib/setup.sh"

log() { printf 'clients: %s\n' "$*" >&2; }

ensure_venv clients-venv "$here/requirements.txt"
printf '%s\n' "$VENV/bin/python"
