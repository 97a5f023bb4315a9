//! The checks after a chaos run: every deployment terminal, one create per group name (so one per
//! group, instance and attempt), a pipeline's stages in order with exactly their creates, no group
//! and no process left, logs saved for every group that ran.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde_json::Value;

use super::cluster::Cluster;
use super::procs;
use super::workload::{Kind, PIPELINE_CREATES, PIPELINE_OUTPUT, SHARE_ACCOUNT, SHARE_NAME};

/// How one deployment ended, as the harness saw it.
#[derive(Debug, Clone)]
pub struct Ending {
    pub id: String,
    pub kind: Kind,
    /// The last status document read, if any.
    pub status: Option<Value>,
    /// Why the harness could not follow it to the end, if it could not.
    pub problem: Option<String>,
    /// The key its notifications are signed with, from the `202` that created it (`None` when
    /// the answer that carried it was lost to a kill: its signatures cannot be checked then).
    pub notify_secret: Option<String>,
}

impl Ending {
    /// Terminal: a final `runtimeStatus` and nothing more to do (`phase: Done`).
    pub fn terminal(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s["phase"] == "Done"
                && ["Succeeded", "Failed", "TimedOut", "Terminated"]
                    .contains(&s["runtimeStatus"].as_str().unwrap_or(""))
        })
    }
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    pub lost: Vec<String>,
    pub duplicate_creates: Vec<String>,
    pub orphan_groups: Vec<String>,
    pub leftover_processes: Vec<String>,
    pub missing_logs: Vec<String>,
    /// Terminal, but not as a clean run ends (reported, not counted in the line).
    pub unexpected: Vec<String>,
    pub groups_created: usize,
    /// Creates held for capacity (`CreateHeld` in the histories; see [`super::cluster::CORES`]).
    pub quota_holds: usize,
    /// Attempts that ended evicted (Spot), from the deployments' histories.
    pub evictions: usize,
    /// Creates moved to the next region after a capacity refusal, from the histories.
    pub fallbacks: usize,
    /// Notifying deployments whose notification arrived as it should.
    pub notified: usize,
    /// Deliveries of a notification after its first accepted one (at least once).
    pub redelivered: usize,
    /// A notification missing, of the wrong outcome, or badly signed.
    pub notify_problems: Vec<String>,
}

impl Findings {
    /// The `O` of the line: groups and processes left behind.
    pub fn orphans(&self) -> usize {
        self.orphan_groups.len() + self.leftover_processes.len()
    }

    /// The `D` of the line: creates beyond the first of each name.
    pub fn duplicates(&self) -> usize {
        self.duplicate_creates.len()
    }
}

async fn get_json(http: &reqwest::Client, url: &str, key: Option<&str>) -> anyhow::Result<Value> {
    let mut request = http.get(url);
    if let Some(key) = key {
        request = request.header("x-functions-key", key);
    }
    let response = request.send().await?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "GET {url}: {status}");
    Ok(response.json().await?)
}

/// Runs every check. Faults must be cleared and the sweep run before.
pub async fn check(cluster: &Cluster, endings: &[Ending]) -> anyhow::Result<Findings> {
    let http = reqwest::Client::new();
    let mut findings = Findings::default();
    let api = cluster.handlers[0].url();
    let key = Some(cluster.api_key.as_str());

    for ending in endings {
        if !ending.terminal() {
            let seen = match &ending.status {
                Some(s) => format!("{} / {}", s["runtimeStatus"], s["phase"]),
                None => "never seen".into(),
            };
            let problem = ending.problem.clone().unwrap_or_default();
            findings
                .lost
                .push(format!("{}: not terminal ({seen}) {problem}", ending.id));
            continue;
        }
        let status = ending.status.as_ref().map_or(Value::Null, Clone::clone);
        if status["runtimeStatus"] != ending.kind.expected() {
            findings.unexpected.push(format!(
                "{}: {} instead of {} (error: {})",
                ending.id,
                status["runtimeStatus"],
                ending.kind.expected(),
                status["error"]
            ));
        } else if let Some((file, expected)) = match ending.kind {
            Kind::Share => Some((format!("{}.txt", ending.id), ending.id.clone())),
            Kind::Pipeline => Some((format!("{}.out", ending.id), PIPELINE_OUTPUT.to_owned())),
            _ => None,
        } {
            let path = cluster
                .emulator
                .data
                .join(format!("shares/{SHARE_ACCOUNT}/{SHARE_NAME}/{file}"));
            let written = std::fs::read_to_string(&path).unwrap_or_default();
            if written.trim() != expected {
                findings.unexpected.push(format!(
                    "{}: succeeded but its share file {file} holds {written:?}",
                    ending.id
                ));
            }
        }
    }

    // One create per group name, and which groups ran.
    let stats = get_json(
        &http,
        &format!("{}/_emulator/stats", cluster.emulator.url),
        None,
    )
    .await
    .context("reading the emulator's stats")?;
    let mut ran: BTreeSet<String> = BTreeSet::new();
    if let Some(creates) = stats["createsByName"].as_object() {
        for (name, count) in creates {
            ran.insert(name.clone());
            let count = count.as_u64().unwrap_or(0);
            for _ in 1..count {
                findings
                    .duplicate_creates
                    .push(format!("{name}: created {count} times"));
            }
        }
    }

    // Nothing left: no container group in ARM, no container process.
    let mut url = Some(cluster.emulator.groups_url());
    while let Some(next) = url.take() {
        let page = get_json(&http, &next, None)
            .await
            .context("listing container groups")?;
        for group in page["value"].as_array().into_iter().flatten() {
            findings
                .orphan_groups
                .push(group["name"].as_str().unwrap_or("?").to_owned());
        }
        url = page["nextLink"].as_str().map(str::to_owned);
    }
    let live = stats["liveProcesses"].as_u64().unwrap_or(0);
    if live > 0 {
        findings.leftover_processes.push(format!(
            "the emulator reports {live} live container processes"
        ));
    }
    for (pid, command) in procs::descendants(cluster.emulator.pid) {
        findings
            .leftover_processes
            .push(format!("pid {pid} ({command}) under the emulator"));
    }

    // Logs for every container of every group that ran (the emulator's creates and the history).
    let kinds: BTreeMap<&str, Kind> = endings.iter().map(|e| (e.id.as_str(), e.kind)).collect();
    for ending in endings.iter().filter(|e| e.terminal()) {
        let url = format!("{api}/api/deployments/{}/history", ending.id);
        if let Ok(history) = get_json(&http, &url, key).await {
            for event in history["history"].as_array().into_iter().flatten() {
                if event["eventType"] == "CreateHeld" {
                    findings.quota_holds += 1;
                }
                if event["eventType"] == "GroupCreated"
                    && let Some(name) = event["detail"].as_str()
                {
                    ran.insert(name.to_owned());
                }
                match event["eventType"].as_str() {
                    Some("Evicted") => findings.evictions += 1,
                    Some("LocationFallback") => findings.fallbacks += 1,
                    _ => {}
                }
            }
        }
    }
    findings.groups_created = ran.len();
    let mut pipeline_creates: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &ran {
        let Some((id, kind, _group)) = owner(name, &kinds) else {
            findings
                .missing_logs
                .push(format!("{name}: not a group of this run"));
            continue;
        };
        if kind == Kind::Pipeline {
            *pipeline_creates.entry(id).or_default() += 1;
        }
        for container in kind.containers() {
            let url = format!("{api}/api/deployments/{id}/logs/{name}/{container}");
            let response = http
                .get(&url)
                .header("x-functions-key", &cluster.api_key)
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => findings
                    .missing_logs
                    .push(format!("{name}/{container}: {}", r.status())),
                Err(e) => findings
                    .missing_logs
                    .push(format!("{name}/{container}: {e}")),
            }
        }
    }
    // A pipeline that succeeded created each (group, instance, attempt) once: no more, no fewer.
    for ending in endings
        .iter()
        .filter(|e| e.kind == Kind::Pipeline && e.terminal())
    {
        let created = pipeline_creates
            .get(ending.id.as_str())
            .copied()
            .unwrap_or(0);
        let succeeded = ending
            .status
            .as_ref()
            .is_some_and(|s| s["runtimeStatus"] == "Succeeded");
        if created > PIPELINE_CREATES {
            findings.duplicate_creates.push(format!(
                "{}: {created} instances created, {PIPELINE_CREATES} expected",
                ending.id
            ));
        } else if succeeded && created < PIPELINE_CREATES {
            findings.unexpected.push(format!(
                "{}: succeeded with {created} instances created, {PIPELINE_CREATES} expected",
                ending.id
            ));
        }
    }
    Ok(findings)
}

/// The deployment, its kind and the group a container-group name belongs to: names are
/// `{id}-{group}-...` (plus the instance index, generation and hash).
fn owner<'a>(name: &str, kinds: &BTreeMap<&'a str, Kind>) -> Option<(&'a str, Kind, &'static str)> {
    kinds.iter().find_map(|(&id, &kind)| {
        let rest = name.strip_prefix(id)?.strip_prefix('-')?;
        let group = kind.groups().iter().find(|group| {
            rest.strip_prefix(**group)
                .is_some_and(|r| r.starts_with('-'))
        })?;
        Some((id, kind, *group))
    })
}

/// Checks each notifying deployment's deliveries: one accepted at least, every one of its
/// outcome's type, under one event id, signed with its key (when the harness has it).
pub fn notifications(
    endings: &[Ending],
    deliveries: &[super::hooks::Delivery],
    findings: &mut Findings,
) {
    for ending in endings.iter().filter(|e| e.kind.notifies() && e.terminal()) {
        let status = ending
            .status
            .as_ref()
            .and_then(|s| s["runtimeStatus"].as_str())
            .unwrap_or_default();
        let want = format!("berth.deployment.{}", status.to_ascii_lowercase());
        let mine: Vec<_> = deliveries
            .iter()
            .filter(|d| d.deployment == ending.id)
            .collect();
        let mut problems = Vec::new();
        let accepted = mine.iter().filter(|d| d.accepted).count();
        if accepted == 0 {
            problems.push(format!("none accepted of {} tries", mine.len()));
        }
        let ids: BTreeSet<&str> = mine.iter().map(|d| d.webhook_id.as_str()).collect();
        if ids.len() > 1 {
            problems.push(format!("several event ids {ids:?}"));
        }
        for d in &mine {
            let event: Value = serde_json::from_slice(&d.body).unwrap_or(Value::Null);
            if event["type"] != want.as_str() || event["id"] != d.webhook_id.as_str() {
                problems.push(format!(
                    "type {} id {} (want {want})",
                    event["type"], event["id"]
                ));
            }
            if let Some(key) = &ending.notify_secret {
                let timestamp = d.timestamp.parse::<i64>().unwrap_or(-1);
                let expected = berth::notify::signature(key, &d.webhook_id, timestamp, &d.body);
                if expected.as_deref() != Some(d.signature.as_str()) {
                    problems.push(format!("a bad signature on {}", d.webhook_id));
                }
            }
        }
        if problems.is_empty() {
            findings.notified += 1;
            findings.redelivered += accepted.saturating_sub(1);
        } else {
            findings
                .notify_problems
                .push(format!("{}: {}", ending.id, problems.join("; ")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_back_to_their_deployment_and_group() {
        let kinds = BTreeMap::from([
            ("c0001-share", Kind::Share),
            ("c0004-pipeline", Kind::Pipeline),
            ("c0014-pipeline", Kind::Pipeline),
        ]);
        assert_eq!(
            owner("c0001-share-work-1-0badcafe", &kinds),
            Some(("c0001-share", Kind::Share, "work"))
        );
        assert_eq!(
            owner("c0014-pipeline-shard-1-2-deadbeef", &kinds),
            Some(("c0014-pipeline", Kind::Pipeline, "shard"))
        );
        assert_eq!(owner("c0004-pipeline-work-1-0badcafe", &kinds), None);
        assert_eq!(owner("c0009-service-work-1-0badcafe", &kinds), None);
    }
}
