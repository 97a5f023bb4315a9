//! The read-only parts of ARM responses: instance views, container states, events, list pages,
//! logs, operation status and the `CloudError` envelope.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ContainerGroup;

/// `ContainerGroupPropertiesPropertiesInstanceView`: the group's state and events.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInstanceView {
    /// Group-level events (mount failures and the like).
    pub events: Option<Vec<Event>>,
    /// `Pending`, `Running`, `Stopped`, `Succeeded` or `Failed` (an open string).
    pub state: Option<String>,
}

/// `ContainerPropertiesInstanceView` (and the init-container one, which has the same shape).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceView {
    /// How many times the container was restarted.
    pub restart_count: Option<i32>,
    pub current_state: Option<ContainerState>,
    /// The state before the current one (the last `Terminated` one while restarting).
    pub previous_state: Option<ContainerState>,
    /// The container's events.
    pub events: Option<Vec<Event>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// `Waiting`, `Running` or `Terminated` (an open string).
    pub state: Option<String>,
    /// When this state began (for `Running`/`Terminated`: when the process started).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    /// The exit code, as `docker run` reports it (128 + signal for a killed process).
    pub exit_code: Option<i32>,
    /// When the process finished.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finish_time: Option<OffsetDateTime>,
    /// A human-readable detail (`Completed`, `Error`, `CrashLoopBackOff: …`).
    pub detail_status: Option<String>,
}

/// `Event`: repeated events are folded into one with a `count`, as ACI does.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// How many times it happened.
    pub count: Option<i32>,
    /// The first time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub first_timestamp: Option<OffsetDateTime>,
    /// The last time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_timestamp: Option<OffsetDateTime>,
    /// `Pulling`, `Pulled`, `Started`, `Killing`, `BackOff`, `Failed`, `FailedMount`, …
    pub name: Option<String>,
    pub message: Option<String>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `ContainerGroupListResult`: one page of a list, without instance views.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupList {
    /// The groups on this page.
    pub value: Vec<ContainerGroup>,
    /// The absolute URL of the next page, absent on the last one.
    pub next_link: Option<String>,
}

/// `Logs`: one string, lines separated by `\n`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logs {
    /// The log text.
    pub content: Option<String>,
}

/// `CloudError`: the envelope of every error answer.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudError {
    pub error: Option<CloudErrorBody>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudErrorBody {
    /// A stable code such as `ResourceNotFound`.
    pub code: Option<String>,
    /// A message for people.
    pub message: Option<String>,
    /// The offending field, when there is one.
    pub target: Option<String>,
    /// Nested details.
    pub details: Option<Vec<CloudErrorBody>>,
}

/// The body behind an `Azure-AsyncOperation` URL (ARM's async-operation shape).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// The resource id of the container group.
    pub id: Option<String>,
    /// The operation id.
    pub name: Option<String>,
    /// `Pending`, `Creating`, `Deleting`, … then `Succeeded`, `Failed` or `Canceled`.
    pub status: String,
    /// When the operation began.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    /// Why it failed.
    pub error: Option<CloudErrorBody>,
}

/// `UsageListResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageList {
    /// One entry per quota.
    pub value: Vec<Usage>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Always `Count`.
    pub unit: Option<String>,
    /// What is used now.
    pub current_value: Option<i64>,
    pub limit: Option<i64>,
    /// The quota's name.
    pub name: Option<UsageName>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageName {
    /// The stable name (`ContainerGroups`, `StandardCores`).
    pub value: Option<String>,
    /// The display name.
    pub localized_value: Option<String>,
}
