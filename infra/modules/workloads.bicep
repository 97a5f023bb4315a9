// The resource group where Berth creates container groups (BERTH_RESOURCE_GROUP), deployed at that
// group's scope: the workloads storage account with its Azure Files share, and the handler's two
// roles here: container groups in this group, and listKeys on this account only. Berth fetches the
// share key when it creates a group whose azureFile volume carries no storageAccountKey, so the
// key is never stored in settings.

@minLength(3)
@maxLength(24)
@description('Name of the workloads storage account.')
param name string

@description('Region of the account.')
param location string

@description('Tags of the account.')
param tags object

@description('Name of the Azure Files share.')
param shareName string

@description('Quota of the share in GiB.')
param shareQuotaGiB int

@description('Private networking: public network access off; container groups in the workloads subnet mount the share through its private endpoint (modules/network.bicep).')
param privateNetworking bool

@description('Object id of the handler\'s identity.')
param principalId string

@description('ARM id of the custom role over container groups.')
param aciOperatorRoleId string

@description('ARM id of the custom role that lists storage account keys.')
param shareKeyRoleId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // checkov:skip=CKV_AZURE_206: LRS on purpose: the share serves container groups in this one region and holds working data, not the system of record.
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    // Shared Key stays on for this account alone: ACI mounts Azure Files over SMB with the account
    // key (container groups have no identity-based SMB mount). The key is fetched at create time
    // with listKeys, never stored.
    allowSharedKeyAccess: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // checkov:skip=CKV_AZURE_59: without privateNetworking: container groups mount the share over the public endpoint; access needs the account key, which only the handler's identity can list.
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: without privateNetworking: container groups mount the share over the public endpoint; access needs the account key, which only the handler's identity can list.
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    shareDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource share 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: fileService
  name: shareName
  properties: {
    accessTier: 'TransactionOptimized'
    enabledProtocols: 'SMB'
    shareQuota: shareQuotaGiB
  }
}

resource aciOperatorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, aciOperatorRoleId)
  properties: {
    roleDefinitionId: aciOperatorRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource shareKeyAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, shareKeyRoleId)
  scope: account
  properties: {
    roleDefinitionId: shareKeyRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('ARM id of the workloads storage account.')
output storageId string = account.id

@description('Name of the workloads storage account.')
output storageName string = account.name

@description('Name of the Azure Files share.')
output shareName string = share.name
