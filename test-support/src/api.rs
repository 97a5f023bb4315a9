//! A client of Berth's HTTP API (`/api/deployments/...`), with the function key as the
//! `x-functions-key` header when one is given. Each call returns the status code and the body
//! (JSON, or `null` when the body is not JSON), so tests can assert on refusals as well. The free
//! functions send any request: [`send`] as the methods do, [`json_body`] when only the JSON answer
//! matters, [`accepted`] when the answer must be `202 Accepted`.

use reqwest::Method;
use serde_json::Value;

/// Berth's API at `base` (the URL the routes hang off, ending in `/api`).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:7071/api`), without a key.
    pub fn new(base: impl Into<String>) -> Self {
        Client {
            base: base.into().trim_end_matches('/').to_owned(),
            key: None,
            http: reqwest::Client::new(),
        }
    }

    /// The same client, sending `key` as `x-functions-key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `{base}{path}` with the key, for calls the methods below do not cover.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.header("x-functions-key", key),
            None => request,
        }
    }

    /// `POST /deployments` with `spec`.
    pub async fn submit(&self, spec: &Value) -> Result<(u16, Value), reqwest::Error> {
        send(self.request(Method::POST, "/deployments").json(spec)).await
    }

    /// `GET /deployments/{id}`: `202` while it runs, `200` once done.
    pub async fn status(&self, id: &str) -> Result<(u16, Value), reqwest::Error> {
        send(self.request(Method::GET, &format!("/deployments/{id}"))).await
    }

    /// `GET /deployments` with `query` (e.g. `?status=Running`, or empty).
    pub async fn list(&self, query: &str) -> Result<(u16, Value), reqwest::Error> {
        send(self.request(Method::GET, &format!("/deployments{query}"))).await
    }

    /// `POST /deployments/{id}/events/{event}` with an optional body.
    pub async fn raise(
        &self,
        id: &str,
        event: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self.request(Method::POST, &format!("/deployments/{id}/events/{event}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    /// `POST /deployments/{id}/terminate`.
    pub async fn terminate(&self, id: &str) -> Result<(u16, Value), reqwest::Error> {
        send(self.request(Method::POST, &format!("/deployments/{id}/terminate"))).await
    }

    /// `DELETE /deployments/{id}` (purge).
    pub async fn purge(&self, id: &str) -> Result<(u16, Value), reqwest::Error> {
        send(self.request(Method::DELETE, &format!("/deployments/{id}"))).await
    }

    /// `GET /deployments/{id}/logs/{group}/{container}`: the status and the text.
    pub async fn logs(
        &self,
        id: &str,
        group: &str,
        container: &str,
    ) -> Result<(u16, String), reqwest::Error> {
        let path = format!("/deployments/{id}/logs/{group}/{container}");
        let response = self.request(Method::GET, &path).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }
}

/// Sends `request`; the status and the body as JSON (`null` when empty or not JSON).
pub async fn send(request: reqwest::RequestBuilder) -> Result<(u16, Value), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Sends `request` and parses the answer's body as JSON, whatever its status; panics (failing the
/// test) when it cannot be sent or the body is not JSON.
pub async fn json_body(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot send the request: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("the answer is not JSON: {e}"))
}

/// Sends `request`, asserts the answer is `202 Accepted` (showing its body when not), and returns
/// its `Location` header and its body parsed as JSON.
pub async fn accepted(request: reqwest::RequestBuilder) -> (String, Value) {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot send the request: {e}"));
    let status = response.status().as_u16();
    let location = response.headers().get("location").cloned();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("cannot read the answer: {e}"));
    assert_eq!(status, 202, "{text}");
    let location = location.unwrap_or_else(|| panic!("202 without a Location: {text}"));
    let location = location
        .to_str()
        .unwrap_or_else(|e| panic!("Location is not text: {e}"))
        .to_owned();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the answer is not JSON: {e}: {text}"));
    (location, body)
}

/// Waits until something answers HTTP at `url` (any status), failing the test after `within`:
/// for a server process just started.
pub async fn wait_until_answering(url: &str, within: std::time::Duration) {
    let http = reqwest::Client::new();
    crate::eventually(&format!("{url} to answer"), within, || async {
        http.get(url).send().await.map(drop)
    })
    .await
}
