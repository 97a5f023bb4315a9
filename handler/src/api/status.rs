//! The documents the API answers with (status, history, list), built from checkpoints.

use std::collections::BTreeMap;

use serde::Serialize;

use super::prices::{Billing, Prices, Priority};
use crate::clock::rfc3339;
use crate::engine::flow::{self, GroupState, Tally, Task};
use crate::engine::state::{HistoryEntry, Raised};
use crate::engine::{Deployment, Instance, Millis, Phase};
use crate::spec::Mode;

fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

// The documents' fields are declared in alphabetical order: that is the order serde_json writes a
// map's keys in, so they read like every other answer of the API, built as `Value`s.

/// The status document of a deployment (`GET /api/deployments/{id}`, and each item of a list).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status<'a> {
    pub attempt: u32,
    pub cost: CostDoc,
    pub created_time: String,
    /// Why the deployment failed; absent while it has not, and when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// One per spec group, in the spec's order.
    pub groups: Vec<GroupDoc<'a>>,
    pub id: &'a str,
    pub last_updated_time: String,
    pub mode: Mode,
    /// The spec's notifications: delivered, pending or given up; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationDoc<'a>>,
    /// Why creates wait: the oldest held create's reason, and how many are held; absent when
    /// none is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    pub phase: Phase,
    pub runtime_status: &'static str,
    pub tags: &'a BTreeMap<String, String>,
    /// The template (name and version) the deployment was started from, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<&'a crate::spec::template::TemplateRef>,
}

/// One notification of the status document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDoc<'a> {
    pub attempts: u32,
    /// The CloudEvent's id (and `webhook-id`).
    pub id: &'a str,
    /// The last attempt's answer: a status code or why there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<&'a str>,
    /// When the next attempt is due, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_time: Option<String>,
    /// The index of its entry in the spec's `notify`; absent for Event Grid's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<usize>,
    /// `true` for the notification published to the Event Grid topic (`BERTH_EVENTGRID_TOPIC`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub event_grid: bool,
    pub on: crate::spec::NotifyOn,
    /// `Pending`, `Delivered` or `GaveUp`.
    pub state: crate::engine::DeliveryState,
}

/// Compute used so far, running groups up to the time of the read, rounded: seconds to 3
/// places, dollars to 6.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostDoc {
    /// The compute priced from the price table, without the groups listed in `unpriced`.
    pub estimated_usd: f64,
    pub memory_gb_seconds: f64,
    /// Seconds of container groups at `Regular` priority; absent while none ran.
    #[serde(skip_serializing_if = "is_zero")]
    pub regular_seconds: f64,
    /// Seconds of container groups at `Spot` priority; absent while none ran.
    #[serde(skip_serializing_if = "is_zero")]
    pub spot_seconds: f64,
    /// The meters the price table has no price for (`sku Confidential`, `gpu V100`), whose
    /// groups `estimatedUsd` leaves out; absent when every group is priced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
    pub vcpu_seconds: f64,
}

fn is_zero(seconds: &f64) -> bool {
    *seconds == 0.0
}

/// A spec group: where it stands in the workflow, its instances summarised, and its latest
/// container group.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDoc<'a> {
    /// `null` until Berth has named a container group for it.
    pub aci_name: Option<&'a str>,
    pub containers: Vec<ContainerDoc<'a>>,
    /// Failed instances (after their retries), with their errors; at most 100.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<InstanceDoc<'a>>,
    /// Absent until there is a container group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// The group's instances by how they stand.
    pub instances: Tally,
    /// Spans of its containers' logs that ACI did not keep until Berth read them
    /// (`instance/container: what is missing`); each saved log says so where they were. At most
    /// 100.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs_truncated: Vec<String>,
    pub name: &'a str,
    /// The `completed` outputs of its succeeded instances, by index; at most 100.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<u32, &'a serde_json::Value>,
    /// How the group ended (`Succeeded`, `Failed`, `Skipped`); absent until it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<GroupState>,
    /// `Waiting` for its dependencies, `Skipped`, or ACI's `instanceView.state` of its latest
    /// container group, or Berth's `Pending`, `Creating` or `Deleted` around it.
    pub state: &'a str,
}

/// Most failures and outputs a status document lists per group.
const MOST_LISTED: usize = 100;

/// A container as ACI last reported it (`Waiting` before any report).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDoc<'a> {
    /// `null` until the container has exited.
    pub exit_code: Option<i64>,
    pub name: String,
    pub restart_count: u32,
    pub state: &'a str,
}

/// The logs truncated of group `slot`'s instances, each named by its instance (at most
/// [`MOST_LISTED`]).
fn logs_truncated(d: &Deployment, slot: usize) -> Vec<String> {
    d.instances
        .iter()
        .filter(|i| i.slot == slot)
        .flat_map(|i| {
            i.logs_truncated
                .iter()
                .map(|t| format!("{}/{t}", i.aci_name))
        })
        .take(MOST_LISTED)
        .collect()
}

/// A container group's state: ACI's `instanceView.state`, or Berth's `Pending`, `Creating` or
/// `Deleted` around it.
pub fn instance_state(inst: &Instance) -> &str {
    if inst.deleted {
        "Deleted"
    } else if inst.created.is_none() {
        "Creating"
    } else {
        inst.observed
            .as_ref()
            .map(|o| o.state.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("Pending")
    }
}

/// The compute of `d` up to `now`: the checkpoint's totals of ended instances, plus each running
/// one since its create (computed here, the checkpoint is not rewritten), priced per instance.
pub fn cost(d: &Deployment, prices: &Prices, now: Millis) -> CostDoc {
    let (mut vcpu_seconds, mut memory_gb_seconds) = (d.cost.vcpu_seconds, d.cost.memory_gb_seconds);
    let (mut regular_seconds, mut spot_seconds) = (d.cost.regular_seconds, d.cost.spot_seconds);
    let mut usd = 0.0;
    let mut unpriced = Vec::new();
    let billings: Vec<Billing> = d.spec.groups.iter().map(Billing::of).collect();
    for inst in &d.instances {
        let Some(created) = inst.created else {
            continue;
        };
        let billing = &billings[inst.slot];
        let priority = inst.priority.unwrap_or(Priority::Regular);
        let end = match inst.ended {
            Some(ended) => ended,
            None => {
                let at = now.max(created);
                let seconds = (at - created) as f64 / 1000.0;
                vcpu_seconds += billing.cpu * seconds;
                memory_gb_seconds += billing.memory_gb * seconds;
                match priority {
                    Priority::Regular => regular_seconds += seconds,
                    Priority::Spot => spot_seconds += seconds,
                }
                at
            }
        };
        let seconds = (end.max(created) - created) as f64 / 1000.0;
        match prices.price(billing, priority, seconds) {
            Ok(price) => usd += price,
            Err(meter) if !unpriced.contains(&meter) => unpriced.push(meter),
            Err(_) => {}
        }
    }
    CostDoc {
        estimated_usd: round(usd, 6),
        memory_gb_seconds: round(memory_gb_seconds, 3),
        regular_seconds: round(regular_seconds, 3),
        spot_seconds: round(spot_seconds, 3),
        unpriced,
        vcpu_seconds: round(vcpu_seconds, 3),
    }
}

/// The status document, its cost up to `now`.
pub fn status<'a>(d: &'a Deployment, prices: &Prices, now: Millis) -> Status<'a> {
    let states = flow::states(d);
    let groups = d
        .spec
        .groups
        .iter()
        .enumerate()
        .map(|(slot, group)| {
            let latest = d.instances.iter().rev().find(|i| i.slot == slot);
            let (failures, outputs) = results(d, slot);
            let result = states[slot].has_ended().then_some(states[slot]);
            let instances = flow::tally(d, slot);
            let Some(inst) = latest else {
                let state = match states[slot] {
                    GroupState::Waiting => "Waiting",
                    GroupState::Skipped => "Skipped",
                    _ => "Pending",
                };
                return GroupDoc {
                    aci_name: None,
                    containers: Vec::new(),
                    failures,
                    generation: None,
                    instances,
                    logs_truncated: Vec::new(),
                    name: &group.name,
                    outputs,
                    result,
                    state,
                };
            };
            let state = instance_state(inst);
            let containers = match &inst.observed {
                Some(o) => o
                    .containers
                    .iter()
                    .map(|c| ContainerDoc {
                        exit_code: c.exit_code,
                        name: c.name.clone(),
                        restart_count: c.restart_count,
                        state: &c.state,
                    })
                    .collect(),
                None => group
                    .shape()
                    .containers
                    .into_iter()
                    .map(|name| ContainerDoc {
                        exit_code: None,
                        name,
                        restart_count: 0,
                        state: "Waiting",
                    })
                    .collect(),
            };
            GroupDoc {
                aci_name: Some(&inst.aci_name),
                containers,
                failures,
                generation: Some(inst.generation),
                instances,
                logs_truncated: logs_truncated(d, slot),
                name: &group.name,
                outputs,
                result,
                state,
            }
        })
        .collect();
    Status {
        attempt: d.attempt,
        cost: cost(d, prices, now),
        created_time: rfc3339(d.created),
        error: d.outcome.as_ref().and_then(|o| o.error.as_deref()),
        groups,
        id: &d.id,
        last_updated_time: rfc3339(d.updated),
        mode: d.spec.mode,
        notifications: d
            .notifications
            .iter()
            .map(|n| NotificationDoc {
                attempts: n.attempts,
                id: &n.id,
                last_result: n.last.as_deref(),
                next_attempt_time: n.next_at.map(rfc3339),
                notify: (!n.event_grid).then_some(n.target),
                event_grid: n.event_grid,
                on: n.on,
                state: n.state,
            })
            .collect(),
        pending: pending(d),
        phase: d.phase,
        runtime_status: d.status.as_str(),
        tags: &d.spec.tags,
        template: d.spec.template.as_ref(),
    }
}

/// Why creates wait, from the instances held for capacity (see [`Status::pending`]).
fn pending(d: &Deployment) -> Option<String> {
    let held: Vec<_> = d
        .current()
        .filter(|i| i.created.is_none())
        .filter_map(|i| i.held.as_ref())
        .collect();
    let oldest = held.iter().min_by_key(|h| h.since)?;
    Some(match held.len() {
        1 => oldest.reason.clone(),
        n => format!("{} ({n} creates held)", oldest.reason),
    })
}

/// Group `slot`'s failed instances and its succeeded instances' outputs, by index.
pub(crate) fn results(
    d: &Deployment,
    slot: usize,
) -> (Vec<InstanceDoc<'_>>, BTreeMap<u32, &serde_json::Value>) {
    let mut failures = Vec::new();
    let mut outputs = BTreeMap::new();
    for at in flow::latest(d, slot).into_iter().flatten() {
        let inst = &d.instances[at];
        match flow::task(d, slot, Some(inst)) {
            Task::Failed if failures.len() < MOST_LISTED => {
                failures.push(instance_doc(d, slot, inst.index, Some(inst)));
            }
            Task::Succeeded if outputs.len() < MOST_LISTED => {
                if let Some(output) = inst.completed.as_ref().and_then(|c| c.output.as_ref()) {
                    outputs.insert(inst.index, output);
                }
            }
            _ => {}
        }
    }
    (failures, outputs)
}

/// A page of a group's instances (`GET /api/deployments/{id}/groups/{group}/instances`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstancesPage<'a> {
    /// What to send as `continuationToken` for the next page; `null` on the last.
    pub continuation_token: Option<String>,
    pub group: &'a str,
    pub id: &'a str,
    pub instances: Vec<InstanceDoc<'a>>,
}

/// One index of a group: its latest attempt.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDoc<'a> {
    /// `null` before its first attempt is planned.
    pub aci_name: Option<&'a str>,
    /// Its latest attempt, 0 before the first.
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub index: u32,
    /// The region of its latest attempt, when the group names `locations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<&'a serde_json::Value>,
    /// The priority of its latest attempt (`Regular` or `Spot`), when the spec gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<&'static str>,
    /// `New`, `Running`, `Retrying`, `Succeeded` or `Failed`.
    pub state: &'static str,
}

/// Index `index` of group `slot`, from its latest attempt `inst`.
fn instance_doc<'a>(
    d: &'a Deployment,
    slot: usize,
    index: u32,
    inst: Option<&'a crate::engine::Instance>,
) -> InstanceDoc<'a> {
    let verdict = inst.and_then(|i| i.verdict.as_ref());
    let state = match flow::task(d, slot, inst) {
        Task::New => "New",
        Task::Running => "Running",
        Task::Retry { .. } => "Retrying",
        Task::Succeeded => "Succeeded",
        Task::Failed => "Failed",
    };
    InstanceDoc {
        aci_name: inst.map(|i| i.aci_name.as_str()),
        attempt: inst.map_or(0, |i| i.generation),
        error: verdict.and_then(|v| v.error.as_deref()),
        exit_code: verdict.and_then(|v| v.exit_code),
        index,
        location: inst.and_then(|i| i.location.as_deref()),
        output: inst
            .and_then(|i| i.completed.as_ref())
            .and_then(|c| c.output.as_ref()),
        priority: inst.and_then(|i| i.priority).map(|p| p.as_str()),
        state,
    }
}

/// The continuation token of a page that goes on at index `next` ([`instances`], [`events`]).
fn index_token(next: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("i:{next}"))
}

/// Reads a continuation token of [`instances`] and [`events`]: the next index.
pub fn instance_token(token: &str) -> Option<u32> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("i:")?
        .parse()
        .ok()
}

/// Up to `top` instances of group `group` from index `from`; `None` when there is no such group.
pub fn instances<'a>(
    d: &'a Deployment,
    group: &'a str,
    from: u32,
    top: usize,
) -> Option<InstancesPage<'a>> {
    let slot = d.spec.groups.iter().position(|g| g.name == group)?;
    let latest = flow::latest(d, slot);
    let instances: Vec<InstanceDoc<'a>> = latest
        .iter()
        .enumerate()
        .skip(from as usize)
        .take(top)
        .map(|(index, at)| instance_doc(d, slot, index as u32, at.map(|i| &d.instances[i])))
        .collect();
    let next = from as usize + instances.len();
    let continuation_token = (next < latest.len()).then(|| index_token(next));
    Some(InstancesPage {
        continuation_token,
        group,
        id: &d.id,
        instances,
    })
}

/// A page of the events raised on a deployment and kept (`GET /api/deployments/{id}/events`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage<'a> {
    /// What to send as `continuationToken` for the next page; `null` on the last.
    pub continuation_token: Option<String>,
    pub events: Vec<EventDoc<'a>>,
}

/// One raised event: its name, when it was raised and its payload as given (`null` for none).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDoc<'a> {
    pub name: &'a str,
    pub payload: &'a serde_json::Value,
    pub timestamp: String,
}

/// Up to `top` of the events in `inbox`, oldest first, from index `from`.
pub fn events(inbox: &[Raised], from: usize, top: usize) -> EventsPage<'_> {
    let events: Vec<EventDoc<'_>> = inbox
        .iter()
        .skip(from)
        .take(top)
        .map(|r| EventDoc {
            name: &r.name,
            payload: &r.payload,
            timestamp: rfc3339(r.at),
        })
        .collect();
    let next = from + events.len();
    EventsPage {
        continuation_token: (next < inbox.len()).then(|| index_token(next)),
        events,
    }
}

/// A page of `GET /api/deployments`, newest first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List<'a> {
    /// What to send as `continuationToken` for the next page; `null` on the last.
    pub continuation_token: Option<&'a str>,
    pub deployments: Vec<Status<'a>>,
    /// The page's records this Berth cannot read, listed apart; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableDoc<'a>>,
}

/// A listed deployment this Berth cannot read: what its index says, why, and where its stored
/// document is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadableDoc<'a> {
    pub checkpoint: String,
    pub created_time: String,
    pub id: &'a str,
    pub reason: &'a str,
    /// The status its index holds (`Unknown` when a newer Berth wrote a status this one lacks).
    pub runtime_status: &'static str,
}

/// The list item of an unreadable record; `base` is the API's URL.
pub fn unreadable<'a>(u: &'a crate::checkpoint::Unreadable, base: &str) -> UnreadableDoc<'a> {
    UnreadableDoc {
        checkpoint: format!("{base}/api/deployments/{}/checkpoint", u.id),
        created_time: rfc3339(u.created),
        id: &u.id,
        reason: &u.reason,
        runtime_status: u.status.as_str(),
    }
}

/// The history document (`GET /api/deployments/{id}/history`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History<'a> {
    /// What to send as `continuationToken` for the next (later) page; `null` on the last.
    pub continuation_token: Option<String>,
    /// Oldest first.
    pub history: Vec<HistoryEvent<'a>>,
    pub id: &'a str,
}

/// One entry of the history document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub detail: &'a str,
    pub event_type: &'a str,
    pub timestamp: String,
}

/// A page of the history document: `entries`, oldest first, and the token of the next page.
pub fn history<'a>(
    id: &'a str,
    entries: &'a [HistoryEntry],
    continuation_token: Option<String>,
) -> History<'a> {
    let history = entries
        .iter()
        .map(|h| HistoryEvent {
            detail: &h.detail,
            event_type: &h.kind,
            timestamp: rfc3339(h.at),
        })
        .collect();
    History {
        continuation_token,
        history,
        id,
    }
}

/// The token of history page `page`.
pub fn history_token(page: u32) -> String {
    format!("h{page}")
}

/// The page a history token names; `None` when it is not one [`history_token`] makes.
pub fn history_page(token: &str) -> Option<u32> {
    let digits = token.strip_prefix('h')?;
    (!digits.is_empty() && digits.len() <= 9 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::state::{HistoryEntry, Outcome};
    use crate::engine::{ContainerObservation, Instance, Observation, RuntimeStatus, StartOptions};
    use crate::spec::{self, Format};

    /// A three-group deployment: one group not created yet, one created and observed, one being
    /// created; failed with an error, tagged, with some compute used.
    fn deployment() -> Deployment {
        let group = |name: &str| {
            json!({
                "name": name,
                "properties": { "containers": [{ "name": "main", "properties": {
                    "image": "busybox",
                    "resources": { "requests": { "cpu": 1, "memoryInGB": 1.5 } } } }] }
            })
        };
        let spec = json!({
            "id": "d-status",
            "mode": "job",
            "groups": [group("a"), group("b"), group("c")],
            "tags": { "team": "media" }
        });
        let spec = spec::parse(spec.to_string().as_bytes(), Format::Json, || unreachable!())
            .expect("the spec parses");
        let options = StartOptions {
            callback_base: "http://127.0.0.1".into(),
            create_claim_ms: 60_000,
            uid: None,
            event_grid: false,
        };
        let mut d =
            crate::engine::start(spec, None, String::new(), options, 1_795_000_000_000).next;
        let instance = |slot: usize, aci_name: &str| Instance::new(slot, 0, 1, aci_name.into());
        let mut observed = instance(1, "berth-d-status-b-1");
        observed.created = Some(1_795_000_001_000);
        observed.ended = Some(1_795_000_062_235);
        observed.observed = Some(Observation {
            provisioning_state: "Succeeded".into(),
            state: "Failed".into(),
            containers: vec![ContainerObservation {
                name: "main".into(),
                state: "Terminated".into(),
                exit_code: Some(3),
                restart_count: 0,
                detail: None,
                start: None,
                finish: None,
            }],
            problem: None,
        });
        d.instances = vec![observed, instance(2, "berth-d-status-c-1")];
        d.status = RuntimeStatus::Failed;
        d.updated = 1_795_000_060_123;
        // What the engine added when `b` ended: 61.235 s of 1 vCPU and 1.5 GB.
        d.cost.vcpu_seconds = 61.235;
        d.cost.memory_gb_seconds = 91.852_5;
        d.outcome = Some(Outcome {
            status: RuntimeStatus::Failed,
            error: Some("main exited with 3".into()),
            at: 1_795_000_060_000,
        });
        d.history = vec![
            HistoryEntry {
                at: 1_795_000_000_000,
                kind: "Started".into(),
                detail: String::new(),
            },
            HistoryEntry {
                at: 1_795_000_060_000,
                kind: "Failed".into(),
                detail: "main exited with 3".into(),
            },
        ];
        d
    }

    #[test]
    fn the_status_and_history_documents_are_these_bytes() {
        let d = deployment();
        let text = serde_json::to_string(&status(&d, &Prices::default(), d.updated)).unwrap();
        let expected = concat!(
            r#"{"attempt":1,"cost":{"estimatedUsd":0.000802,"memoryGbSeconds":91.853,"vcpuSeconds":61.235},"#,
            r#""createdTime":"2026-11-18T11:06:40.000Z","error":"main exited with 3","groups":["#,
            r#"{"aciName":null,"containers":[],"instances":{"failed":0,"new":1,"retrying":0,"running":0,"succeeded":0},"name":"a","result":"Skipped","state":"Skipped"},"#,
            r#"{"aciName":"berth-d-status-b-1","containers":[{"exitCode":3,"name":"main","restartCount":0,"state":"Terminated"}],"generation":1,"#,
            r#""instances":{"failed":0,"new":0,"retrying":0,"running":1,"succeeded":0},"name":"b","state":"Failed"},"#,
            r#"{"aciName":"berth-d-status-c-1","containers":[{"exitCode":null,"name":"main","restartCount":0,"state":"Waiting"}],"generation":1,"#,
            r#""instances":{"failed":0,"new":0,"retrying":0,"running":1,"succeeded":0},"name":"c","state":"Creating"}],"#,
            r#""id":"d-status","lastUpdatedTime":"2026-11-18T11:07:40.123Z","mode":"job","phase":"Pending","#,
            r#""runtimeStatus":"Failed","tags":{"team":"media"}}"#
        );
        assert_eq!(text, expected);
        let text = serde_json::to_string(&history(&d.id, &d.history, None)).unwrap();
        let expected = concat!(
            r#"{"continuationToken":null,"history":[{"eventType":"Started","timestamp":"2026-11-18T11:06:40.000Z"},"#,
            r#"{"detail":"main exited with 3","eventType":"Failed","timestamp":"2026-11-18T11:07:40.000Z"}],"#,
            r#""id":"d-status"}"#
        );
        assert_eq!(text, expected);
        let page = serde_json::to_value(history(&d.id, &d.history[..1], Some(history_token(0))));
        assert_eq!(page.unwrap()["continuationToken"], "h0");
    }

    #[test]
    fn history_tokens_read_back_and_nothing_else_does() {
        for page in [0, 1, 41, 999_999_999] {
            assert_eq!(history_page(&history_token(page)), Some(page));
        }
        for bad in [
            "",
            "h",
            "0",
            "h-1",
            "h+1",
            "h1 ",
            "h01x",
            "h9999999999",
            "H1",
            "h١",
        ] {
            assert_eq!(history_page(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_succeeded_deployment_has_no_error_and_a_deleted_group_says_so() {
        let mut d = deployment();
        d.status = RuntimeStatus::Succeeded;
        d.outcome = None;
        d.instances[0].deleted = true;
        let doc = serde_json::to_value(status(&d, &Prices::default(), d.updated)).unwrap();
        assert_eq!(doc.get("error"), None);
        assert_eq!(doc["runtimeStatus"], "Succeeded");
        assert_eq!(doc["groups"][1]["state"], "Deleted");
    }

    #[test]
    fn a_running_group_costs_what_it_has_used_so_far() {
        let mut d = deployment();
        let b = &mut d.instances[0];
        b.ended = None;
        let created = b.created.unwrap();
        d.cost.vcpu_seconds = 0.0;
        d.cost.memory_gb_seconds = 0.0;
        let prices = Prices::default();
        assert_eq!(cost(&d, &prices, created).estimated_usd, 0.0);
        let after_an_hour = cost(&d, &prices, created + 3_600_000);
        assert_eq!(after_an_hour.vcpu_seconds, 3600.0);
        assert_eq!(after_an_hour.memory_gb_seconds, 5400.0);
        assert_eq!(
            after_an_hour.estimated_usd,
            round(0.0405 + 1.5 * 0.00445, 6)
        );
        let after_two = cost(&d, &prices, created + 7_200_000);
        assert!(after_two.estimated_usd > after_an_hour.estimated_usd);
        // The read priced it; the checkpoint was not touched.
        assert_eq!(d.cost.vcpu_seconds, 0.0);
        // Once the engine ends it, the cost stops growing.
        d.instances[0].ended = Some(created + 3_600_000);
        d.cost.vcpu_seconds = 3600.0;
        d.cost.memory_gb_seconds = 5400.0;
        let later = cost(&d, &prices, created + 86_400_000);
        assert_eq!(later.vcpu_seconds, 3600.0);
        assert_eq!(later.estimated_usd, after_an_hour.estimated_usd);
    }

    #[test]
    fn a_spot_instance_is_priced_at_spot_rates_and_its_seconds_shown_apart() {
        let mut d = deployment();
        d.cost = Default::default();
        let b = &mut d.instances[0];
        b.priority = Some(crate::spec::Priority::Spot);
        b.ended = None;
        let created = b.created.unwrap();
        let hour = cost(&d, &Prices::default(), created + 3_600_000);
        assert_eq!(hour.estimated_usd, round(0.01215 + 1.5 * 0.001335, 6));
        assert_eq!((hour.spot_seconds, hour.regular_seconds), (3600.0, 0.0));
        let doc = serde_json::to_value(&hour).unwrap();
        assert_eq!(doc["spotSeconds"], 3600.0);
        assert_eq!(doc.get("regularSeconds"), None);
    }

    #[test]
    fn each_group_is_priced_by_its_os_sku_and_gpus() {
        let mut d = deployment();
        let props = |extra: serde_json::Value, requests: serde_json::Value| {
            let mut p = json!({ "containers": [{ "name": "main", "properties": {
                "image": "busybox", "resources": { "requests": requests } } }] });
            p.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            p
        };
        d.spec.groups[0].properties = props(
            json!({ "osType": "Windows" }),
            json!({ "cpu": 2, "memoryInGB": 4 }),
        );
        d.spec.groups[1].properties = props(
            json!({ "sku": "Confidential" }),
            json!({ "cpu": 1, "memoryInGB": 1.5 }),
        );
        d.spec.groups[2].properties = props(
            json!({}),
            json!({ "cpu": 4, "memoryInGB": 8, "gpu": { "count": 2, "sku": "K80" } }),
        );
        let hour = |slot: usize| {
            let mut i = Instance::new(slot, 0, 1, format!("g{slot}"));
            i.created = Some(0);
            i.ended = Some(3_600_000);
            i
        };
        d.instances = vec![hour(0), hour(1), hour(2)];
        let defaults = cost(&d, &Prices::default(), 3_600_000);
        let windows = 2.0 * 0.0405 + 4.0 * 0.00445 + 2.0 * 0.0432;
        assert_eq!(defaults.estimated_usd, round(windows, 6));
        assert_eq!(defaults.unpriced, vec!["sku Confidential", "gpu K80"]);
        let doc = serde_json::to_value(&defaults).unwrap();
        assert_eq!(doc["unpriced"], json!(["sku Confidential", "gpu K80"]));

        let table = Prices::parse(
            r#"{"confidential": {"vcpuHour": 0.05, "gbHour": 0.006},
                "gpu": {"K80": {"gpuHour": 0.9, "vcpuHour": 0.04, "gbHour": 0.005}}}"#,
        )
        .unwrap();
        let priced = cost(&d, &table, 3_600_000);
        let confidential = 0.05 + 1.5 * 0.006;
        let k80 = 2.0 * 0.9 + 4.0 * 0.04 + 8.0 * 0.005;
        assert_eq!(priced.estimated_usd, round(windows + confidential + k80, 6));
        assert!(priced.unpriced.is_empty());
        let doc = serde_json::to_value(&priced).unwrap();
        assert_eq!(doc.get("unpriced"), None);
    }
}
