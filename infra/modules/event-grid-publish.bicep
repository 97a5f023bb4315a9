// Opt-in (main.bicep's eventGridTopicId): the app's identity may publish to an existing Event Grid
// custom topic (input schema CloudEvents 1.0), where Berth sends every deployment's outcome
// (BERTH_EVENTGRID_TOPIC, the topic's endpoint). Publishing uses Entra ID, not the topic's keys.

@description('Name of the custom topic, in this module\'s resource group.')
param topicName string

@description('Principal id of the handler\'s identity.')
param principalId string

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

// EventGrid Data Sender: publish events to the topic, nothing else.
var dataSenderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'd5a91429-5739-47e2-a06b-3470a27159e7')

resource senderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, dataSenderRoleId)
  scope: topic
  properties: {
    roleDefinitionId: dataSenderRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('The topic\'s publish endpoint (BERTH_EVENTGRID_TOPIC).')
output endpoint string = topic.properties.endpoint
