//! A group's workflow fields: `dependsOn`, `runWhen`, fan-out (`count` or `items`,
//! `parallelism`, `tolerateFailures`) and its own `retry`, `timeout` and `completion`; and the
//! checks across groups (names that exist, no self-reference, no cycle).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::duration::IsoDuration;
use super::error::{FieldPath, Problems};
use super::model::{Completion, GroupSpec, Mode, Retry, RunWhen};
use super::parse;

/// The workflow fields a group may have, beside name, properties, identity, zones, location.
pub const GROUP_FIELDS: [&str; 10] = [
    "dependsOn",
    "runWhen",
    "count",
    "items",
    "parallelism",
    "tolerateFailures",
    "retry",
    "timeout",
    "completion",
    "heartbeatTimeout",
];

/// Most instances one group fans out to.
pub const MAX_INSTANCES: u32 = 10_000;
/// Most bytes of one item, as JSON (it reaches the container as `BERTH_ITEM`).
pub const MAX_ITEM_BYTES: usize = 8 * 1024;

/// A group's workflow fields, read and checked one by one.
#[derive(Default)]
pub struct Flow {
    pub depends_on: Vec<String>,
    pub run_when: super::model::RunWhen,
    pub count: Option<u32>,
    pub items: Option<Vec<Value>>,
    pub parallelism: Option<u32>,
    pub tolerate_failures: u32,
    pub retry: Option<Retry>,
    pub timeout: Option<IsoDuration>,
    pub completion: Option<Completion>,
    pub heartbeat_timeout: Option<IsoDuration>,
}

/// Takes the workflow fields out of a group's object, each checked at its path.
pub fn group_fields(
    map: &mut Map<String, Value>,
    path: &FieldPath,
    mode: Mode,
    problems: &mut Problems,
) -> Flow {
    let mut flow = Flow::default();
    match map.remove("dependsOn") {
        None | Some(Value::Null) => {}
        Some(Value::Array(names)) => {
            let at = path.key("dependsOn");
            for (i, name) in names.into_iter().enumerate() {
                match name {
                    Value::String(name) => flow.depends_on.push(name),
                    _ => problems.add(&at.index(i), "must be a group name"),
                }
            }
        }
        Some(_) => problems.add(&path.key("dependsOn"), "must be an array of group names"),
    }
    let job_only = |key: &str, problems: &mut Problems| {
        if mode == Mode::Service {
            problems.add(
                &path.key(key),
                "applies to jobs; a service group runs until torn down",
            );
        }
    };
    match map.remove("runWhen") {
        None | Some(Value::Null) => {}
        Some(value) => {
            job_only("runWhen", problems);
            match value.as_str() {
                Some("succeeded") => flow.run_when = RunWhen::Succeeded,
                Some("failed") => flow.run_when = RunWhen::Failed,
                Some("always") => flow.run_when = RunWhen::Always,
                _ => problems.add(&path.key("runWhen"), "must be succeeded, failed or always"),
            }
        }
    }
    flow.count = whole(map, "count", 1, MAX_INSTANCES, path, problems);
    if flow.count.is_some() {
        job_only("count", problems);
    }
    match map.remove("items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            job_only("items", problems);
            let at = path.key("items");
            if items.is_empty() || items.len() > MAX_INSTANCES as usize {
                problems.add(&at, format!("has 1 to {MAX_INSTANCES} items"));
            }
            for (i, item) in items.iter().enumerate() {
                if serde_json::to_string(item).map_or(usize::MAX, |t| t.len()) > MAX_ITEM_BYTES {
                    problems.add(
                        &at.index(i),
                        format!("an item has at most {MAX_ITEM_BYTES} bytes as JSON; pass large data through a share"),
                    );
                }
            }
            if flow.count.is_some() {
                problems.add(&at, "count and items exclude each other");
            }
            flow.items = Some(items);
        }
        Some(_) => problems.add(&path.key("items"), "must be an array of JSON values"),
    }
    let instances = match (&flow.items, flow.count) {
        (Some(items), _) => items.len() as u32,
        (None, Some(count)) => count,
        (None, None) => 1,
    };
    flow.parallelism = whole(map, "parallelism", 1, MAX_INSTANCES, path, problems);
    flow.tolerate_failures =
        whole(map, "tolerateFailures", 0, MAX_INSTANCES, path, problems).unwrap_or(0);
    if flow.tolerate_failures >= instances.max(1) && flow.tolerate_failures > 0 {
        problems.add(
            &path.key("tolerateFailures"),
            format!("must be below the group's {instances} instance(s)"),
        );
    }
    if let Some(value) = map.remove("retry").filter(|v| !v.is_null()) {
        job_only("retry", problems);
        flow.retry = Some(parse::retry(Some(value), &path.key("retry"), problems));
    }
    flow.timeout = parse::duration(map, "timeout", path, problems);
    if let Some(timeout) = flow.timeout {
        job_only("timeout", problems);
        if timeout.millis() == 0 {
            problems.add(&path.key("timeout"), "must be longer than zero");
        }
    }
    flow.heartbeat_timeout = parse::heartbeat_timeout(map, path, problems);
    flow.completion = parse::completion(map, path, problems);
    if flow.completion.is_some() {
        job_only("completion", problems);
    }
    flow
}

/// A whole number field from `min` to `max`.
fn whole(
    map: &mut Map<String, Value>,
    key: &str,
    min: u32,
    max: u32,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<u32> {
    match map.remove(key) {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n) if (min as u64..=max as u64).contains(&n) => Some(n as u32),
            _ => {
                problems.add(
                    &path.key(key),
                    format!("must be a whole number from {min} to {max}"),
                );
                None
            }
        },
    }
}

/// Checks the groups' dependencies together: each names another group of the spec, once, and
/// following them never comes back to where it started.
pub fn check(groups: &[GroupSpec], path: &FieldPath, problems: &mut Problems) {
    let slots: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    for (i, group) in groups.iter().enumerate() {
        for (j, name) in group.depends_on.iter().enumerate() {
            let at = path.index(i).key("dependsOn").index(j);
            match slots.get(name.as_str()) {
                None => problems.add(&at, format!("no group named '{name}' in this spec")),
                Some(&slot) if slot == i => problems.add(&at, "a group cannot depend on itself"),
                Some(&slot) if edges[i].contains(&slot) => {
                    problems.add(&at, format!("'{name}' is listed twice"))
                }
                Some(&slot) => edges[i].push(slot),
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| groups[i].name.as_str()).collect();
        problems.add(
            &path.index(cycle[0]).key("dependsOn"),
            format!("the dependencies form a cycle: {}", names.join(" → ")),
        );
    }
}

/// A cycle of `edges` (slot → the slots it depends on), first slot repeated at the end.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(at: usize, edges: &[Vec<usize>], marks: &mut [Mark], path: &mut Vec<usize>) -> bool {
        marks[at] = Mark::OnPath;
        path.push(at);
        for &next in &edges[at] {
            let mark = marks[next];
            if mark == Mark::OnPath {
                let start = path.iter().position(|&p| p == next).unwrap_or(0);
                path.drain(..start);
                path.push(next);
                return true;
            }
            if mark == Mark::New && visit(next, edges, marks, path) {
                return true;
            }
        }
        path.pop();
        marks[at] = Mark::Done;
        false
    }
    let mut marks = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        let mut path = Vec::new();
        if marks[start] == Mark::New && visit(start, edges, &mut marks, &mut path) {
            return Some(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_cycle;

    #[test]
    fn cycles_are_found_and_named_in_order() {
        assert_eq!(find_cycle(&[vec![], vec![0], vec![0, 1]]), None);
        assert_eq!(
            find_cycle(&[vec![1], vec![2], vec![0]]),
            Some(vec![0, 1, 2, 0])
        );
        assert_eq!(find_cycle(&[vec![], vec![2], vec![1]]), Some(vec![1, 2, 1]));
    }
}
