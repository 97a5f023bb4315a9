//! The spec's `notify`: where Berth POSTs a signed CloudEvent when the deployment reaches an
//! outcome (or a group fails).
//!
//! # Guarantees
//! - At most [`MAX_NOTIFY`] entries, each an absolute `http(s)` URL of at most [`MAX_URL_BYTES`]
//!   with a host and no user, password or fragment; `on` holds known outcomes only, each once
//!   (all terminal outcomes when absent). Every error names its field (`notify[1].url`).
//! - Whether a URL's address may be called (SSRF) depends on the mode and the operator's
//!   settings, so it is checked beside the other setting-dependent checks
//!   (`crate::notify::address`, called from `Driver::check`), and again at every delivery.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{FieldPath, Problems};

/// Most `notify` entries in a spec.
pub const MAX_NOTIFY: usize = 4;
/// Longest notification URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// What a notification is sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyOn {
    Succeeded,
    Failed,
    TimedOut,
    Terminated,
    /// A group of a job failed past its tolerance (sent at once, while the rest winds down).
    GroupFailed,
}

impl NotifyOn {
    pub const ALL: [NotifyOn; 5] = [
        NotifyOn::Succeeded,
        NotifyOn::Failed,
        NotifyOn::TimedOut,
        NotifyOn::Terminated,
        NotifyOn::GroupFailed,
    ];

    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Succeeded => "Succeeded",
            NotifyOn::Failed => "Failed",
            NotifyOn::TimedOut => "TimedOut",
            NotifyOn::Terminated => "Terminated",
            NotifyOn::GroupFailed => "GroupFailed",
        }
    }

    /// The CloudEvent `type` of a notification on this.
    pub fn event_type(self) -> &'static str {
        match self {
            NotifyOn::Succeeded => "berth.deployment.succeeded",
            NotifyOn::Failed => "berth.deployment.failed",
            NotifyOn::TimedOut => "berth.deployment.timedout",
            NotifyOn::Terminated => "berth.deployment.terminated",
            NotifyOn::GroupFailed => "berth.group.failed",
        }
    }
}

/// One `notify` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub url: String,
    pub on: Vec<NotifyOn>,
}

/// What of a webhook URL is kept in the spec once it is accepted: its origin. The path and query
/// of a webhook often carry its secret (Slack's, Teams'), so the whole URL is sealed apart
/// ([`take_urls`]) and never shown.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}/(sealed)", u.origin().ascii_serialization()),
        Err(_) => "(sealed)".to_owned(),
    }
}

/// Takes the whole `notify` URLs out of `spec`, leaving [`shown_url`] in their place.
pub fn take_urls(spec: &mut super::Spec) -> Vec<String> {
    spec.notify
        .iter_mut()
        .map(|n| {
            let shown = shown_url(&n.url);
            std::mem::replace(&mut n.url, shown)
        })
        .collect()
}

/// Takes `notify` out of the spec document.
pub(super) fn take(
    doc: &mut Map<String, Value>,
    root: &FieldPath,
    problems: &mut Problems,
) -> Vec<Notify> {
    let path = root.key("notify");
    let items = match doc.remove("notify") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.add(&path, "must be an array of {url, on}");
            return Vec::new();
        }
    };
    if items.len() > MAX_NOTIFY {
        problems.add(&path, format!("at most {MAX_NOTIFY} entries"));
    }
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| entry(item, &path.index(i), problems))
        .collect()
}

fn entry(item: Value, path: &FieldPath, problems: &mut Problems) -> Option<Notify> {
    let Value::Object(mut map) = item else {
        problems.add(path, "must be an object {url, on}");
        return None;
    };
    let url = match map.remove("url") {
        Some(Value::String(url)) => {
            if let Err(message) = url_shape(&url) {
                problems.add(&path.key("url"), message);
            }
            url
        }
        None | Some(Value::Null) => {
            problems.add(&path.key("url"), "required: where to POST the event");
            String::new()
        }
        Some(_) => {
            problems.add(&path.key("url"), "must be a string");
            String::new()
        }
    };
    let on = on(map.remove("on"), &path.key("on"), problems);
    problems.unknown_fields(&map, path, "a notify entry has url and on");
    Some(Notify { url, on })
}

fn on(value: Option<Value>, path: &FieldPath, problems: &mut Problems) -> Vec<NotifyOn> {
    let items = match value {
        None | Some(Value::Null) => return NotifyOn::ALL.to_vec(),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => {
            problems.add(path, "must be a non-empty array of outcomes");
            return Vec::new();
        }
    };
    let mut on = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let found = item
            .as_str()
            .and_then(|text| NotifyOn::ALL.into_iter().find(|o| o.as_str() == text));
        match found {
            Some(o) if on.contains(&o) => problems.add(&path.index(i), "given twice"),
            Some(o) => on.push(o),
            None => problems.add(
                &path.index(i),
                "not an outcome; use Succeeded, Failed, TimedOut, Terminated or GroupFailed",
            ),
        }
    }
    on
}

/// A URL's shape, whatever the mode: absolute `http(s)`, a host, no user or password (a
/// `user@host` form hides the real host from a reader), no fragment, at most [`MAX_URL_BYTES`].
pub fn url_shape(text: &str) -> Result<url::Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!("at most {MAX_URL_BYTES} bytes"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be https (http only in dev)".into());
    }
    if url.host().is_none() {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::{Format, parse};

    fn errors(notify: Value) -> Vec<(String, String)> {
        let spec = json!({ "groups": [{ "name": "g", "properties": { "containers": [
            { "name": "c", "properties": { "image": "busybox",
              "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }],
            "notify": notify });
        match parse(spec.to_string().as_bytes(), Format::Json, || "d".into()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    #[test]
    fn on_defaults_to_every_outcome_and_bad_entries_name_their_field() {
        let spec = json!({ "groups": [{ "name": "g", "properties": { "containers": [
            { "name": "c", "properties": { "image": "busybox",
              "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }],
            "notify": [{ "url": "https://hooks.example.com/berth" }] });
        let spec = parse(spec.to_string().as_bytes(), Format::Json, || "d".into()).unwrap();
        assert_eq!(spec.notify[0].on, NotifyOn::ALL.to_vec());

        let fields = |v: Value| -> Vec<String> { errors(v).into_iter().map(|e| e.0).collect() };
        assert_eq!(fields(json!({})), ["notify"]);
        assert_eq!(fields(json!([{}])), ["notify[0].url"]);
        assert_eq!(
            fields(json!([{ "url": "ftp://x.example" }])),
            ["notify[0].url"]
        );
        assert_eq!(
            fields(json!([{ "url": "https://good@evil.example/" }])),
            ["notify[0].url"]
        );
        assert_eq!(
            fields(json!([{ "url": "https://a.example/#x" }])),
            ["notify[0].url"]
        );
        assert_eq!(fields(json!([{ "url": "/relative" }])), ["notify[0].url"]);
        assert_eq!(
            fields(json!([{ "url": "https://a.example", "on": ["Done"] }])),
            ["notify[0].on[0]"]
        );
        assert_eq!(
            fields(json!([{ "url": "https://a.example", "on": ["Failed", "Failed"] }])),
            ["notify[0].on[1]"]
        );
        assert_eq!(
            fields(json!([{ "url": "https://a.example", "on": [] }])),
            ["notify[0].on"]
        );
        assert_eq!(
            fields(json!([{ "url": "https://a.example", "headers": {} }])),
            ["notify[0].headers"]
        );
        let five = Value::Array(vec![json!({ "url": "https://a.example" }); 5]);
        assert_eq!(fields(five), ["notify"]);
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES));
        assert_eq!(fields(json!([{ "url": long }])), ["notify[0].url"]);
    }
}
