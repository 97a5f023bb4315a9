// The handler's user-assigned identity. It is created before everything that trusts it, so that
// role assignments and the Function App can name it; it outlives a redeployment of the app.

@description('Name of the identity.')
param name string

@description('Region of the identity.')
param location string

@description('Tags of the identity.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('ARM id of the identity.')
output id string = identity.id

@description('Client id (AZURE_CLIENT_ID, AzureWebJobsStorage__clientId).')
output clientId string = identity.properties.clientId

@description('Object id that role assignments name.')
output principalId string = identity.properties.principalId
