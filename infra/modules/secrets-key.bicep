// Writes BERTH_SECRETS_KEY into the vault. key-vault.bicep deploys this module only when a key is
// given, so that a later provisioning without one leaves the key that sealed the stored secrets.

@description('Name of the vault.')
param vaultName string

@description('Name of the secret.')
param secretName string

@secure()
@description('32 random bytes in base64.')
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    // checkov:skip=CKV_AZURE_41: the key must stay readable for as long as anything sealed with it is stored; rotation (a new key, the old one kept for opening) replaces expiry.
    value: value
    contentType: 'application/octet-stream; base64, 32 bytes'
    attributes: {
      enabled: true
    }
  }
}
