//! The app as the host reads it: `host.json` and `functions/*/function.json` from disk.
//!
//! Read independently of the handler's embedded table, so a test through the simulator notices when
//! the files and the handler disagree.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// `extensions.queues` of host.json, with the host's defaults for unset keys.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    /// Deliveries before a failing message goes to `<queue>-poison` (default 5).
    pub max_dequeue_count: u32,
    /// How long a failed message stays invisible (default 0).
    pub visibility_timeout: Duration,
    /// Messages fetched per poll (default 16, at most 32).
    pub batch_size: u32,
    /// `base64` (default) or `none`.
    pub message_encoding: String,
    /// The longest wait between polls of an empty queue (default 1 minute).
    pub max_polling_interval: Duration,
}

/// One binding of a function.json, as JSON (the simulator reads the keys it needs).
pub type Binding = serde_json::Map<String, Value>;

/// What starts a function.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerDef {
    /// `httpTrigger`.
    Http {
        /// Allowed methods, upper-case; empty means all.
        methods: Vec<String>,
        /// Route template below the route prefix.
        route: String,
        /// `anonymous`, `function` or `admin`.
        auth_level: String,
    },
    /// `queueTrigger`, with `%SETTING%` not yet resolved.
    Queue {
        /// `queueName` as written.
        queue_name: String,
        /// `connection` setting prefix.
        connection: String,
    },
    /// `timerTrigger`.
    Timer {
        /// The schedule.
        schedule: String,
        /// `runOnStartup`.
        run_on_startup: bool,
    },
}

/// One function folder.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    /// The folder name, which the host POSTs to.
    pub name: String,
    /// The trigger binding's `name`, the key in `Data`.
    pub trigger_name: String,
    /// The trigger.
    pub trigger: TriggerDef,
    /// Every binding, in file order.
    pub bindings: Vec<Binding>,
}

impl FunctionDef {
    /// The bindings with `direction: out`.
    pub fn output_bindings(&self) -> Vec<Binding> {
        self.bindings
            .iter()
            .filter(|b| b.get("direction").and_then(Value::as_str) == Some("out"))
            .cloned()
            .collect()
    }
}

/// The function app: its root, host.json settings and functions.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The app root, the handler's working directory.
    pub root: PathBuf,
    /// `customHandler.description.defaultExecutablePath`.
    pub executable: String,
    /// `customHandler.enableForwardingHttpRequest`.
    pub forwarding: bool,
    /// `extensions.http.routePrefix` (default `api`).
    pub route_prefix: String,
    /// `functionTimeout`, when set.
    pub function_timeout: Option<Duration>,
    /// Queue trigger settings.
    pub queues: QueueSettings,
    /// The functions, sorted by name.
    pub functions: Vec<FunctionDef>,
}

impl AppConfig {
    /// Reads the repository's app: `host.json` at `repo_root` and folders under
    /// `repo_root/functions/`.
    pub fn load_repo(repo_root: &Path) -> anyhow::Result<Self> {
        Self::load(repo_root, &repo_root.join("functions"))
    }

    /// Reads `host.json` from `root` and function folders from `functions_dir` (the app root
    /// itself in a deployed package).
    pub fn load(root: &Path, functions_dir: &Path) -> anyhow::Result<Self> {
        let host_path = root.join("host.json");
        let host: Value = serde_json::from_str(
            &std::fs::read_to_string(&host_path)
                .with_context(|| format!("reading {}", host_path.display()))?,
        )
        .with_context(|| format!("parsing {}", host_path.display()))?;
        if host["version"] != "2.0" {
            bail!("host.json: version must be \"2.0\"");
        }
        let handler = &host["customHandler"];
        let executable = handler["description"]["defaultExecutablePath"]
            .as_str()
            .filter(|s| !s.is_empty())
            .context("host.json: customHandler.description.defaultExecutablePath is missing")?
            .to_owned();
        let queues = &host["extensions"]["queues"];
        let queues = QueueSettings {
            max_dequeue_count: u32_or(&queues["maxDequeueCount"], 5)?,
            visibility_timeout: match queues["visibilityTimeout"].as_str() {
                Some(s) => parse_timespan(s).context("host.json: visibilityTimeout")?,
                None => Duration::ZERO,
            },
            batch_size: u32_or(&queues["batchSize"], 16)?.min(32),
            message_encoding: queues["messageEncoding"]
                .as_str()
                .unwrap_or("base64")
                .to_ascii_lowercase(),
            max_polling_interval: match queues["maxPollingInterval"].as_str() {
                Some(s) => parse_timespan(s)
                    .context("host.json: maxPollingInterval")?
                    .max(Duration::from_millis(100)),
                None => Duration::from_secs(60),
            },
        };
        let function_timeout = match host["functionTimeout"].as_str() {
            Some("-1") | None => None,
            Some(s) => Some(parse_timespan(s).context("host.json: functionTimeout")?),
        };
        let mut functions = Vec::new();
        for entry in std::fs::read_dir(functions_dir)
            .with_context(|| format!("listing {}", functions_dir.display()))?
        {
            let path = entry?.path().join("function.json");
            if !path.is_file() {
                continue;
            }
            let name = path
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .context("function folder name")?;
            functions
                .push(read_function(&name, &path).with_context(|| format!("{}", path.display()))?);
        }
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            root: root.to_owned(),
            executable,
            forwarding: handler["enableForwardingHttpRequest"]
                .as_bool()
                .unwrap_or(false),
            route_prefix: host["extensions"]["http"]["routePrefix"]
                .as_str()
                .unwrap_or("api")
                .to_owned(),
            function_timeout,
            queues,
            functions,
        })
    }

    /// The function named `name` (case-insensitive, as the host's names are).
    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// [`App::function`], or an error saying there is no function `name`.
    pub fn require_function(&self, name: &str) -> anyhow::Result<&FunctionDef> {
        self.function(name)
            .with_context(|| format!("no function {name}"))
    }
}

fn u32_or(value: &Value, default: u32) -> anyhow::Result<u32> {
    match value {
        Value::Null => Ok(default),
        v => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .with_context(|| format!("expected a whole number, found {v}")),
    }
}

/// Parses a .NET TimeSpan as host.json writes it: `hh:mm:ss`, `d.hh:mm:ss`, optional fraction.
pub fn parse_timespan(text: &str) -> anyhow::Result<Duration> {
    let (days, rest) = match text.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (d.parse::<u64>()?, rest),
        _ => (0, text),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        bail!("`{text}` is not a TimeSpan (hh:mm:ss)");
    };
    let seconds: f64 = s.parse()?;
    let total = days * 86_400 + h.parse::<u64>()? * 3_600 + m.parse::<u64>()? * 60;
    Ok(Duration::from_secs(total) + Duration::from_secs_f64(seconds))
}

fn read_function(name: &str, path: &Path) -> anyhow::Result<FunctionDef> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let bindings: Vec<Binding> = doc["bindings"]
        .as_array()
        .context("`bindings` must be an array")?
        .iter()
        .map(|b| {
            b.as_object()
                .cloned()
                .context("a binding must be an object")
        })
        .collect::<anyhow::Result<_>>()?;
    let trigger = bindings
        .iter()
        .find(|b| {
            b.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.to_ascii_lowercase().ends_with("trigger"))
        })
        .context("no trigger binding")?;
    let text = |key: &str| trigger.get(key).and_then(Value::as_str).map(str::to_owned);
    let trigger_name = text("name").context("trigger binding has no name")?;
    let kind = text("type").unwrap_or_default();
    let trigger = match kind.as_str() {
        "httpTrigger" => TriggerDef::Http {
            methods: trigger
                .get("methods")
                .and_then(Value::as_array)
                .map(|ms| {
                    ms.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_uppercase)
                        .collect()
                })
                .unwrap_or_default(),
            route: text("route").unwrap_or_else(|| name.to_owned()),
            auth_level: text("authLevel")
                .unwrap_or_else(|| "function".to_owned())
                .to_ascii_lowercase(),
        },
        "queueTrigger" => TriggerDef::Queue {
            queue_name: text("queueName").context("queueTrigger without queueName")?,
            connection: text("connection").unwrap_or_else(|| "AzureWebJobsStorage".to_owned()),
        },
        "timerTrigger" => TriggerDef::Timer {
            schedule: text("schedule").context("timerTrigger without schedule")?,
            run_on_startup: trigger
                .get("runOnStartup")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        other => bail!("trigger type `{other}` is not simulated"),
    };
    Ok(FunctionDef {
        name: name.to_owned(),
        trigger_name,
        trigger,
        bindings,
    })
}

/// Expands `%NAME%` references from `settings`, as the host does for binding expressions; an
/// unresolved reference is an error, as it is for the host's indexing.
pub fn resolve_setting(value: &str, settings: &[(String, String)]) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('%')
            .with_context(|| format!("unterminated %…% in `{value}`"))?;
        let name = &after[..end];
        let found = settings
            .iter()
            .find(|(k, _)| k == name)
            .with_context(|| format!("app setting `{name}` (used in `{value}`) is not set"))?;
        out.push_str(&found.1);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
