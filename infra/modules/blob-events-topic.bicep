// Opt-in (main.bicep's blobEventsStorageAccountId): an Event Grid system topic on a storage account,
// with a system-assigned identity that app-storage.bicep lets add messages to the submit queue.
// Deployed in the source account's resource group; the subscription is blob-events.bicep.

@description('Name of the system topic.')
param name string

@description('ARM id of the storage account whose events the topic carries.')
param sourceAccountId string

@description('Tags of the topic.')
param tags object

resource source 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: last(split(sourceAccountId, '/'))
}

resource topic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: name
  location: source.location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: sourceAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

@description('Object id of the topic\'s identity (the queue sender).')
output principalId string = topic.identity.principalId
