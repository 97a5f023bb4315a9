// Key Vault for the one secret that no identity can replace: BERTH_SECRETS_KEY, the key that
// encrypts the secrets Berth stores for retries and healing. The Function App reads it through a
// Key Vault reference with the handler's identity, which may read this secret and no other.
// Nobody else gets a data-plane role: the secret is written through ARM at provisioning.

@description('Name of the vault.')
param name string

@description('Region of the vault.')
param location string

@description('Tags of the vault.')
param tags object

@description('Days a deleted vault stays recoverable.')
param retentionInDays int

@secure()
@description('32 random bytes in base64. Empty: leave the secret already in the vault as it is.')
param secretsKey string

@description('Version of the secret that held the previous key (BERTH_SECRETS_KEY_PREVIOUS), or empty.')
param previousVersion string

@description('Private networking: public network access off; the Function App resolves its Key Vault references through the private endpoint (modules/network.bicep).')
param privateNetworking bool

@description('Object id of the handler\'s identity.')
param principalId string

@description('ARM id of the Log Analytics workspace that receives the vault\'s audit log.')
param workspaceId string

var secretName = 'berth-secrets-key'
// Key Vault Secrets User: read secret values.
var secretsUserRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: retentionInDays
    enablePurgeProtection: true
    // checkov:skip=CKV_AZURE_189: without privateNetworking: the Function App has no virtual network, so it resolves the Key Vault reference over the public endpoint; reading needs Entra ID and RBAC scoped to one secret.
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_109: without privateNetworking: the Function App has no virtual network, so it resolves the Key Vault reference over the public endpoint; access is by Entra ID and RBAC scoped to one secret.
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Written only when a key is given: a later provisioning without one must not replace the key
// that sealed the secrets already stored.
module newSecret 'secrets-key.bicep' = if (!empty(secretsKey)) {
  name: 'berth-secrets-key'
  params: {
    vaultName: vault.name
    secretName: secretName
    value: secretsKey
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: secretName
}

resource secretReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, secretName, principalId, secretsUserRoleId)
  scope: secret
  dependsOn: [
    newSecret
  ]
  properties: {
    roleDefinitionId: secretsUserRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource auditLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

@description('ARM id of the vault.')
output id string = vault.id

@description('Name of the vault.')
output name string = vault.name

@description('Version-less URI of BERTH_SECRETS_KEY, for the Key Vault reference (the app follows the newest version).')
output secretsKeyUri string = '${vault.properties.vaultUri}secrets/${secretName}'

// The previous key is an older version of the same secret, so the identity's one role assignment
// above covers it and nobody has to read or copy the old key to keep it usable.
@description('URI of the pinned version of BERTH_SECRETS_KEY that BERTH_SECRETS_KEY_PREVIOUS refers to, or empty.')
output secretsKeyPreviousUri string = empty(previousVersion) ? '' : '${vault.properties.vaultUri}secrets/${secretName}/${previousVersion}'
