//! Invocation payloads exactly as the host builds them (`functions-host-protocol.md` §4):
//! `Data` keyed by trigger binding name, `Metadata` from the trigger's binding data with scalars
//! JSON-encoded twice, HTTP headers as arrays, repeated query keys comma-joined, `Body` only for
//! `Content-Length > 0`, queue text as the JSON string literal of the message, and the
//! case-insensitive binding-data dictionary in which later keys overwrite earlier ones.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::config::FunctionDef;
use super::route::RouteValues;

/// The caller's HTTP request as the host's front end received it.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// `HttpRequest.Path`: the path as sent, decoded as Kestrel decodes it
    /// ([`super::route::kestrel_path`]), e.g. `/api/deployments/d-1`.
    pub path: String,
    /// The raw query without `?`.
    pub raw_query: Option<String>,
    /// Headers in arrival order, names as Kestrel reports them.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Bytes,
    /// The `Content-Length` the caller sent (`None` for a chunked request).
    pub content_length: Option<u64>,
}

impl ClientRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Query pairs, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.raw_query.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// Who the host authenticated the caller as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No key (an `anonymous` function).
    Anonymous,
    /// A function or host key with this name (`authLevel: function`).
    Key {
        /// The key's name, e.g. `default`.
        name: String,
        /// `Function` or `Admin`.
        level: &'static str,
    },
}

/// `Metadata.sys`.
#[derive(Debug, Clone)]
pub struct Sys {
    /// The function's name.
    pub method_name: String,
    /// The host's clock.
    pub utc_now: OffsetDateTime,
    /// A fresh GUID per invocation.
    pub rand_guid: uuid::Uuid,
}

impl Sys {
    /// `sys` for `function` now.
    pub fn now(function: &str) -> Self {
        Self {
            method_name: function.to_owned(),
            utc_now: OffsetDateTime::now_utc(),
            rand_guid: uuid::Uuid::new_v4(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "MethodName": self.method_name,
            "UtcNow": format_utc_z(self.utc_now),
            "RandGuid": self.rand_guid.to_string(),
        })
    }
}

/// A queue message being delivered.
#[derive(Debug, Clone)]
pub struct QueueDelivery {
    /// The message text after `messageEncoding` was undone.
    pub text: String,
    /// 1 on the first delivery.
    pub dequeue_count: u32,
    /// The message id.
    pub id: String,
    /// This delivery's pop receipt.
    pub pop_receipt: String,
    /// When it was enqueued.
    pub insertion_time: OffsetDateTime,
    /// When it expires.
    pub expiration_time: OffsetDateTime,
    /// When it becomes visible again.
    pub next_visible_time: OffsetDateTime,
}

/// A timer firing.
#[derive(Debug, Clone)]
pub struct TimerFiring {
    /// The catch-up run after a missed occurrence.
    pub past_due: bool,
    /// `(Last, Next, LastUpdated)`, or `None` when not monitored.
    pub schedule_status: Option<(OffsetDateTime, OffsetDateTime, OffsetDateTime)>,
    /// `Schedule.AdjustForDST`: true for cron schedules.
    pub adjust_for_dst: bool,
    /// `(RetryCount, MaxRetryCount)` when the function has a retry policy.
    pub retry: Option<(u32, u32)>,
}

/// The binding-data dictionary: case-insensitive keys, a later value overwrites an earlier one in
/// place (keeping the first spelling), null values are skipped.
#[derive(Debug, Default)]
struct BindingData(Map<String, Value>);

impl BindingData {
    fn insert(&mut self, key: &str, value: Value) {
        if value.is_null() {
            return;
        }
        let existing = self.0.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
        match existing {
            Some(k) => {
                self.0.insert(k, value);
            }
            None => {
                self.0.insert(key.to_owned(), value);
            }
        }
    }

    /// Top-level properties of a JSON object (`Utility.ApplyBindingData`): scalars become their
    /// .NET string form, JSON-encoded; objects stay; arrays and nulls are dropped.
    fn apply_json_properties(&mut self, text: &str) {
        let trimmed = text.trim();
        if !trimmed.starts_with('{') {
            return;
        }
        let Ok(Value::Object(props)) = serde_json::from_str::<Value>(trimmed) else {
            return;
        };
        for (key, value) in props {
            match value {
                Value::Object(_) => self.insert(&key, value),
                Value::Array(_) | Value::Null => {}
                scalar => self.insert(&key, double_encoded(&dotnet_string(&scalar))),
            }
        }
    }

    fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// A string as the host puts a scalar into `Metadata`: `JsonConvert.SerializeObject(s)` stored
/// as a string.
pub fn double_encoded(text: &str) -> Value {
    Value::String(Value::String(text.to_owned()).to_string())
}

/// `(string)JValue` in the invariant culture: booleans `True`/`False`, ISO dates re-formatted as
/// `MM/dd/yyyy HH:mm:ss` (Newtonsoft parsed them as dates).
fn dotnet_string(value: &Value) -> String {
    match value {
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => format!(
                "{:02}/{:02}/{:04} {:02}:{:02}:{:02}",
                u8::from(t.month()),
                t.day(),
                t.year(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Err(_) => s.clone(),
        },
        other => other.to_string(),
    }
}

/// `2025-03-14T09:30:01.1234567Z`: a UTC `DateTime` as Newtonsoft writes it (7 fraction digits,
/// trailing zeros trimmed).
pub fn format_utc_z(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!("{}{}Z", format_seconds(t), fraction(t))
}

/// `2025-03-14T09:25:00.0083215+00:00`: a `DateTimeOffset` as Newtonsoft writes it.
pub fn format_offset(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!("{}{}+00:00", format_seconds(t), fraction(t))
}

/// `2025-03-21T09:30:00+00:00`: queue times, which pass through `Parse(ToString())` and so lose
/// their fraction.
pub fn format_offset_seconds(t: OffsetDateTime) -> String {
    format!("{}+00:00", format_seconds(t.to_offset(UtcOffset::UTC)))
}

fn format_seconds(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn fraction(t: OffsetDateTime) -> String {
    let ticks = t.nanosecond() / 100;
    if ticks == 0 {
        return String::new();
    }
    let digits = format!("{ticks:07}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// `content-type` → `Content-Type`, as Kestrel names the common headers.
pub fn kestrel_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The media type of a `Content-Type` value: before any `;` parameters, trimmed, lower-case.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_base64_content_type(content_type: &str) -> bool {
    let media = media_type(content_type);
    media == "application/octet-stream" || media.starts_with("multipart/")
}

/// `Data.req.Identities` for `caller`.
pub fn identities(caller: &Caller) -> Value {
    const NAME_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
    const ROLE_CLAIM: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
    match caller {
        Caller::Anonymous => json!([{
            "AuthenticationType": null,
            "IsAuthenticated": false,
            "Actor": null,
            "BootstrapContext": null,
            "Claims": [],
            "Label": null,
            "Name": null,
            "NameClaimType": NAME_CLAIM,
            "RoleClaimType": ROLE_CLAIM,
        }]),
        Caller::Key { name, level } => {
            let claim = |kind: &str, value: &str| {
                json!({
                    "Issuer": "LOCAL AUTHORITY",
                    "OriginalIssuer": "LOCAL AUTHORITY",
                    "Properties": {},
                    "Type": format!("http://schemas.microsoft.com/2017/07/functions/claims/{kind}"),
                    "Value": value,
                    "ValueType": "http://www.w3.org/2001/XMLSchema#string",
                })
            };
            json!([{
                "AuthenticationType": "WebJobsAuthLevel",
                "IsAuthenticated": true,
                "Actor": null,
                "BootstrapContext": null,
                "Claims": [claim("authlevel", level), claim("invoke", "true"), claim("keyid", name)],
                "Label": null,
                "Name": null,
                "NameClaimType": NAME_CLAIM,
                "RoleClaimType": ROLE_CLAIM,
            }])
        }
    }
}

/// The payload of an HTTP-trigger invocation (default mode).
pub fn http_payload(
    function: &FunctionDef,
    request: &ClientRequest,
    route: &RouteValues,
    caller: &Caller,
    sys: &Sys,
) -> Value {
    let host = request.header("Host").unwrap_or("localhost");
    let url = match &request.raw_query {
        Some(q) => format!("http://{host}{}?{q}", request.path),
        None => format!("http://{host}{}", request.path),
    };
    let pairs = request.query_pairs();
    let mut joined: Map<String, Value> = Map::new();
    let mut last: Map<String, Value> = Map::new();
    for (key, value) in &pairs {
        match joined.get_mut(key) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                joined.insert(key.clone(), Value::String(value.clone()));
            }
        }
        last.insert(key.clone(), Value::String(value.clone()));
    }
    let mut header_arrays: Map<String, Value> = Map::new();
    for (name, value) in &request.headers {
        let name = kestrel_header_name(name);
        match header_arrays.get_mut(&name) {
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            _ => {
                header_arrays.insert(name, json!([value]));
            }
        }
    }
    let header_strings: Map<String, Value> = header_arrays
        .iter()
        .map(|(name, values)| {
            let joined = values
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            (name.clone(), Value::String(joined))
        })
        .collect();
    let params: Map<String, Value> = route
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
        .collect();
    let has_body = request.content_length.is_some_and(|n| n > 0);

    let mut req = Map::new();
    req.insert("Url".into(), Value::String(url));
    req.insert("Method".into(), Value::String(request.method.clone()));
    req.insert("Query".into(), Value::Object(joined));
    req.insert("Headers".into(), Value::Object(header_arrays));
    req.insert("Params".into(), Value::Object(params));
    req.insert("Identities".into(), identities(caller));
    let body_text = String::from_utf8_lossy(&request.body).into_owned();
    if has_body {
        let binary = request
            .header("Content-Type")
            .is_some_and(is_base64_content_type);
        let body = if binary {
            BASE64.encode(&request.body)
        } else {
            body_text.clone()
        };
        req.insert("Body".into(), Value::String(body));
    }

    let mut metadata = BindingData::default();
    if has_body {
        metadata.apply_json_properties(&body_text);
    }
    for (key, value) in &last {
        if key != "code" {
            metadata.insert(key, double_encoded(value.as_str().unwrap_or_default()));
        }
    }
    for (key, value) in route {
        if let Some(value) = value {
            metadata.insert(key, double_encoded(value));
        }
    }
    metadata.insert("Query", Value::Object(last));
    metadata.insert("Headers", Value::Object(header_strings));
    metadata.insert("sys", sys.to_json());

    let mut data = Map::new();
    data.insert(function.trigger_name.clone(), Value::Object(req));
    json!({"Data": data, "Metadata": metadata.into_value()})
}

/// The payload of a queue-trigger invocation (`dataType` unset: the text as a JSON string holding
/// the JSON string literal of the message).
pub fn queue_payload(function: &FunctionDef, message: &QueueDelivery, sys: &Sys) -> Value {
    let mut metadata = BindingData::default();
    metadata.insert(
        "DequeueCount",
        Value::String(message.dequeue_count.to_string()),
    );
    metadata.insert(
        "ExpirationTime",
        Value::String(format_offset_seconds(message.expiration_time)),
    );
    metadata.insert("Id", double_encoded(&message.id));
    metadata.insert(
        "InsertionTime",
        Value::String(format_offset_seconds(message.insertion_time)),
    );
    metadata.insert(
        "NextVisibleTime",
        Value::String(format_offset_seconds(message.next_visible_time)),
    );
    metadata.insert("PopReceipt", double_encoded(&message.pop_receipt));
    metadata.insert("sys", sys.to_json());
    metadata.apply_json_properties(&message.text);
    let mut data = Map::new();
    data.insert(function.trigger_name.clone(), double_encoded(&message.text));
    json!({"Data": data, "Metadata": metadata.into_value()})
}

/// The payload of a timer-trigger invocation.
pub fn timer_payload(function: &FunctionDef, firing: &TimerFiring, sys: &Sys) -> Value {
    let status = firing
        .schedule_status
        .map_or(Value::Null, |(last, next, updated)| {
            json!({
                "Last": format_offset(last),
                "Next": format_offset(next),
                "LastUpdated": format_offset(updated),
            })
        });
    let mut data = Map::new();
    data.insert(
        function.trigger_name.clone(),
        json!({
            "Schedule": {"AdjustForDST": firing.adjust_for_dst},
            "ScheduleStatus": status,
            "IsPastDue": firing.past_due,
        }),
    );
    let mut metadata = Map::new();
    metadata.insert("sys".into(), sys.to_json());
    if let Some((count, max)) = firing.retry {
        metadata.insert(
            "RetryContext".into(),
            json!({"RetryCount": count, "MaxRetryCount": max, "Exception": null, "Instance": null, "State": {}}),
        );
    }
    json!({"Data": data, "Metadata": metadata})
}
