//! The deployment spec as Berth keeps it: the shape README.md's "The spec" describes, parsed and
//! defaulted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::duration::IsoDuration;
use super::placement::Placement;

/// A validated deployment spec. `groups[].properties` is ACI's own `containerGroup.properties`
/// object, kept as JSON so that fields Berth does not know pass through to ARM untouched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// The deployment id: given by the caller or generated on acceptance.
    pub id: String,
    pub mode: Mode,
    pub groups: Vec<GroupSpec>,
    /// When the deployment is stopped and marked `TimedOut`; `None` only for services.
    pub timeout: Option<IsoDuration>,
    pub completion: Completion,
    pub retry: Retry,
    pub cleanup: Cleanup,
    pub capture_logs: bool,
    pub tags: BTreeMap<String, String>,
    /// A job container that calls `$BERTH_HEARTBEAT_URL` none in this long is hung: its attempt
    /// ends (`None`: no heartbeats are expected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<IsoDuration>,
    /// The groups' priority, Spot policy and regions, where a group does not give its own.
    #[serde(flatten)]
    pub placement: Placement,
    /// The template the spec was expanded from, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<super::template::TemplateRef>,
    /// Where to POST a signed CloudEvent on an outcome (see [`super::notify`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<super::notify::Notify>,
}

impl Spec {
    /// Group `slot`'s completion: its own, else the deployment's.
    pub fn completion_of(&self, slot: usize) -> Completion {
        self.groups[slot].completion.unwrap_or(self.completion)
    }

    /// Group `slot`'s retry: its own, else the deployment's.
    pub fn retry_of(&self, slot: usize) -> Retry {
        self.groups[slot].retry.unwrap_or(self.retry)
    }

    /// Group `slot`'s heartbeat timeout: its own, else the deployment's.
    pub fn heartbeat_timeout_of(&self, slot: usize) -> Option<IsoDuration> {
        self.groups[slot]
            .heartbeat_timeout
            .or(self.heartbeat_timeout)
    }
}

/// One container group of a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    /// ACI `containerGroup.properties`, secrets removed (they live sealed beside the spec).
    pub properties: Value,
    /// ACI's `identity`: the managed identities the group runs as (registry pulls with
    /// `imageRegistryCredentials[].identity`, Key Vault and storage from the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    /// ACI's `zones`: the availability zone to place the group in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    /// The region of this group (`BERTH_LOCATION` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Groups that must have ended as `run_when` asks (jobs) or be running (services) before
    /// this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// When a job group runs, by how its dependencies ended.
    #[serde(default, skip_serializing_if = "RunWhen::is_succeeded")]
    pub run_when: RunWhen,
    /// Fan-out: one instance per index, `BERTH_INDEX` 0..count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Fan-out: one instance per item, handed over as `BERTH_ITEM` (its JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// Most instances of the group running at once (all of them when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Instances that may fail (after their retries) with the group still succeeding.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tolerate_failures: u32,
    /// The group's own retry, timeout and completion, over the deployment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
    /// The group's own heartbeat timeout, over the deployment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<IsoDuration>,
    /// The group's own priority, Spot policy and regions.
    #[serde(flatten)]
    pub placement: Placement,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// When a job group runs, by how its dependencies ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunWhen {
    /// Every dependency succeeded (a failed or skipped one skips this group).
    #[default]
    Succeeded,
    /// Every dependency ended and one of them failed: clean-up or notification stages.
    Failed,
    /// Every dependency ended, however.
    Always,
}

impl RunWhen {
    fn is_succeeded(&self) -> bool {
        *self == RunWhen::Succeeded
    }
}

/// `job`: done when its containers have terminated (or on `completed`); `service`: kept running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Job,
    Service,
}

/// What tells Berth that a job is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Completion {
    /// Every container has terminated (watched through ARM).
    Exit,
    /// The `completed` event arrived (pushed by the container through its callback URL).
    Callback,
    /// Whichever comes first.
    Either,
}

impl Completion {
    /// Whether container exits complete the job.
    pub fn watches_exit(self) -> bool {
        matches!(self, Completion::Exit | Completion::Either)
    }

    /// Whether the `completed` event completes the job.
    pub fn takes_callback(self) -> bool {
        matches!(self, Completion::Callback | Completion::Either)
    }
}

/// How often a failed job attempt is retried with fresh container groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: IsoDuration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 1,
            backoff: IsoDuration::from_secs(10),
        }
    }
}

/// When container groups are deleted once the deployment is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cleanup {
    pub when: CleanupWhen,
    /// Delay between the end and the delete.
    pub keep_for: IsoDuration,
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup {
            when: CleanupWhen::Always,
            keep_for: IsoDuration(0),
        }
    }
}

/// `always` deletes every group, `onSuccess` keeps the groups of a failed deployment for
/// inspection, `never` keeps them all (they stay owned by the deployment until it is purged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CleanupWhen {
    Always,
    OnSuccess,
    Never,
}

/// The parts of a group's properties that Berth itself acts on, read once at validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupShape {
    pub restart_policy: RestartPolicy,
    pub containers: Vec<String>,
    pub cpu: f64,
    pub memory_gb: f64,
}

/// ACI's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The ARM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }
}

impl GroupSpec {
    /// How many instances the group runs: its `count`, its number of `items`, or one.
    pub fn instance_count(&self) -> u32 {
        match (&self.items, self.count) {
            (Some(items), _) => items.len() as u32,
            (None, Some(count)) => count,
            (None, None) => 1,
        }
    }

    /// Whether the group fans out (its instances are named and told by index).
    pub fn fans_out(&self) -> bool {
        self.count.is_some() || self.items.is_some()
    }

    /// Reads the shape Berth acts on. Only called on validated specs, so missing parts default.
    pub fn shape(&self) -> GroupShape {
        let props = &self.properties;
        let restart_policy = match props.get("restartPolicy").and_then(Value::as_str) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        };
        let mut containers = Vec::new();
        let (mut cpu, mut memory_gb) = (0.0, 0.0);
        for container in props
            .get("containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            containers.push(
                container
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            );
            let requests = container.pointer("/properties/resources/requests");
            cpu += requests
                .and_then(|r| r.get("cpu"))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            memory_gb += requests
                .and_then(|r| r.get("memoryInGB"))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
        }
        GroupShape {
            restart_policy,
            containers,
            cpu,
            memory_gb,
        }
    }
}
