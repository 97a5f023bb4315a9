//! The step driver: load the checkpoint, apply an event, save with compare-and-swap, then perform
//! the actions and feed their results back as events, until the deployment waits.
//!
//! # Guarantees
//! - Commit first, then act: an action runs only after the checkpoint that asked for it is saved.
//!   A crash between the two leaves the step message in the queue (or the wake for the sweep), and
//!   the action is asked for again; every action is idempotent (group names derive from deployment,
//!   group and generation, and a create whose claim ran out looks before it creates).
//! - A `Conflict` on save reloads the checkpoint and applies the same event again.
//! - A step message whose `seq` is not the deployment's current wake is stale and dropped.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::arm::{ArmClient, ArmError, Look};
use crate::checkpoint::{Deployments, Stored};
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::engine::{
    self, Action, ActionKind, Deployment, EngineError, Event, Millis, RuntimeStatus,
};
use crate::spec::secrets::{SecretSlot, put_secrets, take_secrets};
use crate::spec::{SettingsPolicy, Spec, settings, validate};
use crate::store::{Checkpoints, Scheduled, StepMessage, StoreError};

/// Settings the driver needs beyond its parts.
#[derive(Clone)]
pub struct DriverSettings {
    /// The value of the `berth-app` tag on every group (the sweep deletes only its own app's groups).
    pub app: String,
    /// Reads app settings for `secureValueFrom` (the environment, in production).
    pub settings: Arc<crate::config::Lookup>,
    /// Which app settings `secureValueFrom` may read (`BERTH_SECURE_VALUE_FROM`).
    pub secure_value_from: SettingsPolicy,
    /// Fetch an Azure Files key with `listKeys` when a volume has none.
    pub fetch_share_keys: bool,
    /// Most events one step applies before it hands over to a fresh message.
    pub max_events_per_step: usize,
    /// How long a worker owns a group's create (see [`crate::engine::policy::CREATE_CLAIM_MS`]).
    pub create_claim_ms: Millis,
    /// A Log Analytics workspace (ARM id) every group sends its logs to (`BERTH_DIAGNOSTICS_WORKSPACE`).
    pub diagnostics_workspace: Option<String>,
}

/// What a step did with its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The deployment now waits until `at` (a message for that is scheduled), or is done.
    Ran { done: bool },
    /// The message was for an older wake; a newer message covers the deployment.
    Stale,
    /// No such deployment (purged, or never existed).
    Unknown,
    /// The message came before its wake (the queue delays at most 7 days): send it again for `at`.
    Early { at: Millis },
}

/// Errors of a step or an API call on a deployment.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("no deployment '{0}'")]
    NotFound(String),
    #[error("deployment '{0}' exists with a different spec")]
    SpecConflict(String),
    /// An event raised from outside on a deployment that has ended.
    #[error("deployment '{id}' has ended ({})", status.as_str())]
    Ended { id: String, status: RuntimeStatus },
    /// A caller the deployment does not accept (a callback with a wrong token).
    #[error("deployment '{id}' does not accept this caller")]
    Unauthorised { id: String },
    /// A raised event that the deployment's inbox has no room for.
    #[error("deployment '{id}' has no room for more raised events")]
    InboxFull { id: String },
}

impl DriverError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DriverError::Store(e) if e.is_transient())
    }
}

/// Runs deployments' steps.
#[derive(Clone)]
pub struct Driver {
    /// The diagnostics workspace's id and key, read once.
    pub diagnostics: Arc<tokio::sync::OnceCell<(String, String)>>,
    pub store: Arc<dyn Checkpoints>,
    pub arm: ArmClient,
    pub keys: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<DriverSettings>,
}

/// A submitted deployment, and whether it already existed (idempotent `POST`).
pub struct Submitted {
    pub deployment: Deployment,
    pub existed: bool,
}

/// Whether a container group's tags say it is `d`'s: its `berth-deployment` is `d`'s id and, for
/// deployments with a uid, its `berth-uid` is `d`'s (a group of a purged deployment under the same
/// id is not).
fn owns(d: &Deployment, tags: &std::collections::BTreeMap<String, String>) -> bool {
    tags.get("berth-deployment") == Some(&d.id) && tags.get("berth-uid") == d.uid.as_ref()
}

/// Sends the group's logs to a Log Analytics workspace (ACI's `diagnostics.logAnalytics`).
fn add_diagnostics(properties: &mut Value, workspace_id: &str, key: &str) {
    if let Some(map) = properties.as_object_mut() {
        let log_analytics = json!({ "workspaceId": workspace_id, "workspaceKey": key, "logType": "ContainerInstanceLogs" });
        map.insert(
            "diagnostics".into(),
            json!({ "logAnalytics": log_analytics }),
        );
    }
}

/// A spec as canonical JSON: object keys sorted at every level, whatever order they were written
/// or inserted in (serde_json keeps insertion order when a crate in the build enables
/// `preserve_order`), so that digests compare specs, not spellings.
fn canonical_json(spec: &Spec) -> Vec<u8> {
    fn sort(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
    let value = serde_json::to_value(spec).expect("a spec serialises");
    serde_json::to_vec(&sort(value)).expect("JSON serialises")
}

/// The step message a save must send: one for the new wake, when the wake changed.
fn wake_message(before: &Deployment, after: &Deployment) -> Option<Scheduled> {
    let wake = after.wake.filter(|w| Some(*w) != before.wake)?;
    Some(Scheduled {
        message: StepMessage {
            id: after.id.clone(),
            seq: wake.seq,
        },
        at: wake.at,
    })
}

fn scheduled(id: &str, actions: &[Action]) -> Option<Scheduled> {
    actions.iter().find_map(|a| match a {
        Action::Schedule { at, seq } => Some(Scheduled {
            message: StepMessage {
                id: id.to_owned(),
                seq: *seq,
            },
            at: *at,
        }),
        _ => None,
    })
}

impl Driver {
    /// Accepts a spec (secrets still in it): seals its secrets, saves the checkpoint and its first
    /// step. The same spec under an existing id returns the existing deployment.
    pub async fn submit(
        &self,
        mut spec: Spec,
        callback_base: String,
    ) -> Result<Submitted, DriverError> {
        let canonical = canonical_json(&spec);
        let digest = self.keys.digest(&canonical);
        let slots = take_secrets(&mut spec);
        let sealed = (!slots.is_empty()).then(|| {
            self.keys
                .seal(&serde_json::to_vec(&slots).expect("secrets serialise"))
        });
        let id = spec.id.clone();
        let now = self.clock.now();
        let options = engine::StartOptions {
            callback_base,
            create_claim_ms: self.settings.create_claim_ms,
            uid: Some(uuid::Uuid::new_v4().simple().to_string()),
        };
        let mut transition = engine::start(spec, sealed, digest, options, now);
        transition.next.callback_key = Some(self.keys.new_callback_key());
        let first = scheduled(&id, &transition.actions).expect("a start schedules its first step");
        match self.store.create(&transition.next, &first).await {
            Ok(_) => {
                tracing::info!(deployment.id = %id, "deployment accepted");
                Ok(Submitted {
                    deployment: transition.next,
                    existed: false,
                })
            }
            Err(StoreError::Conflict(_)) => {
                let existing = self
                    .store
                    .load(&id)
                    .await?
                    .ok_or_else(|| DriverError::NotFound(id.clone()))?;
                if self
                    .keys
                    .digest_matches(&canonical, &existing.deployment.digest)
                {
                    Ok(Submitted {
                        deployment: existing.deployment,
                        existed: true,
                    })
                } else {
                    Err(DriverError::SpecConflict(id))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies an event from outside (raise, terminate) and schedules the step that acts on it.
    /// A deployment that has ended refuses it with [`DriverError::Ended`]: the check rides on the
    /// load the event is applied to, so the API need not read the checkpoint a second time.
    pub async fn raise(&self, id: &str, event: Event) -> Result<Deployment, DriverError> {
        self.raise_authorised(id, event, |_| true).await
    }

    /// [`Self::raise`] for a caller that `authorised` must accept on the loaded deployment (a
    /// callback's token), before anything about the deployment is told or changed; refused with
    /// [`DriverError::Unauthorised`].
    pub async fn raise_authorised(
        &self,
        id: &str,
        event: Event,
        authorised: impl Fn(&Deployment) -> bool,
    ) -> Result<Deployment, DriverError> {
        loop {
            let stored = self
                .store
                .load(id)
                .await?
                .ok_or_else(|| DriverError::NotFound(id.to_owned()))?;
            if !authorised(&stored.deployment) {
                return Err(DriverError::Unauthorised { id: id.to_owned() });
            }
            if stored.deployment.status.is_terminal() {
                return Err(DriverError::Ended {
                    id: id.to_owned(),
                    status: stored.deployment.status,
                });
            }
            if let Event::Raised { name, payload } = &event
                && !engine::inbox_has_room(&stored.deployment, name, payload)
            {
                return Err(DriverError::InboxFull { id: id.to_owned() });
            }
            let transition =
                match engine::apply(&stored.deployment, event.clone(), self.clock.now()) {
                    Ok(t) => t,
                    Err(EngineError::UnknownInstance { .. }) => return Ok(stored.deployment),
                };
            if !transition.changed(&stored.deployment) {
                return Ok(stored.deployment);
            }
            let then = wake_message(&stored.deployment, &transition.next);
            match self
                .store
                .save(&transition.next, &stored.version, then.as_ref())
                .await
            {
                Ok(_) => return Ok(transition.next),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs the step a message asks for, until the deployment waits or is done.
    pub async fn step(&self, message: &StepMessage) -> Result<StepOutcome, DriverError> {
        let Some(mut stored) = self.store.load(&message.id).await? else {
            return Ok(StepOutcome::Unknown);
        };
        let d = &stored.deployment;
        let Some(wake) = d.wake.filter(|w| w.seq == message.seq) else {
            return Ok(if d.wake.is_none() && d.phase == engine::Phase::Done {
                StepOutcome::Ran { done: true }
            } else {
                StepOutcome::Stale
            });
        };
        let now = self.clock.now();
        if wake.at > now + 1_000 {
            return Ok(StepOutcome::Early { at: wake.at });
        }
        // Each round applies every pending event to the state in memory, saves once, then performs
        // the actions the final state asks for. Decisions come from the whole state, so the
        // intermediate states' actions are subsumed by the final one's (and acting on each of them
        // would repeat work for every other group of the deployment).
        let mut events = VecDeque::from([Event::Wake]);
        // Results acted on before they are saved (see `Event::may_go_unsaved`), and the state
        // they lead to, ahead of the saved checkpoint; `None` when the checkpoint is the state.
        let mut unsaved: Vec<Event> = Vec::new();
        let mut ahead: Option<Deployment> = None;
        let mut rounds = 0;
        while !events.is_empty() {
            rounds += 1;
            if rounds > self.settings.max_events_per_step {
                // Hand over to a fresh message rather than hold this one for ever.
                self.hand_over(&message.id, &mut stored).await?;
                break;
            }
            let batch: Vec<Event> = events.drain(..).collect();
            let now = self.clock.now();
            let mut next = ahead.take().unwrap_or_else(|| stored.deployment.clone());
            self.reseal(&mut next);
            let mut actions = Vec::new();
            for event in &batch {
                match engine::apply(&next, event.clone(), now) {
                    Ok(t) => {
                        next = t.next;
                        actions = t.actions;
                    }
                    Err(e) => {
                        tracing::warn!(deployment.id = %message.id, error = %e, "event dropped")
                    }
                }
            }
            let work: Vec<&Action> = actions
                .iter()
                .filter(|a| !matches!(a, Action::Schedule { .. }))
                .collect();
            // A result whose action is safe to repeat need not be saved before the next action:
            // should this step die, the next one repeats it. Its save rides on the next round's.
            // A create is never sent before its claim is saved.
            let save_later = !work.is_empty()
                && batch.iter().all(Event::may_go_unsaved)
                && !work.iter().any(|a| matches!(a, Action::Create { .. }));
            if save_later {
                unsaved.extend(batch);
                ahead = Some(next);
            } else {
                if next != stored.deployment {
                    let then = wake_message(&stored.deployment, &next);
                    match self.store.save(&next, &stored.version, then.as_ref()).await {
                        Ok(version) => {
                            stored = Stored {
                                deployment: next,
                                version,
                            }
                        }
                        Err(StoreError::Conflict(_)) => {
                            stored = self
                                .store
                                .load(&message.id)
                                .await?
                                .ok_or_else(|| DriverError::NotFound(message.id.clone()))?;
                            events.extend(unsaved.drain(..));
                            events.extend(batch);
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                unsaved.clear();
            }
            let current = ahead.as_ref().unwrap_or(&stored.deployment);
            let results =
                join_all(work.into_iter().map(|action| self.perform(current, action))).await;
            events.extend(results.into_iter().flatten());
        }
        Ok(StepOutcome::Ran {
            done: stored.deployment.phase == engine::Phase::Done,
        })
    }

    /// Seals a deployment's secrets again under the current key after a key rotation (and keys
    /// its spec digest with it), so that the previous key can be retired. Saved with the next save.
    fn reseal(&self, d: &mut Deployment) {
        if let Some(key) = d
            .callback_key
            .as_deref()
            .filter(|k| self.keys.needs_reseal(k))
            && let Ok(plain) = self.keys.open(key)
        {
            d.callback_key = Some(self.keys.seal(&plain));
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
        let canonical = canonical_json(&spec);
        if self.keys.digest_matches(&canonical, &d.digest) {
            d.digest = self.keys.digest(&canonical);
        }
        d.sealed = Some(self.keys.seal(&plain));
        tracing::info!(deployment.id = %d.id, "secrets sealed again under the current key");
    }

    /// Moves the wake to now under a new seq, so a fresh message carries on.
    async fn hand_over(&self, id: &str, stored: &mut Stored) -> Result<(), DriverError> {
        let now = self.clock.now();
        let mut next = stored.deployment.clone();
        next.seq += 1;
        next.updated = now;
        next.wake = Some(engine::state::Wake {
            at: now,
            seq: next.seq,
        });
        let then = Scheduled {
            message: StepMessage {
                id: id.to_owned(),
                seq: next.seq,
            },
            at: now,
        };
        match self.store.save(&next, &stored.version, Some(&then)).await {
            Ok(version) => {
                *stored = Stored {
                    deployment: next,
                    version,
                };
                Ok(())
            }
            Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Performs one action and says what happened, as events.
    async fn perform(&self, d: &Deployment, action: &Action) -> Vec<Event> {
        let failed = |instance: &str, action: ActionKind, e: &ArmError| Event::Failed {
            instance: instance.to_owned(),
            action,
            error: e.to_string(),
            transient: e.is_transient(),
        };
        match action {
            Action::Create { instance, slot, .. } => {
                // Always a look first, not only after a claim ran out: a group of this name
                // that another deployment owns is never updated (its PUT would take it over).
                let at = self.clock.now();
                match self.arm.get_group(instance).await {
                    Ok(Some(group)) if owns(d, &group.tags) => {
                        return vec![Event::Observed {
                            instance: instance.clone(),
                            observation: group.observation(),
                            at,
                        }];
                    }
                    Ok(Some(group)) => {
                        let owner = group
                            .tags
                            .get("berth-deployment")
                            .map_or("", String::as_str);
                        tracing::warn!(deployment.id = %d.id, aci.group = %instance, owner, "group name taken");
                        return vec![Event::Failed {
                            instance: instance.clone(),
                            action: ActionKind::Create,
                            error: format!(
                                "container group {instance} exists and is not this deployment's (berth-deployment: '{owner}'); left untouched"
                            ),
                            transient: false,
                        }];
                    }
                    Ok(None) => {}
                    Err(e) => return vec![failed(instance, ActionKind::Create, &e)],
                }
                let body = match self.group_body(d, *slot).await {
                    Ok(body) => body,
                    Err(error) => {
                        return vec![Event::Failed {
                            instance: instance.clone(),
                            action: ActionKind::Create,
                            error,
                            transient: false,
                        }];
                    }
                };
                match self.arm.put_group(instance, &body).await {
                    Ok(_) => {
                        tracing::info!(deployment.id = %d.id, aci.group = %instance, "container group created");
                        vec![Event::Created {
                            instance: instance.clone(),
                        }]
                    }
                    Err(e) => {
                        tracing::warn!(deployment.id = %d.id, aci.group = %instance, error = %e, "create failed");
                        vec![failed(instance, ActionKind::Create, &e)]
                    }
                }
            }
            Action::Observe { instance } => {
                let at = self.clock.now();
                match self.arm.look(instance).await {
                    Ok(Look::Now(Some(group))) => vec![Event::Observed {
                        instance: instance.clone(),
                        observation: group.observation(),
                        at,
                    }],
                    Ok(Look::Now(None)) => vec![Event::Missing {
                        instance: instance.clone(),
                    }],
                    // The worker is not held: the deployment wakes when the read is due.
                    Ok(Look::Later(wait)) => vec![Event::LookDeferred {
                        instance: instance.clone(),
                        until: at + wait.as_millis() as Millis,
                    }],
                    Err(e) => vec![failed(instance, ActionKind::Observe, &e)],
                }
            }
            Action::Stop { instance } => match self.arm.stop_group(instance).await {
                Ok(()) => vec![Event::Stopped {
                    instance: instance.clone(),
                }],
                Err(e) if e.is_not_found() => vec![Event::Missing {
                    instance: instance.clone(),
                }],
                Err(e) => vec![failed(instance, ActionKind::Stop, &e)],
            },
            Action::CaptureLogs {
                instance,
                containers,
            } => self.capture_logs(d, instance, containers).await,
            Action::Delete { instance } => match self.arm.delete_group(instance).await {
                Ok(_) => {
                    tracing::info!(deployment.id = %d.id, aci.group = %instance, "container group deleted");
                    vec![Event::Deleted {
                        instance: instance.clone(),
                    }]
                }
                Err(e) => vec![failed(instance, ActionKind::Delete, &e)],
            },
            Action::Schedule { .. } => Vec::new(),
        }
    }

    async fn capture_logs(
        &self,
        d: &Deployment,
        instance: &str,
        containers: &[String],
    ) -> Vec<Event> {
        let group = d
            .instances
            .iter()
            .find(|i| i.aci_name == instance)
            .map(|i| d.spec.groups[i.slot].name.clone())
            .unwrap_or_default();
        let mut missing = Vec::new();
        for container in containers {
            let content = match self.arm.logs(instance, container, None).await {
                Ok(content) => content,
                Err(ArmError::NotFound { code, .. }) if code == "ContainerLogNotAvailable" => {
                    missing.push(container.clone());
                    String::new()
                }
                Err(e) if e.is_not_found() => {
                    return vec![Event::Missing {
                        instance: instance.to_owned(),
                    }];
                }
                Err(e) => {
                    return vec![Event::Failed {
                        instance: instance.to_owned(),
                        action: ActionKind::CaptureLogs,
                        error: e.to_string(),
                        transient: e.is_transient(),
                    }];
                }
            };
            if let Err(e) = self
                .store
                .put_logs(&d.id, &group, instance, container, &content)
                .await
            {
                return vec![Event::Failed {
                    instance: instance.to_owned(),
                    action: ActionKind::CaptureLogs,
                    error: e.to_string(),
                    transient: true,
                }];
            }
        }
        let note = (!missing.is_empty())
            .then(|| format!("no logs for {} (never started)", missing.join(", ")));
        vec![Event::LogsSaved {
            instance: instance.to_owned(),
            note,
        }]
    }

    /// The ARM body for one instance: the spec group's properties with its secrets back in place,
    /// `secureValueFrom` resolved, Berth's environment variables added, and Berth's tags.
    async fn group_body(&self, d: &Deployment, slot: usize) -> Result<Value, String> {
        let group = &d.spec.groups[slot];
        let mut properties = group.properties.clone();
        if let Some(sealed) = &d.sealed {
            let plain = self
                .keys
                .open(sealed)
                .map_err(|e| format!("the spec's secrets cannot be opened: {e}"))?;
            let slots: Vec<SecretSlot> = serde_json::from_slice(&plain)
                .map_err(|e| format!("the spec's secrets are unreadable: {e}"))?;
            put_secrets(&mut properties, slot, &slots);
        }
        self.resolve_settings(&mut properties, slot)?;
        self.add_callbacks(d, &mut properties)?;
        if self.settings.fetch_share_keys {
            self.add_share_keys(&mut properties).await?;
        }
        if let Some(workspace) = &self.settings.diagnostics_workspace
            && properties.get("diagnostics").is_none()
        {
            let (id, key) = self
                .diagnostics
                .get_or_try_init(|| self.arm.workspace_credentials(workspace))
                .await
                .map_err(|e| {
                    format!("BERTH_DIAGNOSTICS_WORKSPACE: reading the workspace failed: {e}")
                })?;
            add_diagnostics(&mut properties, id, key);
        }
        let mut tags: serde_json::Map<String, Value> = d
            .spec
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        tags.insert("berth-app".into(), Value::from(self.settings.app.as_str()));
        tags.insert("berth-deployment".into(), Value::from(d.id.as_str()));
        if let Some(uid) = &d.uid {
            tags.insert("berth-uid".into(), Value::from(uid.as_str()));
        }
        tags.insert("berth-group".into(), Value::from(group.name.as_str()));
        tags.insert(
            "berth-created".into(),
            Value::from(self.clock.now().to_string()),
        );
        let location = group
            .location
            .as_deref()
            .unwrap_or(self.arm.target().location.as_str());
        let mut body = json!({ "location": location, "tags": tags, "properties": properties });
        if let Some(identity) = &group.identity {
            body["identity"] = identity.clone();
        }
        if let Some(zones) = &group.zones {
            body["zones"] = json!(zones);
        }
        Ok(body)
    }

    fn resolve_settings(&self, properties: &mut Value, slot: usize) -> Result<(), String> {
        // Checked at submit too, but the list may have changed since (a restart with other
        // settings): nothing is read unless it is allowed now.
        settings::check_group(properties, slot, &self.settings.secure_value_from)
            .map_err(|refused| refused.to_string())?;
        for list in ["containers", "initContainers"] {
            let Some(containers) = properties.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for (i, container) in containers.iter_mut().enumerate() {
                let Some(vars) = container
                    .pointer_mut("/properties/environmentVariables")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for (j, var) in vars.iter_mut().enumerate() {
                    let Some(setting) = var
                        .get("secureValueFrom")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                    else {
                        continue;
                    };
                    let value = (self.settings.settings)(&setting).ok_or_else(|| {
                        format!(
                            "groups[{slot}].properties.{list}[{i}].properties.environmentVariables[{j}].secureValueFrom: app setting '{setting}' is not set"
                        )
                    })?;
                    if let Some(map) = var.as_object_mut() {
                        map.remove("secureValueFrom");
                        map.insert("secureValue".into(), Value::from(value));
                    }
                }
            }
        }
        Ok(())
    }

    fn add_callbacks(&self, d: &Deployment, properties: &mut Value) -> Result<(), String> {
        let base = d.callback_base.trim_end_matches('/');
        let url = |kind: &str| -> Result<String, String> {
            let token = self
                .keys
                .callback_token(d.callback_key.as_deref(), &d.id, kind)
                .map_err(|e| format!("the deployment's callback key cannot be opened: {e}"))?;
            Ok(format!(
                "{base}/api/callbacks/{}/{kind}?token={token}",
                d.id
            ))
        };
        let injected = [
            json!({ "name": "BERTH_DEPLOYMENT_ID", "value": d.id }),
            json!({ "name": "BERTH_CALLBACK_URL", "secureValue": url("completed")? }),
            json!({ "name": "BERTH_HEARTBEAT_URL", "secureValue": url("heartbeat")? }),
        ];
        let Some(containers) = properties
            .get_mut("containers")
            .and_then(Value::as_array_mut)
        else {
            return Ok(());
        };
        for container in containers {
            let Some(props) = container
                .get_mut("properties")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let vars = props
                .entry("environmentVariables")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(vars) = vars.as_array_mut() {
                vars.retain(|v| {
                    !v.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| validate::RESERVED_ENV.contains(&n))
                });
                vars.extend(injected.iter().cloned());
            }
        }
        Ok(())
    }

    async fn add_share_keys(&self, properties: &mut Value) -> Result<(), String> {
        let Some(volumes) = properties.get_mut("volumes").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        for volume in volumes {
            let Some(file) = volume.get_mut("azureFile").and_then(Value::as_object_mut) else {
                continue;
            };
            if file.contains_key("storageAccountKey")
                || file.contains_key("storageAccountKeyReference")
            {
                continue;
            }
            let account = file
                .get("storageAccountName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let target = self.arm.target();
            let url = format!(
                "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{account}/listKeys?api-version=2023-05-01",
                target.endpoint, target.subscription, target.resource_group
            );
            let keys = self
                .arm
                .raw(
                    reqwest::Method::POST,
                    &url,
                    None,
                    "list storage account keys",
                )
                .await
                .map_err(|e| {
                    format!("fetching the key of storage account '{account}' failed: {e}")
                })?;
            let key = keys
                .pointer("/keys/0/value")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("storage account '{account}' returned no key"))?;
            file.insert("storageAccountKey".into(), Value::from(key));
        }
        Ok(())
    }

    /// Loads a deployment.
    pub async fn load(&self, id: &str) -> Result<Option<Deployment>, DriverError> {
        Ok(self.store.load(id).await?.map(|s| s.deployment))
    }

    /// The current time.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Re-sends a step message for a deployment's current wake (the sweep's re-drive).
    pub fn redrive(id: &str, seq: u64, at: Millis) -> Scheduled {
        Scheduled {
            message: StepMessage {
                id: id.to_owned(),
                seq,
            },
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json;
    use crate::spec::{Format, parse};

    #[test]
    fn the_spec_digest_ignores_key_order() {
        let one = r#"{"id":"k","groups":[{"name":"g","properties":{"restartPolicy":"Never","containers":[
            {"name":"c","properties":{"image":"busybox","resources":{"requests":{"cpu":1,"memoryInGB":1}}}}]}}]}"#;
        let two = r#"{"groups":[{"properties":{"containers":[{"properties":{"resources":{"requests":{"memoryInGB":1,"cpu":1}},
            "image":"busybox"},"name":"c"}],"restartPolicy":"Never"},"name":"g"}],"id":"k"}"#;
        let parse = |text: &str| parse(text.as_bytes(), Format::Json, || unreachable!()).unwrap();
        assert_eq!(canonical_json(&parse(one)), canonical_json(&parse(two)));
    }
}
