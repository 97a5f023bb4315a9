//! The driver: Berth's deployments against real parts. It submits specs, raises events from the
//! API, and runs step messages: load the checkpoint → a round of the engine ([`crate::engine::round`])
//! → save with compare-and-swap → perform the round's actions → feed their results back, until the
//! deployment waits.
//!
//! - [`step`]: the step loop, and resealing after a key rotation.
//! - [`perform`]: each action against ARM and the log store, answered as events; ARM's answers
//!   become the engine's observations here.
//! - [`body`]: the container group's ARM body (secrets, `secureValueFrom`, callbacks, share keys,
//!   diagnostics, tags).
//! - [`live`]: a running container's log from ARM, and the slots of the API's log follows.
//! - [`looks`]: run times learned per group spec, and the look plans told with each create.
//! - [`templates`]: templates stored, read and expanded into specs at submit.
//!
//! # Guarantees
//! - Commit first, then act: an action runs only after the checkpoint that asked for it is saved,
//!   except results the engine lets go unsaved ([`crate::engine::Event::may_go_unsaved`]: saved
//!   logs and a stopped group, whose actions are safe to repeat), which are saved with the next
//!   round that saves. A crash between save and action leaves the step message in the queue (or
//!   the wake for the sweep), and the action is asked for again; every action is idempotent (group
//!   names derive from deployment, uid, group and generation, and every create looks first).
//! - A `Conflict` on save reloads the checkpoint and applies every unsaved event again.
//! - A step message whose `seq` is not the deployment's current wake is stale and dropped.

pub mod admit;
mod body;
mod capture;
mod live;
mod looks;
mod perform;
mod step;
pub mod templates;

pub use live::{LogSource, MAX_FOLLOWS};
pub use looks::{ESTIMATE_TTL, LookMode, ROUND_ROBIN_LOOK_MS, group_digest};

use std::sync::Arc;

use serde_json::Value;

use crate::arm::ArmClient;
use crate::checkpoint::{Deployments, ListQuery, Page};
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::engine::{self, Deployment, EngineError, Event, Millis, RuntimeStatus, policy};
use crate::spec::secrets::take_secrets;
use crate::spec::settings::Lookup;
use crate::spec::{SettingsPolicy, Spec, SpecErrors};
use crate::store::{Checkpoints, Scheduled, StepMessage, StoreError};

/// Settings the driver needs beyond its parts.
#[derive(Clone)]
pub struct DriverSettings {
    /// The value of the `berth-app` tag on every group (the sweep deletes only its own app's groups).
    pub app: String,
    /// Reads app settings for `secureValueFrom` (the environment, in production).
    pub settings: Arc<Lookup>,
    /// Which app settings `secureValueFrom` may read (`BERTH_SECURE_VALUE_FROM`).
    pub secure_value_from: SettingsPolicy,
    /// Fetch an Azure Files key with `listKeys` when a volume has none.
    pub fetch_share_keys: bool,
    /// Most rounds one step runs before it hands over to a fresh message.
    pub max_rounds_per_step: usize,
    /// How long a worker owns a group's create (see [`crate::engine::policy::CREATE_CLAIM_MS`]).
    pub create_claim_ms: Millis,
    /// How long an API call carries on the step it causes before it answers (`0`: every step is a
    /// message; see [`policy::INLINE_STEP_MS`]).
    pub inline_step_ms: Millis,
    /// Most steps carried on by API calls at once (see [`policy::INLINE_STEPS_AT_ONCE`]).
    pub inline_steps_at_once: usize,
    /// A Log Analytics workspace (ARM id) every group sends its logs to (`BERTH_DIAGNOSTICS_WORKSPACE`).
    pub diagnostics_workspace: Option<String>,
    /// Most standard cores in use per location (`BERTH_MAX_CORES`; see [`admit`]).
    pub max_cores: admit::MaxCores,
    /// How instances watched for their exit are looked at (`BERTH_LOOKS`).
    pub looks: LookMode,
    /// Where notifications may go (the mode and `BERTH_NOTIFY_ALLOW_PRIVATE`).
    pub notify: crate::notify::NotifyPolicy,
    /// The Event Grid topic every deployment's outcomes are published to
    /// (`BERTH_EVENTGRID_TOPIC`).
    pub event_grid: Option<crate::notify::EventGrid>,
}

impl Default for DriverSettings {
    /// App `berth`, no app settings readable, the engine's policy for rounds and claims.
    fn default() -> Self {
        DriverSettings {
            app: "berth".into(),
            settings: Arc::new(|_: &str| None),
            secure_value_from: SettingsPolicy::default(),
            fetch_share_keys: false,
            max_rounds_per_step: policy::MAX_ROUNDS_PER_STEP,
            create_claim_ms: policy::CREATE_CLAIM_MS,
            inline_step_ms: policy::INLINE_STEP_MS,
            inline_steps_at_once: policy::INLINE_STEPS_AT_ONCE,
            diagnostics_workspace: None,
            max_cores: admit::MaxCores::default(),
            looks: LookMode::default(),
            notify: crate::notify::NotifyPolicy::default(),
            event_grid: None,
        }
    }
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

/// Runs deployments: submits, raises, steps. Cheap to clone (its parts are shared).
#[derive(Clone)]
pub struct Driver {
    /// The diagnostics workspace's id and key, read once.
    diagnostics: Arc<tokio::sync::OnceCell<(String, String)>>,
    store: Arc<dyn Checkpoints>,
    arm: ArmClient,
    keys: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    settings: Arc<DriverSettings>,
    /// The slots of the API's log follows ([`Driver::follow_slot`]).
    follows: Arc<tokio::sync::Semaphore>,
    /// The slots of the steps carried on by API calls ([`Driver::inline_slot`]).
    inline: Arc<tokio::sync::Semaphore>,
    /// Capacity admission of creates, shared by this process's workers.
    admission: Arc<admit::Admission>,
    /// Run times learned per group spec; `None`: nothing learned, looks back off.
    learning: Option<Arc<looks::Learning>>,
    /// Where templates are kept; `None`: the template routes answer that there are none.
    templates: Option<Arc<dyn crate::store::Templates>>,
    /// Where the saved logs of running containers end, as this process last saved them.
    log_cursors: Arc<capture::Cursors>,
    /// Sends the spec's notifications.
    notifier: crate::notify::Notifier,
    /// Where schedules are kept; `None`: this driver has none (the schedule routes say so).
    schedules: Option<Arc<dyn crate::store::Schedules>>,
}

/// A submitted deployment, and whether it already existed (idempotent `POST`).
pub struct Submitted {
    pub deployment: Deployment,
    pub existed: bool,
    /// The key its notifications are signed with, in clear: told to the submitter once, when
    /// the deployment is new and has `notify` (sealed in the checkpoint, never told again).
    pub notify_key: Option<String>,
}

/// A spec as canonical JSON: object keys sorted at every level, whatever order they were written
/// or inserted in (serde_json keeps insertion order when a crate in the build enables
/// `preserve_order`), so that digests compare specs, not spellings.
fn canonical_json(spec: &Spec) -> Vec<u8> {
    let value = serde_json::to_value(spec).expect("a spec serialises");
    serde_json::to_vec(&sorted(value)).expect("JSON serialises")
}

/// `value` with object keys sorted at every level.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
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

impl Driver {
    /// A driver over its parts.
    pub fn new(
        store: Arc<dyn Checkpoints>,
        arm: ArmClient,
        keys: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        settings: DriverSettings,
    ) -> Self {
        Driver {
            diagnostics: Arc::default(),
            store,
            arm,
            keys,
            clock,
            admission: Arc::new(admit::Admission::new(settings.max_cores.clone())),
            notifier: crate::notify::Notifier::new(settings.notify.clone()),
            inline: Arc::new(tokio::sync::Semaphore::new(settings.inline_steps_at_once)),
            settings: Arc::new(settings),
            follows: live::follow_slots(),
            learning: None,
            templates: None,
            log_cursors: Arc::default(),
            schedules: None,
        }
    }

    /// The same driver keeping schedules in `store` (see [`crate::schedule`]).
    pub fn with_schedules(mut self, store: Arc<dyn crate::store::Schedules>) -> Self {
        self.schedules = Some(store);
        self
    }

    /// Where schedules are kept, when this driver has them.
    pub fn schedules(&self) -> Option<Arc<dyn crate::store::Schedules>> {
        self.schedules.clone()
    }

    /// Takes a spec's secrets out and seals them, as [`Self::submit`] does for a checkpoint: the
    /// sealed slots, `None` when it has no secret.
    pub fn seal_secrets(&self, spec: &mut Spec) -> Option<String> {
        let slots = take_secrets(spec);
        (!slots.is_empty()).then(|| {
            self.keys
                .seal(&serde_json::to_vec(&slots).expect("secrets serialise"))
        })
    }

    /// Takes the whole `notify` URLs out of `spec` (their origins stay), sealed as one JSON
    /// array; `None` when it has none.
    pub fn seal_notify_urls(&self, spec: &mut Spec) -> Option<String> {
        let urls = crate::spec::notify::take_urls(spec);
        (!urls.is_empty()).then(|| self.seal(&serde_json::to_vec(&urls).expect("URLs serialise")))
    }

    /// Puts the URLs [`Self::seal_notify_urls`] sealed back into `spec`.
    pub fn open_notify_urls(&self, spec: &mut Spec, sealed: &str) -> Result<(), String> {
        let urls: Vec<String> = self
            .open_json(sealed)
            .ok_or("the notify URLs cannot be opened (sealed under a key this Berth lacks)")?;
        for (n, url) in spec.notify.iter_mut().zip(urls) {
            n.url = url;
        }
        Ok(())
    }

    /// `plain` sealed under the current key.
    pub fn seal(&self, plain: &[u8]) -> String {
        self.keys.seal(plain)
    }

    /// A JSON value sealed whole (URLs, secret slots), opened and read; `None` when no key of
    /// the ring opens it or it is not a `T`.
    pub fn open_json<T: serde::de::DeserializeOwned>(&self, sealed: &str) -> Option<T> {
        let plain = self.keys.open(sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// A key [`Self::seal`] sealed, opened (`None` when no key of the ring opens it).
    pub fn open_key(&self, sealed: &str) -> Option<String> {
        let plain = self.keys.open(sealed).ok()?;
        String::from_utf8(plain).ok()
    }

    /// `sealed` sealed again under the current key, when an older key sealed it and a key of the
    /// ring still opens it; `None` otherwise.
    pub fn resealed(&self, sealed: &str) -> Option<String> {
        if !self.keys.needs_reseal(sealed) {
            return None;
        }
        self.keys
            .open(sealed)
            .ok()
            .map(|plain| self.keys.seal(&plain))
    }

    /// Puts the secrets [`Self::seal_secrets`] sealed back into a spec.
    pub fn open_secrets(&self, spec: &mut Spec, sealed: &str) -> Result<(), String> {
        let plain = self
            .keys
            .open(sealed)
            .map_err(|e| format!("the spec's secrets cannot be opened: {e}"))?;
        let slots: Vec<crate::spec::secrets::SecretSlot> = serde_json::from_slice(&plain)
            .map_err(|e| format!("the spec's sealed secrets cannot be read: {e}"))?;
        for (i, group) in spec.groups.iter_mut().enumerate() {
            crate::spec::secrets::put_secrets(&mut group.properties, i, &slots);
        }
        Ok(())
    }

    /// The same driver learning run times in `store` (see [`looks`]).
    pub fn with_run_times(mut self, store: Arc<dyn crate::store::RunTimes>) -> Self {
        self.learning = Some(Arc::new(looks::Learning::new(store)));
        self
    }

    /// The same driver over another store (benchmarks count the store's work this way).
    pub fn with_store(&self, store: Arc<dyn Checkpoints>) -> Self {
        Driver {
            store,
            ..self.clone()
        }
    }

    /// Accepts a spec (secrets still in it): seals its secrets, saves the checkpoint and its first
    /// step. The same spec under an existing id returns the existing deployment. A spec with
    /// `notify` gets a new signing key, told once in [`Submitted::notify_key`].
    pub async fn submit(
        &self,
        spec: Spec,
        callback_base: String,
    ) -> Result<Submitted, DriverError> {
        self.submit_keyed(spec, callback_base, None).await
    }

    /// [`Self::submit`], its notifications signed with `notify_key` when given (a schedule's
    /// key, or the operator's for the submit queue: whoever submits cannot be told one), which
    /// is then never told.
    pub async fn submit_keyed(
        &self,
        mut spec: Spec,
        callback_base: String,
        notify_key: Option<&str>,
    ) -> Result<Submitted, DriverError> {
        let canonical = canonical_json(&spec);
        let digest = self.keys.digest(&canonical);
        let sealed = self.seal_secrets(&mut spec);
        let notify_urls = self.seal_notify_urls(&mut spec);
        let id = spec.id.clone();
        let now = self.clock.now();
        let options = engine::StartOptions {
            callback_base,
            create_claim_ms: self.settings.create_claim_ms,
            uid: Some(uuid::Uuid::new_v4().simple().to_string()),
            event_grid: self.settings.event_grid.is_some(),
        };
        let mut transition = engine::start(spec, sealed, digest, options, now);
        transition.next.callback_key = Some(self.keys.new_callback_key());
        let given = notify_key;
        let notify_key = (!transition.next.spec.notify.is_empty())
            .then(|| given.map_or_else(crate::notify::new_key, str::to_owned));
        transition.next.notify_key = notify_key.as_ref().map(|k| self.keys.seal(k.as_bytes()));
        let notify_key = notify_key.filter(|_| given.is_none());
        transition.next.notify_urls = notify_urls;
        // Answered as accepted (`Pending`), whatever the first step did since: a new deployment's
        // answer is always `202`, its progress is the status URL's to tell.
        match self.create_and_start(transition.next.clone()).await {
            Ok(()) => {
                crate::metrics::deployment_started();
                Ok(Submitted {
                    deployment: transition.next,
                    existed: false,
                    notify_key,
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
                        notify_key: None,
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
    async fn raise_authorised(
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
            if matches!(event, Event::InstanceCompleted { .. })
                && let Some(slot) = self.inline_slot()
            {
                match self.raise_and_perform(stored, event.clone(), slot).await {
                    Err(DriverError::Store(StoreError::Conflict(_))) => continue,
                    done => return done,
                }
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

    /// Loads a deployment.
    pub async fn load(&self, id: &str) -> Result<Option<Deployment>, DriverError> {
        Ok(self.store.load(id).await?.map(|s| s.deployment))
    }

    /// A deployment's stored document, byte for byte (for one this Berth cannot read).
    pub async fn raw(&self, id: &str) -> Result<Option<bytes::Bytes>, DriverError> {
        Ok(self.store.load_record(id).await?.map(|s| s.record.body))
    }

    /// Page `page` of a deployment's archived history, as stored (a JSON array of entries).
    pub async fn history_page(
        &self,
        id: &str,
        page: u32,
    ) -> Result<Option<bytes::Bytes>, DriverError> {
        Ok(self.store.get_history(id, page).await?)
    }

    /// A container's saved logs as shown ([`crate::saved_log::shown`]: each line with its
    /// timestamp when `timestamps`, Berth's notes of missing lines where they are); `group` is a
    /// spec group name (its latest instance) or an instance name.
    pub async fn logs(
        &self,
        id: &str,
        group: &str,
        container: &str,
        timestamps: bool,
    ) -> Result<Option<String>, DriverError> {
        let saved = self.store.get_logs(id, group, container).await?;
        Ok(saved.map(|saved| crate::saved_log::shown(&saved, timestamps)))
    }

    /// A page of deployments, newest first.
    pub async fn list(&self, query: &ListQuery) -> Result<Page, DriverError> {
        Ok(self.store.list(query).await?)
    }

    /// Deletes a deployment's checkpoint and logs; `false` when there was none.
    pub async fn purge(&self, id: &str) -> Result<bool, DriverError> {
        Ok(self.store.purge(id).await?)
    }

    /// The submit-time checks that depend on this driver's settings rather than on the spec alone:
    /// `secureValueFrom` names against `BERTH_SECURE_VALUE_FROM`, and ACI's create-time rules in
    /// each group's location (else the target's).
    pub fn check(&self, spec: &Spec) -> Result<(), SpecErrors> {
        crate::spec::settings::check_spec(spec, &self.settings.secure_value_from)?;
        self.check_notify(spec)?;
        crate::spec::aci::at_location(spec, &self.arm.target().location)
    }

    /// The whole `notify` URLs of `d`, opened (empty when they cannot be: a key this Berth lacks).
    pub(super) fn notify_urls(&self, d: &Deployment) -> Vec<String> {
        d.notify_urls
            .as_deref()
            .and_then(|sealed| self.open_json(sealed))
            .unwrap_or_default()
    }

    /// The spec's `notify` URLs against where notifications may go (`notify[i].url` named):
    /// their scheme and literal addresses; host names are judged at each delivery.
    fn check_notify(&self, spec: &Spec) -> Result<(), SpecErrors> {
        let policy = self.notifier.policy();
        let errors: Vec<crate::spec::SpecError> = spec
            .notify
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let url = url::Url::parse(&n.url).ok()?;
                let message = policy.check_submitted(&url).err()?;
                Some(crate::spec::SpecError {
                    field: format!("notify[{i}].url"),
                    message,
                })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errors))
        }
    }

    /// Raises a callback's event (`completed` or `heartbeat`) when `token` is the deployment's
    /// token for `kind` (bound to `instance` when the URL names one, as the URLs Berth hands its
    /// containers do); checked on the same load the event is applied to. An instance's
    /// `completed` decides that instance alone, with its exit code and output.
    pub async fn raise_callback(
        &self,
        id: &str,
        kind: &str,
        instance: Option<&str>,
        token: &str,
        payload: Value,
    ) -> Result<Deployment, DriverError> {
        let bound = match instance {
            Some(instance) => format!("{kind}:{instance}"),
            None => kind.to_owned(),
        };
        let event = match instance {
            Some(instance) if kind == "completed" => Event::InstanceCompleted {
                instance: instance.to_owned(),
                exit_code: payload.get("exitCode").and_then(Value::as_i64),
                output: payload.get("output").cloned(),
            },
            Some(instance) if kind == "heartbeat" => Event::Heartbeat {
                instance: instance.to_owned(),
            },
            _ => Event::Raised {
                name: kind.to_owned(),
                payload,
            },
        };
        let keys = &self.keys;
        let authorised =
            |d: &Deployment| keys.verify_callback(d.callback_key.as_deref(), &d.id, &bound, token);
        self.raise_authorised(id, event, authorised).await
    }

    /// The token Berth gives a deployment's containers for callback `kind`, under the deployment's
    /// sealed `callback_key` (`None`: a checkpoint from before callback keys, keyed by the secrets
    /// key alone).
    pub fn callback_token(
        &self,
        callback_key: Option<&str>,
        id: &str,
        kind: &str,
    ) -> Result<String, crate::crypto::CryptoError> {
        self.keys.callback_token(callback_key, id, kind)
    }

    /// The current time.
    pub fn now(&self) -> Millis {
        self.clock.now()
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
