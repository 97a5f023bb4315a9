// Log Analytics and workspace-based Application Insights. The workspace also receives the logs of
// every container group Berth creates (BERTH_DIAGNOSTICS_WORKSPACE), so the handler's identity may
// read its id and shared key here and nowhere else. Application Insights takes telemetry only with
// Entra ID tokens: the instrumentation key in the connection string is useless on its own.

@description('Name of the Log Analytics workspace.')
param workspaceName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Region of both.')
param location string

@description('Tags of both.')
param tags object

@description('Days the workspace keeps data.')
param retentionInDays int

@description('Object id of the handler\'s identity.')
param principalId string

@description('ARM id of the custom role that reads the workspace and its shared keys.')
param diagnosticsKeyRoleId string

// Monitoring Metrics Publisher: send telemetry to Application Insights with an Entra ID token.
var metricsPublisherRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    // Local (shared key) authentication stays on: ACI's diagnostics.logAnalytics only accepts a
    // workspace id and key. The key is read at create time by the handler's identity alone.
    features: {
      disableLocalAuth: false
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource diagnosticsKeyAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, diagnosticsKeyRoleId)
  scope: workspace
  properties: {
    roleDefinitionId: diagnosticsKeyRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisherAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, metricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: metricsPublisherRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('ARM id of the workspace (BERTH_DIAGNOSTICS_WORKSPACE).')
output workspaceId string = workspace.id

@description('Application Insights connection string (holds no credential: local auth is off).')
output appInsightsConnectionString string = appInsights.properties.ConnectionString
