//! From a request body (JSON spec or ACI YAML) to a [`Spec`]: parsed, defaulted, validated.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::document;
use super::duration::IsoDuration;
use super::error::{FieldPath, Problems, SpecError, SpecErrors};
use super::model::{Cleanup, CleanupWhen, Completion, GroupSpec, Mode, Retry, Spec};
use super::validate::{self, Limits};
use super::{notify, placement, workflow};

/// The largest spec accepted, in bytes (ARM's own limit for a template is 4 MB; a container group is
/// far smaller, and the spec is kept in every checkpoint).
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

/// How the body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    /// ACI YAML as `az container export` writes it: one group.
    AciYaml,
}

impl Format {
    /// Picks the format from a `Content-Type` header value.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let essence = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                Format::AciYaml
            }
            _ => Format::Json,
        }
    }
}

/// Parses and validates a spec. `new_id` supplies an id when the spec has none. The returned
/// spec still holds its secrets; [`super::secrets::seal_out`] takes them out before it is stored.
pub fn parse(
    body: &[u8],
    format: Format,
    new_id: impl FnOnce() -> String,
) -> Result<Spec, SpecErrors> {
    if body.len() > MAX_SPEC_BYTES {
        return Err(SpecErrors::one(
            "(spec)",
            format!(
                "the spec is {} bytes; at most {MAX_SPEC_BYTES} are accepted",
                body.len()
            ),
        ));
    }
    let document = match format {
        Format::Json => document::from_json(body)?,
        Format::AciYaml => from_aci_yaml(body)?,
    };
    from_value(document, new_id)
}

/// Top-level keys of an ACI YAML document that describe the resource, not what to create: read
/// and left out.
const YAML_METADATA: &[&str] = &[
    "apiVersion",
    "type",
    "id",
    "etag",
    "extended_location",
    "extendedLocation",
    "additional_properties",
];

/// A deployment id made of `prefix` (what of it an id may hold, at most 23 characters) and 16
/// hex digits of the SHA-256 of `key`: the same for the same inputs, valid whatever they hold.
pub fn derived_id(prefix: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut kept = String::new();
    for c in prefix.chars().map(|c| c.to_ascii_lowercase()) {
        let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if ok && kept.len() < 23 && !(c == '-' && (kept.is_empty() || kept.ends_with('-'))) {
            kept.push(c);
        }
    }
    let kept = kept.trim_end_matches('-');
    let kept = if kept.is_empty() { "d" } else { kept };
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{kept}-{hex}")
}

/// The id of an ACI YAML document: its `name` when that is a deployment id, else one derived
/// from it, so that the same file posted twice is one deployment.
fn yaml_id(name: &Value) -> Option<String> {
    let name = name.as_str()?;
    Some(match validate::deployment_id(name) {
        Ok(()) => name.to_owned(),
        Err(_) => derived_id(name, name),
    })
}

/// Reads an ACI YAML export into the JSON spec shape (one group, named after the YAML's `name`,
/// the deployment's id too: see [`yaml_id`]).
fn from_aci_yaml(body: &[u8]) -> Result<Value, SpecErrors> {
    let text =
        std::str::from_utf8(body).map_err(|_| SpecErrors::one("(spec)", "YAML must be UTF-8"))?;
    let yaml = document::from_yaml(text).map_err(|mut errors| {
        for error in &mut errors.0 {
            error.field = in_group(&error.field);
        }
        errors
    })?;
    let Value::Object(mut yaml) = yaml else {
        return Err(SpecErrors::one(
            "(spec)",
            "an ACI YAML document is a mapping with name and properties",
        ));
    };
    let name = yaml.remove("name");
    let properties = yaml.remove("properties");
    let (Some(name), Some(mut properties)) = (name, properties) else {
        return Err(SpecErrors::one(
            "(spec)",
            "an ACI YAML document needs `name` and `properties`",
        ));
    };
    exported_leftovers(&mut properties)?;
    let mut spec = Map::new();
    let restart = properties
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    let mode = if restart.eq_ignore_ascii_case("always") {
        "service"
    } else {
        "job"
    };
    spec.insert("mode".into(), Value::from(mode));
    if let Some(id) = yaml_id(&name) {
        spec.insert("id".into(), Value::from(id));
    }
    let mut group = serde_json::json!({ "name": name, "properties": properties });
    for key in ["identity", "zones", "location"] {
        if let Some(value) = yaml.remove(key).filter(|v| !v.is_null()) {
            group[key] = value;
        }
    }
    spec.insert("groups".into(), serde_json::json!([group]));
    if let Some(tags) = yaml.remove("tags").filter(|t| !t.is_null()) {
        spec.insert("tags".into(), tags);
    }
    // What an export writes about the resource rather than its content; nothing else is dropped.
    for key in YAML_METADATA {
        yaml.remove(*key);
    }
    if !yaml.is_empty() {
        return Err(SpecErrors(
            yaml.keys()
                .map(|key| SpecError {
                    field: key.clone(),
                    message: "unknown field of an ACI YAML document; Berth carries name, \
                              properties, identity, zones, location and tags"
                        .into(),
                })
                .collect(),
        ));
    }
    Ok(Value::Object(spec))
}

/// What `az container export` writes that a create cannot take back as it is: the public IP
/// address it was given (read-only; dropped), and the secrets it leaves out, reported by name
/// (secure environment variables exported without a value, secret volumes exported as `{}`).
fn exported_leftovers(properties: &mut Value) -> Result<(), SpecErrors> {
    let mut missing = Vec::new();
    if let Some(ip) = properties
        .get_mut("ipAddress")
        .and_then(Value::as_object_mut)
        && ip.get("type").and_then(Value::as_str) != Some("Private")
    {
        ip.remove("ip");
    }
    for list in ["containers", "initContainers"] {
        let containers = properties.get(list).and_then(Value::as_array);
        for (i, container) in containers.into_iter().flatten().enumerate() {
            let vars = container.pointer("/properties/environmentVariables");
            for (j, var) in vars
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let given = ["value", "secureValue", "secureValueFrom"]
                    .iter()
                    .any(|key| var.get(key).is_some_and(|v| !v.is_null()));
                if !given {
                    let name = var.get("name").and_then(Value::as_str).unwrap_or("?");
                    missing.push(SpecError {
                        field: format!(
                            "groups[0].properties.{list}[{i}].properties.environmentVariables[{j}]"
                        ),
                        message: format!(
                            "{name} has no value: `az container export` leaves secure values out; give it a secureValue (or secureValueFrom)"
                        ),
                    });
                }
            }
        }
    }
    let volumes = properties.get("volumes").and_then(Value::as_array);
    for (i, volume) in volumes.into_iter().flatten().enumerate() {
        if volume
            .get("secret")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            let name = volume.get("name").and_then(Value::as_str).unwrap_or("?");
            missing.push(SpecError {
                field: format!("groups[0].properties.volumes[{i}].secret"),
                message: format!(
                    "secret volume {name} has no files: `az container export` leaves them out; give each file's content (base64)"
                ),
            });
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SpecErrors(missing))
    }
}

/// The spec's path of a field of an ACI YAML document: its `name` and `properties` are those of
/// the spec's one group.
fn in_group(field: &str) -> String {
    let group_field = ["name", "properties", "identity", "zones", "location"]
        .iter()
        .any(|key| {
            field
                .strip_prefix(key)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        });
    if group_field {
        format!("groups[0].{field}")
    } else {
        field.to_owned()
    }
}

/// The spec version this Berth reads: a JSON spec's optional `apiVersion` (an ACI YAML document's
/// own `apiVersion` is ACI's, and is not this).
pub const SPEC_API_VERSION: &str = "berth/v1";

/// Builds a spec from its JSON document.
pub fn from_value(document: Value, new_id: impl FnOnce() -> String) -> Result<Spec, SpecErrors> {
    let root = FieldPath::root();
    let Value::Object(mut doc) = document else {
        return Err(SpecErrors::one(
            "(spec)",
            "a spec is a JSON object with `groups`",
        ));
    };
    let mut problems = Problems::default();
    const KNOWN: [&str; 16] = [
        "apiVersion",
        "id",
        "mode",
        "groups",
        "timeout",
        "completion",
        "retry",
        "cleanup",
        "captureLogs",
        "tags",
        "heartbeatTimeout",
        "priority",
        "spot",
        "locations",
        "notify",
        "$schema",
    ];
    for key in doc.keys() {
        if !KNOWN.contains(&key.as_str()) {
            problems.add(
                &root.key(key),
                format!(
                    "unknown field; the spec's fields are {}",
                    KNOWN[..KNOWN.len() - 1].join(", ")
                ),
            );
        }
    }

    match text(&mut doc, "apiVersion", &root, &mut problems).as_deref() {
        None | Some(SPEC_API_VERSION) => {}
        Some(other) => problems.add(
            &root.key("apiVersion"),
            format!(
                "'{other}' is not a spec version this Berth reads; it reads {SPEC_API_VERSION} \
                 (the default when absent)"
            ),
        ),
    }

    let id = match doc.remove("id") {
        None | Some(Value::Null) => new_id(),
        Some(Value::String(id)) => {
            if let Err(message) = validate::deployment_id(&id) {
                problems.add(&root.key("id"), message);
            }
            id
        }
        Some(_) => {
            problems.add(&root.key("id"), "must be a string");
            String::new()
        }
    };

    let mode = match text(&mut doc, "mode", &root, &mut problems).as_deref() {
        None | Some("job") => Mode::Job,
        Some("service") => Mode::Service,
        Some(other) => {
            problems.add(
                &root.key("mode"),
                format!("'{other}' is not a mode; use job or service"),
            );
            Mode::Job
        }
    };

    let completion = completion(&mut doc, &root, &mut problems).unwrap_or(Completion::Exit);

    let timeout = duration(&mut doc, "timeout", &root, &mut problems);
    let timeout = match (mode, timeout) {
        (_, Some(t)) if t.millis() == 0 => {
            problems.add(&root.key("timeout"), "must be longer than zero");
            None
        }
        (Mode::Job, None) => Some(IsoDuration(Limits::DEFAULT_JOB_TIMEOUT_MS)),
        (_, t) => t,
    };

    let heartbeat_timeout = heartbeat_timeout(&mut doc, &root, &mut problems);
    let retry = retry(doc.remove("retry"), &root.key("retry"), &mut problems);
    let cleanup = cleanup(doc.remove("cleanup"), &root.key("cleanup"), &mut problems);

    let capture_logs = match doc.remove("captureLogs") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            problems.add(&root.key("captureLogs"), "must be true or false");
            true
        }
    };

    let tags = tags(doc.remove("tags"), &root.key("tags"), &mut problems);
    let place = placement::take(&mut doc, &root, &mut problems);
    let notify = notify::take(&mut doc, &root, &mut problems);

    let groups_path = root.key("groups");
    let mut groups = Vec::new();
    match doc.remove("groups") {
        Some(Value::Array(items)) => {
            if items.is_empty() || items.len() > Limits::MAX_GROUPS {
                problems.add(
                    &groups_path,
                    format!("a deployment has 1 to {} groups", Limits::MAX_GROUPS),
                );
            }
            for (i, item) in items.into_iter().enumerate() {
                if let Some(group) = group(item, &groups_path.index(i), mode, &mut problems) {
                    let spec_priority = place.priority.is_some();
                    placement::check_group(
                        &group,
                        &groups_path.index(i),
                        spec_priority,
                        &mut problems,
                    );
                    groups.push(group);
                }
            }
            validate::unique_names(
                groups.iter().map(|g| g.name.as_str()),
                &groups_path,
                "name",
                &mut problems,
            );
            workflow::check(&groups, &groups_path, &mut problems);
        }
        None | Some(Value::Null) => {
            problems.add(&groups_path, "required: the container groups to run")
        }
        Some(_) => problems.add(&groups_path, "must be an array of {name, properties}"),
    }

    let spec = Spec {
        id,
        mode,
        groups,
        timeout,
        completion,
        retry,
        cleanup,
        capture_logs,
        tags,
        heartbeat_timeout,
        placement: place,
        template: None,
        notify,
    };
    placement::check_spot(&spec, &mut problems);
    problems.finish()?;
    Ok(spec)
}

pub(super) fn completion(
    doc: &mut Map<String, Value>,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<Completion> {
    match text(doc, "completion", path, problems).as_deref() {
        None => None,
        Some("exit") => Some(Completion::Exit),
        Some("callback") => Some(Completion::Callback),
        Some("either") => Some(Completion::Either),
        Some(other) => {
            problems.add(
                &path.key("completion"),
                format!("'{other}' is not a completion; use exit, callback or either"),
            );
            None
        }
    }
}

fn text(
    doc: &mut Map<String, Value>,
    key: &str,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<String> {
    match doc.remove(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            problems.add(&path.key(key), "must be a string");
            None
        }
    }
}

pub(super) fn duration(
    doc: &mut Map<String, Value>,
    key: &str,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<IsoDuration> {
    let value = text(doc, key, path, problems)?;
    match IsoDuration::parse(&value) {
        Ok(d) => Some(d),
        Err(message) => {
            problems.add(&path.key(key), message);
            None
        }
    }
}

/// `heartbeatTimeout`: how long a container may go without calling `$BERTH_HEARTBEAT_URL`.
/// At least a second: beats are recorded only when they move the deadline by a quarter of it
/// (see [`crate::engine::policy::heartbeat_worth_saving`]).
pub(super) fn heartbeat_timeout(
    doc: &mut Map<String, Value>,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<IsoDuration> {
    let timeout = duration(doc, "heartbeatTimeout", path, problems)?;
    if timeout.millis() < 1_000 {
        problems.add(&path.key("heartbeatTimeout"), "must be at least PT1S");
        return None;
    }
    Some(timeout)
}

fn object(value: Option<Value>, path: &FieldPath, problems: &mut Problems) -> Map<String, Value> {
    match value {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            problems.add(path, "must be an object");
            Map::new()
        }
    }
}

pub(super) fn retry(value: Option<Value>, path: &FieldPath, problems: &mut Problems) -> Retry {
    let mut map = object(value, path, problems);
    let mut retry = Retry::default();
    match map.remove("maxAttempts") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(n) if (1..=Limits::MAX_ATTEMPTS as u64).contains(&n) => {
                retry.max_attempts = n as u32
            }
            _ => problems.add(
                &path.key("maxAttempts"),
                format!("must be a whole number from 1 to {}", Limits::MAX_ATTEMPTS),
            ),
        },
    }
    if let Some(backoff) = duration(&mut map, "backoff", path, problems) {
        retry.backoff = backoff;
    }
    problems.unknown_fields(&map, path, "retry has maxAttempts and backoff");
    retry
}

fn cleanup(value: Option<Value>, path: &FieldPath, problems: &mut Problems) -> Cleanup {
    let mut map = object(value, path, problems);
    let mut cleanup = Cleanup::default();
    match text(&mut map, "when", path, problems).as_deref() {
        None | Some("always") => {}
        Some("onSuccess") => cleanup.when = CleanupWhen::OnSuccess,
        Some("never") => cleanup.when = CleanupWhen::Never,
        Some(other) => problems.add(
            &path.key("when"),
            format!("'{other}' is not a cleanup rule; use always, onSuccess or never"),
        ),
    }
    if let Some(keep_for) = duration(&mut map, "keepFor", path, problems) {
        cleanup.keep_for = keep_for;
    }
    problems.unknown_fields(&map, path, "cleanup has when and keepFor");
    cleanup
}

fn tags(
    value: Option<Value>,
    path: &FieldPath,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let map = object(value, path, problems);
    if map.len() > Limits::MAX_TAGS {
        problems.add(
            path,
            format!(
                "at most {} tags (ARM allows 50 and Berth adds its own)",
                Limits::MAX_TAGS
            ),
        );
    }
    let mut tags = BTreeMap::new();
    for (key, value) in map {
        let at = path.key(&key);
        if let Err(message) = validate::tag_name(&key) {
            problems.add(&at, message);
        }
        match value {
            Value::String(s) if s.len() <= 256 => {
                tags.insert(key, s);
            }
            Value::String(_) => problems.add(&at, "a tag value has at most 256 characters"),
            _ => problems.add(&at, "a tag value must be a string"),
        }
    }
    tags
}

fn group(item: Value, path: &FieldPath, mode: Mode, problems: &mut Problems) -> Option<GroupSpec> {
    let Value::Object(mut map) = item else {
        problems.add(path, "a group is an object with name and properties");
        return None;
    };
    let name = match map.remove("name") {
        Some(Value::String(name)) => {
            if let Err(message) = validate::group_name(&name) {
                problems.add(&path.key("name"), message);
            }
            name
        }
        Some(_) => {
            problems.add(&path.key("name"), "must be a string");
            String::new()
        }
        None => {
            problems.add(&path.key("name"), "required");
            String::new()
        }
    };
    let properties_path = path.key("properties");
    let properties = match map.remove("properties") {
        Some(Value::Object(properties)) => properties,
        Some(_) => {
            problems.add(
                &properties_path,
                "must be the ACI containerGroup properties object",
            );
            return None;
        }
        None => {
            problems.add(
                &properties_path,
                "required: the ACI containerGroup properties (containers, volumes, ...)",
            );
            return None;
        }
    };
    let identity = map
        .remove("identity")
        .filter(|v| !v.is_null())
        .and_then(|v| validate::identity(v, &path.key("identity"), problems));
    let zones = map
        .remove("zones")
        .filter(|v| !v.is_null())
        .and_then(|v| validate::zones(v, &path.key("zones"), problems));
    let location = match map.remove("location") {
        None | Some(Value::Null) => None,
        Some(Value::String(location)) => match validate::location(&location) {
            Ok(()) => Some(location),
            Err(message) => {
                problems.add(&path.key("location"), message);
                None
            }
        },
        Some(_) => {
            problems.add(&path.key("location"), "must be a string, e.g. westeurope");
            None
        }
    };
    let flow = workflow::group_fields(&mut map, path, mode, problems);
    let place = placement::take(&mut map, path, problems);
    problems.unknown_fields(
        &map,
        path,
        &format!(
            "a group has name, properties, identity, zones, location, {}, {}",
            workflow::GROUP_FIELDS.join(", "),
            placement::FIELDS.join(", ")
        ),
    );
    let properties = validate::group_properties(properties, &properties_path, mode, problems);
    Some(GroupSpec {
        name,
        properties: Value::Object(properties),
        identity,
        zones,
        location,
        depends_on: flow.depends_on,
        run_when: flow.run_when,
        count: flow.count,
        items: flow.items,
        parallelism: flow.parallelism,
        tolerate_failures: flow.tolerate_failures,
        retry: flow.retry,
        timeout: flow.timeout,
        completion: flow.completion,
        heartbeat_timeout: flow.heartbeat_timeout,
        placement: place,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_valid_and_stable() {
        let long = "x".repeat(100);
        for prefix in ["Transcode_Video", "", "--", &long, "a--b-", "../../etc"] {
            let id = derived_id(prefix, "key");
            assert!(validate::deployment_id(&id).is_ok(), "{prefix:?} -> {id}");
            assert_eq!(id, derived_id(prefix, "key"));
            assert_ne!(id, derived_id(prefix, "other"));
        }
        assert!(derived_id("transcode", "k").starts_with("transcode-"));
    }

    #[test]
    fn an_aci_yaml_document_is_named_by_its_name() {
        let yaml = "name: web-1\nproperties:\n  containers: []\n";
        let doc = from_aci_yaml(yaml.as_bytes()).unwrap();
        assert_eq!(doc["id"], "web-1");
        let long = format!("name: {}\nproperties: {{}}\n", "a".repeat(50));
        let doc = from_aci_yaml(long.as_bytes()).unwrap();
        let id = doc["id"].as_str().unwrap();
        assert!(validate::deployment_id(id).is_ok(), "{id}");
        assert_eq!(from_aci_yaml(long.as_bytes()).unwrap()["id"], id);
    }
}
