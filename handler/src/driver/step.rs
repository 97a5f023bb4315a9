//! The step loop: load → round → save → perform, until the deployment waits. What a round
//! decides (batching, what may go unsaved, hand-over) is the engine's [`Step`]; this loop only
//! does the I/O it asks for.

use crate::checkpoint::Deployments;
use crate::engine::{self, Phase, Save, Step, policy};
use crate::spec::secrets::{SecretSlot, put_secrets};
use crate::store::{Scheduled, StepMessage, StoreError};

use super::{Driver, DriverError, StepOutcome, canonical_json};

impl Driver {
    /// Runs the step a message asks for, until the deployment waits or is done.
    pub async fn step(&self, message: &StepMessage) -> Result<StepOutcome, DriverError> {
        let Some(stored) = self.store.load(&message.id).await? else {
            return Ok(StepOutcome::Unknown);
        };
        let d = &stored.deployment;
        let Some(wake) = d.wake.filter(|w| w.seq == message.seq) else {
            return Ok(if d.wake.is_none() && d.phase == Phase::Done {
                StepOutcome::Ran { done: true }
            } else {
                StepOutcome::Stale
            });
        };
        if wake.at > self.clock.now() + policy::EARLY_STEP_MS {
            return Ok(StepOutcome::Early { at: wake.at });
        }
        let mut version = stored.version;
        let mut step = Step::new(stored.deployment, self.settings.max_rounds_per_step);
        step.amend(|d| self.reseal(d));
        loop {
            // Who had ended before the round: the ones ending in it are learned from.
            let ended: Vec<bool> = step
                .current()
                .instances
                .iter()
                .map(|i| i.ended.is_some())
                .collect();
            let Some(round) = step.round(self.clock.now()) else {
                break;
            };
            for error in &round.dropped {
                tracing::warn!(deployment.id = %message.id, error = %error, "event dropped");
            }
            if round.save == Save::Now {
                self.archive_history(&mut step, &message.id).await?;
                let then = step.wake_message().map(|wake| Scheduled {
                    message: StepMessage {
                        id: message.id.clone(),
                        seq: wake.seq,
                    },
                    at: wake.at,
                });
                match self
                    .store
                    .save(step.current(), &version, then.as_ref())
                    .await
                {
                    Ok(saved) => {
                        version = saved;
                        let before = step.saved().status;
                        step.committed();
                        let status = step.saved().status;
                        if status.is_terminal() && !before.is_terminal() {
                            // One line per deployment, for the operators' alerts on failures.
                            tracing::info!(
                                deployment.id = %message.id,
                                deployment.status = status.as_str(),
                                "deployment ended: {}",
                                status.as_str()
                            );
                            crate::metrics::deployment_ended(status.as_str());
                        }
                    }
                    Err(StoreError::Conflict(_)) => {
                        let reloaded = self
                            .store
                            .load(&message.id)
                            .await?
                            .ok_or_else(|| DriverError::NotFound(message.id.clone()))?;
                        version = reloaded.version;
                        step.conflict(reloaded.deployment);
                        step.amend(|d| self.reseal(d));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let current = step.current();
            let (results, ()) = futures::join!(
                futures::future::join_all(
                    round
                        .actions
                        .iter()
                        .map(|action| self.perform(current, action)),
                ),
                self.learn(&ended, current),
            );
            step.push(results.into_iter().flatten());
        }
        Ok(StepOutcome::Ran {
            done: step.saved().phase == engine::Phase::Done,
        })
    }

    /// Moves the oldest page of the checkpoint's saved history into a page of its own, to be
    /// dropped by the save about to be made (see `Deployment::history`). The page is written
    /// first and holds saved entries only, which no writer changes: a save that then loses or
    /// never happens leaves a page that the next save writes again, the same, never a gap.
    async fn archive_history(&self, step: &mut Step, id: &str) -> Result<(), DriverError> {
        let saved = step.saved();
        if saved.history.len() < policy::HISTORY_ARCHIVE_AT {
            return Ok(());
        }
        let page = saved.history_archived;
        let body = serde_json::to_vec(&saved.history[..policy::HISTORY_PAGE])
            .expect("history entries serialise");
        self.store.put_history(id, page, &body).await?;
        step.amend(|d| {
            if d.history_archived == page && d.history.len() >= policy::HISTORY_PAGE {
                d.history.drain(..policy::HISTORY_PAGE);
                d.history_archived += 1;
            }
        });
        Ok(())
    }

    /// Seals a deployment's secrets again under the current key after a key rotation (and keys
    /// its spec digest with it), so that the previous key can be retired. Saved with the next save.
    fn reseal(&self, d: &mut engine::Deployment) {
        for key in [&mut d.callback_key, &mut d.notify_key, &mut d.notify_urls] {
            if let Some(sealed) = key.as_deref().filter(|k| self.keys.needs_reseal(k))
                && let Ok(plain) = self.keys.open(sealed)
            {
                *key = Some(self.keys.seal(&plain));
            }
        }
        let Some(sealed) = d.sealed.clone().filter(|s| self.keys.needs_reseal(s)) else {
            return;
        };
        let Ok(plain) = self.keys.open(&sealed) else {
            return; // Not openable with any key: the create says so with the field named.
        };
        let Ok(slots) = serde_json::from_slice::<Vec<SecretSlot>>(&plain) else {
            return;
        };
        let mut spec = d.spec.clone();
        for (index, group) in spec.groups.iter_mut().enumerate() {
            put_secrets(&mut group.properties, index, &slots);
        }
        // The digest was taken over the whole notify URLs, which the spec keeps sealed apart.
        let urls = self.notify_urls(d);
        for (notify, url) in spec.notify.iter_mut().zip(urls) {
            notify.url = url;
        }
        let canonical = canonical_json(&spec);
        if self.keys.digest_matches(&canonical, &d.digest) {
            d.digest = self.keys.digest(&canonical);
        }
        d.sealed = Some(self.keys.seal(&plain));
        tracing::info!(deployment.id = %d.id, "secrets sealed again under the current key");
    }
}
