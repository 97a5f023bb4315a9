#!/bin/sh
# azd preprovision hook: gives the first provisioning of an environment a BERTH_SECRETS_KEY.
#
# - A key already in this azd environment (an earlier provisioning stopped before
#   postprovision.sh cleared it): keep it, so a retry stores the same key.
# - The environment was provisioned before (its outputs name the Key Vault): pass no key; the
#   Bicep then leaves the key in Key Vault untouched, and the secrets sealed with it stay readable.
#   On a fresh clone of an existing environment, run `azd env refresh` first so this is known.
# - Otherwise generate 32 random bytes. The key is never printed; it goes to Key Vault through the
#   deployment and postprovision.sh removes it from the local azd environment afterwards.
set -eu

if [ -n "${BERTH_SECRETS_KEY:-}" ]; then
  echo "berth: provisioning with the BERTH_SECRETS_KEY already in this azd environment"
  exit 0
fi
if [ -n "${AZURE_KEY_VAULT_NAME:-}" ]; then
  echo "berth: keeping the BERTH_SECRETS_KEY stored in Key Vault $AZURE_KEY_VAULT_NAME"
  exit 0
fi

key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
if [ "${#key}" -ne 44 ]; then
  echo "berth: could not generate BERTH_SECRETS_KEY (head, base64 and /dev/urandom are needed)" >&2
  exit 1
fi
azd env set BERTH_SECRETS_KEY "$key" >/dev/null
echo "berth: generated a BERTH_SECRETS_KEY for this environment's first provisioning"
