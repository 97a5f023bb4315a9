//! ARM response shapes for `Microsoft.ContainerInstance/containerGroups`, as far as Berth reads
//! them. Every field is optional or defaulted: ARM adds fields, and LIST omits `instanceView`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::clock::parse_rfc3339;
use crate::engine::{ContainerObservation, Observation};

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

impl ContainerGroup {
    /// What Berth reads from a GET: states, exit codes, restart counts, the last warning.
    pub fn observation(&self) -> Observation {
        let props = &self.properties;
        let view = props.instance_view.as_ref();
        let mut problem = None;
        let mut warnings: Vec<&ArmEvent> =
            view.map(|v| v.events.iter().collect()).unwrap_or_default();
        for container in &props.containers {
            if let Some(v) = &container.properties.instance_view {
                warnings.extend(v.events.iter());
            }
        }
        if let Some(event) = warnings
            .iter()
            .rev()
            .find(|e| e.kind.as_deref() == Some("Warning"))
        {
            let name = event.name.clone().unwrap_or_default();
            problem = Some(format!(
                "{name}: {}",
                event.message.clone().unwrap_or_default()
            ));
        }
        let containers = props
            .containers
            .iter()
            .map(|c| {
                let view = c.properties.instance_view.as_ref();
                let current = view.and_then(|v| v.current_state.as_ref());
                ContainerObservation {
                    name: c.name.clone(),
                    state: current.and_then(|s| s.state.clone()).unwrap_or_default(),
                    exit_code: current.and_then(|s| s.exit_code),
                    restart_count: view.and_then(|v| v.restart_count).unwrap_or(0).max(0) as u32,
                    detail: current
                        .and_then(|s| s.detail_status.clone())
                        .filter(|d| !d.is_empty()),
                    start: current
                        .and_then(|s| s.start_time.as_deref())
                        .and_then(parse_rfc3339),
                    finish: current
                        .and_then(|s| s.finish_time.as_deref())
                        .and_then(parse_rfc3339),
                }
            })
            .collect();
        Observation {
            provisioning_state: props.provisioning_state.clone().unwrap_or_default(),
            state: view.and_then(|v| v.state.clone()).unwrap_or_default(),
            containers,
            problem,
        }
    }
}
