// Berth on Azure: a Flex Consumption Function App running the `handler` custom handler, the
// storage, monitoring and Key Vault it needs, and a separate resource group where Berth creates
// container groups. The app's user-assigned identity gets only what Berth uses; see README.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(48)
@description('Name of the environment (azd sets it from AZURE_ENV_NAME). Names the resource groups and seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource, including the container groups Berth creates (BERTH_LOCATION). Must offer Flex Consumption and Azure Container Instances.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group of the Function App, its storage, monitoring and Key Vault. Empty: rg-<environmentName>.')
param appResourceGroupName string = ''

@description('Resource group where Berth creates container groups (BERTH_RESOURCE_GROUP); it also holds the workloads storage account with the Azure Files share. Empty: rg-<environmentName>-workloads.')
param workloadResourceGroupName string = ''

@secure()
@description('BERTH_SECRETS_KEY: 32 random bytes in base64 that encrypt the secrets Berth stores. Required on the first deployment (the azd preprovision hook generates one); empty on later deployments keeps the key already in Key Vault, so stored secrets stay readable.')
param secretsKey string = ''

@description('BERTH_SECRETS_KEY_PREVIOUS after a key rotation: the version (32 hex characters) of the Key Vault secret berth-secrets-key that held the key before the current one, so that what it sealed stays readable. The app setting is a Key Vault reference to that version; no one handles the old key. Empty (the default): the setting is empty and only the current key opens secrets. See OPERATIONS.md, key rotation.')
param secretsKeyPreviousVersion string = ''

@minLength(3)
@maxLength(63)
@description('The workflow-step queue (BERTH_QUEUE), created in the app storage account.')
param queueName string = 'berth-steps'

@minLength(3)
@maxLength(63)
@description('The submit queue (BERTH_SUBMIT_QUEUE), created in the app storage account: specs, template invocations and Event Grid events that start deployments (the submit function).')
param submitQueueName string = 'berth-submit'

@description('Which template an Event Grid event type starts (BERTH_SUBMIT_EVENTS): comma-separated type=template pairs, e.g. Microsoft.Storage.BlobCreated=transcode. Empty: events are dropped.')
param submitEvents string = ''

@description('Opt-in: ARM id of a storage account whose BlobCreated events go to the submit queue (an Event Grid system topic and subscription in that account\'s resource group, delivering with the topic\'s identity). Empty (the default): none.')
param blobEventsStorageAccountId string = ''

@description('With blobEventsStorageAccountId: only blobs whose subject begins with this are sent (e.g. /blobServices/default/containers/uploads/). Empty: every blob created.')
param blobEventsSubjectBeginsWith string = ''

@description('Opt-in: ARM id of an Event Grid custom topic (CloudEvents 1.0 input schema, this subscription) that every deployment\'s outcomes are published to (BERTH_EVENTGRID_TOPIC); the handler\'s identity gets EventGrid Data Sender on it. Empty (the default): none.')
param eventGridTopicId string = ''

@minLength(3)
@maxLength(63)
@description('The Azure Files share that workloads mount, created in the workloads storage account.')
param shareName string = 'berth-workloads'

@minValue(1)
@maxValue(5120)
@description('Quota of the Azure Files share in GiB (standard shares bill the capacity used, not the quota).')
param shareQuotaGiB int = 100

@description('ACI REST api-version Berth uses (BERTH_ACI_API_VERSION).')
param aciApiVersion string = '2025-09-01'

@description('App settings a spec\'s secureValueFrom may read (BERTH_SECURE_VALUE_FROM): names and PREFIX* patterns, comma-separated. Empty allows none; Berth\'s and the platform\'s own settings are never read. A listed setting must also be set on the Function App.')
param secureValueFrom string = ''

@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance in MB; CPU is allotted in proportion. Berth\'s handler is small: 512 is enough and bills a quarter of 2048.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most instances the Function App may scale out to (Flex Consumption accepts 40 to 1000).')
param maximumInstanceCount int = 40

@minValue(30)
@maxValue(730)
@description('Days the Log Analytics workspace keeps data (the first 31 days are included in the ingestion price).')
param logRetentionDays int = 30

@minValue(7)
@maxValue(90)
@description('Days a deleted Key Vault (and with it BERTH_SECRETS_KEY) can be recovered. Purge protection is on, so the vault name stays taken for this long after azd down.')
param keyVaultRetentionDays int = 7

@description('Private networking: a virtual network with the Function App integrated, private endpoints for both storage accounts and the Key Vault (their public network access off), and a subnet delegated to container groups that the handler may put groups in. Off: everything is reached over public endpoints, with Entra ID or keys. See README.md, Private networking.')
param privateNetworking bool = false

@description('Address space of the virtual network when privateNetworking is on.')
param virtualNetworkAddressPrefix string = '10.40.0.0/16'

@description('Subnets of that network: app (the Function App\'s integration), privateEndpoints, workloads (delegated to container groups; size it for the groups that run at once, one address each).')
param subnetPrefixes object = {
  app: '10.40.0.0/24'
  privateEndpoints: '10.40.1.0/24'
  workloads: '10.40.2.0/24'
}

@description('Address the alert rules notify (an action group with one email receiver). Empty: the rules still fire and show in Azure Monitor, and notify no one.')
param alertEmail string = ''

@minValue(1)
@maxValue(100)
@description('The create-failure alert fires when ARM refuses at least this share (percent) of container-group creates over 30 minutes, and at least 3.')
param createFailureAlertPercent int = 20

@minValue(1)
@maxValue(100)
@description('The failed-deployment alert fires when at least this share (percent) of the deployments that ended in the last hour ended Failed or TimedOut, and at least 3.')
param failedDeploymentAlertPercent int = 20

@description('Tags added to every resource.')
param tags object = {}

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, {
  'azd-env-name': environmentName
  application: 'berth'
})
var appRgName = empty(appResourceGroupName) ? 'rg-${environmentName}' : appResourceGroupName
var workloadRgName = empty(workloadResourceGroupName) ? 'rg-${environmentName}-workloads' : workloadResourceGroupName

resource appRg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: appRgName
  location: location
  tags: allTags
}

// The workloads group carries no azd-env-name tag: azd finds the app's group by that tag and must
// not find two.
resource workloadRg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: workloadRgName
  location: location
  tags: union(tags, {
    application: 'berth'
    'berth-role': 'workloads'
  })
}

// Custom roles: exactly the actions Berth's ARM client performs, each assignable only where it is
// used. Built-in roles are all broader (Contributor, Storage Account Key Operator also regenerates
// keys, Log Analytics Contributor also writes).
resource aciOperatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, workloadRg.id, 'berth-container-groups')
  properties: {
    roleName: 'Berth container groups (${environmentName}, ${resourceToken})'
    description: 'Create, read, list, stop and delete container groups and read their logs, in the Berth workloads resource group.'
    type: 'CustomRole'
    permissions: [
      {
        // What the engine's actions need: Create (PUT), Observe and the sweep (GET, list), Stop
        // before logs are captured (POST stop), CaptureLogs, Delete. Not start or restart, which
        // the engine never asks for.
        actions: [
          'Microsoft.ContainerInstance/containerGroups/read'
          'Microsoft.ContainerInstance/containerGroups/write'
          'Microsoft.ContainerInstance/containerGroups/delete'
          'Microsoft.ContainerInstance/containerGroups/stop/action'
          'Microsoft.ContainerInstance/containerGroups/containers/logs/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      workloadRg.id
    ]
  }
}

resource shareKeyRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, workloadRg.id, 'berth-share-key')
  properties: {
    roleName: 'Berth share key reader (${environmentName}, ${resourceToken})'
    description: 'List the keys of the workloads storage account, fetched at container-group create time to mount its Azure Files share.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/listKeys/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      workloadRg.id
    ]
  }
}

resource diagnosticsKeyRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, appRg.id, 'berth-diagnostics-key')
  properties: {
    roleName: 'Berth diagnostics key reader (${environmentName}, ${resourceToken})'
    description: 'Read the Log Analytics workspace id and shared key that container groups send their logs with.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.OperationalInsights/workspaces/read'
          'Microsoft.OperationalInsights/workspaces/sharedKeys/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      appRg.id
    ]
  }
}

// Capacity admission reads the region's ACI usages and quota before creates; ARM serves them at
// subscription scope only, so this read-only role is the one assignment there.
resource usagesReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'berth-aci-usages', resourceToken)
  properties: {
    roleName: 'Berth ACI usages reader (${environmentName}, ${resourceToken})'
    description: 'Read the Azure Container Instances usages and quotas of a region.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerInstance/locations/usages/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// Joining the workloads subnet, for container groups whose spec names it in subnetIds. Assignable
// in the app's group (where the network is); assigned on that one subnet by modules/network.bicep.
resource subnetJoinRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (privateNetworking) {
  name: guid(subscription().id, appRg.id, 'berth-subnet-join')
  properties: {
    roleName: 'Berth subnet join (${environmentName}, ${resourceToken})'
    description: 'Join the Berth workloads subnet, so that container groups can be created in it.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Network/virtualNetworks/subnets/join/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      appRg.id
    ]
  }
}

resource usagesReaderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, 'berth-aci-usages-assignment', resourceToken)
  properties: {
    roleDefinitionId: usagesReaderRole.id
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
  }
}

module identity 'modules/identity.bicep' = {
  name: 'berth-identity'
  scope: appRg
  params: {
    name: 'id-berth-${resourceToken}'
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'berth-monitoring'
  scope: appRg
  params: {
    workspaceName: 'log-berth-${resourceToken}'
    appInsightsName: 'appi-berth-${resourceToken}'
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
    principalId: identity.outputs.principalId
    diagnosticsKeyRoleId: diagnosticsKeyRole.id
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'berth-alerts'
  scope: appRg
  params: {
    location: location
    tags: allTags
    workspaceId: monitoring.outputs.workspaceId
    resourceToken: resourceToken
    alertEmail: alertEmail
    createFailurePercent: createFailureAlertPercent
    failedDeploymentPercent: failedDeploymentAlertPercent
  }
}

module appStorage 'modules/app-storage.bicep' = {
  name: 'berth-app-storage'
  scope: appRg
  params: {
    name: 'stberth${resourceToken}'
    location: location
    tags: allTags
    queueName: queueName
    submitQueueName: submitQueueName
    eventSenderPrincipalId: empty(blobEventsStorageAccountId) ? '' : blobEventsTopic.outputs.principalId
    packageContainerName: 'app-package'
    privateNetworking: privateNetworking
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'berth-key-vault'
  scope: appRg
  params: {
    name: 'kv-berth-${resourceToken}'
    location: location
    tags: allTags
    retentionInDays: keyVaultRetentionDays
    secretsKey: secretsKey
    privateNetworking: privateNetworking
    previousVersion: secretsKeyPreviousVersion
    principalId: identity.outputs.principalId
    workspaceId: monitoring.outputs.workspaceId
  }
}

// Opt-in: blob-created events of one storage account to the submit queue. The topic goes first (its
// identity is what appStorage lets send to the queue), the subscription once that role is there.
var blobEventsScope = empty(blobEventsStorageAccountId) ? appRg.name : split(blobEventsStorageAccountId, '/')[4]

module blobEventsTopic 'modules/blob-events-topic.bicep' = if (!empty(blobEventsStorageAccountId)) {
  name: 'berth-blob-events-topic'
  scope: resourceGroup(blobEventsScope)
  params: {
    name: 'evgt-berth-${resourceToken}'
    sourceAccountId: blobEventsStorageAccountId
    tags: allTags
  }
}

module blobEvents 'modules/blob-events.bicep' = if (!empty(blobEventsStorageAccountId)) {
  name: 'berth-blob-events'
  scope: resourceGroup(blobEventsScope)
  params: {
    topicName: 'evgt-berth-${resourceToken}'
    queueAccountId: appStorage.outputs.id
    queueName: submitQueueName
    subjectBeginsWith: blobEventsSubjectBeginsWith
  }
}

module eventGridPublish 'modules/event-grid-publish.bicep' = if (!empty(eventGridTopicId)) {
  name: 'berth-event-grid-publish'
  scope: resourceGroup(empty(eventGridTopicId) ? appRg.name : split(eventGridTopicId, '/')[4])
  params: {
    topicName: empty(eventGridTopicId) ? '' : last(split(eventGridTopicId, '/'))
    principalId: identity.outputs.principalId
  }
}

module workloads 'modules/workloads.bicep' = {
  name: 'berth-workloads'
  scope: workloadRg
  params: {
    name: 'stwork${resourceToken}'
    location: location
    tags: union(tags, {
      application: 'berth'
    })
    shareName: shareName
    shareQuotaGiB: shareQuotaGiB
    privateNetworking: privateNetworking
    principalId: identity.outputs.principalId
    aciOperatorRoleId: aciOperatorRole.id
    shareKeyRoleId: shareKeyRole.id
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'berth-network'
  scope: appRg
  params: {
    name: 'vnet-berth-${resourceToken}'
    location: location
    tags: allTags
    addressPrefix: virtualNetworkAddressPrefix
    subnetPrefixes: subnetPrefixes
    appStorageId: appStorage.outputs.id
    workloadStorageId: workloads.outputs.storageId
    vaultId: keyVault.outputs.id
    principalId: identity.outputs.principalId
    subnetJoinRoleId: privateNetworking ? subnetJoinRole.id : ''
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'berth-function-app'
  scope: appRg
  params: {
    name: 'func-berth-${resourceToken}'
    planName: 'plan-berth-${resourceToken}'
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageName: appStorage.outputs.name
    packageContainerUrl: appStorage.outputs.packageContainerUrl
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    workspaceId: monitoring.outputs.workspaceId
    secretsKeyUri: keyVault.outputs.secretsKeyUri
    secretsKeyPreviousUri: keyVault.outputs.secretsKeyPreviousUri
    queueName: queueName
    submitQueueName: submitQueueName
    submitEvents: submitEvents
    eventGridTopic: empty(eventGridTopicId) ? '' : eventGridPublish.outputs.endpoint
    subscriptionId: subscription().subscriptionId
    workloadResourceGroupName: workloadRg.name
    workloadLocation: location
    aciApiVersion: aciApiVersion
    secureValueFrom: secureValueFrom
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSubnetId: privateNetworking ? network.outputs.appSubnetId : ''
  }
}

@description('Region of the deployment; azd reads it back.')
output AZURE_LOCATION string = location

@description('Tenant of the subscription.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Resource group of the Function App; azd deploys the handler service there.')
output AZURE_RESOURCE_GROUP string = appRg.name

@description('Name of the Key Vault holding BERTH_SECRETS_KEY; the azd hooks use it to tell a first provisioning from a later one.')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('Name of the Function App.')
output FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Base URL of Berth\'s HTTP API, e.g. POST <FUNCTION_URL>/deployments with a function key.')
output FUNCTION_URL string = functionApp.outputs.apiUrl

@description('Resource group where container groups are created (BERTH_RESOURCE_GROUP).')
output WORKLOAD_RESOURCE_GROUP string = workloadRg.name

@description('Storage account that holds the workloads share; put it in azureFile volumes as storageAccountName.')
output WORKLOAD_STORAGE_ACCOUNT string = workloads.outputs.storageName

@description('The Azure Files share for workloads; put it in azureFile volumes as shareName.')
output SHARE_NAME string = workloads.outputs.shareName

@description('Client id of the handler\'s user-assigned identity (AZURE_CLIENT_ID).')
output AZURE_CLIENT_ID string = identity.outputs.clientId

@description('ARM id of the Log Analytics workspace that container groups log to (BERTH_DIAGNOSTICS_WORKSPACE).')
output BERTH_DIAGNOSTICS_WORKSPACE string = monitoring.outputs.workspaceId

@description('With privateNetworking: ARM id of the subnet delegated to container groups; a spec puts a group in it with subnetIds: [{ id: <this> }]. Empty otherwise.')
output WORKLOAD_SUBNET_ID string = privateNetworking ? network.outputs.workloadSubnetId : ''
