//! The step loop: load → round → save → perform, until the deployment waits. What a round
//! decides (batching, what may go unsaved, hand-over) is the engine's [`Step`]; this loop only
//! does the I/O it asks for. A submit and an instance's `completed` callback run the step they
//! cause themselves, without its message ([`Driver::create_and_start`],
//! [`Driver::raise_and_perform`]; ARCHITECTURE.md, "Steps carried on by an API call").

use crate::checkpoint::Deployments;
use crate::engine::{self, Phase, Save, Step, policy};
use crate::spec::secrets::{SecretSlot, put_secrets};
use crate::store::{Scheduled, StepMessage, StoreError};

use super::{Driver, DriverError, StepOutcome, canonical_json};

/// A slot held by a step an API call carries on ([`Driver::inline_slot`]).
pub(super) type InlineSlot = tokio::sync::OwnedSemaphorePermit;

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
        let mut step = Step::new(stored.deployment, self.settings.max_rounds_per_step);
        step.amend(|d| self.reseal(d));
        let step = self.drive(&message.id, step, stored.version, false).await?;
        Ok(StepOutcome::Ran {
            done: step.saved().phase == engine::Phase::Done,
        })
    }

    /// A slot to carry a step on in an API call: `None` when `BERTH_INLINE_STEP` is `0` or
    /// [`policy::INLINE_STEPS_AT_ONCE`] calls already hold one, and the step is left to its message.
    pub(super) fn inline_slot(&self) -> Option<InlineSlot> {
        if self.settings.inline_step_ms <= 0 {
            return None;
        }
        self.inline.clone().try_acquire_owned().ok()
    }

    /// Creates a new deployment's checkpoint with its first round already decided, the claim of
    /// its first creates in it, then performs that round and carries on (see [`Self::carry_on`]):
    /// the submit does what its first step message would have done, without the message, the
    /// load and the claim's own save. With `BERTH_INLINE_STEP` at `0`, the checkpoint is created
    /// as accepted with its first step message due at once, and nothing more.
    ///
    /// The create is the compare-and-swap that makes the claim this caller's: a concurrent submit
    /// of the same id loses it (`Conflict`) and acts on nothing. The message sent with the create
    /// is due when the claim runs out, for the wake the claim left in place: should this process
    /// die before it saved the created groups, that message finds the claim ended and looks before
    /// creating, as after any step that died; otherwise the saves since have moved the wake on and
    /// it is dropped as stale. Running out of time is a crash of the same kind: the rest is left to
    /// the messages. An event raised meanwhile (a container calling back before the created group
    /// is saved) schedules a step of its own: once it wins a save, this one saves what it learned
    /// and hands over, so that the two do not both wind the deployment down.
    pub(super) async fn create_and_start(
        &self,
        initial: engine::Deployment,
    ) -> Result<(), StoreError> {
        let id = initial.id.clone();
        let Some(slot) = self.inline_slot() else {
            let wake = initial
                .wake
                .expect("a deployment that has not started has a wake");
            let first = scheduled(&id, wake.seq, wake.at);
            self.store.create(&initial, &first).await?;
            tracing::info!(deployment.id = %id, "deployment accepted");
            return Ok(());
        };
        let mut step = Step::new(initial, self.settings.max_rounds_per_step);
        let ended = ended(&step);
        let round = step
            .round(self.clock.now())
            .expect("a new deployment's first round has its wake to apply");
        let first = step.current();
        let wake = first
            .wake
            .expect("a deployment that has not started has a wake");
        let claimed = first.instances.iter().filter_map(|i| i.claim_until).min();
        let then = scheduled(
            &id,
            wake.seq,
            claimed.map_or(wake.at, |until| until.max(wake.at)),
        );
        let version = self.store.create(first, &then).await?;
        tracing::info!(deployment.id = %id, "deployment accepted");
        step.committed();
        self.carry_on(&id, step, version, round.actions, ended, slot)
            .await;
        Ok(())
    }

    /// Applies an instance's `completed` callback as a step would, in the caller's request: the
    /// round deciding what it leads to is saved (`Conflict`: reload and try again), then its
    /// actions (the wind-down: stop, logs, delete) are performed and carried on, as
    /// [`Self::create_and_start`] does. The round performs its work itself, so it moves no wake and
    /// sends no step message: should the call end before the work is done, the wake already
    /// scheduled (the deployment's next look) carries on from the saved state. Returns the state
    /// saved by the round.
    pub(super) async fn raise_and_perform(
        &self,
        stored: crate::checkpoint::Stored,
        event: engine::Event,
        slot: InlineSlot,
    ) -> Result<engine::Deployment, DriverError> {
        let id = stored.deployment.id.clone();
        let mut step = Step::new(stored.deployment, self.settings.max_rounds_per_step);
        step.push([event]);
        step.amend(|d| self.reseal(d));
        let ended = ended(&step);
        let round = step
            .round(self.clock.now())
            .expect("a step with an event pending has a round");
        if round.save != Save::Now {
            return Ok(step.current().clone());
        }
        self.archive_history(&mut step, &id).await?;
        let then = step
            .wake_message()
            .map(|wake| scheduled(&id, wake.seq, wake.at));
        let version = self
            .store
            .save(step.current(), &stored.version, then.as_ref())
            .await?;
        let before = step.saved().status;
        step.committed();
        ended_now(&id, before, step.saved().status);
        let answer = step.saved().clone();
        self.carry_on(&id, step, version, round.actions, ended, slot)
            .await;
        Ok(answer)
    }

    /// Performs the actions of a round just saved and carries on ([`Self::drive`], yielding to any
    /// other writer) for at most `BERTH_INLINE_STEP`, in a task of its own: the caller's request
    /// may end before the work does (a container stopped by the wind-down its own callback asked
    /// for hangs up), and the work must not end with it. Running out of time or failing is a
    /// crash of the kind every step survives: the messages scheduled carry on.
    async fn carry_on(
        &self,
        id: &str,
        mut step: Step,
        version: crate::store::Version,
        actions: Vec<engine::Action>,
        ended: Vec<bool>,
        slot: InlineSlot,
    ) {
        let driver = self.clone();
        let id = id.to_owned();
        let limit = std::time::Duration::from_millis(self.settings.inline_step_ms as u64);
        let task = tokio::spawn(async move {
            // Held until the work ends, however the caller's request ends.
            let _slot = slot;
            let carried = async {
                driver.perform_round(&mut step, &actions, &ended).await;
                driver.drive(&id, step, version, true).await
            };
            match tokio::time::timeout(limit, carried).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(deployment.id = %id, error = %e, "a step carried on by an API call failed; its messages carry on");
                }
                Err(_) => {
                    tracing::info!(deployment.id = %id, "a step carried on by an API call ran out of time; its messages carry on");
                }
            }
        });
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "a step carried on by an API call panicked");
        }
    }

    /// Rounds of `step` (saved at `version`) until the deployment waits or is done: round → save →
    /// perform. Returns the step as it ended. `yields`: at the first lost compare-and-swap, save
    /// what was learned and hand over rather than go on (the writer that won scheduled a step).
    async fn drive(
        &self,
        id: &str,
        mut step: Step,
        mut version: crate::store::Version,
        yields: bool,
    ) -> Result<Step, DriverError> {
        loop {
            // Who had ended before the round: the ones ending in it are learned from.
            let ended = ended(&step);
            let Some(round) = step.round(self.clock.now()) else {
                break;
            };
            for error in &round.dropped {
                tracing::warn!(deployment.id = %id, error = %error, "event dropped");
            }
            if round.save == Save::Now {
                self.archive_history(&mut step, id).await?;
                let then = step
                    .wake_message()
                    .map(|wake| scheduled(id, wake.seq, wake.at));
                match self
                    .store
                    .save(step.current(), &version, then.as_ref())
                    .await
                {
                    Ok(saved) => {
                        version = saved;
                        let before = step.saved().status;
                        step.committed();
                        ended_now(id, before, step.saved().status);
                    }
                    Err(StoreError::Conflict(_)) => {
                        let reloaded = self
                            .store
                            .load(id)
                            .await?
                            .ok_or_else(|| DriverError::NotFound(id.to_owned()))?;
                        version = reloaded.version;
                        step.conflict(reloaded.deployment);
                        step.amend(|d| self.reseal(d));
                        if yields {
                            step.hand_over_next();
                        }
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.perform_round(&mut step, &round.actions, &ended).await;
        }
        Ok(step)
    }

    /// Performs a round's actions on the step's current state (learning run times from the
    /// instances that ended since `ended` was taken) and hands their results to the next round.
    async fn perform_round(&self, step: &mut Step, actions: &[engine::Action], ended: &[bool]) {
        let current = step.current();
        let (results, ()) = futures::join!(
            futures::future::join_all(actions.iter().map(|action| self.perform(current, action))),
            self.learn(ended, current),
        );
        step.push(results.into_iter().flatten());
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

/// Which of the step's instances had ended before its next round.
fn ended(step: &Step) -> Vec<bool> {
    step.current()
        .instances
        .iter()
        .map(|i| i.ended.is_some())
        .collect()
}

/// One line per deployment when a save ends it, for the operators' alerts on failures.
fn ended_now(id: &str, before: engine::RuntimeStatus, after: engine::RuntimeStatus) {
    if after.is_terminal() && !before.is_terminal() {
        tracing::info!(
            deployment.id = %id,
            deployment.status = after.as_str(),
            "deployment ended: {}",
            after.as_str()
        );
        crate::metrics::deployment_ended(after.as_str());
    }
}

/// The step message for `seq`, due at `at`.
fn scheduled(id: &str, seq: u64, at: engine::Millis) -> Scheduled {
    Scheduled {
        message: StepMessage {
            id: id.to_owned(),
            seq,
        },
        at,
    }
}
