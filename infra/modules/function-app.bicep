// The Flex Consumption plan and the Function App that runs `handler` as a custom handler. The app
// runs as the user-assigned identity alone: host storage, the app package, Application Insights,
// the Key Vault reference and Berth's ARM calls all use it, so no app setting holds a credential.
//
// Flex Consumption takes the runtime from functionAppConfig.runtime (custom) and rejects a
// FUNCTIONS_WORKER_RUNTIME app setting; FUNCTIONS_EXTENSION_VERSION is deprecated there (the
// platform runs Functions 4.x and sets it itself). Neither is set here.

@description('Name of the Function App.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Region of both.')
param location string

@description('Tags of both.')
param tags object

@description('ARM id of the handler\'s user-assigned identity.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

@description('Name of the app storage account (AzureWebJobsStorage).')
param storageName string

@description('URL of the blob container Flex Consumption runs the app package from.')
param packageContainerUrl string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('ARM id of the Log Analytics workspace that container groups log to.')
param workspaceId string

@description('Version-less URI of the BERTH_SECRETS_KEY secret.')
param secretsKeyUri string

@description('URI of a pinned version of the BERTH_SECRETS_KEY secret that still opens what it sealed (BERTH_SECRETS_KEY_PREVIOUS), or empty.')
param secretsKeyPreviousUri string

@description('The workflow-step queue.')
param queueName string

@description('The submit queue (BERTH_SUBMIT_QUEUE).')
param submitQueueName string

@description('BERTH_SUBMIT_EVENTS: which template an Event Grid event type starts.')
param submitEvents string

@description('BERTH_EVENTGRID_TOPIC: the topic endpoint outcomes are published to; empty: none.')
param eventGridTopic string

@description('Subscription of the container groups.')
param subscriptionId string

@description('Resource group of the container groups.')
param workloadResourceGroupName string

@description('Region of the container groups.')
param workloadLocation string

@description('ACI api-version.')
param aciApiVersion string

@description('App settings a spec\'s secureValueFrom may read (BERTH_SECURE_VALUE_FROM); empty allows none.')
param secureValueFrom string

@description('With private networking: ARM id of the subnet the app integrates with; empty otherwise.')
param appSubnetId string

@description('Memory of each instance in MB.')
param instanceMemoryMB int

@description('Most instances the app scales out to.')
param maximumInstanceCount int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption requires at least two always-ready instances per function group, billed around the clock; Berth's state is in storage and a lost instance only delays a step.
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys the `handler` service of azure.yaml to the app carrying this tag.
  tags: union(tags, {
    'azd-service-name': 'handler'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    // checkov:skip=CKV_AZURE_222: Berth's HTTP API is public by design; callers need a function key and container callbacks a per-deployment token.
    publicNetworkAccess: 'Enabled'
    serverFarmId: plan.id
    // Private networking: outbound traffic (storage, Key Vault references, ARM) leaves through
    // this subnet, where the private endpoints' DNS zones resolve.
    virtualNetworkSubnetId: empty(appSubnetId) ? null : appSubnetId
    // checkov:skip=CKV_AZURE_212: the app scales to zero on purpose (no always-ready instance is billed at rest); queue and timer triggers wake it.
    // checkov:skip=CKV_AZURE_213: a health-check probe would keep an instance running and billed; the Functions host already restarts a custom handler that stops answering.
    // checkov:skip=CKV_AZURE_78: Flex Consumption rejects the ftpsState property; FTP is shut by the ftp publishing-credentials policy below and deployments use Entra ID.
    httpsOnly: true
    // checkov:skip=CKV_AZURE_17: callers authenticate with function keys and containers with callback tokens; client certificates would shut out the containers' callbacks.
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      // Every app setting the app gets, and nothing else: infra/app-settings.txt lists these names
      // and infra/check.sh fails when the two differ.
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'BERTH_SUBSCRIPTION_ID'
          value: subscriptionId
        }
        {
          name: 'BERTH_RESOURCE_GROUP'
          value: workloadResourceGroupName
        }
        {
          name: 'BERTH_LOCATION'
          value: workloadLocation
        }
        {
          name: 'BERTH_ACI_API_VERSION'
          value: aciApiVersion
        }
        {
          // The default host name of an app created without a unique-hostname scope; callbacks
          // from containers go here. apiUrl below reads the name the site actually got.
          name: 'BERTH_PUBLIC_URL'
          value: 'https://${name}.azurewebsites.net'
        }
        {
          name: 'BERTH_QUEUE'
          value: queueName
        }
        {
          name: 'BERTH_SUBMIT_QUEUE'
          value: submitQueueName
        }
        {
          name: 'BERTH_SUBMIT_EVENTS'
          value: submitEvents
        }
        {
          name: 'BERTH_EVENTGRID_TOPIC'
          value: eventGridTopic
        }
        {
          name: 'BERTH_DIAGNOSTICS_WORKSPACE'
          value: workspaceId
        }
        {
          name: 'BERTH_SECRETS_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${secretsKeyUri})'
        }
        {
          // Empty unless a rotation is under way: an unresolvable reference would reach the
          // handler as the reference text itself and stop it at start.
          name: 'BERTH_SECRETS_KEY_PREVIOUS'
          value: empty(secretsKeyPreviousUri) ? '' : '@Microsoft.KeyVault(SecretUri=${secretsKeyPreviousUri})'
        }
        {
          name: 'BERTH_SECURE_VALUE_FROM'
          value: secureValueFrom
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: packageContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
    }
  }
}

// Deployments use Entra ID (azd, az functionapp deployment); publishing passwords stay off.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Name of the Function App.')
output name string = site.name

@description('Base URL of the HTTP API.')
output apiUrl string = 'https://${site.properties.defaultHostName}/api'
