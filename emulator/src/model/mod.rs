//! The ARM wire types of `Microsoft.ContainerInstance/containerGroups`, typed from the swagger
//! (`containerInstance.json`, 2026-07-01). They serve both ways: the emulator reads PUT bodies with
//! them and writes every answer with them, and a client can read ACI's answers with them (the
//! contract tests parse every official example).
//!
//! Enums are accepted in any case and written in the swagger's spelling; secrets are `Secret`s,
//! stripped by `ContainerGroup::redact` before anything is answered.

mod container;
mod enums;
mod group;
mod secret;
mod view;
mod volume;

pub use container::{
    Capabilities, ConfigMap, Container, ContainerPort, ContainerProbe, ContainerProperties,
    EnvironmentVariable, GpuResource, HttpHeader, InitContainer, InitContainerProperties,
    ProbeExec, ProbeHttpGet, ResourceLimits, ResourceRequests, ResourceRequirements,
    SecurityContext, VolumeMount,
};
pub use enums::{
    DnsNameLabelReusePolicy, GpuSku, IdentityAccessLevel, IdentityType, IpAddressType, LogType,
    OsType, Priority, Protocol, RestartPolicy, Scheme, Sku,
};
pub use group::{
    ConfidentialComputeProperties, ContainerGroup, ContainerGroupProfileReference,
    ContainerGroupUpdate, Diagnostics, DnsConfig, EncryptionProperties, Extension,
    ExtensionProperties, GroupProperties, Identity, IdentityAccessControl, IdentityAcls,
    ImageRegistryCredential, IpAddress, LogAnalytics, Port, SecretReference, StandbyPoolProfile,
    SubnetId, UserAssignedIdentity,
};
pub use secret::Secret;
pub use view::{
    CloudError, CloudErrorBody, ContainerGroupList, ContainerInstanceView, ContainerState, Event,
    GroupInstanceView, Logs, OperationStatus, Usage, UsageList, UsageName,
};
pub use volume::{AzureFileVolume, GitRepoVolume, Volume};

/// The resource type, as ARM spells it in `type`.
pub const RESOURCE_TYPE: &str = "Microsoft.ContainerInstance/containerGroups";
