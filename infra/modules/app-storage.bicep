// The Function App's own storage account (AzureWebJobsStorage): host coordination blobs, Berth's
// checkpoints, history and logs, the workflow-step queue, and the container Flex Consumption runs
// the app package from. Shared Key access is off: the host, Berth and the platform all reach it
// with the handler's identity.

@minLength(3)
@maxLength(24)
@description('Name of the storage account.')
param name string

@description('Region of the account.')
param location string

@description('Tags of the account.')
param tags object

@description('The workflow-step queue (BERTH_QUEUE).')
param queueName string

@description('The submit queue (BERTH_SUBMIT_QUEUE).')
param submitQueueName string

@description('Object id of the Event Grid system topic that sends blob events to the submit queue; empty: none.')
param eventSenderPrincipalId string = ''

@description('Blob container that Flex Consumption deploys the app package to.')
param packageContainerName string

@description('Private networking: public network access off; the app reaches the account through private endpoints (modules/network.bicep).')
param privateNetworking bool

@description('Object id of the handler\'s identity.')
param principalId string

// Storage Blob Data Contributor and Storage Queue Data Contributor: what the Functions host
// (blob leases, timer locks, keys), the queue trigger and Berth's stores use.
var blobDataContributorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
var queueDataContributorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // checkov:skip=CKV_AZURE_206: LRS on purpose: the account holds checkpoints of container groups that live in one region anyway; choose a ZRS name here for zone redundancy at about 1.25x the price.
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // checkov:skip=CKV_AZURE_59: without privateNetworking: the Flex Consumption workers reach the account over its public endpoint; every request still needs an Entra ID token (Shared Key is off).
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: without privateNetworking: the Flex Consumption workers reach the account over its public endpoint; every request still needs an Entra ID token (Shared Key is off).
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: packageContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource stepQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: queueName
}

resource submitQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: submitQueueName
}

// Storage Queue Data Message Sender, on the account, for the Event Grid topic's identity: it can add
// messages to queues and nothing else (it reads no checkpoint and no step).
var queueMessageSenderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a')

resource eventSenderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(eventSenderPrincipalId)) {
  name: guid(account.id, eventSenderPrincipalId, queueMessageSenderRoleId)
  scope: account
  properties: {
    roleDefinitionId: queueMessageSenderRoleId
    principalId: eventSenderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource blobAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, blobDataContributorRoleId)
  scope: account
  properties: {
    roleDefinitionId: blobDataContributorRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, queueDataContributorRoleId)
  scope: account
  properties: {
    roleDefinitionId: queueDataContributorRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('ARM id of the account.')
output id string = account.id

@description('Name of the account (AzureWebJobsStorage__accountName).')
output name string = account.name

@description('URL of the app package container.')
output packageContainerUrl string = '${account.properties.primaryEndpoints.blob}${packageContainer.name}'
