//! Delivering notifications: a CloudEvents 1.0 JSON event (structured mode), signed as the
//! Standard Webhooks spec says, POSTed to a `notify` URL by a client that calls vetted
//! addresses only. What is pending and when to try again is the engine's
//! ([`crate::engine::notify`]); the driver performs each attempt with [`Notifier::send`].
//!
//! # Guarantees
//! - At least once, never exactly once (HTTP cannot): a receiver may get an event again (a retry
//!   after a timeout whose request did arrive, a crash before the result was saved); every
//!   attempt carries the same `id` (the CloudEvent's and `webhook-id`), so receivers dedupe.
//! - Signed: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` with
//!   `webhook-id` and `webhook-timestamp` (seconds), under the deployment's own key
//!   (`whsec_<base64>`, made at submit, sealed in its checkpoint, answered once in the `202`).
//! - No secret in the event: its `data` is the deployment's id, status, error and groups' results
//!   and outputs, as the status document shows them.
//! - SSRF (see [`address`]): the URL's literal address is checked at every attempt, and a host
//!   name is connected to only at addresses [`address::NotifyPolicy`] allows, checked after
//!   resolving, in the resolver the client connects with (so a rebinding answer is refused, not
//!   raced). No proxy, no redirect followed (a `3xx` is a permanent failure), at most
//!   [`policy::NOTIFY_TIMEOUT_MS`] per attempt, and the response body is never read.
//! - `2xx` is delivered; `408`, `429`, `5xx`, timeouts and connection errors are tried again; any
//!   other status, and a refused address, is permanent.

pub mod address;
pub mod event_grid;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::Sha256;

pub use address::{Allow, NotifyPolicy};
pub use event_grid::EventGrid;

use crate::clock::rfc3339;
use crate::engine::flow::{self, GroupState};
use crate::engine::{Deployment, Millis, Notification, policy};

/// The prefix of a notification key, as Standard Webhooks writes secrets.
const KEY_PREFIX: &str = "whsec_";

/// A new notification key: `whsec_` and 32 random bytes in base64.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", STANDARD.encode(bytes))
}

/// `text` as a notification key: `whsec_` and the base64 of 24 to 64 random bytes (as Standard
/// Webhooks keys are); the error never repeats it.
pub fn checked_key(text: &str) -> Result<String, String> {
    let text = text.trim();
    let bytes = text
        .strip_prefix(KEY_PREFIX)
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| format!("must be {KEY_PREFIX} followed by base64"))?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!(
            "its key is {} bytes; 24 to 64 are accepted",
            bytes.len()
        ));
    }
    Ok(text.to_owned())
}

/// The `webhook-signature` of `body` sent as `id` at `timestamp` (seconds) under `key`
/// (`whsec_…`); `None` when the key is not one [`new_key`] makes.
pub fn signature(key: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let secret = STANDARD.decode(key.strip_prefix(KEY_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The CloudEvent of notification `n` of deployment `d`, as JSON bytes.
pub fn event(d: &Deployment, n: &Notification) -> Vec<u8> {
    let states = flow::states(d);
    let groups: Vec<Value> = d
        .spec
        .groups
        .iter()
        .enumerate()
        .map(|(slot, group)| {
            let state = states[slot];
            let (_, outputs) = crate::api::status::results(d, slot);
            json!({
                "name": group.name,
                "result": state.has_ended().then_some(state),
                "outputs": outputs,
            })
        })
        .collect();
    let mut data = json!({
        "id": d.id,
        "status": d.status.as_str(),
        "groups": groups,
    });
    if let Some(error) = d.outcome.as_ref().and_then(|o| o.error.as_deref()) {
        data["error"] = json!(error);
    }
    let subject = match &n.group {
        Some(group) => {
            data["group"] = json!(group);
            data["groupResult"] = json!(GroupState::Failed);
            format!("{}/groups/{group}", d.id)
        }
        None => d.id.clone(),
    };
    let event = json!({
        "specversion": "1.0",
        "id": n.id,
        "source": format!("/berth/deployments/{}", d.id),
        "type": n.on.event_type(),
        "subject": subject,
        "time": rfc3339(n.at),
        "datacontenttype": "application/json",
        "data": data,
    });
    serde_json::to_vec(&event).expect("JSON serialises")
}

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered this 2xx.
    Delivered(u16),
    /// It did not: `error` says how; `permanent` when trying again will not help.
    Failed { error: String, permanent: bool },
}

/// An address the policy refuses, as the resolver's error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// Resolves host names for the notification client, keeping only addresses the policy allows.
struct SafeResolver {
    policy: Arc<NotifyPolicy>,
}

impl reqwest::dns::Resolve for SafeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.refuses(a.ip()) {
                    Some(why) => {
                        refused = Some(why);
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| "no address".into());
                return Err(Box::new(Refused(format!("{host} resolves to {why}"))) as _);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Sends notifications under a [`NotifyPolicy`]. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    policy: Arc<NotifyPolicy>,
}

impl Notifier {
    /// A notifier whose client calls only what `policy` allows.
    pub fn new(policy: NotifyPolicy) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_millis(policy::NOTIFY_TIMEOUT_MS as u64))
            .connect_timeout(Duration::from_secs(5))
            .dns_resolver(Arc::new(SafeResolver {
                policy: policy.clone(),
            }))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the notification client builds");
        Notifier { client, policy }
    }

    /// Where notifications may go.
    pub fn policy(&self) -> &NotifyPolicy {
        &self.policy
    }

    /// One attempt: POSTs `body` (a CloudEvent with `id`) to `url`, signed under `key` at `now`.
    pub async fn send(
        &self,
        url: &str,
        id: &str,
        body: Vec<u8>,
        key: &str,
        now: Millis,
    ) -> Attempt {
        let permanent = |error: String| Attempt::Failed {
            error,
            permanent: true,
        };
        let checked =
            crate::spec::notify::url_shape(url).and_then(|u| self.policy.check_url(&u).map(|()| u));
        let url = match checked {
            Ok(url) => url,
            Err(why) => return permanent(format!("refused: {why}")),
        };
        let timestamp = now.div_euclid(1000);
        let Some(signature) = signature(key, id, timestamp, &body) else {
            return permanent("the deployment's notification key is not readable".into());
        };
        let sent = self
            .client
            .post(url)
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => answered(response.status().as_u16()),
            Err(e) => failed(&e),
        }
    }
}

/// What a receiver's status means.
fn answered(status: u16) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered(status),
        300..=399 => Attempt::Failed {
            error: format!("{status} (redirects are not followed)"),
            permanent: true,
        },
        408 | 429 | 500..=599 => Attempt::Failed {
            error: status.to_string(),
            permanent: false,
        },
        _ => Attempt::Failed {
            error: status.to_string(),
            permanent: true,
        },
    }
}

/// What a request that got no answer means: a refused address is permanent, the rest is not.
fn failed(e: &reqwest::Error) -> Attempt {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(error) = source {
        if let Some(refused) = error.downcast_ref::<Refused>() {
            return Attempt::Failed {
                error: format!("refused: {refused}"),
                permanent: true,
            };
        }
        source = error.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "no answer"
    };
    // The error's own text names the URL, whose path and query may be the webhook's secret: only
    // its causes are kept (they name an address or a host at most).
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        causes.push(inner.to_string());
        source = inner.source();
    }
    let error = match causes.is_empty() {
        true => kind.to_owned(),
        false => format!("{kind}: {}", causes.join(": ")),
    };
    Attempt::Failed {
        error,
        permanent: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The Standard Webhooks reference test vector.
        let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(signature_of("not a key"), None);
        assert!(checked_key(&new_key()).is_ok());
        for bad in ["whsec_", "whsec_!!!", "hunter2", "whsec_c2hvcnQ="] {
            let error = checked_key(bad).unwrap_err();
            assert!(
                !error.contains("hunter2") && !error.contains("c2hvcnQ"),
                "{error}"
            );
        }
        assert!(new_key().starts_with(KEY_PREFIX));
        assert_ne!(new_key(), new_key());
    }

    fn signature_of(key: &str) -> Option<String> {
        signature(key, "id", 0, b"")
    }

    #[test]
    fn statuses_are_delivered_retried_or_permanent() {
        assert_eq!(answered(204), Attempt::Delivered(204));
        for retried in [408, 429, 500, 503] {
            assert!(matches!(
                answered(retried),
                Attempt::Failed {
                    permanent: false,
                    ..
                }
            ));
        }
        for permanent in [301, 302, 400, 401, 404, 410] {
            assert!(matches!(
                answered(permanent),
                Attempt::Failed {
                    permanent: true,
                    ..
                }
            ));
        }
    }
}
