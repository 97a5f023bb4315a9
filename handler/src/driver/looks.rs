//! Looks by learned run time: the driver's side of [`crate::engine::looks`].
//!
//! - **Learning.** When an instance's containers have all exited with code 0, its run time (from
//!   the create being accepted to the last container's finish) is taken into the estimate of its
//!   group spec, keyed by the spec's digest ([`group_digest`]), in the store's [`RunTimes`]: one
//!   record per spec per round, after the round's state is saved, so a lost save records nothing.
//! - **Planning.** With its `Created`, an instance watched for its exit is told its
//!   [`LookPlan`]: the estimate of its spec, when there is one (else nothing: the default
//!   back-off), or, with `BERTH_LOOKS=round-robin`, a look every second, which a spent read
//!   budget serves in turn.
//! - **Caching.** Estimates read from the store are kept in memory for [`ESTIMATE_TTL`] (absent
//!   ones too), so that a fan-out or many deployments of one spec read it once; a record updates
//!   the cache at once. Other handlers on the same store see a new estimate within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::engine::policy::Likelihood;
use crate::engine::{Deployment, LookPlan, Millis, RunEstimate, policy};
use crate::spec::Mode;
use crate::store::RunTimes;

use super::{Driver, sorted};

/// How long an estimate read from the store is used before it is read again.
pub const ESTIMATE_TTL: Duration = Duration::from_secs(60);
/// The interval of round-robin looks: shorter than any budget's turn, so that the budget sets
/// the pace.
pub const ROUND_ROBIN_LOOK_MS: Millis = 1_000;

/// How instances watched for their exit are looked at (`BERTH_LOOKS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LookMode {
    /// The back-off of [`crate::engine::policy`], nothing learned. The default (the detection
    /// bench compares learned looks with round robin, not with it: see bench/README.md).
    #[default]
    Backoff,
    /// Around the exit expected from earlier runs of the same group spec; the back-off for a
    /// spec never seen end.
    Learned,
    /// Every instance every [`ROUND_ROBIN_LOOK_MS`], nothing learned (a baseline to compare with).
    RoundRobin,
}

impl LookMode {
    /// Parses the setting's value (`backoff`, `learned`, `round-robin`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "backoff" => Some(LookMode::Backoff),
            "learned" => Some(LookMode::Learned),
            "round-robin" => Some(LookMode::RoundRobin),
            _ => None,
        }
    }
}

/// The store's estimates, with a memory cache in front.
pub struct Learning {
    store: Arc<dyn RunTimes>,
    cache: Mutex<HashMap<String, (Option<RunEstimate>, Instant)>>,
}

impl Learning {
    /// Learning over `store`.
    pub fn new(store: Arc<dyn RunTimes>) -> Self {
        Learning {
            store,
            cache: Mutex::default(),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<RunEstimate>, Instant)>> {
        // A map of copies: a panic elsewhere cannot leave it half-written.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The estimate for `digest`, from the cache while fresh; `None` when there is none or the
    /// store cannot be read (the look then backs off as without learning).
    pub async fn estimate(&self, digest: &str) -> Option<RunEstimate> {
        let now = Instant::now();
        if let Some((estimate, read)) = self.cached().get(digest)
            && now.duration_since(*read) < ESTIMATE_TTL
        {
            return *estimate;
        }
        let estimate = match self.store.run_time(digest).await {
            Ok(estimate) => estimate,
            Err(e) => {
                tracing::warn!(error = %e, "run time not read; looks back off");
                return None;
            }
        };
        let mut cache = self.cached();
        if cache.len() >= 10_000 {
            cache.retain(|_, (_, read)| now.duration_since(*read) < ESTIMATE_TTL);
        }
        cache.insert(digest.to_owned(), (estimate, now));
        estimate
    }

    /// Takes a run into the estimate for `digest`.
    pub async fn record(&self, digest: &str, run_ms: Millis) {
        match self.store.record_run(digest, run_ms).await {
            Ok(estimate) => {
                self.cached()
                    .insert(digest.to_owned(), (Some(estimate), Instant::now()));
            }
            Err(e) => tracing::warn!(error = %e, "run time not recorded"),
        }
    }
}

/// The digest of group `slot`'s spec as created (its canonical JSON, secrets taken out): the
/// same for every instance of a fan-out and every deployment of the same group.
pub fn group_digest(d: &Deployment, slot: usize) -> String {
    let value = serde_json::to_value(&d.spec.groups[slot]).expect("a group serialises");
    let canonical = serde_json::to_vec(&sorted(value)).expect("JSON serialises");
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The run time of instance `index` when its containers have all exited with code 0: from its
/// create being accepted to its last container's finish.
fn successful_run(d: &Deployment, index: usize) -> Option<Millis> {
    let inst = &d.instances[index];
    let observed = inst.observed.as_ref()?;
    if !observed.all_terminated()
        || observed.containers.is_empty()
        || observed.containers.iter().any(|c| c.exit_code != Some(0))
    {
        return None;
    }
    let finish = observed.containers.iter().map(|c| c.finish).max()??;
    Some((finish - inst.created?).max(0))
}

impl Driver {
    /// The plan to tell with the `Created` of an instance of group `slot`, if any.
    pub(super) async fn look_plan(&self, d: &Deployment, slot: usize) -> Option<LookPlan> {
        if d.spec.mode != Mode::Job || !d.spec.completion_of(slot).watches_exit() {
            return None;
        }
        match self.settings.looks {
            LookMode::Backoff => None,
            LookMode::RoundRobin => Some(LookPlan::Every(ROUND_ROBIN_LOOK_MS)),
            LookMode::Learned => {
                let learning = self.learning.as_ref()?;
                let estimate = learning.estimate(&group_digest(d, slot)).await?;
                Some(LookPlan::Expect(estimate))
            }
        }
    }

    /// How likely a look at `instance` now is to see its exit (see [`policy::look_likelihood`]).
    pub(super) fn likelihood(&self, d: &Deployment, instance: &str) -> Likelihood {
        let now = self.clock.now();
        d.instances
            .iter()
            .find(|i| i.aci_name == instance)
            .map_or(Likelihood::Unknown, |i| {
                policy::look_likelihood(i.look_plan.as_ref(), now - i.created.unwrap_or(now))
            })
    }

    /// Learns from the instances of `d` that ended since `ended_before` (who had ended then, by
    /// index): one run per group spec, the middle one when several ended at once.
    pub(super) async fn learn(&self, ended_before: &[bool], d: &Deployment) {
        let Some(learning) = self.learning.as_ref() else {
            return;
        };
        if self.settings.looks != LookMode::Learned {
            return;
        }
        let mut runs: HashMap<usize, Vec<Millis>> = HashMap::new();
        for (index, inst) in d.instances.iter().enumerate() {
            let newly = inst.ended.is_some() && !ended_before.get(index).copied().unwrap_or(false);
            if let Some(run) = successful_run(d, index).filter(|_| newly) {
                runs.entry(inst.slot).or_default().push(run);
            }
        }
        for (slot, mut runs) in runs {
            runs.sort_unstable();
            learning
                .record(&group_digest(d, slot), runs[runs.len() / 2])
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::{ContainerObservation, Observation};
    use crate::engine::{StartOptions, start};
    use crate::spec::{Format, parse};

    fn deployment(id: &str, image: &str) -> Deployment {
        let text = serde_json::json!({
            "id": id,
            "groups": [
                { "name": "a", "properties": { "containers": [
                    { "name": "main", "properties": { "image": image, "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }
                ] } },
                { "name": "b", "properties": { "containers": [
                    { "name": "main", "properties": { "image": image, "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }
                ] } }
            ]
        });
        let spec = parse(text.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
        start(
            spec,
            None,
            "d".into(),
            StartOptions::new("http://127.0.0.1"),
            0,
        )
        .next
    }

    #[test]
    fn digests_name_the_group_spec_not_the_deployment() {
        let one = deployment("one", "busybox");
        let two = deployment("two", "busybox");
        assert_eq!(group_digest(&one, 0), group_digest(&two, 0));
        assert_ne!(group_digest(&one, 0), group_digest(&one, 1));
        assert_ne!(
            group_digest(&one, 0),
            group_digest(&deployment("one", "alpine"), 0)
        );
        assert_eq!(group_digest(&one, 0).len(), 64);
    }

    #[test]
    fn only_runs_that_exited_with_zero_are_learned() {
        let mut d = deployment("one", "busybox");
        let mut inst = crate::engine::Instance::new(0, 0, 1, "x".into());
        inst.created = Some(1_000);
        let exited = |code: i64, finish: Option<Millis>| Observation {
            provisioning_state: "Succeeded".into(),
            state: "Succeeded".into(),
            containers: vec![ContainerObservation {
                name: "main".into(),
                state: "Terminated".into(),
                exit_code: Some(code),
                restart_count: 0,
                detail: None,
                start: Some(1_500),
                finish,
            }],
            problem: None,
        };
        inst.observed = Some(exited(0, Some(61_000)));
        d.instances.push(inst);
        assert_eq!(successful_run(&d, 0), Some(60_000));
        d.instances[0].observed = Some(exited(1, Some(61_000)));
        assert_eq!(successful_run(&d, 0), None);
        d.instances[0].observed = Some(exited(0, None));
        assert_eq!(successful_run(&d, 0), None);
        assert_eq!(LookMode::parse(" Round-Robin "), Some(LookMode::RoundRobin));
        assert_eq!(LookMode::parse("learned"), Some(LookMode::Learned));
        assert_eq!(LookMode::parse("backoff"), Some(LookMode::Backoff));
        assert_eq!(LookMode::parse("fast"), None);
    }
}
