//! The status document (README.md, "The HTTP API"), built from a checkpoint.

use serde_json::{Value, json};

use crate::clock::rfc3339;
use crate::engine::Deployment;

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

/// The status document.
pub fn status(d: &Deployment, prices: Prices) -> Value {
    let groups: Vec<Value> = d
        .spec
        .groups
        .iter()
        .enumerate()
        .map(|(slot, group)| {
            let latest = d.instances.iter().rev().find(|i| i.slot == slot);
            let Some(inst) = latest else {
                return json!({ "name": group.name, "aciName": null, "state": "Pending", "containers": [] });
            };
            let state = if inst.deleted {
                "Deleted".to_owned()
            } else if inst.created.is_none() {
                "Creating".to_owned()
            } else {
                inst.observed.as_ref().map(|o| o.state.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| "Pending".into())
            };
            let containers: Vec<Value> = match &inst.observed {
                Some(o) => o
                    .containers
                    .iter()
                    .map(|c| json!({ "name": c.name, "state": c.state, "exitCode": c.exit_code, "restartCount": c.restart_count }))
                    .collect(),
                None => group.shape().containers.iter().map(|name| json!({ "name": name, "state": "Waiting", "exitCode": null, "restartCount": 0 })).collect(),
            };
            json!({ "name": group.name, "aciName": inst.aci_name, "generation": inst.generation, "state": state, "containers": containers })
        })
        .collect();
    let cost = &d.cost;
    let usd =
        cost.vcpu_seconds * prices.per_vcpu_second + cost.memory_gb_seconds * prices.per_gb_second;
    let mut doc = json!({
        "id": d.id,
        "mode": d.spec.mode,
        "runtimeStatus": d.status.as_str(),
        "phase": d.phase,
        "createdTime": rfc3339(d.created),
        "lastUpdatedTime": rfc3339(d.updated),
        "groups": groups,
        "attempt": d.attempt,
        "cost": {
            "vcpuSeconds": round(cost.vcpu_seconds, 3),
            "memoryGbSeconds": round(cost.memory_gb_seconds, 3),
            "estimatedUsd": round(usd, 6),
        },
        "tags": d.spec.tags,
    });
    if let Some(error) = d.outcome.as_ref().and_then(|o| o.error.clone()) {
        doc["error"] = Value::from(error);
    }
    doc
}

/// The history document.
pub fn history(d: &Deployment) -> Value {
    let events: Vec<Value> = d
        .history
        .iter()
        .map(|h| {
            let mut entry = json!({ "timestamp": rfc3339(h.at), "eventType": h.kind });
            if !h.detail.is_empty() {
                entry["detail"] = Value::from(h.detail.as_str());
            }
            entry
        })
        .collect();
    json!({ "id": d.id, "history": events })
}
