//! A Functions-host simulator: runs `handler` the way the Azure Functions host runs a custom
//! handler, so the end-to-end suite can drive Berth in Functions mode on one machine.
//!
//! It reads `host.json` and `functions/*/function.json`, starts the handler with
//! `FUNCTIONS_CUSTOMHANDLER_PORT` and the host's other variables, waits for readiness by polling
//! `GET /` every 25 ms, serves a public HTTP front on 127.0.0.1 that matches routes and enforces
//! function keys, builds every invocation payload as `functions-host-protocol.md` describes, sends it
//! chunked, and judges each answer by the host's acceptance rules. Timer ticks and queue deliveries
//! are invoked the same way; [`queue`] polls Azure Storage (Azurite) like the queue trigger.
//!
//! # Layout
//! - [`config`]: host.json and function.json as the host reads them.
//! - [`route`]: route templates and matching.
//! - [`payload`]: invocation payloads for HTTP, queue and timer triggers.
//! - [`acceptance`]: the host's rules for the handler's answers.
//! - [`process`]: starting the handler and the readiness probe.
//! - [`front`]: the public HTTP front (`/api/...`) with key checks.
//! - [`queue`]: queue delivery with dequeue counts, retries and the poison queue.
//! - [`fixture`]: TEST FIXTURE handlers (echo API, scripted steps) for testing the layer itself.

pub mod acceptance;
pub mod config;
pub mod fixture;
pub mod front;
pub mod payload;
pub mod process;
pub mod queue;
pub mod route;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use serde_json::Value;
use time::OffsetDateTime;

pub use acceptance::{Accepted, HostOutcome, HttpResult, judge};
pub use config::{AppConfig, FunctionDef, QueueSettings, TriggerDef};
pub use payload::{Caller, ClientRequest, QueueDelivery, Sys, TimerFiring};
pub use process::{HandlerProcess, Launch, workspace_binary};

/// The host version the simulator reports in its headers.
pub const HOST_VERSION: &str = "4.1044.0.0";

/// The repository root (the folder holding `host.json` and `functions/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// One invocation the simulated host made, for tests to inspect.
#[derive(Debug, Clone)]
pub struct InvocationRecord {
    /// The function invoked.
    pub function: String,
    /// The handler's status code (0 when the request itself failed).
    pub status: u16,
    /// What the host made of the answer.
    pub outcome: HostOutcome,
}

/// How to start a simulated host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The app as read from disk (tests may adjust settings, e.g. a short `visibilityTimeout`).
    pub app: AppConfig,
    /// The handler binary to start.
    pub binary: PathBuf,
    /// App settings for the handler process and for `%NAME%` binding expressions.
    pub settings: Vec<(String, String)>,
    /// The function key named `default`.
    pub function_key: String,
    /// The master (host admin) key.
    pub master_key: String,
}

impl HostOptions {
    /// Options for the repository's app with fresh random keys.
    pub fn new(binary: &Path, settings: Vec<(String, String)>) -> anyhow::Result<Self> {
        Ok(Self {
            app: AppConfig::load_repo(&repo_root())?,
            binary: binary.to_owned(),
            settings,
            function_key: format!("fk-{}", uuid::Uuid::new_v4().simple()),
            master_key: format!("mk-{}", uuid::Uuid::new_v4().simple()),
        })
    }
}

pub(crate) struct Inner {
    pub(crate) app: AppConfig,
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) client: reqwest::Client,
    pub(crate) handler_url: std::sync::RwLock<String>,
    pub(crate) function_key: String,
    pub(crate) master_key: String,
    pub(crate) records: Mutex<Vec<InvocationRecord>>,
}

/// A running simulated host: the handler process plus the public front.
pub struct FunctionsHost {
    inner: Arc<Inner>,
    launch: Launch,
    process: HandlerProcess,
    front: SocketAddr,
    front_task: tokio::task::JoinHandle<()>,
}

impl FunctionsHost {
    /// Starts the handler, waits for readiness, and opens the public front.
    pub async fn start(options: HostOptions) -> anyhow::Result<Self> {
        if options.app.forwarding {
            bail!("the simulator speaks default (payload) mode; host.json enables forwarding");
        }
        for function in &options.app.functions {
            if let TriggerDef::Queue { queue_name, .. } = &function.trigger {
                config::resolve_setting(queue_name, &options.settings)
                    .with_context(|| format!("function {}", function.name))?;
            }
        }
        let launch = Launch::new(&options.binary, &options.app.root, options.settings.clone());
        let process = HandlerProcess::start(&launch).await?;
        let timeout = options
            .app
            .function_timeout
            .map_or(Duration::from_secs(3600), |t| t + Duration::from_secs(60));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let inner = Arc::new(Inner {
            app: options.app,
            settings: options.settings,
            client,
            handler_url: std::sync::RwLock::new(process.base_url()),
            function_key: options.function_key,
            master_key: options.master_key,
            records: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let front = listener.local_addr()?;
        let app = front::router(inner.clone());
        let front_task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let host = Self {
            inner,
            launch,
            process,
            front,
            front_task,
        };
        // `runOnStartup: true` timers fire once when the host starts.
        let on_startup: Vec<String> = host
            .inner
            .app
            .functions
            .iter()
            .filter(|f| {
                matches!(
                    f.trigger,
                    TriggerDef::Timer {
                        run_on_startup: true,
                        ..
                    }
                )
            })
            .map(|f| f.name.clone())
            .collect();
        for function in on_startup {
            host.tick(&function, false).await?;
        }
        Ok(host)
    }

    /// The public base URL including the route prefix, e.g. `http://127.0.0.1:41234/api`.
    pub fn api_url(&self) -> String {
        format!("http://{}/{}", self.front, self.inner.app.route_prefix)
    }

    /// The `default` function key, for `x-functions-key` or `?code=`.
    pub fn function_key(&self) -> &str {
        &self.inner.function_key
    }

    /// A request to `{api_url}/{path}` through the front, with the function key in
    /// `x-functions-key`, as a caller holding the key sends it.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}/{path}", self.api_url()))
            .header("x-functions-key", self.function_key())
    }

    /// [`Self::request`] without a body, sent; panics when no answer comes (for tests).
    pub async fn call(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        let what = format!("{method} {path}");
        self.request(method, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The app configuration in use.
    pub fn app(&self) -> &AppConfig {
        &self.inner.app
    }

    /// The handler process.
    pub fn process(&mut self) -> &mut HandlerProcess {
        &mut self.process
    }

    /// Kills the handler process, as a crash would. Invocations fail until [`Self::restart`].
    pub async fn kill_handler(&mut self) {
        self.process.kill().await;
    }

    /// Starts a new handler process on a new port, as the host does after the handler exits,
    /// and waits for its readiness.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill().await;
        self.process = HandlerProcess::start(&self.launch).await?;
        if let Ok(mut url) = self.inner.handler_url.write() {
            *url = self.process.base_url();
        }
        Ok(())
    }

    /// Every invocation so far.
    pub fn records(&self) -> Vec<InvocationRecord> {
        self.inner
            .records
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Answers the host would not accept from a 2xx handler response (bad JSON, wrong content
    /// type, empty body, bad `res`): protocol violations, as opposed to deliberate failures.
    pub fn violations(&self) -> Vec<InvocationRecord> {
        self.records()
            .into_iter()
            .filter(|r| match &r.outcome {
                HostOutcome::Hangs(_) => true,
                HostOutcome::Failed(_) => (200..300).contains(&r.status),
                HostOutcome::Succeeded(_) => false,
            })
            .collect()
    }

    /// Posts a raw body to `POST /{function}` as the host does (chunked, host headers) and judges
    /// the answer for `function`'s bindings (none if unknown).
    pub async fn invoke_raw(
        &self,
        function: &str,
        body: Bytes,
    ) -> anyhow::Result<(u16, Value, HostOutcome)> {
        self.inner.invoke_raw(function, body).await
    }

    /// Sends `payload` to `function` as the host does and returns how the host judged the answer.
    async fn invoke_payload(&self, function: &str, payload: &Value) -> anyhow::Result<HostOutcome> {
        let (_, _, outcome) = self
            .inner
            .invoke_raw(function, Bytes::from(payload.to_string()))
            .await?;
        Ok(outcome)
    }

    /// Fires the timer function `function` once.
    pub async fn tick(&self, function: &str, past_due: bool) -> anyhow::Result<HostOutcome> {
        let def = self.inner.app.require_function(function)?;
        let TriggerDef::Timer { schedule, .. } = &def.trigger else {
            bail!("{function} is not a timer function");
        };
        let now = OffsetDateTime::now_utc();
        let five = time::Duration::minutes(5);
        let firing = TimerFiring {
            past_due,
            schedule_status: Some(if past_due {
                (now - five * 4, now - five * 3, now - five * 4)
            } else {
                (now - five, now, now - five)
            }),
            adjust_for_dst: schedule.split_whitespace().count() >= 5,
            retry: None,
        };
        let payload = payload::timer_payload(def, &firing, &Sys::now(&def.name));
        self.invoke_payload(&def.name, &payload).await
    }

    /// Delivers one queue message to the queue function `function` (no storage involved).
    pub async fn deliver(
        &self,
        function: &str,
        delivery: &QueueDelivery,
    ) -> anyhow::Result<HostOutcome> {
        let def = self.inner.app.require_function(function)?;
        let payload = payload::queue_payload(def, delivery, &Sys::now(&def.name));
        self.invoke_payload(&def.name, &payload).await
    }

    /// The resolved queue name of the queue function `function` (`%BERTH_QUEUE%` expanded).
    pub fn queue_name(&self, function: &str) -> anyhow::Result<String> {
        let def = self.inner.app.require_function(function)?;
        let TriggerDef::Queue { queue_name, .. } = &def.trigger else {
            bail!("{function} is not a queue function");
        };
        config::resolve_setting(queue_name, &self.inner.settings).map(|q| q.to_ascii_lowercase())
    }

    /// Stops the front and the handler.
    pub async fn stop(self) {
        self.front_task.abort();
        self.process.stop().await;
    }
}

/// Sends one invocation as the host does: `POST {handler_url}/{function}` with the host's headers
/// (`User-Agent`, `X-Azure-Functions-HostVersion`, a fresh `X-Azure-Functions-InvocationId`,
/// `Content-Type: application/json; charset=utf-8`) and the body chunked, without
/// `Content-Length`. Returns the status, content type and body of the answer.
pub async fn send_invocation(
    client: &reqwest::Client,
    handler_url: &str,
    function: &str,
    body: Bytes,
) -> Result<(u16, Option<String>, Bytes), reqwest::Error> {
    let chunked = reqwest::Body::wrap_stream(futures::stream::once(async move {
        Ok::<_, std::io::Error>(body)
    }));
    let response = client
        .post(format!("{handler_url}/{function}"))
        .header("User-Agent", format!("Azure-Functions-Host/{HOST_VERSION}"))
        .header("X-Azure-Functions-HostVersion", HOST_VERSION)
        .header(
            "X-Azure-Functions-InvocationId",
            uuid::Uuid::new_v4().to_string(),
        )
        .header("Content-Type", "application/json; charset=utf-8")
        .body(chunked)
        .send()
        .await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, content_type, response.bytes().await?))
}

impl Inner {
    pub(crate) async fn invoke_raw(
        &self,
        function: &str,
        body: Bytes,
    ) -> anyhow::Result<(u16, Value, HostOutcome)> {
        let bindings = self
            .app
            .function(function)
            .map(|f| f.bindings.clone())
            .unwrap_or_default();
        let handler_url = self
            .handler_url
            .read()
            .map(|u| u.clone())
            .unwrap_or_default();
        let (status, content_type, bytes) =
            match send_invocation(&self.client, &handler_url, function, body).await {
                Ok(answer) => answer,
                Err(e) => {
                    let outcome = HostOutcome::Failed(format!("HttpRequestException: {e}"));
                    self.record(function, 0, &outcome);
                    return Ok((0, Value::Null, outcome));
                }
            };
        let outcome = judge(status, content_type.as_deref(), &bytes, &bindings);
        self.record(function, status, &outcome);
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, json, outcome))
    }

    fn record(&self, function: &str, status: u16, outcome: &HostOutcome) {
        if let Ok(mut records) = self.records.lock() {
            records.push(InvocationRecord {
                function: function.to_owned(),
                status,
                outcome: outcome.clone(),
            });
        }
    }
}

/// The whole app under the simulated host, as an end-to-end test drives it: the handler process,
/// the public front, and every queue trigger polling in the background. Timer functions fire
/// when the test calls [`FunctionsHost::tick`].
pub struct RunningApp {
    /// The host.
    pub host: FunctionsHost,
    /// One listener per queue function, by function name.
    pub listeners: Vec<(String, Arc<queue::QueueListener>)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningApp {
    /// Starts the host and a listener for every queue function (they need the storage
    /// connection named by their `connection` setting, e.g. Azurite's).
    pub async fn start(options: HostOptions) -> anyhow::Result<Self> {
        let host = FunctionsHost::start(options).await?;
        let names: Vec<String> = host
            .app()
            .functions
            .iter()
            .filter(|f| matches!(f.trigger, TriggerDef::Queue { .. }))
            .map(|f| f.name.clone())
            .collect();
        let mut listeners = Vec::new();
        let mut tasks = Vec::new();
        for name in names {
            let listener = queue::QueueListener::new(&host, &name).await?;
            tasks.push(listener.spawn());
            listeners.push((name, listener));
        }
        Ok(Self {
            host,
            listeners,
            tasks,
        })
    }

    /// The listener of the queue function `function`.
    pub fn listener(&self, function: &str) -> Option<&Arc<queue::QueueListener>> {
        self.listeners
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(function))
            .map(|(_, l)| l)
    }

    /// Stops the listeners, the front and the handler.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.host.stop().await;
    }
}
