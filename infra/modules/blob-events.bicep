// Opt-in (main.bicep's blobEventsStorageAccountId): BlobCreated events of the topic's account, in
// the EventGridEvent schema, delivered to the submit queue with the topic's identity (Shared Key is
// off on the app account). Berth's submit function maps each to a template through
// BERTH_SUBMIT_EVENTS and the template's `from` parameters; the event id makes it idempotent.

@description('Name of the system topic (blob-events-topic.bicep).')
param topicName string

@description('ARM id of the app storage account holding the submit queue.')
param queueAccountId string

@description('The submit queue (BERTH_SUBMIT_QUEUE).')
param queueName string

@description('Only blobs whose subject begins with this; empty: every blob created.')
param subjectBeginsWith string

resource topic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' existing = {
  name: topicName
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: topic
  name: 'berth-submit'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: subjectBeginsWith
    }
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: queueAccountId
          queueName: queueName
          // Never expire: Berth decides what to drop (and says why).
          queueMessageTimeToLiveInSeconds: -1
        }
      }
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}
