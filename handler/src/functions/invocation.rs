//! Invocation payloads, host → handler: `{"Data":{…},"Metadata":{…}}` decoded into typed values.
//!
//! The host's encoding quirks (see `functions-host-protocol.md` §4) are undone here and nowhere
//! else: metadata scalars and queue message text arrive JSON-encoded twice, `DequeueCount` arrives
//! as a decimal string, HTTP headers as arrays, repeated query keys comma-joined, and `Body` only
//! when the caller sent content. Every failure names the field it is about.

use serde_json::{Map, Value};
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An invocation body the handler cannot use. The message names the offending field, e.g.
/// `Metadata.DequeueCount`.
#[derive(Debug, Error)]
pub enum InvocationError {
    /// The body is not JSON at all.
    #[error("invocation body is not JSON: {source}")]
    BodyNotJson {
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A field the host always sends is missing.
    #[error("`{field}` is missing")]
    MissingField {
        /// The dotted path of the field.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        /// The dotted path of the field.
        field: String,
        /// What the host sends there.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A field has the right type but an unusable value.
    #[error("`{field}` is invalid: {reason}")]
    InvalidValue {
        /// The dotted path of the field.
        field: String,
        /// Why the value is unusable.
        reason: String,
    },
}

impl InvocationError {
    fn missing(field: impl Into<String>) -> Self {
        InvocationError::MissingField {
            field: field.into(),
        }
    }

    fn wrong(field: impl Into<String>, expected: &'static str, found: &Value) -> Self {
        InvocationError::WrongType {
            field: field.into(),
            expected,
            found: json_type(found),
        }
    }

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InvocationError::InvalidValue {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The name of a JSON value's type, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The two halves of every invocation body.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `Data`: one entry per input binding, keyed by binding name.
    pub data: Map<String, Value>,
    /// `Metadata`: the trigger's binding data.
    pub metadata: Map<String, Value>,
}

impl Envelope {
    /// Parses an invocation body. `Data` must be an object; `Metadata` may be absent or null
    /// (treated as empty), otherwise it must be an object.
    pub fn parse(body: &[u8]) -> Result<Self, InvocationError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|source| InvocationError::BodyNotJson { source })?;
        let Value::Object(mut top) = value else {
            return Err(InvocationError::wrong("(body)", "an object", &value));
        };
        let data = match take_ci(&mut top, "Data") {
            Some(Value::Object(data)) => data,
            Some(other) => return Err(InvocationError::wrong("Data", "an object", &other)),
            None => return Err(InvocationError::missing("Data")),
        };
        let metadata = match take_ci(&mut top, "Metadata") {
            Some(Value::Object(metadata)) => metadata,
            Some(Value::Null) | None => Map::new(),
            Some(other) => return Err(InvocationError::wrong("Metadata", "an object", &other)),
        };
        Ok(Self { data, metadata })
    }

    /// `Metadata.<key>` looked up case-insensitively (the host's binding data is a
    /// case-insensitive dictionary).
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        get_ci(&self.metadata, key)
    }

    /// `Data.<binding>`, required.
    pub fn data(&self, binding: &str) -> Result<&Value, InvocationError> {
        get_ci(&self.data, binding)
            .ok_or_else(|| InvocationError::missing(format!("Data.{binding}")))
    }
}

fn take_ci(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let found = map.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone();
    map.remove(&found)
}

fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Undoes the host's double encoding of a metadata scalar: `"\"abc\""` → `abc`. A string that is
/// not JSON text is returned as it is (the older documented shape); a non-string is an error.
pub fn metadata_scalar(field: &str, value: &Value) -> Result<String, InvocationError> {
    match value {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::String(inner)) => Ok(inner),
            Ok(Value::Number(n)) => Ok(n.to_string()),
            Ok(Value::Bool(b)) => Ok(b.to_string()),
            _ => Ok(text.clone()),
        },
        Value::Number(n) => Ok(n.to_string()),
        other => Err(InvocationError::wrong(field, "a string", other)),
    }
}

fn optional_time(
    envelope: &Envelope,
    key: &str,
) -> Result<Option<OffsetDateTime>, InvocationError> {
    let field = format!("Metadata.{key}");
    match envelope.metadata(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse_time(&field, value).map(Some),
    }
}

fn parse_time(field: &str, value: &Value) -> Result<OffsetDateTime, InvocationError> {
    let text = metadata_scalar(field, value)?;
    OffsetDateTime::parse(&text, &Rfc3339).map_err(|e| {
        InvocationError::invalid(field, format!("`{text}` is not an ISO 8601 time: {e}"))
    })
}

/// A queue message as the `steps` function receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    /// The message text, fully decoded (the storage SDK already undid the base64 of
    /// `messageEncoding`; this undoes the host's JSON string encoding).
    pub text: String,
    /// How many times this message has been dequeued, this delivery included (1 on first try).
    pub dequeue_count: u32,
    /// The queue message id.
    pub id: String,
    /// When the message was enqueued.
    pub insertion_time: Option<OffsetDateTime>,
    /// When the message expires.
    pub expiration_time: Option<OffsetDateTime>,
    /// When the message becomes visible again if this invocation fails.
    pub next_visible_time: Option<OffsetDateTime>,
    /// The pop receipt of this delivery.
    pub pop_receipt: Option<String>,
}

impl QueueMessage {
    /// Decodes a queue-trigger invocation whose trigger binding is named `binding`.
    ///
    /// Note the host's rule that top-level properties of a JSON message are copied into
    /// `Metadata` and *overwrite* built-in keys case-insensitively: a message with a top-level
    /// `id` or `dequeueCount` would corrupt `Id` / `DequeueCount`. Step messages must keep such
    /// names out of their top level.
    pub fn decode(envelope: &Envelope, binding: &str) -> Result<Self, InvocationError> {
        let field = format!("Data.{binding}");
        let text = match envelope.data(binding)? {
            Value::String(encoded) => match serde_json::from_str::<Value>(encoded) {
                Ok(Value::String(text)) => text,
                _ => {
                    return Err(InvocationError::invalid(
                        field,
                        "expected the JSON string literal of the message text (the host encodes it twice)",
                    ));
                }
            },
            other => return Err(InvocationError::wrong(field, "a string", other)),
        };
        let count_field = "Metadata.DequeueCount";
        let dequeue_count = match envelope.metadata("DequeueCount") {
            None => return Err(InvocationError::missing(count_field)),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => metadata_scalar(count_field, &Value::String(s.clone()))?
                .trim()
                .parse::<u64>()
                .ok(),
            Some(other) => {
                return Err(InvocationError::wrong(
                    count_field,
                    "a decimal string",
                    other,
                ));
            }
        }
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| InvocationError::invalid(count_field, "expected a whole number ≥ 1"))?;
        let id = match envelope.metadata("Id") {
            Some(value) => metadata_scalar("Metadata.Id", value)?,
            None => return Err(InvocationError::missing("Metadata.Id")),
        };
        let pop_receipt = envelope
            .metadata("PopReceipt")
            .map(|v| metadata_scalar("Metadata.PopReceipt", v))
            .transpose()?;
        Ok(Self {
            text,
            dequeue_count,
            id,
            insertion_time: optional_time(envelope, "InsertionTime")?,
            expiration_time: optional_time(envelope, "ExpirationTime")?,
            next_visible_time: optional_time(envelope, "NextVisibleTime")?,
            pop_receipt,
        })
    }
}

/// The timer's schedule status, present when the schedule is monitored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleStatus {
    /// The last recorded occurrence.
    pub last: OffsetDateTime,
    /// The next expected occurrence (the missed one in a past-due run).
    pub next: OffsetDateTime,
    /// When the status was last written.
    pub last_updated: OffsetDateTime,
}

/// The host's retry context, sent when the function has a retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryContext {
    /// 0 on the first attempt.
    pub retry_count: u32,
    /// The policy's maximum.
    pub max_retry_count: u32,
}

/// A timer tick as the `cleanup` function receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerTick {
    /// True for the single catch-up run after a missed occurrence.
    pub is_past_due: bool,
    /// `None` when the schedule is not monitored.
    pub schedule_status: Option<ScheduleStatus>,
    /// The host's clock at invocation (`Metadata.sys.UtcNow`), when sent.
    pub utc_now: Option<OffsetDateTime>,
    /// `Metadata.RetryContext`, when the function has a retry policy.
    pub retry: Option<RetryContext>,
}

impl TimerTick {
    /// Decodes a timer-trigger invocation whose trigger binding is named `binding`.
    pub fn decode(envelope: &Envelope, binding: &str) -> Result<Self, InvocationError> {
        let field = format!("Data.{binding}");
        let info = match envelope.data(binding)? {
            Value::Object(info) => info,
            other => return Err(InvocationError::wrong(field, "an object", other)),
        };
        let is_past_due = match get_ci(info, "IsPastDue") {
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(InvocationError::wrong(
                    format!("{field}.IsPastDue"),
                    "a boolean",
                    other,
                ));
            }
            None => return Err(InvocationError::missing(format!("{field}.IsPastDue"))),
        };
        let status_field = format!("{field}.ScheduleStatus");
        let schedule_status = match get_ci(info, "ScheduleStatus") {
            None | Some(Value::Null) => None,
            Some(Value::Object(status)) => {
                let time = |key: &str| {
                    let f = format!("{status_field}.{key}");
                    get_ci(status, key)
                        .ok_or_else(|| InvocationError::missing(f.clone()))
                        .and_then(|v| parse_time(&f, v))
                };
                Some(ScheduleStatus {
                    last: time("Last")?,
                    next: time("Next")?,
                    last_updated: time("LastUpdated")?,
                })
            }
            Some(other) => return Err(InvocationError::wrong(status_field, "an object", other)),
        };
        let utc_now = match envelope.metadata("sys") {
            Some(Value::Object(sys)) => get_ci(sys, "UtcNow")
                .map(|v| parse_time("Metadata.sys.UtcNow", v))
                .transpose()?,
            None | Some(Value::Null) => None,
            Some(other) => return Err(InvocationError::wrong("Metadata.sys", "an object", other)),
        };
        let retry = match envelope.metadata("RetryContext") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ctx)) => {
                let count = |key: &str| {
                    let f = format!("Metadata.RetryContext.{key}");
                    match get_ci(ctx, key) {
                        Some(Value::Number(n)) => n
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| InvocationError::invalid(f, "expected a whole number")),
                        Some(other) => Err(InvocationError::wrong(f, "a number", other)),
                        None => Err(InvocationError::missing(f)),
                    }
                };
                Some(RetryContext {
                    retry_count: count("RetryCount")?,
                    max_retry_count: count("MaxRetryCount")?,
                })
            }
            Some(other) => {
                return Err(InvocationError::wrong(
                    "Metadata.RetryContext",
                    "an object",
                    other,
                ));
            }
        };
        Ok(Self {
            is_past_due,
            schedule_status,
            utc_now,
            retry,
        })
    }
}
