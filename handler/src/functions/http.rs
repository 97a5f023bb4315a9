//! HTTP invocations in default (payload) mode: `Data.req` → `http::Request`, and the API's
//! `http::Response` → `Outputs.res`.
//!
//! With `enableForwardingHttpRequest: false` the host sends the caller's request as a JSON object
//! (`Url`, `Method`, `Query`, `Headers` as arrays, `Params`, `Identities`, `Body` only when the caller
//! sent `Content-Length > 0`, base64 for `application/octet-stream` and `multipart/*`). This module
//! rebuilds the request so the ordinary API router can serve it, and turns the router's answer into
//! the `res` output the host turns back into an HTTP response.

use axum::body::Body;
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::invocation::{Envelope, InvocationError, json_type};
use crate::api::Problem;

/// Request headers that describe the host's hop to the handler, not the caller's request: they are
/// dropped, and `Content-Length` is set from the decoded body.
const HOP_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
];

/// Forwarding headers: set from `Url` (the host's word), never taken from the caller.
const FORWARDED: &[&str] = &["x-forwarded-host", "x-forwarded-proto", "forwarded"];

/// The largest API response body passed back to the host (the captured logs are the big ones).
pub const RESPONSE_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// A caller's HTTP request as the host describes it in `Data.<binding>`.
#[derive(Debug, Clone)]
pub struct HttpInvocation {
    /// `Method`, parsed.
    pub method: Method,
    /// `Url`: the public URL the caller used, with its raw query. Never routed on: its path is
    /// normalised by parsing (`%2e%2e` becomes `..`); see [`HttpInvocation::route_path`].
    pub url: url::Url,
    /// `Url` as the host sent it, before any normalisation.
    pub raw_url: String,
    /// `Headers`, one entry per value, in the host's order; hop-by-hop headers removed.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `Query`: decoded values, repeated keys comma-joined by the host.
    pub query: Map<String, Value>,
    /// `Params`: route values; absent optional ones are `null`.
    pub params: Map<String, Value>,
    /// `Body`, decoded to bytes; `None` when the host sent none.
    pub body: Option<Bytes>,
}

impl HttpInvocation {
    /// Decodes `Data.<binding>` of an HTTP-trigger invocation.
    pub fn decode(envelope: &Envelope, binding: &str) -> Result<Self, InvocationError> {
        let base = format!("Data.{binding}");
        let req = match envelope.data(binding)? {
            Value::Object(req) => req,
            other => {
                return Err(InvocationError::WrongType {
                    field: base,
                    expected: "an object",
                    found: json_type(other),
                });
            }
        };
        let field = |key: &str| format!("{base}.{key}");
        let string = |key: &str| -> Result<&str, InvocationError> {
            match get(req, key) {
                Some(Value::String(s)) => Ok(s),
                Some(other) => Err(InvocationError::WrongType {
                    field: field(key),
                    expected: "a string",
                    found: json_type(other),
                }),
                None => Err(InvocationError::MissingField { field: field(key) }),
            }
        };
        let method_text = string("Method")?;
        let method = Method::from_bytes(method_text.as_bytes()).map_err(|_| {
            InvocationError::InvalidValue {
                field: field("Method"),
                reason: format!("`{method_text}` is not an HTTP method"),
            }
        })?;
        let url_text = string("Url")?;
        let url = url::Url::parse(url_text).map_err(|e| InvocationError::InvalidValue {
            field: field("Url"),
            reason: format!("not an absolute URL: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvocationError::InvalidValue {
                field: field("Url"),
                reason: format!("scheme `{}` is not http or https", url.scheme()),
            });
        }
        let headers = decode_headers(req, &field("Headers"))?;
        let object = |key: &str| -> Result<Map<String, Value>, InvocationError> {
            match get(req, key) {
                Some(Value::Object(m)) => Ok(m.clone()),
                None | Some(Value::Null) => Ok(Map::new()),
                Some(other) => Err(InvocationError::WrongType {
                    field: field(key),
                    expected: "an object",
                    found: json_type(other),
                }),
            }
        };
        let query = object("Query")?;
        let params = object("Params")?;
        let body = match get(req, "Body") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                let binary = headers
                    .iter()
                    .find(|(name, _)| name == CONTENT_TYPE)
                    .and_then(|(_, v)| v.to_str().ok())
                    .is_some_and(is_base64_content_type);
                if binary {
                    let bytes = BASE64.decode(text).map_err(|e| InvocationError::InvalidValue {
                        field: field("Body"),
                        reason: format!(
                            "binary content types arrive base64-encoded, and this is not base64: {e}"
                        ),
                    })?;
                    Some(Bytes::from(bytes))
                } else {
                    Some(Bytes::from(text.clone()))
                }
            }
            Some(other) => {
                return Err(InvocationError::WrongType {
                    field: field("Body"),
                    expected: "a string",
                    found: json_type(other),
                });
            }
        };
        Ok(Self {
            method,
            url,
            raw_url: url_text.to_owned(),
            headers,
            query,
            params,
            body,
        })
    }

    /// The API path this invocation of an HTTP function is for: the function's route `template`
    /// under `/{prefix}`, each `{param}` filled from `Params` as one percent-encoded segment, and
    /// a catch-all `{*param}` (the dashboard's) as its value's segments, none when it is absent.
    ///
    /// # Guarantees
    /// - The target derives from the invoked function and its `Params`, never from `Url`, whose
    ///   path the parser normalises (`%2e%2e` becomes `..`, so `callbacks/%2e%2e/deployments`
    ///   would read as `deployments`): a function serves its own route and no other.
    /// - A `Url` whose path, segment by segment and decoded once, is not that route with those
    ///   values is refused ([`RouteError::Mismatch`]): encoded dots, slashes and backslashes, a
    ///   `;` or a segment more never reach the API in a form the host did not route.
    pub fn route_path(&self, prefix: &str, template: &str) -> Result<String, RouteError> {
        let mut expected: Vec<Segment> = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(Segment::Literal)
            .collect();
        for part in template.split('/').filter(|s| !s.is_empty()) {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                None => expected.push(Segment::Literal(part)),
                Some(param) => {
                    let name = param.split([':', '?', '=']).next().unwrap_or(param);
                    let (name, catch_all) = match name.strip_prefix('*') {
                        Some(name) => (name, true),
                        None => (name, false),
                    };
                    match self.params.get(name) {
                        // A catch-all (`{*path}`, last in its template) is any number of
                        // segments, none at all included; each must be a real one.
                        Some(Value::String(value)) if catch_all => {
                            for piece in value.split('/').filter(|_| !value.is_empty()) {
                                if matches!(piece, "" | "." | "..") {
                                    return Err(RouteError::Mismatch {
                                        path: value.chars().take(200).collect(),
                                    });
                                }
                                expected.push(Segment::Param(piece));
                            }
                        }
                        None | Some(Value::Null) if catch_all => {}
                        Some(Value::String(value)) if !value.is_empty() => {
                            expected.push(Segment::Param(value));
                        }
                        _ => return Err(RouteError::MissingParam(name.to_owned())),
                    }
                }
            }
        }
        let raw_path = raw_path(&self.raw_url);
        let mut given: Vec<&str> = raw_path.split('/').skip(1).collect();
        // The host's routing ignores one trailing slash.
        if given.len() > 1 && given.last() == Some(&"") {
            given.pop();
        }
        let matches = given.len() == expected.len()
            && given.iter().zip(&expected).all(|(raw, want)| {
                let Some(decoded) = percent_decode(raw) else {
                    return false;
                };
                match want {
                    Segment::Literal(literal) => decoded.eq_ignore_ascii_case(literal),
                    Segment::Param(value) => decoded == *value,
                }
            });
        if !matches {
            return Err(RouteError::Mismatch {
                path: raw_path.chars().take(200).collect(),
            });
        }
        let mut path = String::new();
        for segment in &expected {
            path.push('/');
            match segment {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::Param(value) => path.push_str(&percent_encode(value)),
            }
        }
        Ok(path)
    }

    /// Rebuilds the caller's request for the API router at `path` (from [`Self::route_path`]) with
    /// the raw query of `Url`, the caller's headers, and the body. `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` are set from `Url`, replacing any the caller sent, so that without
    /// `BERTH_PUBLIC_URL` the API derives its public base URL from what the host says alone.
    pub fn into_request(self, path: &str) -> Result<Request<Body>, InvocationError> {
        let uri = match self.url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let forwarded_proto = self.url.scheme().to_owned();
        let forwarded_host = self.url.host_str().map(|host| match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        });
        // The host buffers the answer whole: the API must not stream one (a log follow).
        let mut builder = Request::builder()
            .method(self.method)
            .uri(&uri)
            .extension(crate::api::BufferedResponse);
        for (name, value) in self.headers {
            // The caller's own forwarded headers are not the host's word: dropped.
            if !FORWARDED.contains(&name.as_str()) {
                builder = builder.header(name, value);
            }
        }
        builder = builder.header("x-forwarded-proto", forwarded_proto);
        if let Some(host) = forwarded_host {
            builder = builder.header("x-forwarded-host", host);
        }
        let body = match self.body {
            Some(bytes) => {
                builder = builder.header(CONTENT_LENGTH, bytes.len());
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        builder
            .body(body)
            .map_err(|e| InvocationError::InvalidValue {
                field: "Data.req.Url".to_owned(),
                reason: format!("cannot form a request for `{uri}`: {e}"),
            })
    }
}

/// Why an HTTP invocation has no route of its function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A route parameter is absent, null, empty or not a string in `Params`.
    #[error("Data.req.Params.{0}: the route parameter is missing")]
    MissingParam(String),
    /// `Url`'s path is not the function's route with the values of `Params`.
    #[error(
        "path: '{path}' is not this function's route (encoded dots, slashes or extra segments are refused)"
    )]
    Mismatch { path: String },
}

/// One segment of a route: literal text or a route parameter's value.
enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
}

/// The path of an absolute URL as written: after the authority, before `?` or `#`.
fn raw_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find(['/', '?', '#'])
        .map_or("", |at| &after_scheme[at..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// Decodes `%XX` escapes once; `None` when an escape is malformed or the result is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes a value as one path segment: everything but unreserved characters escaped.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        // `.` is escaped too, so that no value reads as a `.` or `..` segment.
        if byte.is_ascii_alphanumeric() || b"-_~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Whether the host sends a body of this content type as base64 (octet-stream and multipart).
pub fn is_base64_content_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/octet-stream" || media.starts_with("multipart/")
}

fn decode_headers(
    req: &Map<String, Value>,
    field: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, InvocationError> {
    let headers = match get(req, "Headers") {
        Some(Value::Object(h)) => h,
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(other) => {
            return Err(InvocationError::WrongType {
                field: field.to_owned(),
                expected: "an object of string arrays",
                found: json_type(other),
            });
        }
    };
    let mut out = Vec::new();
    for (name, values) in headers {
        let header_field = format!("{field}.{name}");
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| InvocationError::InvalidValue {
                field: header_field.clone(),
                reason: "not a valid header name".to_owned(),
            })?;
        if HOP_HEADERS.contains(&header_name.as_str()) {
            continue;
        }
        let values: Vec<&str> = match values {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(InvocationError::WrongType {
                        field: header_field.clone(),
                        expected: "an array of strings",
                        found: json_type(other),
                    }),
                })
                .collect::<Result<_, _>>()?,
            Value::String(s) => vec![s.as_str()],
            other => {
                return Err(InvocationError::WrongType {
                    field: header_field,
                    expected: "an array of strings",
                    found: json_type(other),
                });
            }
        };
        for value in values {
            let value =
                HeaderValue::from_str(value).map_err(|_| InvocationError::InvalidValue {
                    field: header_field.clone(),
                    reason: "not a valid header value".to_owned(),
                })?;
            out.push((header_name.clone(), value));
        }
    }
    Ok(out)
}

/// The API's answer as the `res` output: `{"statusCode":…,"headers":{…},"body":"…"}`, plus a
/// note when the body had to be changed to fit (not UTF-8, or over [`RESPONSE_BODY_LIMIT`]).
pub async fn response_to_res(response: Response<Body>) -> (Value, Option<String>) {
    let (parts, body) = response.into_parts();
    let (parts, bytes, mut note) = match axum::body::to_bytes(body, RESPONSE_BODY_LIMIT).await {
        Ok(bytes) => (parts, bytes, None),
        Err(e) => {
            let problem = Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Response too large",
                "the response body could not be passed to the Functions host",
            )
            .into_response();
            let (parts, body) = problem.into_parts();
            let bytes = axum::body::to_bytes(body, RESPONSE_BODY_LIMIT)
                .await
                .unwrap_or_default();
            (parts, bytes, Some(format!("response body dropped: {e}")))
        }
    };
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        if HOP_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let joined = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(canonical_header_name(name.as_str()), Value::String(joined));
    }
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) => text,
        Err(e) => {
            note = Some("response body was not UTF-8; invalid bytes were replaced".to_owned());
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    let res = json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": body,
    });
    (res, note)
}

/// `content-type` → `Content-Type`: the host matches `Content-Type` in `res.headers`
/// case-insensitively, but people read these.
fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(url: &str, params: Value) -> HttpInvocation {
        HttpInvocation {
            method: Method::GET,
            url: url::Url::parse(url).unwrap(),
            raw_url: url.to_owned(),
            headers: Vec::new(),
            query: Map::new(),
            params: params.as_object().unwrap().clone(),
            body: None,
        }
    }

    #[test]
    fn a_catch_all_is_the_rest_of_the_path_and_nothing_but_real_segments() {
        let route = |url: &str, params: Value| {
            invocation(url, params).route_path("api", "dashboard/{*path}")
        };
        let base = "https://app.example.net/api/dashboard";
        for (url, params, path) in [
            (base.to_owned(), json!({}), "/api/dashboard"),
            (
                format!("{base}/"),
                json!({ "path": null }),
                "/api/dashboard",
            ),
            (
                format!("{base}/?code=k"),
                json!({ "path": "" }),
                "/api/dashboard",
            ),
            (
                format!("{base}/d/job-1"),
                json!({ "path": "d/job-1" }),
                "/api/dashboard/d/job-1",
            ),
            (
                format!("{base}/d/a%20b/logs"),
                json!({ "path": "d/a b/logs" }),
                "/api/dashboard/d/a%20b/logs",
            ),
        ] {
            assert_eq!(route(&url, params).unwrap(), path, "{url}");
        }
        // An encoded slash, dot segments, or a path that is not the host's value are refused.
        for (url, params) in [
            (format!("{base}/d%2Fjob"), json!({ "path": "d/job" })),
            (format!("{base}/d/%2e%2e/x"), json!({ "path": "d/../x" })),
            (format!("{base}/d//x"), json!({ "path": "d//x" })),
            (format!("{base}/d/x"), json!({ "path": "d/y" })),
            (format!("{base}/d/x/more"), json!({ "path": "d/x" })),
        ] {
            assert!(route(&url, params).is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn a_response_too_large_for_the_host_is_a_500_problem() {
        let big = Response::builder()
            .header(CONTENT_TYPE, "text/plain")
            .body(Body::from(vec![b'x'; RESPONSE_BODY_LIMIT + 1]))
            .unwrap();
        let (res, note) = response_to_res(big).await;
        assert_eq!(res["statusCode"], 500);
        assert_eq!(res["headers"]["Content-Type"], "application/problem+json");
        let problem: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
        assert_eq!(problem["type"], "about:blank");
        assert_eq!(problem["title"], "Response too large");
        assert_eq!(problem["status"], 500);
        assert!(note.unwrap().starts_with("response body dropped:"));

        let small = Response::builder()
            .header(CONTENT_TYPE, "text/plain")
            .body(Body::from("fits"))
            .unwrap();
        let (res, note) = response_to_res(small).await;
        assert_eq!(res["statusCode"], 200);
        assert_eq!(res["body"], "fits");
        assert_eq!(note, None);
    }
}
