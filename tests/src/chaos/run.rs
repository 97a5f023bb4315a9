//! One chaos run: start the system, submit the deployments with bounded concurrency while handler
//! processes are killed and started again, the queue is tampered with, the emulator fails and
//! Azurite restarts; wait (bounded) for every deployment to end; clear the faults, sweep once with
//! no grace period and check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use super::cluster::Cluster;
use super::hooks::Hooks;
use super::rng::Rng;
use super::tamper::{self, Tampering};
use super::verify::{self, Ending, Findings};
use super::workload::Kind;
use super::{Options, capacity_counts, line, notify_counts, schedule_counts, schedules};

/// What a run found, with the counts of its line.
pub struct Outcome {
    pub line: String,
    pub findings: Findings,
    pub kills: usize,
    pub elapsed: Duration,
    pub passed: bool,
}

struct Ctx {
    cluster: Arc<Cluster>,
    http: reqwest::Client,
    deployments: usize,
    submitted: AtomicUsize,
    finished: AtomicUsize,
    kills: AtomicUsize,
    deadline: Instant,
    hooks: Hooks,
}

impl Ctx {
    fn handler_url(&self, n: usize) -> String {
        self.cluster.handlers[n % self.cluster.handlers.len()].url()
    }

    async fn get(&self, n: usize, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.handler_url(n)))
            .header("x-functions-key", &self.cluster.api_key)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// POSTs `body` until a handler answers 2xx (any handler: one may be down), or the deadline;
    /// the answer's JSON body (`null` when it has none).
    async fn post(&self, path: &str, body: &Value, rng: &mut Rng) -> Result<Value, String> {
        let mut last = String::new();
        for attempt in 0.. {
            if Instant::now() > self.deadline {
                return Err(format!("POST {path} never accepted: {last}"));
            }
            let response = self
                .http
                .post(format!("{}{path}", self.handler_url(attempt)))
                .header("x-functions-key", &self.cluster.api_key)
                .timeout(Duration::from_secs(30))
                .json(body)
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => {
                    return Ok(r.json().await.unwrap_or(Value::Null));
                }
                // A different spec under the same id: the harness never sends one.
                Ok(r) if r.status().as_u16() == 409 => {
                    return Err(format!(
                        "POST {path}: 409 {}",
                        r.text().await.unwrap_or_default()
                    ));
                }
                Ok(r) => last = format!("{}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(rng.millis(100, 500)).await;
        }
        Err(format!("POST {path} never accepted: {last}"))
    }
}

/// Submits one deployment and follows it to its end (a service gets its `teardown` once running).
async fn drive(ctx: Arc<Ctx>, index: usize, mut rng: Rng) -> Ending {
    let kind = Kind::for_index(index);
    let id = format!("c{index:04}-{}", kind.label());
    let mut ending = Ending {
        id: id.clone(),
        kind,
        status: None,
        problem: None,
        notify_secret: None,
    };
    let mut spec = kind.spec(&id);
    if kind.notifies() {
        spec["notify"] = serde_json::json!([{ "url": ctx.hooks.url_for(&id) }]);
    }
    let submitted = ctx.post("/api/deployments", &spec, &mut rng).await;
    ctx.submitted.fetch_add(1, Ordering::Relaxed);
    match submitted {
        Ok(answer) => ending.notify_secret = answer["notifySecret"].as_str().map(str::to_owned),
        Err(e) => {
            ending.problem = Some(e);
            return ending;
        }
    }
    let path = format!("/api/deployments/{id}");
    let mut torn_down = kind != Kind::Service;
    for n in index.. {
        if Instant::now() > ctx.deadline {
            ending.problem = Some("deadline passed".into());
            break;
        }
        tokio::time::sleep(rng.millis(300, 1000)).await;
        let Some(status) = ctx.get(n, &path).await else {
            continue;
        };
        let running = status["groups"][0]["containers"][0]["state"] == "Running";
        ending.status = Some(status);
        if ending.terminal() {
            break;
        }
        if !torn_down && running {
            let event = format!("{path}/events/teardown");
            if let Err(e) = ctx.post(&event, &serde_json::json!({}), &mut rng).await {
                ending.problem = Some(e);
                break;
            }
            torn_down = true;
        }
    }
    ctx.finished.fetch_add(1, Ordering::Relaxed);
    ending
}

/// Waits until `count` deployments are submitted, or all are finished.
async fn until_submitted(ctx: &Ctx, count: usize) {
    while ctx.submitted.load(Ordering::Relaxed) < count
        && ctx.finished.load(Ordering::Relaxed) < ctx.deployments
        && Instant::now() < ctx.deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGKILLs handler processes, spread over the submissions; the supervisor starts them again.
async fn kill_handlers(ctx: Arc<Ctx>, kills: usize, mut rng: Rng) {
    let per_kill = (ctx.deployments / kills.max(1)).max(1) as u64;
    for k in 0..kills {
        let at = k * ctx.deployments / kills.max(1) + rng.range(0..per_kill) as usize;
        until_submitted(&ctx, at).await;
        tokio::time::sleep(rng.millis(0, 1500)).await;
        loop {
            if Instant::now() > ctx.deadline {
                return;
            }
            let victim = rng.range(0..ctx.cluster.handlers.len() as u64) as usize;
            if ctx.cluster.kill(victim, rng.millis(200, 3000)) {
                ctx.kills.fetch_add(1, Ordering::Relaxed);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Starts handlers that are down (killed, or exited because storage was down), as a host would.
async fn supervise(ctx: Arc<Ctx>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        for h in 0..ctx.cluster.handlers.len() {
            if let Err(e) = ctx.cluster.ensure_running(h) {
                eprintln!("chaos: starting {}: {e:#}", ctx.cluster.handlers[h].name);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Restarts Azurite `restarts` times, spread over the submissions.
async fn restart_azurite(ctx: Arc<Ctx>, restarts: usize, mut rng: Rng) -> usize {
    let mut done = 0;
    for r in 0..restarts {
        until_submitted(&ctx, (r + 1) * ctx.deployments / (restarts + 1)).await;
        if Instant::now() > ctx.deadline {
            break;
        }
        match ctx.cluster.azurite.restart(rng.millis(500, 3000)).await {
            Ok(()) => done += 1,
            Err(e) => eprintln!("chaos: restarting Azurite: {e:#}"),
        }
    }
    done
}

/// Runs `handler sweep` now and then as the `cleanup` timer would (a grace of one minute).
async fn sweep_now_and_then(ctx: Arc<Ctx>, stop: Arc<AtomicBool>) -> (usize, usize) {
    let (mut runs, mut failures) = (0, 0);
    let mut next = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if Instant::now() < next {
            continue;
        }
        runs += 1;
        if let Err(e) = ctx.cluster.sweep("PT1M").await {
            failures += 1;
            eprintln!("chaos: a sweep during the run failed: {e:#}");
        }
        next = Instant::now() + Duration::from_secs(30);
    }
    (runs, failures)
}

/// Runs the whole thing on a started cluster.
pub async fn run(options: &Options, cluster: Arc<Cluster>) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let rng = Rng::new(options.seed);
    let ctx = Arc::new(Ctx {
        cluster: cluster.clone(),
        http: reqwest::Client::new(),
        deployments: options.deployments,
        submitted: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        kills: AtomicUsize::new(0),
        deadline: started + options.deadline,
        hooks: Hooks::start().await?,
    });
    let handler_url = |n: usize| ctx.handler_url(n);
    let api = schedules::Api {
        http: &ctx.http,
        key: &cluster.api_key,
        url: &handler_url,
        deadline: ctx.deadline,
    };
    let schedule_secret = schedules::put(&api, &ctx.hooks.url_for(schedules::NAME)).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Tampering::default());
    let supervisor = tokio::spawn(supervise(ctx.clone(), stop.clone()));
    let shuffler = tokio::spawn(tamper::shuffle_steps(
        cluster.azurite.connection(),
        counters.clone(),
        rng.fork(1),
        stop.clone(),
    ));
    let faults = tokio::spawn(tamper::vary_faults(
        cluster.emulator.url.clone(),
        counters.clone(),
        rng.fork(2),
        stop.clone(),
    ));
    let killer = tokio::spawn(kill_handlers(ctx.clone(), options.kills, rng.fork(3)));
    let azurite = tokio::spawn(restart_azurite(
        ctx.clone(),
        options.azurite_restarts,
        rng.fork(4),
    ));
    let sweeper = tokio::spawn(sweep_now_and_then(ctx.clone(), stop.clone()));
    let progress = {
        let ctx = ctx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!(
                    "chaos: {:>4} s: {} submitted, {} finished, {} kills",
                    started.elapsed().as_secs(),
                    ctx.submitted.load(Ordering::Relaxed),
                    ctx.finished.load(Ordering::Relaxed),
                    ctx.kills.load(Ordering::Relaxed)
                );
            }
        })
    };

    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut drives = Vec::new();
    for index in 0..options.deployments {
        let permit = slots.clone().acquire_owned().await?;
        let (ctx, rng) = (ctx.clone(), rng.fork(100 + index as u64));
        drives.push(tokio::spawn(async move {
            let ending = drive(ctx, index, rng).await;
            drop(permit);
            ending
        }));
    }
    let mut endings = Vec::new();
    for drive in drives {
        endings.push(drive.await?);
    }
    // The schedule has ticked all along; once it has run at least once it is paused and its
    // runs join the deployments checked.
    let (scheduled, runs) = schedules::finish(&api, schedule_secret).await?;
    endings.extend(runs);
    // Every deployment ended (or the deadline passed): the kills and restarts are over too.
    killer.await?;
    let restarts = azurite.await?;
    stop.store(true, Ordering::Relaxed);
    let shuffled = shuffler.await?;
    faults.await??;
    let (sweeps, sweep_failures) = sweeper.await?;
    supervisor.await?;
    progress.abort();
    if let Err(e) = shuffled {
        eprintln!("chaos: the queue shuffler stopped early: {e:#}");
    }
    for h in 0..cluster.handlers.len() {
        cluster.ensure_running(h)?;
    }
    let kills = ctx.kills.load(Ordering::Relaxed);
    eprintln!(
        "chaos: {kills} kills, {restarts} Azurite restarts, {sweeps} sweeps during the run ({sweep_failures} failed), {}",
        counters.summary()
    );

    let report = cluster.sweep("PT0S").await?;
    eprintln!("chaos: final sweep: {report}");
    let mut findings = verify::check(&cluster, &endings).await?;
    verify::notifications(&endings, &ctx.hooks.deliveries(), &mut findings);
    let elapsed = started.elapsed();
    for (what, list) in [
        ("lost", &findings.lost),
        ("duplicate create", &findings.duplicate_creates),
        ("orphan group", &findings.orphan_groups),
        ("leftover process", &findings.leftover_processes),
        ("missing logs", &findings.missing_logs),
        ("notification", &findings.notify_problems),
        ("unexpected outcome", &findings.unexpected),
        ("schedule", &scheduled.problems),
    ] {
        for item in list {
            eprintln!("chaos: {what}: {item}");
        }
    }
    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    for ending in &endings {
        let status = ending
            .status
            .as_ref()
            .and_then(|s| s["runtimeStatus"].as_str())
            .unwrap_or("unknown");
        *by_status.entry(status.to_owned()).or_default() += 1;
    }
    eprintln!(
        "chaos: outcomes {by_status:?}, {} groups created, {} unexpected outcomes, {:.1} s elapsed",
        findings.groups_created,
        findings.unexpected.len(),
        elapsed.as_secs_f64()
    );
    eprintln!("chaos: slowest {}", slowest(&endings, 5));
    let line = line(
        options.deployments,
        kills,
        findings.lost.len(),
        findings.duplicates(),
        findings.orphans(),
        findings.missing_logs.len(),
        findings.quota_holds,
    ) + &capacity_counts(findings.evictions, findings.fallbacks)
        + &notify_counts(findings.notified, findings.redelivered)
        + &schedule_counts(scheduled.runs, scheduled.missed);
    let passed = findings.lost.is_empty()
        && findings.duplicates() == 0
        && findings.orphans() == 0
        && findings.missing_logs.is_empty()
        && findings.notify_problems.is_empty()
        && scheduled.problems.is_empty();
    Ok(Outcome {
        line,
        findings,
        kills,
        elapsed,
        passed,
    })
}

/// The `n` deployments that took longest from creation to their last update, as
/// `id (kind) N s`: where a slow run spent its time.
fn slowest(endings: &[Ending], n: usize) -> String {
    let parse = |s: &Value, field: &str| {
        s[field].as_str().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let mut took: Vec<(f64, &Ending)> = endings
        .iter()
        .filter_map(|e| {
            let s = e.status.as_ref()?;
            let spent = parse(s, "lastUpdatedTime")? - parse(s, "createdTime")?;
            Some((spent.as_seconds_f64(), e))
        })
        .collect();
    took.sort_by(|a, b| b.0.total_cmp(&a.0));
    let shown: Vec<String> = took
        .iter()
        .take(n)
        .map(|(seconds, e)| format!("{} ({:?}) {seconds:.0} s", e.id, e.kind))
        .collect();
    shown.join(", ")
}
