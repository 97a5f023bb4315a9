//! The deployment checkpoint: everything Berth knows about one deployment, saved after every change.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::{Priority, Spec};

/// Milliseconds since the Unix epoch (UTC). The engine never reads a clock: `now` is passed in.
pub type Millis = i64;

/// The highest version of the checkpoint's shape this Berth writes (each deployment is written at
/// [`schema_version`]). Checkpoints from before versions were written read as 1 and are brought
/// up to date on load; a checkpoint of a higher version was written by a newer Berth and is
/// refused, never misread (see [`crate::checkpoint::decode`]). Raise it with any change an older
/// Berth would misread, and migrate in `apply::migrate`.
pub const SCHEMA_VERSION: u32 = 3;

/// The version deployment `d` is written at: 3 once it has notifications (`spec.notify`, which a
/// Berth of version 2 would drop silently, and the `Notifying` phase), 2 otherwise, so a rollback
/// to a version-2 Berth still reads every deployment that uses nothing newer.
pub fn schema_version(d: &Deployment) -> u32 {
    if d.spec.notify.is_empty() && d.notifications.is_empty() && !d.event_grid {
        2
    } else {
        SCHEMA_VERSION
    }
}

fn unversioned() -> u32 {
    1
}

/// The checkpoint of one deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The checkpoint's shape ([`SCHEMA_VERSION`] once loaded by this Berth).
    #[serde(default = "unversioned")]
    pub schema_version: u32,
    pub id: String,
    /// The spec, its secrets taken out (they are in `sealed`).
    pub spec: Spec,
    /// The spec's secrets, encrypted under `BERTH_SECRETS_KEY` (`None` when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// Keyed digest of the submitted spec, to answer a repeated `POST` with the same id.
    pub digest: String,
    /// The key of this deployment's callback tokens: random, made at submit, sealed like the
    /// spec's secrets. A new deployment under a purged one's id gets a new key, so the old
    /// tokens do not open it. `None` in checkpoints from before per-deployment keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_key: Option<String>,
    /// The key notifications are signed with (`whsec_…`, handed to the submitter once), sealed
    /// like the callback key; `None` without `notify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_key: Option<String>,
    /// The spec's `notify` URLs whole, sealed (a JSON array): their paths and queries often
    /// carry a webhook's secret, so the spec keeps only their origins
    /// ([`crate::spec::notify::shown_url`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_urls: Option<String>,
    /// Its outcomes are published to the operator's Event Grid topic (`BERTH_EVENTGRID_TOPIC`
    /// was set when it was submitted), each as a notification of its own.
    #[serde(default, skip_serializing_if = "is_false")]
    pub event_grid: bool,
    /// A random identity made at submit (not secret): hashed into the names of its container
    /// groups and written in their `berth-uid` tag, so that no two deployments, not even one
    /// submitted again under a purged one's id, name the same group. `None` in checkpoints from
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Base URL the containers call back to (`BERTH_PUBLIC_URL`, or derived from the submit request).
    #[serde(default)]
    pub callback_base: String,
    /// Incremented by every save; step messages carry the `seq` of the wake they were sent for.
    pub seq: u64,
    /// How long a worker owns a create before another may take it over (`BERTH_CREATE_CLAIM`).
    #[serde(default = "default_claim_ms")]
    pub create_claim_ms: Millis,
    pub status: RuntimeStatus,
    pub phase: Phase,
    pub created: Millis,
    pub updated: Millis,
    /// The job attempt (1-based); each attempt gets fresh container groups.
    pub attempt: u32,
    /// Every container group this deployment has had, current and retired.
    pub instances: Vec<Instance>,
    /// When the deployment times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
    /// The end, once decided: the deployment then winds down (stop, logs, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// When the next attempt may start (retry back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Millis>,
    /// The `completed` event, kept from whenever it arrived until it decides the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Completed>,
    /// A `teardown` event arrived.
    #[serde(default)]
    pub teardown: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Millis>,
    /// Events raised by name that Berth itself does not act on, kept for the spec's containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbox: Vec<Raised>,
    /// When the next step is due, and the `seq` its message carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<Wake>,
    pub cost: Cost,
    /// The history after its archived pages: never cut, only moved. Once it holds
    /// [`super::policy::HISTORY_ARCHIVE_AT`] saved entries, the driver stores its oldest
    /// [`super::policy::HISTORY_PAGE`] as page `history_archived` beside the checkpoint and drops
    /// them from it, so the checkpoint stays small and the history whole.
    pub history: Vec<HistoryEntry>,
    /// How many pages of [`super::policy::HISTORY_PAGE`] entries came before `history`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_archived: u32,
    /// Groups whose start (`StageStarted`) the history holds, bit `slot` (at most 10 groups).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stages_started: u32,
    /// Groups whose end (`StageEnded`) the history holds, bit `slot`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stages_ended: u32,
    /// The spec's notifications, queued, delivered or given up (see [`super::notify`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<super::notify::Notification>,
}

fn default_claim_ms() -> Millis {
    super::policy::CREATE_CLAIM_MS
}

/// `runtimeStatus` of the status document, as Durable Functions names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuntimeStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Terminated,
}

impl RuntimeStatus {
    /// Every status, in the order a deployment can pass through them.
    pub const ALL: [RuntimeStatus; 6] = [
        RuntimeStatus::Pending,
        RuntimeStatus::Running,
        RuntimeStatus::Succeeded,
        RuntimeStatus::Failed,
        RuntimeStatus::TimedOut,
        RuntimeStatus::Terminated,
    ];

    /// Whether nothing will change the status any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RuntimeStatus::Pending | RuntimeStatus::Running)
    }

    /// The name used in the API and in storage indexes.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeStatus::Pending => "Pending",
            RuntimeStatus::Running => "Running",
            RuntimeStatus::Succeeded => "Succeeded",
            RuntimeStatus::Failed => "Failed",
            RuntimeStatus::TimedOut => "TimedOut",
            RuntimeStatus::Terminated => "Terminated",
        }
    }

    /// Parses the API name (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::TimedOut,
            Self::Terminated,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// What the deployment is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    Creating,
    Waiting,
    Retrying,
    Stopping,
    CapturingLogs,
    CleaningUp,
    /// The outcome's notifications are being delivered (retried with back-off).
    Notifying,
    /// Nothing more will happen.
    Done,
}

/// The decided end of a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status: RuntimeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at: Millis,
}

/// The `completed` event's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub at: Millis,
    /// The container's small JSON result, handed to the groups that depend on its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// An event raised by name and kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Raised {
    pub name: String,
    pub at: Millis,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub payload: Value,
}

/// The next step's due time and the `seq` of the message sent for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wake {
    pub at: Millis,
    pub seq: u64,
}

/// One container group: one instance of a spec group (its `index` in the group's fan-out) in one
/// attempt (jobs) or one generation (healed services).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// Index into `spec.groups`.
    pub slot: usize,
    /// The instance's index in its group's fan-out (`BERTH_INDEX`); 0 when it does not fan out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index: u32,
    /// The attempt (jobs) or generation (services) of this instance, from 1.
    pub generation: u32,
    /// The ARM name, derived from deployment id, group and generation.
    pub aci_name: String,
    /// A worker is creating it and owns the create until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_until: Option<Millis>,
    #[serde(default)]
    pub create_tries: u32,
    /// When ARM accepted the create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observation>,
    /// When the recorded observation's look began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Millis>,
    /// When to look at it next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_look: Option<Millis>,
    /// Looks since the last change, for back-off.
    #[serde(default)]
    pub quiet_looks: u32,
    /// Failed actions in a row, for back-off; reset by any success.
    #[serde(default)]
    pub failures: u32,
    /// No action on it before then (after a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_until: Option<Millis>,
    /// Being wound down: retired by a retry or a heal, or the deployment is over.
    #[serde(default)]
    pub retiring: bool,
    #[serde(default)]
    pub stopped: bool,
    #[serde(default)]
    pub logs_saved: bool,
    #[serde(default)]
    pub deleted: bool,
    /// Kept by the cleanup rule instead of deleted.
    #[serde(default)]
    pub kept: bool,
    /// When its compute stopped being billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Millis>,
    /// The `completed` callback of this instance, kept from whenever it arrived until it
    /// decides the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Completed>,
    /// How this attempt ended, once judged (jobs): it is then wound down, and a failed one is
    /// followed by the next attempt while the group's retry allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// How it is looked at while its containers' exit is watched, when not by the default
    /// back-off (see [`super::looks`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub look_plan: Option<super::looks::LookPlan>,
    /// The priority it is created with (`None`: not given, ACI's `Regular`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// The region it is created in, from the group's `locations` (`None`: the group's
    /// `location`, else `BERTH_LOCATION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The regions that refused its create for capacity, with ACI's reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Spans of its containers' logs that ACI did not keep until Berth read them
    /// (`container: detail`); the saved log notes each where it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs_truncated: Vec<String>,
    /// ACI reported it evicted (Spot), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evicted: Option<String>,
    /// Its create is held for capacity (a core quota or `BERTH_MAX_CORES`): it stays pending until
    /// then, and is created once it fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
    /// The last heartbeat recorded from its containers (see [`super::policy::beat_worth_saving`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_beat: Option<Millis>,
}

/// Why an instance's create waits, since when (its place in the queue: oldest first) and when
/// it tries again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub since: Millis,
    pub reason: String,
    pub retry_at: Millis,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

impl Instance {
    /// A planned instance: nothing done to it yet.
    pub fn new(slot: usize, index: u32, generation: u32, aci_name: String) -> Self {
        Instance {
            slot,
            index,
            generation,
            aci_name,
            claim_until: None,
            create_tries: 0,
            created: None,
            observed: None,
            observed_at: None,
            next_look: None,
            quiet_looks: 0,
            failures: 0,
            blocked_until: None,
            retiring: false,
            stopped: false,
            logs_saved: false,
            deleted: false,
            kept: false,
            ended: None,
            completed: None,
            verdict: None,
            priority: None,
            location: None,
            refused: Vec::new(),
            logs_truncated: Vec::new(),
            evicted: None,
            held: None,
            last_beat: None,
            look_plan: None,
        }
    }
}

/// How an instance's attempt ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub succeeded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A failing container's exit code, when one said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub at: Millis,
    /// The attempt ended because ACI evicted it (Spot): it is retried without counting against
    /// the retry's `maxAttempts`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evicted: bool,
}

/// What ARM said about a group at one look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub provisioning_state: String,
    /// `instanceView.state`: `Pending`, `Running`, `Succeeded`, `Failed`, `Stopped`, ...
    pub state: String,
    pub containers: Vec<ContainerObservation>,
    /// The last warning event's message, if any (image pull and mount failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One container at one look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerObservation {
    pub name: String,
    /// `Waiting`, `Running`, `Terminated` (empty when ACI has not reported it yet).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub restart_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<Millis>,
}

impl Observation {
    /// Every container has terminated (and ACI will not restart it).
    pub fn all_terminated(&self) -> bool {
        let group_done = matches!(self.state.as_str(), "Succeeded" | "Failed" | "Stopped");
        group_done
            || (!self.containers.is_empty()
                && self.containers.iter().all(|c| c.state == "Terminated"))
    }

    /// Provisioning failed (image pull, mount, quota): the group will not run.
    pub fn provisioning_failed(&self) -> bool {
        self.provisioning_state.eq_ignore_ascii_case("Failed")
    }

    /// The first non-zero exit code, if any container has one.
    pub fn failed_exit(&self) -> Option<(&str, i64)> {
        self.containers.iter().find_map(|c| {
            c.exit_code
                .filter(|code| *code != 0)
                .map(|code| (c.name.as_str(), code))
        })
    }
}

/// Compute used, as ACI bills it, and its estimated price.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub vcpu_seconds: f64,
    pub memory_gb_seconds: f64,
    /// Seconds of container groups that ran at `Spot` priority.
    #[serde(default)]
    pub spot_seconds: f64,
    /// Seconds of container groups that ran at `Regular` priority (ACI's default).
    #[serde(default)]
    pub regular_seconds: f64,
}

/// One entry of a deployment's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Millis,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Deployment {
    /// The instances of the current attempt or generation, one per spec group, not retired.
    pub fn current(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| !i.retiring)
    }
}
