//! The deployments a chaos run submits: a mix of short shell jobs, a retry, a callback, a timeout,
//! a service torn down by its `teardown` event and a pipeline (a group fanned out between two
//! others), some writing to an Azure Files share.

use serde_json::{Value, json};

/// The regions the quick and share jobs may run in, in order: the emulator refuses some creates
/// in the first for capacity (see `tamper`), and Berth makes them in the second.
pub const LOCATIONS: [&str; 2] = ["westeurope", "northeurope"];

/// The share's account and name (the emulator keeps it at `shares/<account>/<share>/`).
pub const SHARE_ACCOUNT: &str = "chaosacct";
pub const SHARE_NAME: &str = "chaos";

/// What a deployment does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One container that prints and exits 0.
    Quick,
    /// Two containers; one writes `<id>.txt` to the share.
    Share,
    /// Exits 3 on its first attempt, 0 on its second (a marker on the share tells them apart).
    RetryOnce,
    /// `completion: callback`: the container calls `BERTH_CALLBACK_URL`, then sleeps.
    Callback,
    /// Sleeps past its 5 s `timeout`.
    Timeout,
    /// `mode: service`, ended by a `teardown` event once it runs.
    Service,
    /// Three groups one after the other: `prep` writes a marker, `shard` runs 3 instances (2 at a
    /// time, instance 1 failing its first attempt) that each need it, `publish` gathers theirs.
    Pipeline,
    /// A run of the run's schedule (see `schedules`): one container that prints and exits 0.
    Scheduled,
}

/// The groups of a pipeline and the instances each runs: one create per (group, instance,
/// attempt), so [`PIPELINE_CREATES`] in all.
pub const PIPELINE_GROUPS: [&str; 3] = ["prep", "shard", "publish"];
/// `prep` once, shards 0 and 2 once, shard 1 twice (its first attempt fails), `publish` once.
pub const PIPELINE_CREATES: usize = 6;
/// What `publish` writes to `<id>.out` on the share when every stage ran in order.
pub const PIPELINE_OUTPUT: &str = "shard 0 of 3\nshard 1 of 3\nshard 2 of 3";

impl Kind {
    /// The kind of the `index`th deployment: every kind in every ten.
    pub fn for_index(index: usize) -> Self {
        match index % 10 {
            0 => Kind::Quick,
            4 => Kind::Pipeline,
            1 | 5 => Kind::Share,
            2 | 6 => Kind::RetryOnce,
            3 | 7 => Kind::Callback,
            8 => Kind::Timeout,
            _ => Kind::Service,
        }
    }

    /// A short name, part of the deployment id.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Quick => "quick",
            Kind::Share => "share",
            Kind::RetryOnce => "retry",
            Kind::Callback => "callback",
            Kind::Timeout => "timeout",
            Kind::Service => "service",
            Kind::Pipeline => "pipeline",
            Kind::Scheduled => "scheduled",
        }
    }

    /// Whether its spec names the run's webhook receiver in `notify`: the quick, retried and
    /// timed-out jobs and the schedule's runs, each told of its own outcome.
    pub fn notifies(self) -> bool {
        matches!(
            self,
            Kind::Quick | Kind::RetryOnce | Kind::Timeout | Kind::Scheduled
        )
    }

    /// The `runtimeStatus` a clean run ends in.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Timeout => "TimedOut",
            _ => "Succeeded",
        }
    }

    /// Its groups: `work` alone, or the pipeline's three.
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Kind::Pipeline => &PIPELINE_GROUPS,
            _ => &["work"],
        }
    }

    /// The containers of each of its groups.
    pub fn containers(self) -> &'static [&'static str] {
        match self {
            Kind::Share => &["main", "side"],
            _ => &["main"],
        }
    }

    /// The spec of deployment `id`.
    pub fn spec(self, id: &str) -> Value {
        if self == Kind::Pipeline {
            return pipeline_spec(id);
        }
        let share = "/mnt/share";
        let main = match self {
            Kind::Quick | Kind::Scheduled => "echo \"quick $BERTH_DEPLOYMENT_ID\"; sleep 1".to_owned(),
            Kind::Share => format!(
                "echo writing; echo \"$BERTH_DEPLOYMENT_ID\" > {share}/$BERTH_DEPLOYMENT_ID.txt; echo written"
            ),
            Kind::RetryOnce => format!(
                "if [ -f {share}/$BERTH_DEPLOYMENT_ID.seen ]; then echo second attempt; exit 0; fi; \
                 touch {share}/$BERTH_DEPLOYMENT_ID.seen; echo first attempt; exit 3"
            ),
            // The handler that created the group may be down for a moment: call until it answers.
            Kind::Callback => "echo calling back; i=0; while [ $i -lt 120 ]; do \
                 curl -fsS -m 5 -X POST -H 'content-type: application/json' -d '{\"exitCode\": 0}' \"$BERTH_CALLBACK_URL\" && break; \
                 i=$((i+1)); sleep 1; done; echo called; sleep 600"
                .to_owned(),
            Kind::Timeout => "echo waiting; sleep 600".to_owned(),
            Kind::Service => "echo up; while true; do sleep 1; done".to_owned(),
            Kind::Pipeline => unreachable!("built by pipeline_spec"),
        };
        let container = |name: &str, command: &str| {
            json!({ "name": name, "properties": {
                "image": "busybox",
                "command": ["/bin/sh", "-c", command],
                "resources": { "requests": { "cpu": 0.2, "memoryInGB": 0.2 } },
                "volumeMounts": [{ "name": "share", "mountPath": share }] } })
        };
        let mut containers = vec![container("main", &main)];
        if self == Kind::Share {
            containers.push(container("side", "echo side; sleep 1"));
        }
        let mut spec = json!({
            "id": id,
            "groups": [{ "name": "work", "properties": {
                "containers": containers,
                "volumes": [{ "name": "share", "azureFile": {
                    "shareName": SHARE_NAME, "storageAccountName": SHARE_ACCOUNT } }] } }],
            "cleanup": { "when": "always" },
            "captureLogs": true,
            "tags": { "chaos": self.label() },
        });
        match self {
            Kind::RetryOnce => spec["retry"] = json!({ "maxAttempts": 3, "backoff": "PT1S" }),
            Kind::Callback => spec["completion"] = json!("callback"),
            Kind::Timeout => spec["timeout"] = json!("PT5S"),
            Kind::Service => spec["mode"] = json!("service"),
            Kind::Quick | Kind::Share | Kind::Pipeline | Kind::Scheduled => {}
        }
        spot_and_regions(self, &mut spec);
        spec
    }
}

/// A group of one `main` container running `command` with the share mounted at `/mnt/share`.
fn share_group(name: &str, command: &str) -> Value {
    json!({ "name": name, "properties": {
        "containers": [{ "name": "main", "properties": {
            "image": "busybox",
            "command": ["/bin/sh", "-c", command],
            "resources": { "requests": { "cpu": 0.2, "memoryInGB": 0.2 } },
            "volumeMounts": [{ "name": "share", "mountPath": "/mnt/share" }] } }],
        "volumes": [{ "name": "share", "azureFile": {
            "shareName": SHARE_NAME, "storageAccountName": SHARE_ACCOUNT } }] } })
}

/// The pipeline: each stage checks on the share that the one before it finished, so a stage
/// started too early fails the deployment instead of passing unnoticed.
fn pipeline_spec(id: &str) -> Value {
    let dir = "/mnt/share";
    let prep = format!("echo preparing; echo ready > {dir}/{id}.prep");
    let shard = format!(
        "test \"$(cat {dir}/{id}.prep)\" = ready || {{ echo prep not done; exit 4; }}; \
         if [ \"$BERTH_INDEX\" = 1 ] && [ ! -f {dir}/{id}.shard-1.seen ]; then \
         touch {dir}/{id}.shard-1.seen; echo first attempt fails; exit 3; fi; \
         echo \"shard $BERTH_INDEX of $BERTH_COUNT\" > {dir}/{id}.shard-$BERTH_INDEX; echo sharded"
    );
    let publish = format!(
        "for i in 0 1 2; do test -f {dir}/{id}.shard-$i || {{ echo shard $i missing; exit 5; }}; done; \
         cat {dir}/{id}.shard-0 {dir}/{id}.shard-1 {dir}/{id}.shard-2 > {dir}/{id}.out; echo published"
    );
    let mut shards = share_group("shard", &shard);
    shards["dependsOn"] = json!(["prep"]);
    shards["count"] = json!(3);
    shards["parallelism"] = json!(2);
    shards["retry"] = json!({ "maxAttempts": 3, "backoff": "PT1S" });
    let mut last = share_group("publish", &publish);
    last["dependsOn"] = json!(["shard"]);
    json!({
        "id": id,
        "groups": [share_group("prep", &prep), shards, last],
        "cleanup": { "when": "always" },
        "captureLogs": true,
        "tags": { "chaos": Kind::Pipeline.label() },
    })
}

/// Quick jobs run at Spot priority (the emulator evicts some; Berth retries them, `Regular` after
/// two evictions); quick and share jobs name two regions.
fn spot_and_regions(kind: Kind, spec: &mut Value) {
    if kind == Kind::Quick {
        spec["priority"] = json!("Spot");
        spec["spot"] = json!({ "fallbackToRegularAfter": 2 });
    }
    if matches!(kind, Kind::Quick | Kind::Share) {
        spec["locations"] = json!(LOCATIONS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_in_every_ten() {
        let kinds: Vec<Kind> = (0..10).map(Kind::for_index).collect();
        for kind in [
            Kind::Quick,
            Kind::Share,
            Kind::RetryOnce,
            Kind::Callback,
            Kind::Timeout,
            Kind::Service,
            Kind::Pipeline,
        ] {
            assert!(kinds.contains(&kind), "{kind:?}");
        }
    }

    #[test]
    fn specs_are_accepted_by_the_parser() {
        for index in 0..10 {
            let kind = Kind::for_index(index);
            let spec = kind.spec(&format!("c{index:04}-{}", kind.label()));
            let text = spec.to_string();
            let parsed =
                berth::spec::parse(text.as_bytes(), berth::spec::Format::Json, || "x".into());
            assert!(parsed.is_ok(), "{kind:?}: {:?}", parsed.err());
        }
    }
}
