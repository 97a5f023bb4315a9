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
. "$here/../bin/lib/setup.sh"

log() { printf 'infra: %s\n' "$*" >&2; }

ensure_venv infra-venv "$here/tools/requirements.txt"
venv=$VENV

# No __pycache__ in the checkout.
export PYTHONDONTWRITEBYTECODE=1
status=0
"$venv/bin/python" "$here/tools/check.py" "$here" || status=1
"$venv/bin/python" -m unittest discover --start-directory "$here/tools" --pattern 'test_*.py' || status=1
if [ "$status" = 0 ]; then log "all checks passed"; else log "FAILED (see above)"; fi
exit "$status"
