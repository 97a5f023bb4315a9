#!/bin/sh
# azd postprovision hook: the provisioning stored BERTH_SECRETS_KEY in Key Vault, so drop the local
# copy from the azd environment (.azure/<env>/.env). Later provisionings pass no key and keep the
# one in Key Vault (see preprovision.sh).
set -eu

if [ -n "${BERTH_SECRETS_KEY:-}" ]; then
  azd env set BERTH_SECRETS_KEY "" >/dev/null
  echo "berth: BERTH_SECRETS_KEY is in Key Vault ${AZURE_KEY_VAULT_NAME:-}; removed it from the local azd environment"
fi
