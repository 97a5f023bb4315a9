//! The body of `PUT /api/schedules/{name}`, read and checked:
//!
//! ```json
//! { "cron": "*/5 * * * *", "timeZone": "Europe/Amsterdam",
//!   "spec": { "groups": [...] },                     // or "template": "name", "parameters": {...}
//!   "concurrencyPolicy": "forbid", "startingDeadline": "PT10M" }
//! ```
//!
//! # Guarantees
//! - Every problem names its field (`cron`, `timeZone`, `spec.groups[0].name`, ...), and all of
//!   them are reported at once; nothing here panics on input.
//! - The spec is checked as a `POST /api/deployments` spec is, under the id its runs will have;
//!   it may not name an `id` of its own.

use serde_json::{Map, Value};

use super::{ConcurrencyPolicy, MAX_STARTING_DEADLINE_MS, cron, run_id};
use crate::engine::Millis;
use crate::spec::error::{FieldPath, Problems};
use crate::spec::parse::MAX_SPEC_BYTES;
use crate::spec::template::Invocation;
use crate::spec::{IsoDuration, Spec, SpecError, SpecErrors};

/// The most bytes of a template target's `parameters`, as JSON.
pub const MAX_PARAMETERS_BYTES: usize = 64 * 1024;

/// What a run starts, as asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestTarget {
    /// A spec, secrets still in it.
    Spec(Box<Spec>),
    Template {
        template: String,
        version: Option<u32>,
        parameters: Map<String, Value>,
    },
}

/// A `PUT` body, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRequest {
    pub cron: String,
    pub time_zone: String,
    pub concurrency_policy: ConcurrencyPolicy,
    pub starting_deadline_ms: Option<Millis>,
    pub target: RequestTarget,
}

const KNOWN: [&str; 8] = [
    "cron",
    "timeZone",
    "spec",
    "template",
    "version",
    "parameters",
    "concurrencyPolicy",
    "startingDeadline",
];

/// Reads the body of a `PUT` of schedule `name`.
pub fn read(name: &str, body: &[u8]) -> Result<ScheduleRequest, SpecErrors> {
    let Value::Object(mut doc) = crate::spec::document::from_json(body)? else {
        return Err(SpecErrors::one(
            "(body)",
            "a schedule is a JSON object with cron and spec",
        ));
    };
    let root = FieldPath::root();
    let mut problems = Problems::default();
    for key in doc.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        problems.add(
            &root.key(key),
            "unknown field; a schedule has cron, timeZone, spec (or template and parameters), concurrencyPolicy and startingDeadline",
        );
    }
    let cron = string(&mut doc, "cron", &mut problems);
    if let Some(text) = &cron
        && let Err(e) = cron::Cron::parse(text)
    {
        problems.add(&root.key("cron"), e);
    }
    let time_zone = match doc.remove("timeZone") {
        None | Some(Value::Null) => Some("UTC".to_owned()),
        Some(Value::String(tz)) => match cron::time_zone(&tz) {
            Ok(_) => Some(tz),
            Err(e) => {
                problems.add(&root.key("timeZone"), e);
                None
            }
        },
        Some(_) => {
            problems.add(&root.key("timeZone"), "must be a string (an IANA name)");
            None
        }
    };
    let concurrency_policy = match doc.remove("concurrencyPolicy") {
        None | Some(Value::Null) => ConcurrencyPolicy::Allow,
        Some(Value::String(p)) if p == "allow" => ConcurrencyPolicy::Allow,
        Some(Value::String(p)) if p == "forbid" => ConcurrencyPolicy::Forbid,
        Some(Value::String(p)) if p == "replace" => ConcurrencyPolicy::Replace,
        Some(_) => {
            problems.add(
                &root.key("concurrencyPolicy"),
                "must be allow, forbid or replace",
            );
            ConcurrencyPolicy::Allow
        }
    };
    let starting_deadline_ms = deadline(doc.remove("startingDeadline"), &mut problems);
    let target = target(name, &mut doc, &mut problems);
    problems.finish()?;
    match (cron, time_zone, target) {
        (Some(cron), Some(time_zone), Some(target)) => Ok(ScheduleRequest {
            cron,
            time_zone,
            concurrency_policy,
            starting_deadline_ms,
            target,
        }),
        _ => Err(SpecErrors::one("(body)", "the schedule is incomplete")),
    }
}

/// A required string field.
fn string(doc: &mut Map<String, Value>, key: &str, problems: &mut Problems) -> Option<String> {
    match doc.remove(key) {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => {
            problems.add(&FieldPath::root().key(key), "required");
            None
        }
        Some(_) => {
            problems.add(&FieldPath::root().key(key), "must be a string");
            None
        }
    }
}

/// `startingDeadline`: an ISO 8601 duration from `PT1S` to `P7D`; absent: none.
fn deadline(value: Option<Value>, problems: &mut Problems) -> Option<Millis> {
    let field = FieldPath::root().key("startingDeadline");
    let text = match value {
        None | Some(Value::Null) => return None,
        Some(Value::String(text)) => text,
        Some(_) => {
            problems.add(&field, "must be an ISO 8601 duration (PT10M)");
            return None;
        }
    };
    match IsoDuration::parse(&text) {
        Ok(d) => {
            let ms = i64::try_from(d.millis()).unwrap_or(i64::MAX);
            if (1_000..=MAX_STARTING_DEADLINE_MS).contains(&ms) {
                Some(ms)
            } else {
                problems.add(&field, "must be from PT1S to P7D");
                None
            }
        }
        Err(e) => {
            problems.add(&field, e);
            None
        }
    }
}

/// `spec`, or `template` with `version` and `parameters`: exactly one of the two.
fn target(
    name: &str,
    doc: &mut Map<String, Value>,
    problems: &mut Problems,
) -> Option<RequestTarget> {
    let root = FieldPath::root();
    let spec = doc.remove("spec");
    let template = doc.remove("template");
    match (spec, template) {
        (Some(spec), None) => {
            for key in ["version", "parameters"] {
                if doc.contains_key(key) {
                    problems.add(&root.key(key), "goes with template, not spec");
                }
            }
            schedule_spec(name, spec, problems).map(|s| RequestTarget::Spec(Box::new(s)))
        }
        (None, Some(template)) => template_target(template, doc, problems),
        (Some(_), Some(_)) => {
            problems.add(&root.key("template"), "give spec or template, not both");
            None
        }
        (None, None) => {
            problems.add(
                &root.key("spec"),
                "required: the spec each run starts (or template and parameters)",
            );
            None
        }
    }
}

/// The spec of a schedule, checked under the id of its runs.
fn schedule_spec(name: &str, spec: Value, problems: &mut Problems) -> Option<Spec> {
    let field = FieldPath::root().key("spec");
    let size = serde_json::to_vec(&spec).map_or(usize::MAX, |b| b.len());
    if size > MAX_SPEC_BYTES {
        problems.add(
            &field,
            format!("the spec is {size} bytes; at most {MAX_SPEC_BYTES} are accepted"),
        );
        return None;
    }
    if spec.get("id").is_some() {
        problems.add(
            &field.key("id"),
            "a schedule names its runs ({name}-{yyyyMMddHHmm}); leave id out",
        );
        return None;
    }
    match crate::spec::parse::from_value(spec, || run_id(name, 0)) {
        Ok(spec) => Some(spec),
        Err(errors) => {
            problems.0.extend(under_spec(errors).0);
            None
        }
    }
}

/// `template`, `version` and `parameters`, read as a template invocation is
/// ([`Invocation::read`]), checked as far as they can be without the template.
fn template_target(
    template: Value,
    doc: &mut Map<String, Value>,
    problems: &mut Problems,
) -> Option<RequestTarget> {
    let mut invocation = Map::new();
    invocation.insert("template".into(), template);
    for key in ["version", "parameters"] {
        if let Some(value) = doc.remove(key) {
            invocation.insert(key.into(), value);
        }
    }
    let size = invocation
        .get("parameters")
        .and_then(|p| serde_json::to_vec(p).ok())
        .map_or(0, |b| b.len());
    if size > MAX_PARAMETERS_BYTES {
        problems.add(
            &FieldPath::root().key("parameters"),
            format!("{size} bytes; at most {MAX_PARAMETERS_BYTES} are accepted"),
        );
        return None;
    }
    match Invocation::read(Value::Object(invocation)) {
        Ok(i) => Some(RequestTarget::Template {
            template: i.template,
            version: i.version,
            parameters: i.parameters,
        }),
        Err(errors) => {
            problems.0.extend(errors.0);
            None
        }
    }
}

/// A spec's errors as fields of the schedule: `groups[0].name` is `spec.groups[0].name`.
pub fn under_spec(SpecErrors(errors): SpecErrors) -> SpecErrors {
    let errors = errors
        .into_iter()
        .map(|SpecError { field, message }| SpecError {
            field: match field.as_str() {
                "(spec)" => "spec".to_owned(),
                f => format!("spec.{f}"),
            },
            message,
        })
        .collect();
    SpecErrors(errors)
}
