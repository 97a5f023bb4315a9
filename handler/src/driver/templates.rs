//! Templates against the store: put (versioned, idempotent), read, list, delete, and the
//! expansion of an [`Invocation`] into a full spec at submit (see [`crate::spec::template`]).
//!
//! # Guarantees
//! - A put of a body whose canonical JSON has the latest version's digest changes nothing and
//!   answers that version (unless its secrets are sealed under a previous key: then the put seals
//!   them under the current one, as the next version); any other body becomes the next version. A version is written once
//!   (the store's create-only put), so concurrent puts each get a version of their own or find
//!   theirs already there, and a deployment pinned to a version always expands the same spec.
//! - Secret fields are sealed at rest as a deployment's are: the stored document holds
//!   `(sealed)` in their place and the values sealed beside it; they are opened only in memory,
//!   to be sealed into the deployment they are expanded into. No answer carries them. So are
//!   the `notify` URLs (a webhook's path often is its secret): their origins stay.
//! - An expansion is validated as any spec is, and records the template and version it came
//!   from in the spec (its status shows them); changing a template later changes no deployment.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Driver, DriverError, sorted};
use crate::engine::Millis;
use crate::spec::secrets::{SecretSlot, put_into_document, take_from_document};
use crate::spec::template::{self, Invocation, Parameters, TemplateRef};
use crate::spec::{Spec, SpecErrors, document, parse};
use crate::store::{StoreError, TemplatePage, Templates};

/// The schema of a stored template this Berth writes and reads.
pub const TEMPLATE_SCHEMA: u32 = 1;
/// Tries of a put that keeps losing its version to other puts.
const PUT_TRIES: u32 = 8;
/// What a secret field holds in a stored template and in what the API shows of it.
pub const SEALED: &str = "(sealed)";

/// A template version as stored (JSON), and as the API shows it (without `digest` and `sealed`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTemplate {
    pub schema_version: u32,
    pub name: String,
    pub version: u32,
    pub created: Millis,
    /// HMAC of the canonical body as put (secrets included), to find an identical put.
    pub digest: String,
    pub parameters: Parameters,
    /// The spec without `parameters`, each secret field holding [`SEALED`].
    pub spec: Value,
    /// The secret fields' values ([`SecretSlot`]s), sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// The `notify` URLs whole (a JSON array, placeholders and all), sealed: the spec keeps
    /// their origins (`https://host/(sealed)`, or `(sealed)` when the origin is a placeholder),
    /// as a deployment's does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_urls: Option<String>,
}

/// Takes the `notify` URLs out of a template document, leaving what may be shown of each.
fn take_notify_urls(doc: &mut Value) -> Vec<String> {
    let Some(entries) = doc.get_mut("notify").and_then(Value::as_array_mut) else {
        return Vec::new();
    };
    entries
        .iter_mut()
        .filter_map(|entry| {
            let url = entry.get_mut("url")?;
            let whole = url.as_str()?.to_owned();
            let shown = match whole.contains("{{") {
                true => SEALED.to_owned(),
                false => crate::spec::notify::shown_url(&whole),
            };
            *url = Value::String(shown);
            Some(whole)
        })
        .collect()
}

/// Puts the URLs [`take_notify_urls`] took back, in order.
fn put_notify_urls(doc: &mut Value, urls: Vec<String>) {
    let entries = doc.get_mut("notify").and_then(Value::as_array_mut);
    let urls = entries
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get_mut("url"))
        .zip(urls);
    for (url, whole) in urls {
        *url = Value::String(whole);
    }
}

/// Why a template call failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Invalid(#[from] SpecErrors),
    #[error("{0}")]
    Driver(#[from] DriverError),
    /// No such template (or version).
    #[error("{field}: {message}")]
    NotFound {
        field: &'static str,
        message: String,
    },
    /// This Berth has no template store (a driver built without one).
    #[error("templates are not available here")]
    Unavailable,
    /// The stored version cannot be read (a newer Berth's, or damaged).
    #[error("template {name} version {version} cannot be read: {reason}")]
    Unreadable {
        name: String,
        version: u32,
        reason: String,
    },
}

impl From<StoreError> for TemplateError {
    fn from(e: StoreError) -> Self {
        TemplateError::Driver(DriverError::Store(e))
    }
}

fn decode(name: &str, version: u32, bytes: &Bytes) -> Result<StoredTemplate, TemplateError> {
    let unreadable = |reason: String| TemplateError::Unreadable {
        name: name.to_owned(),
        version,
        reason,
    };
    let stored: StoredTemplate =
        serde_json::from_slice(bytes).map_err(|e| unreadable(e.to_string()))?;
    if stored.schema_version > TEMPLATE_SCHEMA {
        return Err(unreadable(format!(
            "schema version {} is newer than this Berth's ({TEMPLATE_SCHEMA})",
            stored.schema_version
        )));
    }
    Ok(stored)
}

/// `slots` with each value replaced by [`SEALED`]: what the stored spec holds in their place.
fn placeholders(slots: &[SecretSlot]) -> Vec<SecretSlot> {
    let sealed = slots.iter().map(|slot| SecretSlot {
        value: Value::from(SEALED),
        ..slot.clone()
    });
    sealed.collect()
}

impl Driver {
    /// The same driver keeping templates in `store`.
    pub fn with_templates(mut self, store: Arc<dyn Templates>) -> Self {
        self.templates = Some(store);
        self
    }

    fn template_store(&self) -> Result<&Arc<dyn Templates>, TemplateError> {
        self.templates.as_ref().ok_or(TemplateError::Unavailable)
    }

    /// Stores `body` (a template: a JSON spec with `parameters`) as template `name`: the latest
    /// version when it is the same body, else the next one. `true` when a version was made.
    pub async fn put_template(
        &self,
        name: &str,
        body: &[u8],
    ) -> Result<(StoredTemplate, bool), TemplateError> {
        let store = self.template_store()?;
        if body.len() > parse::MAX_SPEC_BYTES {
            return Err(SpecErrors::one(
                "(spec)",
                format!(
                    "the template is {} bytes; at most {} are accepted",
                    body.len(),
                    parse::MAX_SPEC_BYTES
                ),
            )
            .into());
        }
        let document = document::from_json(body)?;
        let canonical = serde_json::to_vec(&sorted(document.clone())).expect("JSON serialises");
        let read = template::read(document)?;
        for _ in 0..PUT_TRIES {
            let latest = match store.get_template(name, None).await? {
                Some((version, bytes)) => Some(decode(name, version, &bytes)?),
                None => None,
            };
            // The same body is the latest version, unless that one is sealed under a key that
            // is no longer the current one: after a rotation, putting it again seals it anew.
            if let Some(latest) = latest.as_ref()
                && self.keys.digest_matches(&canonical, &latest.digest)
                && ![&latest.sealed, &latest.notify_urls]
                    .into_iter()
                    .flatten()
                    .any(|s| self.keys.needs_reseal(s))
            {
                return Ok((latest.clone(), false));
            }
            let mut spec = read.spec.clone();
            let slots = take_from_document(&mut spec);
            put_into_document(&mut spec, &placeholders(&slots));
            let urls = take_notify_urls(&mut spec);
            let stored = StoredTemplate {
                schema_version: TEMPLATE_SCHEMA,
                name: name.to_owned(),
                version: latest.map_or(1, |l| l.version + 1),
                created: self.clock.now(),
                digest: self.keys.digest(&canonical),
                parameters: read.parameters.clone(),
                spec,
                sealed: (!slots.is_empty()).then(|| {
                    self.keys
                        .seal(&serde_json::to_vec(&slots).expect("secrets serialise"))
                }),
                notify_urls: (!urls.is_empty()).then(|| {
                    self.keys
                        .seal(&serde_json::to_vec(&urls).expect("URLs serialise"))
                }),
            };
            let bytes = serde_json::to_vec(&stored).expect("a template serialises");
            match store.put_template(name, stored.version, &bytes).await {
                Ok(()) => {
                    tracing::info!(template.name = %name, template.version = stored.version, "template stored");
                    return Ok((stored, true));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("template {name}")).into())
    }

    /// Version `version` of template `name` (its latest when `None`).
    pub async fn template(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<StoredTemplate, TemplateError> {
        let found = self.template_store()?.get_template(name, version).await?;
        let Some((version, bytes)) = found else {
            return Err(match version {
                Some(v) => TemplateError::NotFound {
                    field: "version",
                    message: format!("template '{name}' has no version {v}"),
                },
                None => TemplateError::NotFound {
                    field: "name",
                    message: format!("no template '{name}'"),
                },
            });
        };
        decode(name, version, &bytes)
    }

    /// A page of templates: names ascending, each with its latest version.
    pub async fn templates(
        &self,
        top: usize,
        continuation: Option<&str>,
    ) -> Result<TemplatePage, TemplateError> {
        let store = self.template_store()?;
        Ok(store.list_templates(top, continuation).await?)
    }

    /// Deletes every version of template `name`; deployments made from it are not touched.
    pub async fn delete_template(&self, name: &str) -> Result<(), TemplateError> {
        match self.template_store()?.delete_template(name).await? {
            true => Ok(()),
            false => Err(TemplateError::NotFound {
                field: "name",
                message: format!("no template '{name}'"),
            }),
        }
    }

    /// What template version `found` sealed (its `what`), opened; unreadable when no key of
    /// the ring opens it.
    fn open_sealed<T: serde::de::DeserializeOwned>(
        &self,
        found: &StoredTemplate,
        sealed: &str,
        what: &str,
    ) -> Result<T, TemplateError> {
        self.open_json(sealed)
            .ok_or_else(|| TemplateError::Unreadable {
                name: found.name.clone(),
                version: found.version,
                reason: format!("its {what} do not open with BERTH_SECRETS_KEY or a previous key"),
            })
    }

    /// The spec `invocation` asks for: its template's version expanded with its parameters,
    /// secrets put back (to be sealed again by [`Driver::submit`]), validated, its id
    /// `invocation.id` or `new_id()`.
    pub async fn expand(
        &self,
        invocation: Invocation,
        new_id: impl FnOnce() -> String,
    ) -> Result<Spec, TemplateError> {
        let found = self.invoked(&invocation).await?;
        self.expand_version(&found, invocation, new_id)
    }

    /// The template version `invocation` names (a missing one named as its `template` or
    /// `version` field).
    pub async fn invoked(&self, invocation: &Invocation) -> Result<StoredTemplate, TemplateError> {
        self.template(&invocation.template, invocation.version)
            .await
            .map_err(|e| match e {
                TemplateError::NotFound { message, .. } => TemplateError::NotFound {
                    field: match invocation.version {
                        Some(_) => "version",
                        None => "template",
                    },
                    message,
                },
                e => e,
            })
    }

    /// [`Self::expand`] of a version already read ([`Self::invoked`]): no store read, so a
    /// caller may expand the same version several times.
    pub fn expand_version(
        &self,
        found: &StoredTemplate,
        invocation: Invocation,
        new_id: impl FnOnce() -> String,
    ) -> Result<Spec, TemplateError> {
        let values = template::values(&found.parameters, invocation.parameters)?;
        let mut document = found.spec.clone();
        if let Some(sealed) = &found.sealed {
            let slots: Vec<SecretSlot> = self.open_sealed(found, sealed, "secrets")?;
            put_into_document(&mut document, &slots);
        }
        if let Some(sealed) = &found.notify_urls {
            put_notify_urls(
                &mut document,
                self.open_sealed(found, sealed, "notify URLs")?,
            );
        }
        let mut document = template::expand(&document, &values)?;
        if let (Some(id), Some(doc)) = (invocation.id, document.as_object_mut()) {
            doc.insert("id".into(), Value::String(id));
        }
        let mut spec = parse::from_value(document, new_id)?;
        spec.template = Some(TemplateRef {
            name: found.name.clone(),
            version: found.version,
        });
        Ok(spec)
    }
}
