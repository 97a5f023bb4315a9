//! The ARM client: one `reqwest` client with a configurable endpoint, so the same code talks to
//! Azure and to the emulator. Retries 429 and 5xx a few times (honouring `Retry-After`), then
//! hands a typed, classified error to the engine, which decides when to look again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use super::budget::{Likelihood, ReadBudget};
use super::error::ArmError;
use super::model::{CloudError, ContainerGroup, ListPage, Logs, UsageList};

/// Where container groups live and how ARM is reached.
#[derive(Clone, Debug)]
pub struct ArmTarget {
    /// Base URL without a trailing slash (`https://management.azure.com`, or the emulator's).
    pub endpoint: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: String,
    pub api_version: String,
}

/// Counts of ARM calls by kind, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct ArmCalls {
    pub put: AtomicU64,
    pub get: AtomicU64,
    pub delete: AtomicU64,
    pub logs: AtomicU64,
    pub post: AtomicU64,
    pub list: AtomicU64,
    /// Reads of a location's usages (`Location_ListUsage`).
    pub usages: AtomicU64,
    pub retries: AtomicU64,
}

impl ArmCalls {
    /// All calls made (retries included).
    pub fn total(&self) -> u64 {
        [
            &self.put,
            &self.get,
            &self.delete,
            &self.logs,
            &self.post,
            &self.list,
            &self.usages,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// What a look at a group found.
#[derive(Debug)]
pub enum Look {
    /// The group as ARM describes it, `None` when it does not exist.
    Now(Option<Box<ContainerGroup>>),
    /// The read budget is spent: a read is reserved for this group after this long.
    Later(Duration),
}

/// How long a location's usages are kept. Admission asks for them before every create; one read
/// per location every few seconds is a small share of the read budget (0.2 reads per second of
/// 20), and capacity freed by groups ending (or by anyone else in the subscription) is seen
/// within this long. Creates sent meanwhile are counted by the admission itself, not by ARM.
pub const USAGES_TTL: Duration = Duration::from_secs(5);

/// A location's standard cores as `Location_ListUsage` reports them. A read that failed is kept
/// for [`USAGES_TTL`] too, as unknown (no limit, nothing used): a principal without
/// `locations/usages/read` costs one failed read per location and period, not one per create.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoreUsage {
    /// The quota (`None` when ARM reported no `StandardCores` usage).
    pub limit: Option<f64>,
    /// Cores in use.
    pub current: f64,
    /// When the read was sent: creates answered before then are in `current`.
    pub read_at: Instant,
}

/// A fixed bearer token for an ARM endpoint without Entra ID (the emulator's per-run token).
/// Neither `Debug` nor anything else prints it.
#[derive(Clone)]
pub struct StaticToken(Arc<str>);

impl StaticToken {
    /// A token; `None` when it is blank.
    pub fn new(text: &str) -> Option<Self> {
        let text = text.trim();
        (!text.is_empty()).then(|| StaticToken(Arc::from(text)))
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<set>")
    }
}

/// The ARM client for container groups.
#[derive(Clone, Debug)]
pub struct ArmClient {
    http: reqwest::Client,
    target: Arc<ArmTarget>,
    credential: Option<Arc<dyn TokenCredential>>,
    /// Sent when there is no `credential`.
    static_token: Option<StaticToken>,
    reads: Option<Arc<ReadBudget>>,
    calls: Arc<ArmCalls>,
    /// Usages by location, kept for [`USAGES_TTL`].
    usages: Arc<Mutex<HashMap<String, CoreUsage>>>,
    /// One usage read at a time: creates arriving together wait for it rather than read again.
    usage_read: Arc<tokio::sync::Mutex<()>>,
}

const SCOPE: &str = "https://management.azure.com/.default";
/// Tries a call gets before its error goes back to the caller.
const MAX_TRIES: u32 = 3;
/// Tries a create gets: it must end well inside its claim (see the client's timeout).
const CREATE_TRIES: u32 = 2;
/// The `Microsoft.Storage` api-version of `listKeys`.
const STORAGE_API_VERSION: &str = "2023-05-01";
/// The `Microsoft.OperationalInsights` api-versions of a workspace read and of its shared keys.
const WORKSPACE_API_VERSION: &str = "2023-09-01";
const WORKSPACE_KEYS_API_VERSION: &str = "2020-08-01";
/// Longest `Retry-After` the client sleeps itself; longer waits go back to the engine.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(10);

impl ArmClient {
    /// A client for `target`; `credential` is `None` for the emulator.
    pub fn new(target: ArmTarget, credential: Option<Arc<dyn TokenCredential>>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A create must end well inside its claim (60 s by default): 20 s per try, 2 tries.
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(256)
            .build()
            .expect("a reqwest client builds with a rustls backend");
        ArmClient {
            http,
            target: Arc::new(target),
            credential,
            static_token: None,
            reads: None,
            calls: Arc::default(),
            usages: Arc::default(),
            usage_read: Arc::default(),
        }
    }

    /// Sends `token` as the bearer token of every call (for an endpoint without Entra ID; a
    /// credential, when there is one, comes first).
    pub fn with_static_token(mut self, token: StaticToken) -> Self {
        self.static_token = Some(token);
        self
    }

    /// Limits reads (GET of groups and logs) to `per_second`.
    pub fn with_read_budget(mut self, per_second: f64) -> Self {
        if per_second > 0.0 {
            self.reads = Some(Arc::new(ReadBudget::new(per_second)));
        }
        self
    }

    /// Calls made so far.
    pub fn calls(&self) -> &ArmCalls {
        &self.calls
    }

    /// Where this client creates groups.
    pub fn target(&self) -> &ArmTarget {
        &self.target
    }

    fn group_url(&self, name: &str, suffix: &str) -> String {
        let t = &self.target;
        format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerInstance/containerGroups/{name}{suffix}?api-version={}",
            t.endpoint, t.subscription, t.resource_group, t.api_version
        )
    }

    /// Creates (or updates) a group. The body is the whole ARM resource (`location`, `tags`, `properties`).
    pub async fn put_group(&self, name: &str, body: &Value) -> Result<ContainerGroup, ArmError> {
        self.calls.put.fetch_add(1, Ordering::Relaxed);
        let url = self.group_url(name, "");
        let (_, bytes) = self
            .call_with(
                Method::PUT,
                &url,
                Some(body),
                "create container group",
                CREATE_TRIES,
            )
            .await?;
        decode(&bytes, "create container group")
    }

    /// Reads a group with its instance view; `None` when it does not exist. Waits for the read
    /// budget as long as it takes.
    pub async fn get_group(&self, name: &str) -> Result<Option<ContainerGroup>, ArmError> {
        if let Some(reads) = &self.reads {
            reads.take().await;
        }
        self.read_group(name).await
    }

    /// A look at a group that does not wait long for the read budget: when the budget is spent,
    /// it says when a read is reserved for this group instead of reading (see [`ReadBudget`]).
    pub async fn look(&self, name: &str) -> Result<Look, ArmError> {
        self.look_as(name, Likelihood::Unknown).await
    }

    /// [`Self::look`] for a look as likely as `likelihood` to see a change: when the budget is
    /// spent, likely looks go first and unlikely ones last ([`ReadBudget::admit_look`]).
    pub async fn look_as(&self, name: &str, likelihood: Likelihood) -> Result<Look, ArmError> {
        if let Some(reads) = &self.reads
            && let Some(wait) = reads.admit_look(name, likelihood).await
        {
            crate::metrics::read_budget_wait("put_off");
            return Ok(Look::Later(wait));
        }
        Ok(Look::Now(self.read_group(name).await?.map(Box::new)))
    }

    async fn read_group(&self, name: &str) -> Result<Option<ContainerGroup>, ArmError> {
        self.calls.get.fetch_add(1, Ordering::Relaxed);
        let operation = "read container group";
        match self.call_on_group(Method::GET, name, operation).await? {
            Some((_, bytes)) => decode(&bytes, operation).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes a group; `false` when it did not exist.
    pub async fn delete_group(&self, name: &str) -> Result<bool, ArmError> {
        self.calls.delete.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .call_on_group(Method::DELETE, name, "delete container group")
            .await?;
        // 204 is ARM's "there was nothing to delete", like a 404.
        Ok(answer.is_some_and(|(status, _)| status != StatusCode::NO_CONTENT))
    }

    /// Stops a group's containers (`POST .../stop`).
    pub async fn stop_group(&self, name: &str) -> Result<(), ArmError> {
        self.calls.post.fetch_add(1, Ordering::Relaxed);
        self.call(
            Method::POST,
            &self.group_url(name, "/stop"),
            None,
            "stop container group",
        )
        .await
        .map(|_| ())
    }

    /// A container's logs (`tail` lines, or all ACI keeps), each line with its timestamp when
    /// `timestamps`.
    pub async fn logs(
        &self,
        name: &str,
        container: &str,
        tail: Option<u32>,
        timestamps: bool,
    ) -> Result<String, ArmError> {
        if let Some(reads) = &self.reads {
            reads.take().await;
        }
        self.read_logs(name, container, tail, timestamps).await
    }

    /// All ACI keeps of a container's log, each line with its timestamp (`timestamps=true`). A
    /// `spare` read goes only if the read budget has a token to spare now (`None` when not).
    pub async fn stamped_logs(
        &self,
        name: &str,
        container: &str,
        spare: bool,
    ) -> Result<Option<String>, ArmError> {
        if let Some(reads) = &self.reads {
            if !spare {
                reads.take().await;
            } else if !reads.try_take() {
                crate::metrics::read_budget_wait("skipped");
                return Ok(None);
            }
        }
        self.read_logs(name, container, None, true).await.map(Some)
    }

    async fn read_logs(
        &self,
        name: &str,
        container: &str,
        tail: Option<u32>,
        timestamps: bool,
    ) -> Result<String, ArmError> {
        self.calls.logs.fetch_add(1, Ordering::Relaxed);
        let mut url = self.group_url(name, &format!("/containers/{container}/logs"));
        if let Some(tail) = tail {
            url.push_str(&format!("&tail={tail}"));
        }
        if timestamps {
            url.push_str("&timestamps=true");
        }
        let (_, bytes) = self
            .call(Method::GET, &url, None, "read container logs")
            .await?;
        decode::<Logs>(&bytes, "read container logs").map(|l| l.content)
    }

    /// The standard cores of `location` (`Location_ListUsage`), at most [`USAGES_TTL`] old. A
    /// read takes a token of the read budget, waiting for it as long as it takes.
    pub async fn core_usage(&self, location: &str) -> Result<CoreUsage, ArmError> {
        let fresh = |usages: &HashMap<String, CoreUsage>| {
            usages
                .get(location)
                .filter(|u| u.read_at.elapsed() < USAGES_TTL)
                .copied()
        };
        if let Some(usage) = fresh(&lock(&self.usages)) {
            return Ok(usage);
        }
        let _one = self.usage_read.lock().await;
        if let Some(usage) = fresh(&lock(&self.usages)) {
            return Ok(usage);
        }
        if let Some(reads) = &self.reads {
            reads.take().await;
        }
        self.calls.usages.fetch_add(1, Ordering::Relaxed);
        let t = &self.target;
        let url = format!(
            "{}/subscriptions/{}/providers/Microsoft.ContainerInstance/locations/{location}/usages?api-version={}",
            t.endpoint, t.subscription, t.api_version
        );
        let read_at = Instant::now();
        let operation = "read usages";
        let read = self.call(Method::GET, &url, None, operation).await;
        let list: Result<UsageList, ArmError> =
            read.and_then(|(_, bytes)| decode(&bytes, operation));
        let list = match list {
            Ok(list) => list,
            Err(e) => {
                let unknown = CoreUsage {
                    limit: None,
                    current: 0.0,
                    read_at,
                };
                lock(&self.usages).insert(location.to_owned(), unknown);
                return Err(e);
            }
        };
        let cores = list.value.iter().find(|u| {
            u.name
                .value
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case("StandardCores"))
        });
        let usage = CoreUsage {
            limit: cores.and_then(|u| u.limit),
            current: cores.and_then(|u| u.current_value).unwrap_or(0.0),
            read_at,
        };
        lock(&self.usages).insert(location.to_owned(), usage);
        Ok(usage)
    }

    /// Drops `location`'s kept usages, so the next admission reads them again (after ARM refused
    /// a create for its quota: the usages kept were out of date).
    pub fn forget_usage(&self, location: &str) {
        lock(&self.usages).remove(location);
    }

    /// Every group in the resource group (no instance views), following `nextLink`.
    pub async fn list_groups(&self) -> Result<Vec<ContainerGroup>, ArmError> {
        let t = &self.target;
        let mut url = Some(format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerInstance/containerGroups?api-version={}",
            t.endpoint, t.subscription, t.resource_group, t.api_version
        ));
        let mut groups = Vec::new();
        while let Some(next) = url.take() {
            self.calls.list.fetch_add(1, Ordering::Relaxed);
            let (_, bytes) = self
                .call(Method::GET, &next, None, "list container groups")
                .await?;
            let page: ListPage = decode(&bytes, "list container groups")?;
            groups.extend(page.value);
            url = page.next_link.filter(|l| !l.is_empty());
        }
        Ok(groups)
    }

    /// The customer id and primary key of a Log Analytics workspace (its ARM resource id), for
    /// container-group diagnostics. Needs `workspaces/read` and `workspaces/sharedKeys/action`.
    pub async fn workspace_credentials(
        &self,
        workspace: &str,
    ) -> Result<(String, String), ArmError> {
        let base = format!(
            "{}{}",
            self.target.endpoint,
            workspace.trim_end_matches('/')
        );
        let read = self
            .resource(
                Method::GET,
                &format!("{base}?api-version={WORKSPACE_API_VERSION}"),
                "read Log Analytics workspace",
            )
            .await?;
        let keys = self
            .resource(
                Method::POST,
                &format!("{base}/sharedKeys?api-version={WORKSPACE_KEYS_API_VERSION}"),
                "read Log Analytics keys",
            )
            .await?;
        let field = |v: &Value, pointer: &str, what: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| ArmError::Rejected {
                    status: 200,
                    code: "MissingField".into(),
                    message: format!("the workspace answer has no {what}"),
                })
        };
        Ok((
            field(&read, "/properties/customerId", "customerId")?,
            field(&keys, "/primarySharedKey", "primarySharedKey")?,
        ))
    }

    /// The first key of storage account `account` in the target's resource group (`listKeys`),
    /// for an Azure Files volume given without one; `None` when the account lists no key.
    pub async fn storage_account_key(&self, account: &str) -> Result<Option<String>, ArmError> {
        let t = &self.target;
        let url = format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{account}/listKeys?api-version={STORAGE_API_VERSION}",
            t.endpoint, t.subscription, t.resource_group
        );
        let keys = self
            .resource(Method::POST, &url, "list storage account keys")
            .await?;
        Ok(keys
            .pointer("/keys/0/value")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// A call on another resource type than container groups, counted under its verb.
    async fn resource(
        &self,
        method: Method,
        url: &str,
        operation: &'static str,
    ) -> Result<Value, ArmError> {
        let counter = if method == Method::GET {
            &self.calls.get
        } else {
            &self.calls.post
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let (_, bytes) = self.call(method, url, None, operation).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        decode(&bytes, operation)
    }

    /// `call` without a body on group `name` itself; `None` when ARM answers that it does not exist.
    async fn call_on_group(
        &self,
        method: Method,
        name: &str,
        operation: &'static str,
    ) -> Result<Option<(StatusCode, bytes::Bytes)>, ArmError> {
        match self
            .call(method, &self.group_url(name, ""), None, operation)
            .await
        {
            Ok(answer) => Ok(Some(answer)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        operation: &'static str,
    ) -> Result<(StatusCode, bytes::Bytes), ArmError> {
        self.call_with(method, url, body, operation, MAX_TRIES)
            .await
    }

    async fn call_with(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        operation: &'static str,
        max_tries: u32,
    ) -> Result<(StatusCode, bytes::Bytes), ArmError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = self.try_once(method.clone(), url, body, operation).await;
            crate::metrics::arm_call(method.as_str(), outcome(&answer));
            match answer {
                Ok(answer) => return Ok(answer),
                Err(e) if e.is_transient() && tries < max_tries => {
                    let wait = match &e {
                        ArmError::Throttled {
                            retry_after: Some(after),
                            ..
                        } => *after,
                        _ => Duration::from_millis(200 * (1 << tries)),
                    };
                    if wait > MAX_INLINE_WAIT {
                        return Err(e);
                    }
                    self.calls.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(arm.operation = operation, error = %e, wait_ms = wait.as_millis() as u64, "retrying ARM call");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        operation: &'static str,
    ) -> Result<(StatusCode, bytes::Bytes), ArmError> {
        let mut request = self.http.request(method, url);
        if let Some(credential) = &self.credential {
            let token = credential
                .get_token(&[SCOPE], None)
                .await
                .map_err(|source| ArmError::Token { source })?;
            request = request.bearer_auth(token.token.secret());
        } else if let Some(token) = &self.static_token {
            request = request.bearer_auth(&*token.0);
        }
        if let Some(body) = body {
            request = request.json(body);
        } else {
            request = request.header(reqwest::header::CONTENT_LENGTH, 0);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ArmError::Transport { operation, source })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ArmError::Transport { operation, source })?;
        if status.is_success() {
            return Ok((status, bytes));
        }
        let error: CloudError = serde_json::from_slice(&bytes).unwrap_or_default();
        let (code, message) = (error.error.code, error.error.message);
        let message = if message.is_empty() {
            String::from_utf8_lossy(&bytes).chars().take(300).collect()
        } else {
            message
        };
        Err(match status.as_u16() {
            404 => ArmError::NotFound { code, message },
            429 => ArmError::Throttled {
                retry_after,
                message,
            },
            409 => ArmError::Conflict { code, message },
            401 | 403 => ArmError::Auth {
                status: status.as_u16(),
                message: format!("{code}: {message}"),
            },
            s if s >= 500 => ArmError::Server {
                status: s,
                code,
                message,
            },
            s => ArmError::Rejected {
                status: s,
                code,
                message,
            },
        })
    }
}

/// A call's outcome, as the metrics name it.
fn outcome<T>(answer: &Result<T, ArmError>) -> &'static str {
    match answer {
        Ok(_) => "ok",
        Err(ArmError::NotFound { .. }) => "not_found",
        Err(ArmError::Throttled { .. }) => "throttled",
        Err(ArmError::Conflict { .. }) => "conflict",
        Err(ArmError::Auth { .. }) => "auth",
        Err(ArmError::Server { .. }) => "server_error",
        Err(ArmError::Rejected { .. }) => "rejected",
        Err(ArmError::Transport { .. }) => "transport",
        Err(ArmError::Token { .. }) => "token",
        Err(ArmError::Decode { .. }) => "decode",
    }
}

/// Locks a mutex, whose data stays consistent even if a holder panicked (every change is one
/// insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    operation: &'static str,
) -> Result<T, ArmError> {
    serde_json::from_slice(bytes).map_err(|source| ArmError::Decode { operation, source })
}
