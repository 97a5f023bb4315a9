//! The HTTP side: one Berth at a base URL, its API key sent as `x-functions-key`, and answers
//! read under limits a hostile or broken server cannot get around.
//!
//! # Guarantees
//! - Every request is bounded: [`CONNECT_TIMEOUT`] to connect, the caller's timeout (`--timeout`)
//!   for a whole exchange, [`FOLLOW_TIMEOUT`] for a log follow (the server ends one within 30
//!   minutes).
//! - A JSON answer is read up to [`MAX_JSON`] bytes, a log up to [`MAX_LOG`]; past that the
//!   command fails instead of growing without bound.
//! - Redirects are not followed and only the base URL's origin is ever called, so the key goes
//!   nowhere else whatever the server answers.
//! - Text from the server shown in an error has its control characters replaced, so an answer
//!   cannot drive the terminal.

use std::io::Write;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// Time to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a log follow: the server's bound (30 minutes) and a margin.
pub const FOLLOW_TIMEOUT: Duration = Duration::from_secs(32 * 60);
/// The largest JSON answer read.
pub const MAX_JSON: usize = 16 * 1024 * 1024;
/// The largest log answer written out (ACI keeps at most 4 MB of a container's log).
pub const MAX_LOG: usize = 64 * 1024 * 1024;
/// How much of a non-problem error body is shown.
const SHOWN_BODY: usize = 300;

/// Why a command failed (exit code 3).
#[derive(Debug)]
pub enum Failure {
    /// The API answered with an error: its status, and the problem's title and detail.
    Api {
        status: StatusCode,
        title: String,
        detail: String,
    },
    /// Berth could not be reached, or its answer could not be read.
    Transport(String),
    /// The command line or a local file is wrong.
    Usage(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api {
                status,
                title,
                detail,
            } if detail.is_empty() => write!(f, "{title} (HTTP {})", status.as_u16()),
            Failure::Api {
                status,
                title,
                detail,
            } => write!(f, "{title}: {detail} (HTTP {})", status.as_u16()),
            Failure::Transport(message) | Failure::Usage(message) => f.write_str(message),
        }
    }
}

impl Failure {
    /// Whether trying again later may work (Berth restarting, busy storage).
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Api { status, .. } => {
                *status == StatusCode::SERVICE_UNAVAILABLE
                    || *status == StatusCode::BAD_GATEWAY
                    || *status == StatusCode::GATEWAY_TIMEOUT
            }
            Failure::Transport(_) => true,
            Failure::Usage(_) => false,
        }
    }
}

/// `text` with control characters (but newlines and tabs) replaced, at most `limit` characters.
pub fn printable(text: &str, limit: usize) -> String {
    let mut out: String = text
        .chars()
        .take(limit)
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if text.chars().nth(limit).is_some() {
        out.push('…');
    }
    out
}

/// A JSON answer with its status and `Retry-After` (seconds), when it gave one.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<u64>,
}

/// One Berth's API.
pub struct Client {
    base: reqwest::Url,
    key: Option<String>,
    http: reqwest::Client,
    follow: reqwest::Client,
}

fn build(timeout: Duration) -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Transport(format!("cannot make an HTTP client: {e}")))
}

impl Client {
    /// A client of the Berth at `url` (its root, or its `/api`), sending `key` when given, giving
    /// each exchange but log follows `timeout`.
    pub fn new(url: &str, key: Option<String>, timeout: Duration) -> Result<Self, Failure> {
        let mut base = reqwest::Url::parse(url)
            .map_err(|e| Failure::Usage(format!("--url: '{url}' is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(Failure::Usage(format!(
                "--url: '{url}' is not an http or https URL with a host"
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(Failure::Usage(format!(
                "--url: '{url}' has a query or fragment; give Berth's base URL"
            )));
        }
        let path = base.path().trim_end_matches('/');
        let path = path.strip_suffix("/api").unwrap_or(path).to_owned();
        base.set_path(&format!("{path}/"));
        Ok(Client {
            base,
            key: key.filter(|k| !k.is_empty()),
            http: build(timeout)?,
            follow: build(FOLLOW_TIMEOUT)?,
        })
    }

    /// The URL of `path` under `api/` (`path` is already encoded).
    pub fn url(&self, path: &str) -> String {
        format!("{}api/{path}", self.base)
    }

    fn request(&self, http: &reqwest::Client, method: Method, path: &str) -> RequestBuilder {
        let request = http.request(method, self.url(path));
        match &self.key {
            Some(key) => request.header("x-functions-key", key),
            None => request,
        }
    }

    /// Sends a request of the API and reads its JSON answer; an error answer is a [`Failure`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Answer, Failure> {
        let mut request = self.request(&self.http, method, path);
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = self.send(request).await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = read_limited(response, MAX_JSON).await?;
        if !status.is_success() {
            return Err(problem(status, &bytes));
        }
        let body = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Transport(format!(
                "the answer (HTTP {}) is not JSON ({e}): {}",
                status.as_u16(),
                printable(&String::from_utf8_lossy(&bytes), SHOWN_BODY)
            ))
        })?;
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// `GET`s a log and writes it to `out` as it arrives (a follow streams until the server ends
    /// it); returns the bytes written.
    pub async fn log_to(
        &self,
        path: &str,
        follow: bool,
        out: &mut impl Write,
    ) -> Result<usize, Failure> {
        let http = if follow { &self.follow } else { &self.http };
        let mut response = self.send(self.request(http, Method::GET, path)).await?;
        let status = response.status();
        if !status.is_success() {
            let bytes = read_limited(response, MAX_JSON).await?;
            return Err(problem(status, &bytes));
        }
        let mut written = 0;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            written += chunk.len();
            if written > MAX_LOG {
                return Err(Failure::Transport(format!(
                    "the log is larger than {MAX_LOG} bytes; stopped reading"
                )));
            }
            out.write_all(&chunk)
                .and_then(|()| out.flush())
                .map_err(|e| Failure::Transport(format!("cannot write the log: {e}")))?;
        }
        Ok(written)
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response, Failure> {
        request.send().await.map_err(|e| {
            if e.is_connect() {
                Failure::Transport(format!(
                    "cannot reach Berth at {} ({}); is it running (`bin/handler dev`)?",
                    self.base,
                    innermost(&e)
                ))
            } else {
                transport(e)
            }
        })
    }
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The root cause of an error (`Connection refused (os error 111)`).
fn innermost(error: &dyn std::error::Error) -> String {
    let mut error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error.to_string()
}

fn transport(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Transport(format!("Berth did not answer in time ({error})"))
    } else {
        Failure::Transport(format!("talking to Berth failed: {}", source_chain(&error)))
    }
}

/// Reads a body, failing past `limit` bytes.
async fn read_limited(mut response: Response, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > limit {
            return Err(Failure::Transport(format!(
                "the answer is larger than {limit} bytes; stopped reading"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// An error answer as a failure: the problem's title and detail, or the start of the body.
fn problem(status: StatusCode, bytes: &[u8]) -> Failure {
    let field = |body: &Value, name: &str| body[name].as_str().map(|s| printable(s, 4000));
    match serde_json::from_slice::<Value>(bytes) {
        Ok(body) if body.get("title").is_some() || body.get("detail").is_some() => Failure::Api {
            status,
            title: field(&body, "title").unwrap_or_else(|| reason(status)),
            detail: field(&body, "detail").unwrap_or_default(),
        },
        _ => Failure::Api {
            status,
            title: reason(status),
            detail: printable(String::from_utf8_lossy(bytes).trim(), SHOWN_BODY),
        },
    }
}

fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_may_end_in_api_or_a_slash() {
        for url in [
            "http://127.0.0.1:7071",
            "http://127.0.0.1:7071/",
            "http://127.0.0.1:7071/api",
            "http://127.0.0.1:7071/api/",
        ] {
            let client = Client::new(url, None, Duration::from_secs(1)).unwrap();
            assert_eq!(
                client.url("deployments"),
                "http://127.0.0.1:7071/api/deployments"
            );
        }
        let behind = Client::new(
            "https://example.test/berth/api",
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            behind.url("deployments/x"),
            "https://example.test/berth/api/deployments/x"
        );
    }

    #[test]
    fn a_url_that_is_not_a_base_url_is_a_usage_error() {
        for url in [
            "127.0.0.1:7071",
            "ftp://host/",
            "http://h/?code=k",
            "nonsense",
        ] {
            assert!(
                matches!(
                    Client::new(url, None, Duration::from_secs(1)),
                    Err(Failure::Usage(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn problems_are_title_and_detail_and_other_errors_their_body() {
        let body = br#"{"type":"about:blank","title":"Bad request","status":400,"detail":"tail: must be a number"}"#;
        let failure = problem(StatusCode::BAD_REQUEST, body);
        assert_eq!(
            failure.to_string(),
            "Bad request: tail: must be a number (HTTP 400)"
        );
        let failure = problem(StatusCode::BAD_GATEWAY, b"<html>\x1b[31mproxy</html>");
        assert_eq!(
            failure.to_string(),
            "Bad Gateway: <html>\u{fffd}[31mproxy</html> (HTTP 502)"
        );
        assert_eq!(
            problem(StatusCode::NOT_FOUND, b"").to_string(),
            "Not Found (HTTP 404)"
        );
    }

    #[test]
    fn printable_cuts_long_text() {
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("a\tb\nc", 10), "a\tb\nc");
    }
}
