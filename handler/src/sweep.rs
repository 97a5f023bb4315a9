//! The sweep (the `cleanup` timer): deletes container groups that no live deployment owns,
//! re-drives deployments whose next step is overdue, purges finished deployments past retention,
//! and deals with step messages given up on (the poison table or queue): a live deployment's is
//! re-driven, any other's reported, then deleted.
//!
//! # Guarantees
//! - A group is deleted only if it carries this app's `berth-app` tag, is older than the grace
//!   period (by its `berth-created` tag), and its deployment does not own it: unknown deployment,
//!   or an instance of that name marked deleted or never planned.
//! - A poisoned step message is deleted only once it is dealt with: its deployment re-driven (when
//!   it is the step of the deployment's current wake: sent again now), or reported
//!   (`poisonReported`: a stale step, a deployment ended or unknown, a message that is not a
//!   step's) and logged at warn. One that cannot be dealt with
//!   now (its checkpoint not readable from the store) stays for the next sweep.
//! - Its cost grows with the live container groups and the overdue deployments, not with history:
//!   finished deployments are reached only through the retention index, a bounded batch at a time.

use std::sync::Arc;

use serde::Serialize;

use crate::arm::ArmClient;
use crate::checkpoint::Deployments;
use crate::clock::Clock;
use crate::engine::Millis;
use crate::store::{Checkpoints, Scheduled, StepMessage, Steps, StoreError};

/// How late a step must be before the sweep sends it again.
pub const REDRIVE_AFTER_MS: Millis = 2 * 60_000;
/// Most deployments re-driven or purged in one sweep.
const BATCH: usize = 1000;
/// Most poisoned step messages dealt with in one sweep (a queue receive returns at most 32).
const POISON_BATCH: usize = 32;
/// How long a sweep holds the poisoned messages it read from other sweeps.
const POISON_LEASE_MS: Millis = 60_000;

/// What one sweep did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub groups_seen: usize,
    pub orphans_deleted: Vec<String>,
    pub redriven: usize,
    pub purged: usize,
    /// Deployments met on the way that this Berth cannot read (their groups are left alone).
    pub unreadable: Vec<String>,
    /// Poisoned step messages whose deployment is live, re-driven.
    pub poison_redriven: usize,
    /// Poisoned step messages of deployments no longer live, or not a step's: each with why,
    /// reported once and deleted.
    pub poison_reported: Vec<String>,
    pub errors: Vec<String>,
}

/// The sweep's parts.
#[derive(Clone)]
pub struct Sweep {
    pub store: Arc<dyn Checkpoints>,
    pub arm: ArmClient,
    /// This app's `berth-app` tag: the sweep deletes only groups that carry it.
    pub app: String,
    pub clock: Arc<dyn Clock>,
    pub steps: Arc<dyn Steps>,
    pub retention_ms: Millis,
    /// How old a group must be before the sweep may delete it (its create may not be checkpointed
    /// yet): `BERTH_SWEEP_GRACE`.
    pub grace_ms: Millis,
    pub redrive_after_ms: Millis,
}

impl Sweep {
    /// Runs one sweep.
    pub async fn run_once(&self) -> SweepReport {
        let mut report = SweepReport::default();
        self.orphans(&mut report).await;
        self.redrive(&mut report).await;
        self.poison(&mut report).await;
        self.purge(&mut report).await;
        crate::metrics::sweep(&report);
        report
    }

    async fn orphans(&self, report: &mut SweepReport) {
        let now = self.clock.now();
        let groups = match self.arm.list_groups().await {
            Ok(groups) => groups,
            Err(e) => return report.errors.push(format!("listing container groups: {e}")),
        };
        for group in groups {
            if group.tags.get("berth-app") != Some(&self.app) {
                continue;
            }
            report.groups_seen += 1;
            let Some(name) = group.name.clone() else {
                continue;
            };
            let created = group
                .tags
                .get("berth-created")
                .and_then(|t| t.parse::<Millis>().ok())
                .unwrap_or(0);
            if now - created < self.grace_ms {
                continue;
            }
            let owner = group
                .tags
                .get("berth-deployment")
                .cloned()
                .unwrap_or_default();
            let owned = match self.store.load(&owner).await {
                Ok(Some(stored)) => stored
                    .deployment
                    .instances
                    .iter()
                    .any(|i| i.aci_name == name && !i.deleted),
                Ok(None) => false,
                Err(StoreError::Unreadable { id, reason }) => {
                    tracing::warn!(deployment.id = %id, %reason, aci.group = %name, "deployment cannot be read; its group is left alone");
                    if !report.unreadable.contains(&id) {
                        report.unreadable.push(id);
                    }
                    continue;
                }
                Err(e) => {
                    report
                        .errors
                        .push(format!("loading deployment {owner}: {e}"));
                    continue;
                }
            };
            if owned {
                continue;
            }
            match self.arm.delete_group(&name).await {
                Ok(_) => {
                    tracing::info!(aci.group = %name, deployment.id = %owner, "orphan container group deleted");
                    report.orphans_deleted.push(name);
                }
                Err(e) => report.errors.push(format!("deleting orphan {name}: {e}")),
            }
        }
    }

    async fn redrive(&self, report: &mut SweepReport) {
        let now = self.clock.now();
        let due = match self.store.overdue(now - self.redrive_after_ms, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                return report
                    .errors
                    .push(format!("finding overdue deployments: {e}"));
            }
        };
        for due in due {
            let step = Scheduled {
                message: StepMessage {
                    id: due.id.clone(),
                    seq: due.seq,
                },
                at: now,
            };
            match self.steps.send(&step).await {
                Ok(()) => report.redriven += 1,
                Err(e) => report.errors.push(format!("re-driving {}: {e}", due.id)),
            }
        }
        if report.redriven > 0 {
            tracing::info!(count = report.redriven, "overdue deployments re-driven");
        }
    }

    async fn poison(&self, report: &mut SweepReport) {
        let batch = match self
            .steps
            .poisoned_steps(POISON_BATCH, POISON_LEASE_MS)
            .await
        {
            Ok(batch) => batch,
            Err(e) => return report.errors.push(format!("reading poisoned steps: {e}")),
        };
        for delivery in batch {
            let reported = match &delivery.message {
                None => Some(format!(
                    "not a step message: {:?}",
                    delivery.text.chars().take(100).collect::<String>()
                )),
                Some(step) => match self.store.load_record(&step.id).await {
                    Ok(Some(stored)) => match stored.record.wake {
                        // A step for an earlier wake: the current one has its own message.
                        Some(wake) if wake.seq != step.seq => Some(format!(
                            "{} (step {}): stale, the deployment waits for step {}",
                            step.id, step.seq, wake.seq
                        )),
                        Some(wake) => {
                            let again = Scheduled {
                                message: StepMessage {
                                    id: step.id.clone(),
                                    seq: wake.seq,
                                },
                                at: self.clock.now(),
                            };
                            if let Err(e) = self.steps.send(&again).await {
                                report.errors.push(format!("re-driving {}: {e}", step.id));
                                continue;
                            }
                            report.poison_redriven += 1;
                            None
                        }
                        None => Some(format!(
                            "{} (step {}): the deployment is {}, nothing to do",
                            step.id,
                            step.seq,
                            stored.record.status.as_str()
                        )),
                    },
                    Ok(None) => Some(format!(
                        "{} (step {}): no such deployment (purged)",
                        step.id, step.seq
                    )),
                    Err(e) => {
                        report
                            .errors
                            .push(format!("reading {} for a poisoned step: {e}", step.id));
                        continue;
                    }
                },
            };
            if let Some(why) = &reported {
                tracing::warn!(step.body = %delivery.text.chars().take(200).collect::<String>(), reason = %why, "poisoned step message reported and deleted");
            }
            if let Err(e) = self.steps.drop_poisoned(&delivery).await {
                report.errors.push(format!("deleting a poisoned step: {e}"));
                continue;
            }
            report.poison_reported.extend(reported);
        }
    }

    async fn purge(&self, report: &mut SweepReport) {
        let before = self.clock.now() - self.retention_ms;
        let expired = match self.store.expired(before, BATCH).await {
            Ok(ids) => ids,
            Err(e) => {
                return report
                    .errors
                    .push(format!("finding expired deployments: {e}"));
            }
        };
        for id in expired {
            match self.store.purge(&id).await {
                Ok(_) => report.purged += 1,
                Err(e) => report.errors.push(format!("purging {id}: {e}")),
            }
        }
    }
}
