//! ARM response shapes for `Microsoft.ContainerInstance/containerGroups`, as far as Berth reads
//! them. Every field is optional or defaulted: ARM adds fields, and LIST omits `instanceView`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A container group as GET, PUT and LIST return it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroup {
    pub id: Option<String>,
    pub name: Option<String>,
    pub location: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: GroupProperties,
}

/// `properties` of a container group.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupProperties {
    pub provisioning_state: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub containers: Vec<Container>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub init_containers: Vec<Container>,
    pub instance_view: Option<GroupInstanceView>,
    pub restart_policy: Option<String>,
    pub os_type: Option<String>,
}

/// One container.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(default)]
    pub properties: ContainerProperties,
}

/// A container's `properties`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProperties {
    pub image: Option<String>,
    pub instance_view: Option<ContainerInstanceView>,
}

/// A container's `instanceView`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceView {
    pub restart_count: Option<i64>,
    pub current_state: Option<ContainerState>,
    pub previous_state: Option<ContainerState>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<ArmEvent>,
}

/// `currentState` / `previousState`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub state: Option<String>,
    pub start_time: Option<String>,
    pub exit_code: Option<i64>,
    pub finish_time: Option<String>,
    pub detail_status: Option<String>,
}

/// The group's `instanceView`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInstanceView {
    pub state: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<ArmEvent>,
}

/// An instance-view event (`Pulling`, `Started`, `FailedMount`, ...).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmEvent {
    pub count: Option<i64>,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    pub name: Option<String>,
    pub message: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// A LIST page.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage {
    #[serde(default)]
    pub value: Vec<ContainerGroup>,
    pub next_link: Option<String>,
}

/// `Location_ListUsage`'s answer: a subscription's usages and limits in one region.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UsageList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: Vec<Usage>,
}

/// One usage: `StandardCores`, `ContainerGroups`, ...
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default)]
    pub name: UsageName,
    pub current_value: Option<f64>,
    pub limit: Option<f64>,
}

/// A usage's stable name (`value`) and its display name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageName {
    pub value: Option<String>,
}

/// The logs answer.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Logs {
    #[serde(default)]
    pub content: String,
}

/// ARM's error envelope.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CloudError {
    #[serde(default)]
    pub error: CloudErrorBody,
}

/// The body of [`CloudError`].
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CloudErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
