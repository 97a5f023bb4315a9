//! The host's acceptance rules for a handler's answer (`functions-host-protocol.md` §5, §7):
//! what the host makes of a status, content type and body, given the function's output bindings.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::config::Binding;
use super::payload::media_type;

/// The HTTP response the host would send to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResult {
    /// Status code.
    pub status: u16,
    /// Headers from `res.headers`, values as strings, in order; `Content-Type` defaulted to
    /// `text/plain; charset=utf-8` when absent.
    pub headers: Vec<(String, String)>,
    /// The body text.
    pub body: String,
}

impl HttpResult {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A successful invocation, as the host processed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The HTTP response, when the function has an `http` output binding.
    pub http: Option<HttpResult>,
    /// Messages sent per queue output binding name.
    pub queue_outputs: BTreeMap<String, Vec<String>>,
    /// `Logs`, written to the function's logger.
    pub logs: Vec<String>,
}

/// What the host makes of a handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOutcome {
    /// The invocation succeeded.
    Succeeded(Accepted),
    /// The invocation failed: HTTP callers get 500, queue messages are retried and then poisoned.
    Failed(String),
    /// The host would wait for `functionTimeout` and then restart the handler (empty or `null`
    /// body): a protocol violation in any case.
    Hangs(String),
}

impl HostOutcome {
    /// The accepted result, or `None`.
    pub fn accepted(&self) -> Option<&Accepted> {
        match self {
            HostOutcome::Succeeded(a) => Some(a),
            _ => None,
        }
    }
}

/// Applies the host's rules to a handler answer for a function with `bindings`.
pub fn judge(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    bindings: &[Binding],
) -> HostOutcome {
    if !(200..300).contains(&status) {
        return HostOutcome::Failed(format!(
            "HttpRequestException: Response status code does not indicate success: {status}"
        ));
    }
    let Some(content_type) = content_type else {
        return HostOutcome::Failed(
            "UnsupportedMediaTypeException: no Content-Type (read as application/octet-stream)"
                .to_owned(),
        );
    };
    let media = media_type(content_type);
    if media != "application/json" && media != "text/json" {
        return HostOutcome::Failed(format!(
            "UnsupportedMediaTypeException: media type `{media}` is not application/json or text/json"
        ));
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() || text.trim() == "null" {
        return HostOutcome::Hangs(
            "empty or null body: the host never completes the invocation".to_owned(),
        );
    }
    let top: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return HostOutcome::Failed(format!(
                "InvalidOperationException: Invalid HttpResponseMessage: StatusCode: {status}: {e}"
            ));
        }
    };
    let Value::Object(top) = top else {
        return HostOutcome::Failed(
            "InvalidOperationException: the body is not a JSON object".to_owned(),
        );
    };
    let get = |key: &str| {
        top.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null)
    };
    let logs = match get("Logs") {
        Value::Null => Vec::new(),
        Value::Array(items) => {
            let mut logs = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => logs.push(s),
                    Value::Null => {}
                    Value::Number(n) => logs.push(n.to_string()),
                    Value::Bool(b) => logs.push(b.to_string()),
                    other => {
                        return HostOutcome::Failed(format!(
                            "JsonSerializationException: Logs must hold strings, found {other}"
                        ));
                    }
                }
            }
            logs
        }
        other => {
            return HostOutcome::Failed(format!(
                "JsonSerializationException: Logs must be a list of strings, found {other}"
            ));
        }
    };
    let outputs_present = !get("Outputs").is_null();
    let mut outputs = match get("Outputs") {
        Value::Null => Map::new(),
        Value::Object(o) => o,
        other => {
            return HostOutcome::Failed(format!(
                "JsonSerializationException: Outputs must be an object, found {other}"
            ));
        }
    };
    let return_value = get("ReturnValue");
    let has_return_binding = bindings
        .iter()
        .any(|b| b.get("name").and_then(Value::as_str) == Some("$return"));
    if !has_return_binding && let Value::Object(spread) = &return_value {
        for (k, v) in spread {
            outputs.insert(k.clone(), v.clone());
        }
    }

    let mut accepted = Accepted {
        logs,
        ..Accepted::default()
    };
    for binding in bindings {
        if binding.get("direction").and_then(Value::as_str) != Some("out") {
            continue;
        }
        let name = binding.get("name").and_then(Value::as_str).unwrap_or("");
        let kind = binding.get("type").and_then(Value::as_str).unwrap_or("");
        let value = if name == "$return" {
            return_value.clone()
        } else {
            outputs.get(name).cloned().unwrap_or(Value::Null)
        };
        match kind {
            "http" => {
                let result = if value.is_null() {
                    if outputs_present || name == "$return" {
                        Ok(HttpResult {
                            status: 200,
                            headers: vec![(
                                "Content-Type".into(),
                                "text/plain; charset=utf-8".into(),
                            )],
                            body: if outputs_present {
                                "{}".into()
                            } else {
                                String::new()
                            },
                        })
                    } else {
                        Ok(HttpResult {
                            status: 200,
                            headers: Vec::new(),
                            body: String::new(),
                        })
                    }
                } else {
                    http_output(&value)
                };
                match result {
                    Ok(http) => accepted.http = Some(http),
                    Err(e) => return HostOutcome::Failed(e),
                }
            }
            "queue" => {
                let binary = binding.get("dataType").and_then(Value::as_str) == Some("binary");
                accepted
                    .queue_outputs
                    .insert(name.to_owned(), queue_messages(&value, binary));
            }
            _ => {}
        }
    }
    HostOutcome::Succeeded(accepted)
}

/// `res` → the HTTP response (`HttpOutputBindingResponse`, then `RawScriptResult`).
fn http_output(value: &Value) -> Result<HttpResult, String> {
    let not_expected = || {
        "Failed while trying to Deserialize to httpOutputBindingResponse. Output is not in expected format"
            .to_owned()
    };
    let object = match value {
        Value::Object(o) => o.clone(),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => o,
            _ => return Err(not_expected()),
        },
        _ => return Err(not_expected()),
    };
    let field = |key: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null)
    };
    let status = match field("statusCode") {
        Value::Null => 200,
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("statusCode {n} is not a status"))?,
        Value::String(s) => s
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("statusCode `{s}` is not a status"))?,
        other => return Err(format!("statusCode {other} is not a status")),
    };
    let mut headers = Vec::new();
    match field("headers") {
        Value::Null => {}
        Value::Object(h) => {
            for (k, v) in h {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                headers.push((k, v));
            }
        }
        _ => return Err(not_expected()),
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            "Content-Type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        ));
    }
    let body = match field("body") {
        Value::Null => String::new(),
        Value::String(s) => s,
        v @ (Value::Object(_) | Value::Array(_)) => {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        other => other.to_string(),
    };
    Ok(HttpResult {
        status,
        headers,
        body,
    })
}

/// A queue output value → the message texts sent.
fn queue_messages(value: &Value, binary: bool) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .flat_map(|item| queue_messages_single(item, binary))
            .collect(),
        other => queue_messages_single(other, binary),
    }
}

fn queue_messages_single(value: &Value, binary: bool) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::String(s) => {
            // `Convert.FromBase64String` is tried first: text that happens to be base64 is
            // replaced by its decoded bytes.
            let text = match (binary, BASE64.decode(s)) {
                (false, Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => s.clone(),
            };
            let trimmed = text.trim();
            if (trimmed.starts_with('{') && trimmed.ends_with('}'))
                || (trimmed.starts_with('[') && trimmed.ends_with(']'))
            {
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(Value::Array(items)) => items
                        .iter()
                        .map(|i| serde_json::to_string_pretty(i).unwrap_or_default())
                        .collect(),
                    Ok(parsed) => vec![serde_json::to_string_pretty(&parsed).unwrap_or_default()],
                    Err(_) => vec![text],
                }
            } else {
                vec![text]
            }
        }
        Value::Object(_) => vec![serde_json::to_string_pretty(value).unwrap_or_default()],
        Value::Bool(b) => vec![if *b { "True".into() } else { "False".into() }],
        other => vec![other.to_string()],
    }
}
