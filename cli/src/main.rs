//! `berth`: the command-line client of Berth, talking to any Berth over its HTTP API only.
//!
//! It finds Berth at `--url` (`BERTH_URL`, default `handler dev`'s `http://127.0.0.1:7071`) and
//! authenticates with `--key` (`BERTH_KEY`; with the default URL, `.berth/api.key` in the current
//! folder, where `handler dev` keeps it). Text for people goes to stdout, progress and errors to
//! stderr; `--json` prints the API's own documents on stdout instead.
//!
//! Exit codes: 0 done (for `submit --wait`: `Succeeded`), 1 `Failed`, 2 `TimedOut` or
//! `Terminated`, 3 a usage error, a local file, or an error answer or no answer from Berth.

mod client;
mod show;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory as _, Parser, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use client::{Client, Failure, printable};

/// The URL `handler dev` serves by default.
const DEV_URL: &str = "http://127.0.0.1:7071";
/// Where `handler dev` keeps its API key, from the folder it runs in (its default data folder).
const DEV_KEY_FILE: &str = ".berth/api.key";
/// The largest spec file read (Berth itself accepts 1 MB).
const MAX_SPEC_FILE: u64 = 8 * 1024 * 1024;
/// How long `--wait` waits between looks when Berth does not say (`Retry-After`), and at most.
const WAIT_DEFAULT: u64 = 2;
const WAIT_MAX: u64 = 60;
/// Failed looks in a row (Berth restarting, busy storage) that `--wait` rides out.
const WAIT_TRIES: u32 = 5;

const EXIT_CODES: &str = "\
Exit codes: 0 done (submit --wait: Succeeded), 1 Failed, 2 TimedOut or Terminated,
3 a usage error, a bad file, or an error answer (or none) from Berth.";

/// The command-line client of Berth's HTTP API.
#[derive(Parser)]
#[command(name = "berth", version, after_help = EXIT_CODES)]
struct Cli {
    /// Berth's base URL (its root or its /api).
    #[arg(long, env = "BERTH_URL", default_value = DEV_URL, global = true)]
    url: String,
    /// The API key, sent as x-functions-key [default: .berth/api.key when --url is dev's]
    #[arg(long, env = "BERTH_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// Print the API's JSON documents (logs: one JSON string per line).
    #[arg(long, global = true)]
    json: bool,
    /// Seconds one exchange with Berth may take (a log follow excepted).
    #[arg(long, env = "BERTH_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Store a template from a JSON file (its next version, unless it is the same as the latest).
    Put { name: String, file: PathBuf },
    /// A template version (the latest without --version).
    Get {
        name: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Templates by name, with their latest version.
    List {
        #[arg(long)]
        top: Option<u32>,
        #[arg(long)]
        continuation_token: Option<String>,
    },
    /// Delete every version of a template.
    Delete { name: String },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Create or replace a schedule from a JSON file (cron, timeZone, spec or template, ...).
    Put { name: String, file: PathBuf },
    /// A schedule: its definition, last and next run, missed runs, a held run.
    Get { name: String },
    /// Every schedule, by name.
    List,
    /// Delete a schedule (the deployments it started stay).
    Delete { name: String },
    /// Stop a schedule firing.
    Pause { name: String },
    /// Start a paused schedule firing again, from now on.
    Resume { name: String },
}

#[derive(Subcommand)]
enum Command {
    /// Start a deployment from a spec file (JSON, or ACI YAML for .yaml and .yml).
    Submit {
        #[arg(required_unless_present = "template")]
        file: Option<PathBuf>,
        /// Start it from this template instead of a file.
        #[arg(long, conflicts_with = "file")]
        template: Option<String>,
        /// With --template: the template version (the latest when absent).
        #[arg(long, requires = "template")]
        version: Option<u32>,
        /// With --template: a parameter's value, NAME=VALUE (typed as the template declares it).
        #[arg(
            short = 'p',
            long = "param",
            value_name = "NAME=VALUE",
            requires = "template"
        )]
        params: Vec<String>,
        /// With --template: the deployment's id (Berth makes one when absent).
        #[arg(long, requires = "template")]
        id: Option<String>,
        /// Wait until it is done, printing its progress; the exit code says how it ended.
        #[arg(long)]
        wait: bool,
    },
    /// Templates: specs with parameters, versioned.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Schedules: deployments started on a cron schedule.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// A deployment's status.
    Status { id: String },
    /// Deployments, newest first.
    List {
        /// Only those with this runtime status (Pending, Running, Succeeded, Failed, TimedOut, Terminated).
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 1000; Berth's default is 50).
        #[arg(long)]
        top: Option<u32>,
        /// The page after the one that printed this token.
        #[arg(long)]
        continuation_token: Option<String>,
    },
    /// A container's log: live while it runs, saved after.
    Logs {
        id: String,
        /// The spec's group name, or an ARM group name.
        group: String,
        container: String,
        /// Go on printing new lines until the container's group has ended.
        #[arg(long)]
        follow: bool,
        /// Only the last N lines (1 to 10000).
        #[arg(long)]
        tail: Option<u32>,
    },
    /// A deployment's events, in order.
    History { id: String },
    /// Raise a named event (completed, heartbeat, teardown, or any name).
    Raise {
        id: String,
        event: String,
        /// The event's payload, as JSON.
        #[arg(long)]
        data: Option<String>,
    },
    /// Stop a deployment and clean it up now.
    Terminate {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete a finished deployment's checkpoint, history and logs.
    Purge { id: String },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are answers, not errors.
            return ExitCode::from(if e.use_stderr() { 3 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(3)
        }
    }
}

/// Writes to stdout; a closed pipe (`berth list | head`) is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn out_json(value: &Value) {
    out(&format!("{value:#}\n"));
}

/// A path segment or query value, percent-encoded.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `path` with the query parameters that have a value.
/// Most history pages `berth history` follows (100 entries each), against a server that never
/// ends its pages.
const MAX_HISTORY_PAGES: usize = 1_000;

fn with_query(path: String, params: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={}", encode(v))))
        .collect();
    match query.is_empty() {
        true => path,
        false => format!("{path}?{}", query.join("&")),
    }
}

/// Whether `url` is `handler dev`'s default, however it is spelled.
fn is_dev_url(url: &str) -> bool {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/api").unwrap_or(url) == DEV_URL
}

/// The key: `--key` or `BERTH_KEY`, else dev's key file when the URL is dev's default.
fn api_key(url: &str, key: Option<String>) -> Result<Option<String>, Failure> {
    if key.is_some() || !is_dev_url(url) {
        return Ok(key);
    }
    match std::fs::read_to_string(DEV_KEY_FILE) {
        Ok(key) => Ok(Some(key.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::Usage(format!(
            "{DEV_KEY_FILE}: cannot read `handler dev`'s key: {e}"
        ))),
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let command = match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut script);
            out(&String::from_utf8_lossy(&script));
            return Ok(0);
        }
        command => command,
    };
    let timeout = Duration::from_secs(cli.timeout);
    let client = Client::new(&cli.url, api_key(&cli.url, cli.key)?, timeout)?;
    let json = cli.json;
    let deployment = |id: &str| format!("deployments/{}", encode(id));
    match command {
        Command::Submit {
            file,
            template,
            version,
            params,
            id,
            wait,
        } => {
            let body = match (file, template) {
                (Some(file), _) => spec_file(&file)?,
                (None, Some(name)) => invocation(&client, &name, version, &params, id).await?,
                (None, None) => return Err(Failure::Usage("give a FILE or --template".into())),
            };
            submit(&client, body, wait, json).await
        }
        Command::Template(command) => template(&client, command, json).await,
        Command::Schedule(command) => schedule(&client, command, json).await,
        Command::Status { id } => {
            let answer = client.call(Method::GET, &deployment(&id), None).await?;
            match json {
                true => out_json(&answer.body),
                false => out(&show::status(&answer.body)),
            }
            Ok(0)
        }
        Command::List {
            status,
            top,
            continuation_token,
        } => {
            let path = with_query(
                "deployments".to_owned(),
                &[
                    ("status", status),
                    ("top", top.map(|t| t.to_string())),
                    ("continuationToken", continuation_token),
                ],
            );
            let answer = client.call(Method::GET, &path, None).await?;
            if json {
                out_json(&answer.body);
                return Ok(0);
            }
            out(&show::list(&answer.body));
            if let Some(token) = answer.body["continuationToken"].as_str() {
                eprintln!(
                    "more: berth list --continuation-token {}",
                    printable(token, 1000)
                );
            }
            Ok(0)
        }
        Command::Logs {
            id,
            group,
            container,
            follow,
            tail,
        } => {
            let path = with_query(
                format!(
                    "{}/logs/{}/{}",
                    deployment(&id),
                    encode(&group),
                    encode(&container)
                ),
                &[
                    ("tail", tail.map(|t| t.to_string())),
                    ("follow", follow.then(|| "true".to_owned())),
                ],
            );
            let mut stdout = std::io::stdout().lock();
            if json {
                let mut lines = JsonLines::new(&mut stdout);
                client.log_to(&path, follow, &mut lines).await?;
                lines.finish();
            } else {
                client.log_to(&path, follow, &mut stdout).await?;
            }
            drop(stdout);
            if follow {
                // The server ends a follow after 30 minutes, even if the container runs on.
                let status = client.call(Method::GET, &deployment(&id), None).await?;
                let runtime_status = status.body["runtimeStatus"].as_str().unwrap_or("");
                if matches!(runtime_status, "Pending" | "Running") {
                    eprintln!(
                        "berth: the follow has ended and deployment {} is {runtime_status}; follow again to go on",
                        printable(&id, 200)
                    );
                }
            }
            Ok(0)
        }
        Command::History { id } => {
            // The history comes a page at a time, oldest first: follow the pages into one.
            let mut whole = Value::Null;
            let mut token: Option<String> = None;
            for _ in 0..MAX_HISTORY_PAGES {
                let path = with_query(
                    format!("{}/history", deployment(&id)),
                    &[("continuationToken", token.clone())],
                );
                let mut answer = client.call(Method::GET, &path, None).await?;
                let next = answer.body["continuationToken"].as_str().map(str::to_owned);
                match whole["history"].as_array_mut() {
                    Some(entries) => {
                        if let Some(more) = answer.body["history"].as_array_mut() {
                            entries.append(more);
                        }
                    }
                    None => whole = answer.body,
                }
                if next.is_none() || next == token {
                    break;
                }
                token = next;
            }
            if let Some(doc) = whole.as_object_mut() {
                doc.remove("continuationToken");
            }
            match json {
                true => out_json(&whole),
                false => out(&show::history(&whole)),
            }
            Ok(0)
        }
        Command::Raise { id, event, data } => {
            let body = match data {
                Some(data) => {
                    let value: Value = serde_json::from_str(&data)
                        .map_err(|e| Failure::Usage(format!("--data: not JSON: {e}")))?;
                    Some(("application/json", value.to_string().into_bytes()))
                }
                None => None,
            };
            let path = format!("{}/events/{}", deployment(&id), encode(&event));
            let answer = client.call(Method::POST, &path, body).await?;
            done(json, &answer.body, &format!("raised {event} on {id}"));
            Ok(0)
        }
        Command::Terminate { id, reason } => {
            let path = with_query(
                format!("{}/terminate", deployment(&id)),
                &[("reason", reason)],
            );
            let answer = client.call(Method::POST, &path, None).await?;
            done(json, &answer.body, &format!("terminating {id}"));
            Ok(0)
        }
        Command::Purge { id } => {
            let answer = client.call(Method::DELETE, &deployment(&id), None).await?;
            done(json, &answer.body, &format!("purged {id}"));
            Ok(0)
        }
        // Answered above, before a client is made.
        Command::Completions { .. } => Ok(0),
    }
}

/// Prints the API's answer with `--json`, else `said`.
fn done(json: bool, answer: &Value, said: &str) {
    answer_or(json, answer, &format!("{}\n", printable(said, 1000)));
}

/// Prints the API's answer with `--json`, else `said` (text made printable already).
fn answer_or(json: bool, answer: &Value, said: &str) {
    match json {
        true => out_json(answer),
        false => out(said),
    }
}

/// The spec file's bytes and their content type (`.yaml`/`.yml` are ACI YAML).
fn spec_file(file: &Path) -> Result<(&'static str, Vec<u8>), Failure> {
    let shown = file.display();
    let unreadable = |e: std::io::Error| Failure::Usage(format!("{shown}: cannot read: {e}"));
    let size = std::fs::metadata(file).map_err(unreadable)?.len();
    if size > MAX_SPEC_FILE {
        return Err(Failure::Usage(format!(
            "{shown}: {size} bytes is too large for a spec"
        )));
    }
    let bytes = std::fs::read(file).map_err(unreadable)?;
    let yaml = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let content_type = if yaml {
        "application/yaml"
    } else {
        "application/json"
    };
    Ok((content_type, bytes))
}

/// A parameter's value from `NAME=VALUE`, typed as the template declares `NAME` (a string when
/// it declares no such parameter: Berth then says so).
fn parameter(text: &str, declared: &Value) -> Result<(String, Value), Failure> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| Failure::Usage(format!("-p {text}: not NAME=VALUE")))?;
    let typed = match declared[name]["type"].as_str() {
        Some("number") => serde_json::from_str::<serde_json::Number>(value)
            .map(Value::Number)
            .map_err(|_| Failure::Usage(format!("-p {name}: '{value}' is not a number")))?,
        Some("boolean") => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(Failure::Usage(format!("-p {name}: true or false"))),
        },
        _ => Value::String(value.to_owned()),
    };
    Ok((name.to_owned(), typed))
}

/// The body that starts a deployment from template `name` (its declared types read first).
async fn invocation(
    client: &Client,
    name: &str,
    version: Option<u32>,
    params: &[String],
    id: Option<String>,
) -> Result<(&'static str, Vec<u8>), Failure> {
    let path = with_query(
        format!("templates/{}", encode(name)),
        &[("version", version.map(|v| v.to_string()))],
    );
    let template = client.call(Method::GET, &path, None).await?.body;
    let parameters = params
        .iter()
        .map(|p| parameter(p, &template["parameters"]))
        .collect::<Result<serde_json::Map<String, Value>, Failure>>()?;
    let mut body = serde_json::json!({ "template": name, "parameters": parameters });
    if let Some(version) = version {
        body["version"] = Value::from(version);
    }
    if let Some(id) = id {
        body["id"] = Value::from(id);
    }
    Ok(("application/json", body.to_string().into_bytes()))
}

/// `PUT`s the JSON `file` at `path` (a template or a schedule).
async fn put_file(client: &Client, path: &str, file: &Path) -> Result<client::Answer, Failure> {
    let (_, bytes) = spec_file(file)?;
    client
        .call(Method::PUT, path, Some(("application/json", bytes)))
        .await
}

async fn template(client: &Client, command: TemplateCommand, json: bool) -> Result<u8, Failure> {
    let path = |name: &str| format!("templates/{}", encode(name));
    let answer = match command {
        TemplateCommand::Put { name, file } => {
            let answer = put_file(client, &path(&name), &file).await?;
            if !json {
                let made = match answer.status {
                    StatusCode::CREATED => "stored",
                    _ => "unchanged",
                };
                out(&format!(
                    "{}: version {} {made}\n",
                    printable(&name, 200),
                    answer.body["version"]
                ));
                return Ok(0);
            }
            answer
        }
        TemplateCommand::Get { name, version } => {
            let query = [("version", version.map(|v| v.to_string()))];
            let answer = client
                .call(Method::GET, &with_query(path(&name), &query), None)
                .await?;
            out_json(&answer.body);
            return Ok(0);
        }
        TemplateCommand::List {
            top,
            continuation_token,
        } => {
            let query = [
                ("top", top.map(|t| t.to_string())),
                ("continuationToken", continuation_token),
            ];
            let answer = client
                .call(Method::GET, &with_query("templates".into(), &query), None)
                .await?;
            if !json {
                let rows = answer.body["templates"].as_array().cloned();
                for row in rows.unwrap_or_default() {
                    let name = printable(row["name"].as_str().unwrap_or("-"), 200);
                    out(&format!("{name}\t{}\n", row["latestVersion"]));
                }
                if let Some(token) = answer.body["continuationToken"].as_str() {
                    eprintln!("more: --continuation-token {}", printable(token, 1000));
                }
                return Ok(0);
            }
            answer
        }
        TemplateCommand::Delete { name } => client.call(Method::DELETE, &path(&name), None).await?,
    };
    if json {
        out_json(&answer.body);
    }
    Ok(0)
}

async fn schedule(client: &Client, command: ScheduleCommand, json: bool) -> Result<u8, Failure> {
    let path = |name: &str| format!("schedules/{}", encode(name));
    let (answer, said) = match command {
        ScheduleCommand::Put { name, file } => {
            let answer = put_file(client, &path(&name), &file).await?;
            let made = match answer.status {
                StatusCode::CREATED => "created",
                _ => "replaced",
            };
            let said = format!(
                "{}: {made}\n{}",
                printable(&name, 200),
                secret_line(&answer.body)
            );
            (answer, said)
        }
        ScheduleCommand::Get { name } => {
            let answer = client.call(Method::GET, &path(&name), None).await?;
            (answer, String::new())
        }
        ScheduleCommand::List => {
            let answer = client.call(Method::GET, "schedules", None).await?;
            let said = show::schedules(&answer.body);
            if !json {
                for why in show::unreadable(&answer.body) {
                    eprintln!("unreadable: {why}");
                }
            }
            answer_or(json, &answer.body, &said);
            return Ok(0);
        }
        ScheduleCommand::Delete { name } => {
            let answer = client.call(Method::DELETE, &path(&name), None).await?;
            done(json, &answer.body, &format!("deleted {name}"));
            return Ok(0);
        }
        ScheduleCommand::Pause { name } => {
            let action = format!("{}/pause", path(&name));
            let answer = client.call(Method::POST, &action, None).await?;
            (answer, String::new())
        }
        ScheduleCommand::Resume { name } => {
            let action = format!("{}/resume", path(&name));
            let answer = client.call(Method::POST, &action, None).await?;
            (answer, String::new())
        }
    };
    answer_or(json, &answer.body, &(said + &show::schedule(&answer.body)));
    Ok(0)
}

async fn submit(
    client: &Client,
    body: (&'static str, Vec<u8>),
    wait: bool,
    json: bool,
) -> Result<u8, Failure> {
    let answer = client.call(Method::POST, "deployments", Some(body)).await?;
    let id = answer.body["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Failure::Transport("the answer to the submit has no id".into()))?
        .to_owned();
    if !wait {
        if json {
            out_json(&answer.body);
        } else {
            out(&format!(
                "{}: {}\nstatus: {}\n{}",
                printable(&id, 200),
                show_field(&answer.body, "runtimeStatus"),
                show_field(&answer.body, "statusQueryGetUri"),
                secret_line(&answer.body),
            ));
        }
        return Ok(0);
    }
    eprintln!("submitted {}", printable(&id, 200));
    // Told once, by this answer only: said before the wait, which may be interrupted.
    eprint!("{}", secret_line(&answer.body));
    let status = wait_done(client, &id).await?;
    match json {
        true => out_json(&status),
        false => out(&show::status(&status)),
    }
    Ok(match status["runtimeStatus"].as_str() {
        Some("Succeeded") => 0,
        Some("Failed") => 1,
        Some("TimedOut" | "Terminated") => 2,
        _ => 3,
    })
}

/// The signing key an answer tells once (`notifySecret`), as a line; empty when it tells none.
fn secret_line(answer: &Value) -> String {
    match answer["notifySecret"].as_str() {
        Some(key) => format!(
            "notify secret (shown once, keep it): {}\n",
            printable(key, 200)
        ),
        None => String::new(),
    }
}

fn show_field(value: &Value, field: &str) -> String {
    printable(value[field].as_str().unwrap_or("-"), 1000)
}

/// Polls a deployment's status until Berth answers it is done (`200`, not `202`), waiting as
/// `Retry-After` says and printing a progress line to stderr whenever status, phase or a group's
/// state changes. The status URL is built from `--url`, not taken from the answers, so the key
/// is only ever sent to the Berth the caller named.
async fn wait_done(client: &Client, id: &str) -> Result<Value, Failure> {
    let path = format!("deployments/{}", encode(id));
    let started = Instant::now();
    let mut shown = String::new();
    let mut failed = 0;
    loop {
        let wait = match client.call(Method::GET, &path, None).await {
            Ok(answer) => {
                failed = 0;
                let line = show::progress(&answer.body);
                if line != shown {
                    eprintln!("{:>7.1}s  {line}", started.elapsed().as_secs_f64());
                    shown = line;
                }
                if answer.status != StatusCode::ACCEPTED {
                    return Ok(answer.body);
                }
                answer.retry_after.unwrap_or(WAIT_DEFAULT)
            }
            Err(failure) if failure.is_transient() && failed < WAIT_TRIES => {
                failed += 1;
                eprintln!("berth: {failure}; looking again");
                WAIT_DEFAULT * u64::from(failed)
            }
            Err(failure) => return Err(failure),
        };
        tokio::time::sleep(Duration::from_secs(wait.clamp(1, WAIT_MAX))).await;
    }
}

/// Writes a log as JSON Lines: each line of it as one JSON string.
struct JsonLines<'a, W: Write> {
    out: &'a mut W,
    partial: Vec<u8>,
}

impl<'a, W: Write> JsonLines<'a, W> {
    fn new(out: &'a mut W) -> Self {
        JsonLines {
            out,
            partial: Vec::new(),
        }
    }

    fn line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let text = Value::String(String::from_utf8_lossy(line).into_owned());
        writeln!(self.out, "{text}")
    }

    /// Writes the last line, if it had no newline.
    fn finish(mut self) {
        if !self.partial.is_empty() {
            let partial = std::mem::take(&mut self.partial);
            let _ = self.line(&partial).and_then(|()| self.out.flush());
        }
    }
}

impl<W: Write> Write for JsonLines<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.line(&line[..end])?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_query_values_are_encoded() {
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(
            with_query(
                "x".into(),
                &[
                    ("a", Some("1 2".into())),
                    ("b", None),
                    ("c", Some("&".into()))
                ]
            ),
            "x?a=1%202&c=%26"
        );
    }

    #[test]
    fn dev_url_is_recognised_however_spelled() {
        assert!(is_dev_url("http://127.0.0.1:7071/"));
        assert!(is_dev_url("http://127.0.0.1:7071/api"));
        assert!(!is_dev_url("http://127.0.0.1:7072"));
    }

    #[test]
    fn json_lines_writes_one_string_per_line_across_chunks() {
        let mut out = Vec::new();
        let mut lines = JsonLines::new(&mut out);
        lines.write_all(b"one\ntw").unwrap();
        lines.write_all(b"o \"q\"\nend").unwrap();
        lines.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"one\"\n\"two \\\"q\\\"\"\n\"end\"\n"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
