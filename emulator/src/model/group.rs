//! `ContainerGroup` and the group-level parts of its properties (network, diagnostics, identity,
//! encryption, …), plus `redact`, which strips every secret the way Azure does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::container::{Container, InitContainer};
use super::enums::{
    DnsNameLabelReusePolicy, IdentityAccessLevel, IdentityType, IpAddressType, LogType, OsType,
    Priority, Protocol, RestartPolicy, Sku,
};
use super::secret::Secret;
use super::view::GroupInstanceView;
use super::volume::Volume;

/// `ContainerGroup`: the PUT body and the GET answer (and, without `instanceView`,
/// `ListResultContainerGroup`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroup {
    /// Read-only: the ARM resource id.
    pub id: Option<String>,
    /// Read-only: the group's name.
    pub name: Option<String>,
    /// Read-only: `Microsoft.ContainerInstance/containerGroups`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The region.
    pub location: Option<String>,
    /// Tags (Berth finds its groups by them).
    pub tags: Option<BTreeMap<String, String>>,
    /// Availability zones.
    pub zones: Option<Vec<String>>,
    /// Managed identities.
    pub identity: Option<Identity>,
    /// Everything else.
    pub properties: GroupProperties,
}

/// `ContainerGroupPropertiesProperties`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupProperties {
    /// Read-only: the state of the last operation.
    pub provisioning_state: Option<String>,
    /// Key Vault secrets referred to elsewhere in the group.
    pub secret_references: Option<Vec<SecretReference>>,
    pub containers: Vec<Container>,
    /// Credentials for private registries.
    pub image_registry_credentials: Option<Vec<ImageRegistryCredential>>,
    /// `Always` (the default), `OnFailure` or `Never`.
    pub restart_policy: Option<RestartPolicy>,
    /// The group's IP address and ports.
    pub ip_address: Option<IpAddress>,
    /// `Linux` or `Windows`.
    pub os_type: Option<OsType>,
    /// Volumes the containers may mount.
    pub volumes: Option<Vec<Volume>>,
    /// Read-only: the group's runtime view.
    pub instance_view: Option<GroupInstanceView>,
    /// Log Analytics.
    pub diagnostics: Option<Diagnostics>,
    /// Subnets for VNet injection.
    pub subnet_ids: Option<Vec<SubnetId>>,
    /// DNS settings.
    pub dns_config: Option<DnsConfig>,
    /// The SKU.
    pub sku: Option<Sku>,
    /// Customer-managed key encryption.
    pub encryption_properties: Option<EncryptionProperties>,
    /// Init containers, run in order before the containers.
    pub init_containers: Option<Vec<InitContainer>>,
    /// Deployment extensions.
    pub extensions: Option<Vec<Extension>>,
    /// Confidential computing policy.
    pub confidential_compute_properties: Option<ConfidentialComputeProperties>,
    /// `Regular` or `Spot`.
    pub priority: Option<Priority>,
    /// Identity access control lists.
    pub identity_acls: Option<IdentityAcls>,
    /// The container group profile this group was made from.
    pub container_group_profile: Option<ContainerGroupProfileReference>,
    /// The standby pool this group was taken from.
    pub standby_pool_profile: Option<StandbyPoolProfile>,
    /// Read-only: whether the group came from a standby pool.
    pub is_created_from_standby_pool: Option<bool>,
}

/// `ContainerGroupIdentity`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Read-only: the system identity's principal.
    pub principal_id: Option<String>,
    /// Read-only: the tenant.
    pub tenant_id: Option<String>,
    /// Which identities.
    #[serde(rename = "type")]
    pub kind: Option<IdentityType>,
    /// User-assigned identities by ARM id.
    pub user_assigned_identities: Option<BTreeMap<String, UserAssignedIdentity>>,
}

/// `UserAssignedIdentities` (the value of each map entry).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    /// Read-only: its principal.
    pub principal_id: Option<String>,
    /// Read-only: its client id.
    pub client_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRegistryCredential {
    /// The registry host.
    pub server: String,
    /// The user name.
    pub username: Option<String>,
    /// The password; never echoed.
    pub password: Option<Secret>,
    /// A reference to a `secretReferences` entry.
    pub password_reference: Option<String>,
    /// A user-assigned identity used to pull.
    pub identity: Option<String>,
    /// The identity URL.
    pub identity_url: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    /// The exposed ports.
    pub ports: Vec<Port>,
    /// `Public` or `Private`.
    #[serde(rename = "type")]
    pub kind: IpAddressType,
    /// Read-only in practice: the address (the emulator answers 127.0.0.1, where the containers
    /// really listen).
    pub ip: Option<String>,
    /// The DNS label.
    pub dns_name_label: Option<String>,
    /// The DNS label reuse policy.
    pub auto_generated_domain_name_label_scope: Option<DnsNameLabelReusePolicy>,
    /// Read-only: `<label>.<region>.azurecontainer.io`.
    pub fqdn: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// `TCP` or `UDP`.
    pub protocol: Option<Protocol>,
    /// The port number.
    pub port: i32,
}

/// `ContainerGroupDiagnostics`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostics {
    /// Log Analytics settings.
    pub log_analytics: Option<LogAnalytics>,
}

/// `LogAnalytics`; answered as `{workspaceId}` only, as in the official examples.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogAnalytics {
    pub workspace_id: String,
    /// The workspace key; never echoed.
    pub workspace_key: Option<Secret>,
    /// Which logs.
    pub log_type: Option<LogType>,
    /// Extra metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// The workspace's ARM id (marked secret in the swagger).
    pub workspace_resource_id: Option<Secret>,
}

/// `ContainerGroupSubnetId`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubnetId {
    /// The subnet's ARM id.
    pub id: String,
    pub name: Option<String>,
}

/// `DnsConfiguration`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsConfig {
    pub name_servers: Vec<String>,
    /// Search domains, space separated.
    pub search_domains: Option<String>,
    /// resolv.conf options.
    pub options: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionProperties {
    /// The Key Vault URL.
    pub vault_base_url: String,
    /// The key's name.
    pub key_name: String,
    /// The key's version.
    pub key_version: String,
    /// The identity that reads the key.
    pub identity: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// The name other fields refer to.
    pub name: String,
    /// The identity that reads the secret.
    pub identity: String,
    /// The Key Vault secret URI.
    pub secret_reference_uri: String,
}

/// `DeploymentExtensionSpec`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    /// The extension's name.
    pub name: String,
    /// Its settings.
    pub properties: Option<ExtensionProperties>,
}

/// `DeploymentExtensionSpecProperties`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProperties {
    pub extension_type: String,
    pub version: String,
    /// Plain settings.
    pub settings: Option<serde_json::Value>,
    /// Protected settings; never echoed.
    pub protected_settings: Option<Secret<serde_json::Value>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfidentialComputeProperties {
    /// The base64 CCE policy.
    pub cce_policy: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityAcls {
    /// The default access level.
    pub default_access: Option<IdentityAccessLevel>,
    /// Per-identity access.
    pub acls: Option<Vec<IdentityAccessControl>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityAccessControl {
    /// The access level.
    pub access: Option<IdentityAccessLevel>,
    pub identity: Option<String>,
}

/// `ContainerGroupProfileReferenceDefinition`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerGroupProfileReference {
    /// The profile's ARM id.
    pub id: Option<String>,
    pub revision: Option<i64>,
}

/// `StandbyPoolProfileDefinition`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandbyPoolProfile {
    /// The pool's ARM id.
    pub id: Option<String>,
    /// Whether to fail when the pool cannot serve.
    pub fail_container_group_create_on_reuse_failure: Option<bool>,
}

/// `ContainerGroupUpdate`: the PATCH body (tags, and nominally location and zones).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupUpdate {
    /// The new location (must not differ from the current one).
    pub location: Option<String>,
    /// The new tags, replacing the old ones.
    pub tags: Option<BTreeMap<String, String>>,
    /// The zones (must not differ from the current ones).
    pub zones: Option<Vec<String>>,
}

impl ContainerGroup {
    /// Strips every secret, as Azure does in its answers: `secureValue`, registry passwords,
    /// storage account keys, secret-volume contents (answered as `{}`), Log Analytics settings other
    /// than the workspace id, and extensions' protected settings.
    pub fn redact(&mut self) {
        let properties = &mut self.properties;
        for container in &mut properties.containers {
            for variable in container
                .properties
                .environment_variables
                .iter_mut()
                .flatten()
            {
                variable.secure_value = None;
            }
        }
        for init in properties.init_containers.iter_mut().flatten() {
            for variable in init.properties.environment_variables.iter_mut().flatten() {
                variable.secure_value = None;
            }
        }
        for credential in properties.image_registry_credentials.iter_mut().flatten() {
            credential.password = None;
        }
        for volume in properties.volumes.iter_mut().flatten() {
            if let Some(file) = &mut volume.azure_file {
                file.storage_account_key = None;
            }
            if let Some(secret) = &mut volume.secret {
                secret.clear();
            }
        }
        if let Some(analytics) = properties
            .diagnostics
            .as_mut()
            .and_then(|diagnostics| diagnostics.log_analytics.as_mut())
        {
            *analytics = LogAnalytics {
                workspace_id: std::mem::take(&mut analytics.workspace_id),
                ..LogAnalytics::default()
            };
        }
        for extension in properties.extensions.iter_mut().flatten() {
            if let Some(extension) = &mut extension.properties {
                extension.protected_settings = None;
            }
        }
    }

    /// The restart policy, with ACI's default (`Always`) when omitted.
    pub fn restart_policy(&self) -> RestartPolicy {
        self.properties
            .restart_policy
            .unwrap_or(RestartPolicy::Always)
    }
}
