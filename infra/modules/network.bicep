// Private networking (parameter privateNetworking, off by default): a virtual network in the app's
// resource group with three subnets, private endpoints and private DNS zones for what the app and
// the workloads reach, and the handler's right to put container groups in the workloads subnet.
//
// - `app`: the Function App's virtual network integration (Flex Consumption delegates it to
//   Microsoft.App/environments).
// - `private-endpoints`: the endpoints of the app storage account (blob, queue: what the host and
//   Berth use; no table), the workloads storage account (file: the share) and the Key Vault.
// - `workloads`: delegated to Microsoft.ContainerInstance/containerGroups, for container groups
//   whose spec names it in `subnetIds`. The handler's identity may join this subnet and no other.
//
// The three accounts turn public network access off when this module is deployed (see their
// modules); the Function App's own endpoint stays public: callers and container callbacks use it.

@description('Name of the virtual network.')
param name string

@description('Region of the network and the endpoints (the app\'s).')
param location string

@description('Tags of everything here.')
param tags object

@description('Address space of the network.')
param addressPrefix string

@description('Address prefixes of the subnets, inside addressPrefix: app (at least /26 for Flex Consumption), privateEndpoints, workloads.')
param subnetPrefixes object

@description('ARM id of the app storage account (AzureWebJobsStorage).')
param appStorageId string

@description('ARM id of the workloads storage account (the Azure Files share).')
param workloadStorageId string

@description('ARM id of the Key Vault.')
param vaultId string

@description('Object id of the handler\'s identity.')
param principalId string

@description('ARM id of the custom role that grants subnets/join/action.')
param subnetJoinRoleId string

var appSubnetName = 'app'
var endpointSubnetName = 'private-endpoints'
var workloadSubnetName = 'workloads'

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    // The subnets are declared here, not as child resources, so that a redeployment does not
    // remove them and they are created in one operation.
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: subnetPrefixes.app
          // Outbound to ARM, Entra ID and the container images' registries leaves through the
          // platform's default outbound access; set a NAT gateway here to fix the addresses.
          defaultOutboundAccess: true
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: endpointSubnetName
        properties: {
          addressPrefix: subnetPrefixes.privateEndpoints
          defaultOutboundAccess: false
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
      {
        name: workloadSubnetName
        properties: {
          addressPrefix: subnetPrefixes.workloads
          defaultOutboundAccess: true
          delegations: [
            {
              name: 'container-groups'
              properties: {
                serviceName: 'Microsoft.ContainerInstance/containerGroups'
              }
            }
          ]
        }
      }
    ]
  }
}

resource workloadSubnet 'Microsoft.Network/virtualNetworks/subnets@2024-05-01' existing = {
  parent: vnet
  name: workloadSubnetName
}

// One entry per private endpoint: the private DNS zone its name resolves in, the target and the
// sub-resource (group id).
var endpoints = [
  {
    key: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
    target: appStorageId
    group: 'blob'
  }
  {
    key: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
    target: appStorageId
    group: 'queue'
  }
  {
    key: 'file'
    zone: 'privatelink.file.${environment().suffixes.storage}'
    target: workloadStorageId
    group: 'file'
  }
  {
    key: 'vault'
    zone: 'privatelink.vaultcore.azure.net'
    target: vaultId
    group: 'vault'
  }
]

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for e in endpoints: {
  name: e.zone
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (e, i) in endpoints: {
  parent: zones[i]
  name: name
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for e in endpoints: {
  name: 'pe-${e.key}-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: '${vnet.id}/subnets/${endpointSubnetName}'
    }
    privateLinkServiceConnections: [
      {
        name: e.key
        properties: {
          privateLinkServiceId: e.target
          groupIds: [
            e.group
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (e, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: e.key
        properties: {
          privateDnsZoneId: zones[i].id
        }
      }
    ]
  }
}]

// Container groups with `subnetIds` need subnets/join/action on the subnet; the custom role grants
// that action alone, and it is assigned on the workloads subnet only.
resource subnetJoinAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workloadSubnet.id, principalId, subnetJoinRoleId)
  scope: workloadSubnet
  properties: {
    roleDefinitionId: subnetJoinRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('ARM id of the Function App\'s integration subnet.')
output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'

@description('ARM id of the subnet container groups may join (a spec\'s subnetIds).')
output workloadSubnetId string = workloadSubnet.id

@description('Name of the virtual network.')
output name string = vnet.name
