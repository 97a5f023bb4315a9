//! The documents the API answers with (status, history, list), built from checkpoints.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::rfc3339;
use crate::engine::{Deployment, Instance, Phase};
use crate::spec::Mode;

/// ACI prices used for `cost.estimatedUsd` (pay-as-you-go, Linux).
#[derive(Clone, Copy, Debug)]
pub struct Prices {
    pub per_vcpu_second: f64,
    pub per_gb_second: f64,
}

impl Default for Prices {
    /// ACI Linux list prices in US regions: $0.0000135 per vCPU-second, $0.0000015 per GB-second.
    fn default() -> Self {
        Prices {
            per_vcpu_second: 0.000_013_5,
            per_gb_second: 0.000_001_5,
        }
    }
}

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
    pub phase: Phase,
    pub runtime_status: &'static str,
    pub tags: &'a BTreeMap<String, String>,
}

/// Compute used so far, rounded: seconds to 3 places, dollars to 6.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostDoc {
    pub estimated_usd: f64,
    pub memory_gb_seconds: f64,
    pub vcpu_seconds: f64,
}

/// A spec group's latest container group.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDoc<'a> {
    /// `null` until Berth has named a container group for it.
    pub aci_name: Option<&'a str>,
    pub containers: Vec<ContainerDoc<'a>>,
    /// Absent until there is a container group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    pub name: &'a str,
    /// ACI's `instanceView.state`, or Berth's `Pending`, `Creating` or `Deleted` around it.
    pub state: &'a str,
}

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

/// The status document.
pub fn status(d: &Deployment, prices: Prices) -> Status<'_> {
    let groups = d
        .spec
        .groups
        .iter()
        .enumerate()
        .map(|(slot, group)| {
            let latest = d.instances.iter().rev().find(|i| i.slot == slot);
            let Some(inst) = latest else {
                return GroupDoc {
                    aci_name: None,
                    containers: Vec::new(),
                    generation: None,
                    name: &group.name,
                    state: "Pending",
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
                generation: Some(inst.generation),
                name: &group.name,
                state,
            }
        })
        .collect();
    let cost = &d.cost;
    let usd =
        cost.vcpu_seconds * prices.per_vcpu_second + cost.memory_gb_seconds * prices.per_gb_second;
    Status {
        attempt: d.attempt,
        cost: CostDoc {
            estimated_usd: round(usd, 6),
            memory_gb_seconds: round(cost.memory_gb_seconds, 3),
            vcpu_seconds: round(cost.vcpu_seconds, 3),
        },
        created_time: rfc3339(d.created),
        error: d.outcome.as_ref().and_then(|o| o.error.as_deref()),
        groups,
        id: &d.id,
        last_updated_time: rfc3339(d.updated),
        mode: d.spec.mode,
        phase: d.phase,
        runtime_status: d.status.as_str(),
        tags: &d.spec.tags,
    }
}

/// A page of `GET /api/deployments`, newest first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List<'a> {
    /// What to send as `continuationToken` for the next page; `null` on the last.
    pub continuation_token: Option<&'a str>,
    pub deployments: Vec<Status<'a>>,
}

/// The history document (`GET /api/deployments/{id}/history`).
#[derive(Serialize)]
pub struct History<'a> {
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

/// The history document.
pub fn history(d: &Deployment) -> History<'_> {
    let history = d
        .history
        .iter()
        .map(|h| HistoryEvent {
            detail: &h.detail,
            event_type: &h.kind,
            timestamp: rfc3339(h.at),
        })
        .collect();
    History { history, id: &d.id }
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
        };
        let mut d =
            crate::engine::start(spec, None, String::new(), options, 1_795_000_000_000).next;
        let instance = |slot: usize, aci_name: &str| Instance {
            slot,
            generation: 1,
            aci_name: aci_name.into(),
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
        };
        let mut observed = instance(1, "berth-d-status-b-1");
        observed.created = Some(1_795_000_001_000);
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
        d.cost.vcpu_seconds = 61.234_56;
        d.cost.memory_gb_seconds = 91.851_84;
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
        let text = serde_json::to_string(&status(&d, Prices::default())).unwrap();
        let expected = concat!(
            r#"{"attempt":1,"cost":{"estimatedUsd":0.000964,"memoryGbSeconds":91.852,"vcpuSeconds":61.235},"#,
            r#""createdTime":"2026-11-18T11:06:40.000Z","error":"main exited with 3","groups":["#,
            r#"{"aciName":null,"containers":[],"name":"a","state":"Pending"},"#,
            r#"{"aciName":"berth-d-status-b-1","containers":[{"exitCode":3,"name":"main","restartCount":0,"state":"Terminated"}],"generation":1,"name":"b","state":"Failed"},"#,
            r#"{"aciName":"berth-d-status-c-1","containers":[{"exitCode":null,"name":"main","restartCount":0,"state":"Waiting"}],"generation":1,"name":"c","state":"Creating"}],"#,
            r#""id":"d-status","lastUpdatedTime":"2026-11-18T11:07:40.123Z","mode":"job","phase":"Pending","#,
            r#""runtimeStatus":"Failed","tags":{"team":"media"}}"#
        );
        assert_eq!(text, expected);
        let text = serde_json::to_string(&history(&d)).unwrap();
        let expected = concat!(
            r#"{"history":[{"eventType":"Started","timestamp":"2026-11-18T11:06:40.000Z"},"#,
            r#"{"detail":"main exited with 3","eventType":"Failed","timestamp":"2026-11-18T11:07:40.000Z"}],"#,
            r#""id":"d-status"}"#
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn a_succeeded_deployment_has_no_error_and_a_deleted_group_says_so() {
        let mut d = deployment();
        d.status = RuntimeStatus::Succeeded;
        d.outcome = None;
        d.instances[0].deleted = true;
        let doc = serde_json::to_value(status(&d, Prices::default())).unwrap();
        assert_eq!(doc.get("error"), None);
        assert_eq!(doc["runtimeStatus"], "Succeeded");
        assert_eq!(doc["groups"][1]["state"], "Deleted");
    }
}
