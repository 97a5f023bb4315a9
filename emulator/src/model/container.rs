//! Containers and init containers: `Container`, `ContainerProperties`, environment variables,
//! resources, ports, volume mounts, probes and security context, as the swagger defines them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::enums::{GpuSku, Protocol, Scheme};
use super::secret::Secret;
use super::view::ContainerInstanceView;

/// `Container`: a name and its properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// The container's name, unique in its group.
    pub name: String,
    /// What to run and with what.
    pub properties: ContainerProperties,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProperties {
    /// The image reference (`nginx:alpine`, `myregistry.azurecr.io/job:1`).
    pub image: Option<String>,
    /// The command in exec form; replaces the image's entrypoint.
    pub command: Option<Vec<String>>,
    /// Exposed ports.
    pub ports: Option<Vec<ContainerPort>>,
    /// Environment variables (`value` or `secureValue`).
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
    /// Read-only: the container's runtime view.
    pub instance_view: Option<ContainerInstanceView>,
    /// CPU, memory and GPU requests and limits.
    pub resources: Option<ResourceRequirements>,
    /// Where the group's volumes appear in this container.
    pub volume_mounts: Option<Vec<VolumeMount>>,
    /// The liveness probe (kept and echoed; not run by the emulator).
    pub liveness_probe: Option<ContainerProbe>,
    /// The readiness probe (kept and echoed; not run by the emulator).
    pub readiness_probe: Option<ContainerProbe>,
    /// The security context (kept and echoed).
    pub security_context: Option<SecurityContext>,
    /// The config map (kept and echoed).
    pub config_map: Option<ConfigMap>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerPort {
    /// `TCP` or `UDP`.
    pub protocol: Option<Protocol>,
    /// The port number.
    pub port: i32,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVariable {
    /// The variable's name.
    pub name: String,
    /// A plain value, echoed in responses.
    pub value: Option<String>,
    /// A secret value, never echoed.
    pub secure_value: Option<Secret>,
    /// A reference to a `secretReferences` entry (Key Vault); not resolvable by the emulator.
    pub secure_value_reference: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRequirements {
    /// What the container is allocated.
    pub requests: ResourceRequests,
    /// The most it may use (defaults to the requests).
    pub limits: Option<ResourceLimits>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequests {
    /// Memory in GB. ACI matches property names in any case, and Microsoft's own YAML samples
    /// for `az container create --file` spell this one `memoryInGb`.
    #[serde(rename = "memoryInGB", alias = "memoryInGb")]
    pub memory_in_gb: f64,
    /// Cores.
    pub cpu: f64,
    /// GPUs (accepted and echoed; not emulated).
    pub gpu: Option<GpuResource>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Memory in GB (also read as `memoryInGb`, as in `ResourceRequests`).
    #[serde(rename = "memoryInGB", alias = "memoryInGb")]
    pub memory_in_gb: Option<f64>,
    /// Cores.
    pub cpu: Option<f64>,
    /// GPUs.
    pub gpu: Option<GpuResource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuResource {
    /// How many.
    pub count: i32,
    /// Which kind.
    pub sku: GpuSku,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume's name in the group's `volumes`.
    pub name: String,
    /// The absolute path inside the container.
    pub mount_path: String,
    /// Mount it read-only.
    pub read_only: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProbe {
    /// Run a command.
    pub exec: Option<ProbeExec>,
    /// Make an HTTP request.
    pub http_get: Option<ProbeHttpGet>,
    /// Seconds before the first probe.
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes.
    pub period_seconds: Option<i32>,
    /// Failures before the container counts as failed.
    pub failure_threshold: Option<i32>,
    /// Successes before it counts as healthy.
    pub success_threshold: Option<i32>,
    /// Seconds before a probe times out.
    pub timeout_seconds: Option<i32>,
}

/// `ContainerExec` (of a probe).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeExec {
    /// The command in exec form.
    pub command: Option<Vec<String>>,
}

/// `ContainerHttpGet`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeHttpGet {
    pub path: Option<String>,
    pub port: i32,
    /// `http` or `https`.
    pub scheme: Option<Scheme>,
    /// Extra headers.
    pub http_headers: Option<Vec<HttpHeader>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpHeader {
    /// The header's name.
    pub name: Option<String>,
    /// The header's value.
    pub value: Option<String>,
}

/// `SecurityContextDefinition`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    /// Privileged mode.
    pub privileged: Option<bool>,
    /// Whether a process may gain more privileges than its parent.
    pub allow_privilege_escalation: Option<bool>,
    /// Capabilities to add or drop.
    pub capabilities: Option<Capabilities>,
    /// The group id to run as.
    pub run_as_group: Option<i64>,
    /// The user id to run as.
    pub run_as_user: Option<i64>,
    /// A base64 seccomp profile.
    pub seccomp_profile: Option<String>,
}

/// `SecurityContextCapabilitiesDefinition`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Capabilities to add.
    pub add: Option<Vec<String>>,
    /// Capabilities to drop.
    pub drop: Option<Vec<String>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    pub key_value_pairs: Option<BTreeMap<String, String>>,
}

/// `InitContainerDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InitContainer {
    /// The init container's name.
    pub name: String,
    /// What it runs.
    pub properties: InitContainerProperties,
}

/// `InitContainerPropertiesDefinition`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitContainerProperties {
    pub image: Option<String>,
    /// The command in exec form.
    pub command: Option<Vec<String>>,
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
    /// Read-only: its runtime view.
    pub instance_view: Option<ContainerInstanceView>,
    pub volume_mounts: Option<Vec<VolumeMount>>,
    pub security_context: Option<SecurityContext>,
}
