//! The schedule of a chaos run: put at the start (every minute, its runs notifying the run's
//! receiver), ticked by every handler process (each `serve` ticks on its own, so ticks race as two
//! timers would) through the kills and restarts; paused once the deployments are done and
//! accounted for: every scheduled time since it was made either started exactly the run its id
//! names or was counted missed, and every run ended as a clean run ends.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::verify::Ending;
use super::workload::Kind;

/// The schedule's name (its runs are `{NAME}-{yyyyMMddHHmm}`).
pub const NAME: &str = "chaos-minutely";
const MINUTE_MS: i64 = 60_000;

/// What became of the schedule.
#[derive(Debug, Default)]
pub struct Accounting {
    /// Runs started (deployments of the schedule).
    pub runs: usize,
    /// Scheduled times counted missed by Berth (a tick that found several due starts the latest).
    pub missed: u64,
    /// Times neither started nor counted missed, runs no time explains, and the like.
    pub problems: Vec<String>,
}

/// The harness's view of the API: a keyed client on one handler.
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    pub key: &'a str,
    /// A handler's base URL per attempt (any handler: one may be down).
    pub url: &'a dyn Fn(usize) -> String,
    pub deadline: Instant,
}

impl Api<'_> {
    /// Sends until a handler answers (2xx, or a 4xx that will not change), or the deadline.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut last = String::new();
        for attempt in 0.. {
            anyhow::ensure!(Instant::now() < self.deadline, "{method} {path}: {last}");
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", (self.url)(attempt)))
                .header("x-functions-key", self.key)
                .timeout(Duration::from_secs(30));
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => {
                    let code = r.status().as_u16();
                    return Ok((code, r.json().await.unwrap_or(Value::Null)));
                }
                Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        unreachable!("the loop returns")
    }
}

/// Puts the schedule; the key its runs are signed with, from the answer that made it.
pub async fn put(api: &Api<'_>, hook: &str) -> anyhow::Result<Option<String>> {
    let mut spec = Kind::Scheduled.spec("unused");
    spec.as_object_mut().context("a spec")?.remove("id");
    spec["notify"] = json!([{ "url": hook }]);
    let body = json!({ "cron": "* * * * *", "timeZone": "UTC", "spec": spec });
    let (_, answer) = api
        .send(
            reqwest::Method::PUT,
            &format!("/api/schedules/{NAME}"),
            Some(&body),
        )
        .await?;
    Ok(answer["notifySecret"].as_str().map(str::to_owned))
}

/// Waits (within the deadline) until the schedule has started a run, pauses it, accounts for
/// every scheduled time and follows each run to its end. The endings join the deployments'.
pub async fn finish(
    api: &Api<'_>,
    secret: Option<String>,
) -> anyhow::Result<(Accounting, Vec<Ending>)> {
    let path = format!("/api/schedules/{NAME}");
    let mut view = Value::Null;
    while Instant::now() < api.deadline {
        view = api.send(reqwest::Method::GET, &path, None).await?.1;
        if !view["lastRun"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    api.send(reqwest::Method::POST, &format!("{path}/pause"), None)
        .await?;
    let view = match api.send(reqwest::Method::GET, &path, None).await? {
        (200, v) => v,
        _ => view,
    };
    let mut accounting = Accounting {
        missed: view["missedRuns"].as_u64().unwrap_or(0),
        ..Accounting::default()
    };
    let ids = run_ids(api).await?;
    accounting.runs = ids.len();
    let time = |field: &Value| field.as_str().and_then(berth::clock::parse_rfc3339);
    match (
        time(&view["createdTime"]),
        time(&view["lastRun"]["scheduledTime"]),
    ) {
        (Some(created), Some(last)) => {
            let first = created.div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS;
            let times: Vec<i64> = (first..=last).step_by(MINUTE_MS as usize).collect();
            let expected = times.len() as u64;
            let started: Vec<&String> = ids
                .iter()
                .filter(|id| {
                    times
                        .iter()
                        .any(|&t| berth::schedule::run_id(NAME, t) == **id)
                })
                .collect();
            if started.len() != ids.len() {
                accounting.problems.push(format!(
                    "runs no scheduled time explains: {ids:?} for {times:?}"
                ));
            }
            if started.len() as u64 + accounting.missed != expected {
                accounting.problems.push(format!(
                    "{expected} scheduled times, {} started and {} counted missed",
                    started.len(),
                    accounting.missed
                ));
            }
        }
        _ => accounting
            .problems
            .push(format!("the schedule never started a run: {view}")),
    }
    let mut endings = Vec::new();
    for id in ids {
        endings.push(follow(api, id, secret.clone()).await);
    }
    api.send(reqwest::Method::DELETE, &path, None).await?;
    Ok((accounting, endings))
}

/// The ids of the schedule's runs, from every page of the deployments list.
async fn run_ids(api: &Api<'_>) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = "/api/deployments?top=1000".to_owned();
        if let Some(t) = &token {
            path.push_str(&format!("&continuationToken={t}"));
        }
        let (_, page) = api.send(reqwest::Method::GET, &path, None).await?;
        for d in page["deployments"].as_array().into_iter().flatten() {
            if let Some(id) = d["id"].as_str()
                && id.starts_with(&format!("{NAME}-"))
            {
                ids.push(id.to_owned());
            }
        }
        token = page["continuationToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    ids.sort();
    Ok(ids)
}

/// Follows run `id` until it is done (or the deadline).
async fn follow(api: &Api<'_>, id: String, secret: Option<String>) -> Ending {
    let mut ending = Ending {
        id: id.clone(),
        kind: Kind::Scheduled,
        status: None,
        problem: None,
        notify_secret: secret,
    };
    while Instant::now() < api.deadline {
        match api
            .send(
                reqwest::Method::GET,
                &format!("/api/deployments/{id}"),
                None,
            )
            .await
        {
            Ok((200, status)) => ending.status = Some(status),
            Ok((code, _)) => ending.problem = Some(format!("GET: {code}")),
            Err(e) => ending.problem = Some(e.to_string()),
        }
        if ending.terminal() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ending
}
