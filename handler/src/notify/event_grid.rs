//! Publishing outcomes to the operator's Event Grid topic (`BERTH_EVENTGRID_TOPIC`): the same
//! CloudEvent a webhook gets ([`super::event`]), POSTed in the CloudEvents 1.0 input schema with
//! an Entra ID token of the Function App's identity (scope [`SCOPE`]; the identity needs the
//! `EventGrid Data Sender` role on the topic, which `infra/` grants).
//!
//! # Guarantees
//! - As a webhook's: at least once, one `id` per notification across retries, each attempt in
//!   the history; Event Grid's own subscriptions then deliver it on (Functions, queues, Logic
//!   Apps, Service Bus), retrying as Event Grid does.
//! - The topic is the operator's setting, not a caller's: it is checked once, at start (`https`,
//!   or plain `http` to a loopback address for local runs), and never taken from a spec. No
//!   proxy from the environment is used: the token goes to the topic alone.
//! - A refused token or a `401`/`403` is tried again (a new role assignment takes minutes to
//!   apply); `400`, `404` and `413` are permanent; `408`, `429`, `5xx`, timeouts and connection
//!   errors are tried again. No redirect is followed.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

use super::Attempt;
use crate::engine::policy;

/// The token scope of Event Grid's data plane.
pub const SCOPE: &str = "https://eventgrid.azure.net/.default";

/// An Event Grid topic outcomes are published to. Cheap to clone.
#[derive(Clone)]
pub struct EventGrid {
    client: reqwest::Client,
    url: url::Url,
    credential: Arc<dyn TokenCredential>,
}

impl std::fmt::Debug for EventGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventGrid")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// Reads `BERTH_EVENTGRID_TOPIC`: the topic's endpoint (`https://{topic}.{region}-1.eventgrid.
/// azure.net/api/events`; a bare origin gets `/api/events`), `https`, or `http` to a loopback
/// address; no user name, password, query or fragment.
pub fn topic_url(text: &str) -> Result<url::Url, String> {
    // Never echoed: a mistaken value may hold a key.
    let mut url = url::Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => return Err("the topic URL has no host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("the topic URL must be https (plain http only to loopback)".into()),
        other => return Err(format!("the topic URL must be https, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the topic URL must not carry a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the topic URL must not have a query or fragment (Berth adds none; the key is the identity's)".into());
    }
    if url.path() == "/" {
        url.set_path("/api/events");
    }
    Ok(url)
}

impl EventGrid {
    /// A publisher to `url` (see [`topic_url`]) authenticating with `credential`.
    pub fn new(url: url::Url, credential: Arc<dyn TokenCredential>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The token goes to the topic and nowhere else, whatever the environment says.
            .no_proxy()
            .timeout(Duration::from_millis(policy::NOTIFY_TIMEOUT_MS as u64))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the Event Grid client builds");
        EventGrid {
            client,
            url,
            credential,
        }
    }

    /// The topic's host, for logs.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// One attempt: publishes `event` (one CloudEvent, JSON).
    pub async fn publish(&self, event: Vec<u8>) -> Attempt {
        let token = match self.credential.get_token(&[SCOPE], None).await {
            Ok(token) => token,
            Err(e) => {
                // The identity library's text may name the tenant and client: logs only, not
                // the history every reader of the API sees.
                tracing::warn!(error = %e, "no token for Event Grid");
                return Attempt::Failed {
                    error: "no token for Event Grid (the app's logs say why)".into(),
                    permanent: false,
                };
            }
        };
        let sent = self
            .client
            .post(self.url.clone())
            .bearer_auth(token.token.secret())
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .body(event)
            .send()
            .await;
        match sent {
            Ok(response) => answered(response.status().as_u16()),
            Err(e) => super::failed(&e),
        }
    }
}

/// What Event Grid's status means (its publish API answers `200` when it took the event).
fn answered(status: u16) -> Attempt {
    match status {
        401 | 403 => Attempt::Failed {
            error: format!(
                "{status}: the identity may publish only with the EventGrid Data Sender role on the topic"
            ),
            permanent: false,
        },
        _ => super::answered(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_urls_are_https_or_loopback_http_without_credentials_in_them() {
        let ok = topic_url("https://orders.westeurope-1.eventgrid.azure.net/api/events").unwrap();
        assert_eq!(ok.path(), "/api/events");
        let bare = topic_url("https://orders.westeurope-1.eventgrid.azure.net").unwrap();
        assert_eq!(bare.path(), "/api/events");
        assert!(topic_url("http://127.0.0.1:9/api/events").is_ok());
        assert!(topic_url("http://[::1]:9/api/events").is_ok());
        for (bad, says) in [
            ("http://orders.eventgrid.azure.net/api/events", "https"),
            ("http://10.0.0.4/api/events", "https"),
            ("ftp://127.0.0.1/x", "https"),
            ("https://u:p@orders.eventgrid.azure.net/", "user name"),
            (
                "https://orders.eventgrid.azure.net/api/events?aeg-sas-key=x",
                "query",
            ),
            ("not a url", "not a URL"),
        ] {
            let error = topic_url(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn refused_authorisation_is_tried_again_and_bad_requests_are_not() {
        for retried in [401, 403, 429, 500, 503] {
            assert!(
                matches!(
                    answered(retried),
                    Attempt::Failed {
                        permanent: false,
                        ..
                    }
                ),
                "{retried}"
            );
        }
        for permanent in [400, 404, 413] {
            assert!(
                matches!(
                    answered(permanent),
                    Attempt::Failed {
                        permanent: true,
                        ..
                    }
                ),
                "{permanent}"
            );
        }
        assert_eq!(answered(200), Attempt::Delivered(200));
    }
}
