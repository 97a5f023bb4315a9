//! Checks on a spec before anything is created: ARM naming rules, resource bounds, volume
//! references, restart policy against mode. Also normalises what ARM treats case-insensitively.

use std::collections::HashSet;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::{FieldPath, Problems};
use super::model::Mode;

/// Bounds Berth enforces (from ACI's documented quotas where ACI has one).
pub struct Limits;

impl Limits {
    pub const MAX_GROUPS: usize = 10;
    pub const MAX_CONTAINERS: usize = 60;
    pub const MAX_VOLUMES: usize = 20;
    pub const MAX_PORTS: usize = 5;
    pub const MAX_CPU: f64 = 31.0;
    pub const MAX_MEMORY_GB: f64 = 240.0;
    pub const MAX_ATTEMPTS: u32 = 10;
    pub const MAX_TAGS: usize = 40;
    pub const MAX_ID_LEN: usize = 40;
    /// A job without `timeout` is stopped after a day.
    pub const DEFAULT_JOB_TIMEOUT_MS: u64 = 86_400_000;
}

/// Environment variables Berth sets in every container; a spec may not set them.
pub const RESERVED_ENV: [&str; 8] = [
    "BERTH_DEPLOYMENT_ID",
    "BERTH_CALLBACK_URL",
    "BERTH_HEARTBEAT_URL",
    "BERTH_INDEX",
    "BERTH_COUNT",
    "BERTH_ITEM",
    "BERTH_INPUTS",
    "TRACEPARENT",
];

fn dns_like(name: &str, what: &str, min: usize, max: usize) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.len() < min || name.len() > max {
        return Err(format!("{what} '{name}' must be {min} to {max} characters"));
    }
    if !ok_chars {
        return Err(format!(
            "{what} '{name}' may hold only lowercase letters, digits and hyphens"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(format!(
            "{what} '{name}' may not start or end with a hyphen or hold two in a row"
        ));
    }
    Ok(())
}

/// A deployment id: it becomes part of container-group names and URLs.
pub fn deployment_id(id: &str) -> Result<(), String> {
    dns_like(id, "the id", 1, Limits::MAX_ID_LEN)
}

/// A template's name: the rules of a deployment id (it becomes part of URLs and blob names).
pub fn template_name(name: &str) -> Result<(), String> {
    dns_like(name, "the template name", 1, Limits::MAX_ID_LEN)
}

/// A group's name within a deployment (part of its ARM name).
pub fn group_name(name: &str) -> Result<(), String> {
    dns_like(name, "the group name", 1, 63)
}

/// A container group's ARM name, as Berth derives them (a callback URL's `instance`).
pub fn instance_name(name: &str) -> Result<(), String> {
    dns_like(name, "the instance name", 1, 63)
}

/// A container name, as ACI rules it.
pub fn container_name(name: &str) -> Result<(), String> {
    dns_like(name, "the container name", 1, 63)
}

/// A volume name, as ACI rules it (5 to 63 characters).
pub fn volume_name(name: &str) -> Result<(), String> {
    dns_like(name, "the volume name", 5, 63)
}

/// A tag name, as ARM rules it.
pub fn tag_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 512 {
        return Err("a tag name has 1 to 512 characters".into());
    }
    if name
        .chars()
        .any(|c| matches!(c, '<' | '>' | '%' | '&' | '\\' | '?' | '/'))
    {
        return Err(format!("tag name '{name}' may not contain < > % & \\ ? /"));
    }
    if name.to_ascii_lowercase().starts_with("berth-") {
        return Err(format!(
            "tag name '{name}': the berth- prefix is Berth's own"
        ));
    }
    Ok(())
}

fn env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > 256
    {
        return Err(format!(
            "'{name}' is not an environment variable name (letters, digits, _; not a digit first)"
        ));
    }
    if RESERVED_ENV.contains(&name) {
        return Err(format!("'{name}' is set by Berth itself"));
    }
    Ok(())
}

/// Records a problem for every name used twice.
pub fn unique_names<'a>(
    names: impl Iterator<Item = &'a str>,
    path: &FieldPath,
    key: &str,
    problems: &mut Problems,
) {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if !name.is_empty() && !seen.insert(name) {
            problems.add(&path.index(i).key(key), format!("'{name}' is used twice"));
        }
    }
}

/// Normalises an enum value case-insensitively to its ARM spelling.
fn enum_value(
    map: &mut Map<String, Value>,
    key: &str,
    allowed: &[&'static str],
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<&'static str> {
    let value = map.get(key)?;
    let Some(text) = value.as_str() else {
        problems.add(
            &path.key(key),
            format!("must be one of {}", allowed.join(", ")),
        );
        return None;
    };
    match allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(text))
    {
        Some(canonical) => {
            map.insert(key.to_owned(), Value::from(canonical));
            Some(canonical)
        }
        None => {
            problems.add(
                &path.key(key),
                format!("'{text}' is not one of {}", allowed.join(", ")),
            );
            None
        }
    }
}

fn number(
    value: Option<&Value>,
    path: &FieldPath,
    min_exclusive: f64,
    max: f64,
    problems: &mut Problems,
) -> f64 {
    match value.and_then(Value::as_f64) {
        Some(n) if n > min_exclusive && n <= max => n,
        Some(n) => {
            problems.add(
                path,
                format!("{n} is out of range: more than {min_exclusive} and at most {max}"),
            );
            0.0
        }
        None if value.is_none() => {
            problems.add(path, "required");
            0.0
        }
        None => {
            problems.add(path, "must be a number");
            0.0
        }
    }
}

fn array<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<&'a mut Vec<Value>> {
    match map.get_mut(key) {
        None => None,
        Some(Value::Array(items)) => Some(items),
        Some(Value::Null) => None,
        Some(_) => {
            problems.add(&path.key(key), "must be an array");
            None
        }
    }
}

/// Validates and normalises one group's ACI properties.
pub fn group_properties(
    mut props: Map<String, Value>,
    path: &FieldPath,
    mode: Mode,
    problems: &mut Problems,
) -> Map<String, Value> {
    for read_only in [
        "provisioningState",
        "instanceView",
        "isCreatedFromStandbyPool",
    ] {
        props.remove(read_only);
    }
    if !props.contains_key("osType") {
        props.insert("osType".into(), Value::from("Linux"));
    }
    enum_value(&mut props, "osType", &["Linux", "Windows"], path, problems);

    let default_policy = if mode == Mode::Job { "Never" } else { "Always" };
    if !props.contains_key("restartPolicy") {
        props.insert("restartPolicy".into(), Value::from(default_policy));
    }
    match enum_value(
        &mut props,
        "restartPolicy",
        &["Always", "OnFailure", "Never"],
        path,
        problems,
    ) {
        Some("Always") if mode == Mode::Job => problems.add(
            &path.key("restartPolicy"),
            "a job's containers must be able to finish: use Never or OnFailure (or mode service)",
        ),
        Some("Never") if mode == Mode::Service => problems.add(
            &path.key("restartPolicy"),
            "a service is kept running: use Always or OnFailure (or mode job)",
        ),
        _ => {}
    }

    let volume_names = volumes(&mut props, path, problems);

    let mut total_cpu = 0.0;
    let mut total_memory = 0.0;
    let containers_path = path.key("containers");
    match array(&mut props, "containers", path, problems) {
        Some(items) => {
            if items.is_empty() || items.len() > Limits::MAX_CONTAINERS {
                problems.add(
                    &containers_path,
                    format!("a group has 1 to {} containers", Limits::MAX_CONTAINERS),
                );
            }
            for (i, item) in items.iter_mut().enumerate() {
                let (cpu, memory) = container(
                    item,
                    &containers_path.index(i),
                    &volume_names,
                    true,
                    problems,
                );
                total_cpu += cpu;
                total_memory += memory;
            }
            let names: Vec<String> = items
                .iter()
                .map(|c| {
                    c.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                })
                .collect();
            unique_names(
                names.iter().map(String::as_str),
                &containers_path,
                "name",
                problems,
            );
        }
        None => problems.add(&containers_path, "required: at least one container"),
    }
    if total_cpu > Limits::MAX_CPU {
        problems.add(
            &containers_path,
            format!(
                "the group asks for {total_cpu} CPUs; ACI allows at most {}",
                Limits::MAX_CPU
            ),
        );
    }
    if total_memory > Limits::MAX_MEMORY_GB {
        problems.add(
            &containers_path,
            format!(
                "the group asks for {total_memory} GB; ACI allows at most {}",
                Limits::MAX_MEMORY_GB
            ),
        );
    }

    let init_path = path.key("initContainers");
    if let Some(items) = array(&mut props, "initContainers", path, problems) {
        for (i, item) in items.iter_mut().enumerate() {
            container(item, &init_path.index(i), &volume_names, false, problems);
        }
    }

    registry_credentials(&mut props, path, problems);
    ip_address(&mut props, path, problems);
    super::aci::group_rules(&Value::Object(props.clone()), path, problems);
    props
}

fn volumes(
    props: &mut Map<String, Value>,
    path: &FieldPath,
    problems: &mut Problems,
) -> HashSet<String> {
    let mut names = HashSet::new();
    let volumes_path = path.key("volumes");
    let Some(items) = array(props, "volumes", path, problems) else {
        return names;
    };
    if items.len() > Limits::MAX_VOLUMES {
        problems.add(
            &volumes_path,
            format!("a group has at most {} volumes", Limits::MAX_VOLUMES),
        );
    }
    for (i, item) in items.iter().enumerate() {
        let at = volumes_path.index(i);
        let Some(volume) = item.as_object() else {
            problems.add(
                &at,
                "a volume is an object with name and one of azureFile, emptyDir, secret, gitRepo",
            );
            continue;
        };
        match volume.get("name").and_then(Value::as_str) {
            Some(name) => {
                if let Err(message) = volume_name(name) {
                    problems.add(&at.key("name"), message);
                }
                if !names.insert(name.to_owned()) {
                    problems.add(&at.key("name"), format!("'{name}' is used twice"));
                }
            }
            None => problems.add(&at.key("name"), "required"),
        }
        let kinds: Vec<&str> = [
            "azureFile",
            "emptyDir",
            "secret",
            "gitRepo",
            "secretReference",
        ]
        .into_iter()
        .filter(|k| volume.contains_key(*k))
        .collect();
        if kinds.len() != 1 {
            problems.add(
                &at,
                "a volume has exactly one of azureFile, emptyDir, secret, gitRepo, secretReference",
            );
        }
        if let Some(file) = volume.get("azureFile") {
            azure_file(file, &at.key("azureFile"), problems);
        }
        if let Some(references) = volume.get("secretReference").and_then(Value::as_object) {
            secret_files(references.keys(), &at.key("secretReference"), problems);
        }
        if let Some(secret) = volume.get("secret") {
            match secret.as_object() {
                Some(files) => {
                    secret_files(files.keys(), &at.key("secret"), problems);
                    for (file, content) in files {
                        let decodes = content.as_str().is_some_and(|c| {
                            base64::engine::general_purpose::STANDARD.decode(c).is_ok()
                        });
                        if !decodes {
                            problems.add(
                                &at.key("secret").key(file),
                                "a secret volume's file content must be a base64 string",
                            );
                        }
                    }
                }
                None => problems.add(&at.key("secret"), "must map file names to base64 content"),
            }
        }
        if let Some(git) = volume.get("gitRepo")
            && git.get("repository").and_then(Value::as_str).is_none()
        {
            problems.add(&at.key("gitRepo").key("repository"), "required");
        }
    }
    names
}

/// Records a problem for every key of a secret volume that is not a plain file name.
fn secret_files<'a>(
    names: impl Iterator<Item = &'a String>,
    path: &FieldPath,
    problems: &mut Problems,
) {
    for name in names {
        if let Err(message) = secret_file_name(name) {
            problems.add(path, message);
        }
    }
}

fn azure_file(file: &Value, path: &FieldPath, problems: &mut Problems) {
    let Some(file) = file.as_object() else {
        problems.add(
            path,
            "must be an object with shareName and storageAccountName",
        );
        return;
    };
    match file.get("shareName").and_then(Value::as_str) {
        Some(share) => {
            if let Err(message) = dns_like(share, "the share name", 3, 63) {
                problems.add(&path.key("shareName"), message);
            }
        }
        None => problems.add(&path.key("shareName"), "required"),
    }
    match file.get("storageAccountName").and_then(Value::as_str) {
        Some(account) => {
            let ok = (3..=24).contains(&account.len())
                && account
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                problems.add(&path.key("storageAccountName"), format!("'{account}' is not a storage account name (3 to 24 lowercase letters and digits)"));
            }
        }
        None => problems.add(&path.key("storageAccountName"), "required"),
    }
    if let Some(read_only) = file.get("readOnly")
        && !read_only.is_boolean()
    {
        problems.add(&path.key("readOnly"), "must be true or false");
    }
    if let Some(key) = file.get("storageAccountKey")
        && !key.is_string()
    {
        problems.add(&path.key("storageAccountKey"), "must be a string");
    }
}

/// One container (or init container); returns its CPU and memory requests.
fn container(
    item: &mut Value,
    path: &FieldPath,
    volume_names: &HashSet<String>,
    full: bool,
    problems: &mut Problems,
) -> (f64, f64) {
    let Some(container) = item.as_object_mut() else {
        problems.add(path, "a container is an object with name and properties");
        return (0.0, 0.0);
    };
    match container.get("name").and_then(Value::as_str) {
        Some(name) => {
            if let Err(message) = container_name(name) {
                problems.add(&path.key("name"), message);
            }
        }
        None => problems.add(&path.key("name"), "required"),
    }
    let props_path = path.key("properties");
    let Some(props) = container
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    else {
        problems.add(&props_path, "required: image, resources, ...");
        return (0.0, 0.0);
    };
    props.remove("instanceView");
    match props.get("image").and_then(Value::as_str) {
        Some(image) if !image.trim().is_empty() && image.len() <= 1024 => {}
        _ => problems.add(&props_path.key("image"), "required: the image to run"),
    }
    if let Some(command) = props.get("command")
        && !command
            .as_array()
            .is_some_and(|parts| parts.iter().all(Value::is_string))
    {
        problems.add(
            &props_path.key("command"),
            "must be an array of strings (exec form)",
        );
    }
    environment(props, &props_path, problems);
    mounts(props, &props_path, volume_names, problems);

    if !full {
        return (0.0, 0.0);
    }
    let resources_path = props_path.key("resources");
    let requests_path = resources_path.key("requests");
    let mut cpu = 0.0;
    let mut memory = 0.0;
    match props
        .get_mut("resources")
        .and_then(|r| r.get_mut("requests"))
        .and_then(Value::as_object_mut)
    {
        Some(requests) => {
            if let Some(memory) = requests.remove("memoryInGb") {
                requests.entry("memoryInGB").or_insert(memory);
            }
            cpu = number(
                requests.get("cpu"),
                &requests_path.key("cpu"),
                0.0,
                Limits::MAX_CPU,
                problems,
            );
            memory = number(
                requests.get("memoryInGB"),
                &requests_path.key("memoryInGB"),
                0.0,
                Limits::MAX_MEMORY_GB,
                problems,
            );
        }
        None => problems.add(&requests_path, "required: cpu and memoryInGB"),
    }
    let ports_path = props_path.key("ports");
    if let Some(ports) = array(props, "ports", &props_path, problems) {
        for (i, port) in ports.iter_mut().enumerate() {
            port_entry(port, &ports_path.index(i), problems);
        }
    }
    (cpu, memory)
}

fn environment(props: &mut Map<String, Value>, path: &FieldPath, problems: &mut Problems) {
    let env_path = path.key("environmentVariables");
    let Some(vars) = array(props, "environmentVariables", path, problems) else {
        return;
    };
    let mut seen = HashSet::new();
    for (i, var) in vars.iter().enumerate() {
        let at = env_path.index(i);
        let Some(var) = var.as_object() else {
            problems.add(
                &at,
                "an environment variable is an object with name and value or secureValue",
            );
            continue;
        };
        match var.get("name").and_then(Value::as_str) {
            Some(name) => {
                if let Err(message) = env_name(name) {
                    problems.add(&at.key("name"), message);
                }
                if !seen.insert(name.to_owned()) {
                    problems.add(&at.key("name"), format!("'{name}' is set twice"));
                }
            }
            None => problems.add(&at.key("name"), "required"),
        }
        let sources: Vec<&str> = [
            "value",
            "secureValue",
            "secureValueFrom",
            "secureValueReference",
        ]
        .into_iter()
        .filter(|k| var.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
        if sources.len() > 1 {
            problems.add(&at, format!("set only one of {}", sources.join(", ")));
        }
        for key in ["value", "secureValue", "secureValueFrom"] {
            if let Some(value) = var.get(key)
                && !value.is_string()
                && !value.is_null()
            {
                problems.add(&at.key(key), "must be a string");
            }
        }
        if let Some(setting) = var.get("secureValueFrom").and_then(Value::as_str)
            && (setting.is_empty()
                || !setting
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        {
            problems.add(
                &at.key("secureValueFrom"),
                format!("'{setting}' is not an app setting name"),
            );
        }
    }
}

fn mounts(
    props: &mut Map<String, Value>,
    path: &FieldPath,
    volume_names: &HashSet<String>,
    problems: &mut Problems,
) {
    let mounts_path = path.key("volumeMounts");
    let Some(mounts) = array(props, "volumeMounts", path, problems) else {
        return;
    };
    let mut paths = HashSet::new();
    for (i, mount) in mounts.iter().enumerate() {
        let at = mounts_path.index(i);
        match mount.get("name").and_then(Value::as_str) {
            Some(name) if volume_names.contains(name) => {}
            Some(name) => problems.add(
                &at.key("name"),
                format!("no volume named '{name}' in this group's volumes"),
            ),
            None => problems.add(&at.key("name"), "required"),
        }
        match mount.get("mountPath").and_then(Value::as_str) {
            Some(p) => match mount_path(p) {
                Ok(clean) => {
                    if !paths.insert(clean) {
                        problems.add(&at.key("mountPath"), format!("'{p}' is mounted twice"));
                    }
                }
                Err(message) => problems.add(&at.key("mountPath"), message),
            },
            None => problems.add(&at.key("mountPath"), "required"),
        }
        if let Some(read_only) = mount.get("readOnly")
            && !read_only.is_boolean()
        {
            problems.add(&at.key("readOnly"), "must be true or false");
        }
    }
}

/// Top-level folders a volume may not be mounted in or over: the kernel's file systems the
/// container runtime mounts there. The emulator's sandbox refuses `/` and `/proc`, and ACI
/// documents only "no ':'"; runc refuses mounts over `/proc` and `/sys` and a volume over `/dev`
/// hides the devices. Berth keeps the one rule that is safe on both: none of them.
const KERNEL_DIRS: [&str; 3] = ["proc", "sys", "dev"];

/// Checks a volume's mount path and returns it in canonical form (`/a//b/./` → `/a/b`), so that
/// two spellings of one folder count as the same mount.
pub fn mount_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path.contains(':') {
        return Err(format!(
            "'{path}' must be an absolute Linux path (starting with '/', without ':')"
        ));
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("'{path}' may not hold '..'"));
    }
    match parts.first() {
        None => Err(format!(
            "'{path}' is the root: a volume there would hide the whole image"
        )),
        Some(top) if KERNEL_DIRS.contains(top) => Err(format!(
            "'{path}' is under /{top}: /proc, /sys and /dev belong to the kernel and the container runtime"
        )),
        Some(_) => Ok(format!("/{}", parts.join("/"))),
    }
}

/// Checks a file name of a secret volume: ACI writes each key as one file in the volume's folder.
pub fn secret_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "'{name}' is not a file name: a secret volume's file names have 1 to 255 characters"
        ));
    }
    if name.contains(['/', '\\', '\0']) || name.starts_with("..") || name == "." {
        return Err(format!(
            "'{name}' is not a file name: no '/', '\\', '.', '..' or leading '..' (each key is one file in the volume)"
        ));
    }
    Ok(())
}

fn port_entry(port: &mut Value, path: &FieldPath, problems: &mut Problems) {
    let Some(entry) = port.as_object_mut() else {
        problems.add(path, "a port is an object with port and protocol");
        return;
    };
    match entry.get("port").and_then(Value::as_u64) {
        Some(p) if (1..=65535).contains(&p) => {}
        _ => problems.add(&path.key("port"), "must be a port number from 1 to 65535"),
    }
    enum_value(entry, "protocol", &["TCP", "UDP"], path, problems);
}

fn registry_credentials(props: &mut Map<String, Value>, path: &FieldPath, problems: &mut Problems) {
    let creds_path = path.key("imageRegistryCredentials");
    let Some(creds) = array(props, "imageRegistryCredentials", path, problems) else {
        return;
    };
    for (i, cred) in creds.iter().enumerate() {
        let at = creds_path.index(i);
        if cred
            .get("server")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.add(&at.key("server"), "required: the registry's host name");
        }
        if let Some(password) = cred.get("password")
            && !password.is_string()
        {
            problems.add(&at.key("password"), "must be a string");
        }
    }
}

fn ip_address(props: &mut Map<String, Value>, path: &FieldPath, problems: &mut Problems) {
    let ip_path = path.key("ipAddress");
    let Some(ip) = props.get_mut("ipAddress") else {
        return;
    };
    let Some(ip) = ip.as_object_mut() else {
        problems.add(&ip_path, "must be an object with type and ports");
        return;
    };
    ip.remove("fqdn");
    if !ip.contains_key("type") {
        problems.add(&ip_path.key("type"), "required: Public or Private");
    }
    enum_value(ip, "type", &["Public", "Private"], &ip_path, problems);
    let ports_path = ip_path.key("ports");
    match array(ip, "ports", &ip_path, problems) {
        Some(ports) => {
            if ports.is_empty() || ports.len() > Limits::MAX_PORTS {
                problems.add(
                    &ports_path,
                    format!("an IP address has 1 to {} ports", Limits::MAX_PORTS),
                );
            }
            for (i, port) in ports.iter_mut().enumerate() {
                port_entry(port, &ports_path.index(i), problems);
            }
        }
        None => problems.add(&ports_path, "required"),
    }
    if let Some(label) = ip.get("dnsNameLabel").and_then(Value::as_str)
        && let Err(message) = dns_like(label, "the DNS name label", 5, 63)
    {
        problems.add(&ip_path.key("dnsNameLabel"), message);
    }
}

/// ACI's `identity` of a group: `type` one of ARM's `ResourceIdentityType` values, and
/// `userAssignedIdentities` (ARM ids of user-assigned identities, each mapped to `{}`) exactly
/// when the type names `UserAssigned`. Read-only fields (`principalId`, `tenantId`, and per
/// identity `principalId`, `clientId`, as an export writes them) are dropped.
pub fn identity(value: Value, path: &FieldPath, problems: &mut Problems) -> Option<Value> {
    const TYPES: [&str; 4] = [
        "SystemAssigned",
        "UserAssigned",
        "SystemAssigned, UserAssigned",
        "None",
    ];
    let Value::Object(mut map) = value else {
        problems.add(
            path,
            "must be an object with type (and userAssignedIdentities)",
        );
        return None;
    };
    map.remove("principalId");
    map.remove("tenantId");
    let kind = match map.remove("type") {
        Some(Value::String(kind)) if TYPES.contains(&kind.as_str()) => kind,
        Some(_) => {
            problems.add(
                &path.key("type"),
                format!("must be one of {}", TYPES.join(" | ")),
            );
            return None;
        }
        None => {
            problems.add(
                &path.key("type"),
                format!("required: one of {}", TYPES.join(" | ")),
            );
            return None;
        }
    };
    let users_path = path.key("userAssignedIdentities");
    let mut users = Map::new();
    match map.remove("userAssignedIdentities") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (id, _) in given {
                if user_identity_id(&id) {
                    users.insert(id, Value::Object(Map::new()));
                } else {
                    problems.add(
                        &users_path,
                        format!("'{id}' is not the ARM id of a user-assigned identity (/subscriptions/…/resourceGroups/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…)"),
                    );
                }
            }
        }
        Some(_) => problems.add(&users_path, "must be an object keyed by identity ARM ids"),
    }
    if kind.contains("UserAssigned") && users.is_empty() {
        problems.add(&users_path, format!("required by type {kind}"));
    }
    if !kind.contains("UserAssigned") && !users.is_empty() {
        problems.add(
            &users_path,
            format!("only with a UserAssigned type, not {kind}"),
        );
    }
    problems.unknown_fields(&map, path, "identity has type and userAssignedIdentities");
    let mut identity = Map::new();
    identity.insert("type".into(), Value::from(kind));
    if !users.is_empty() {
        identity.insert("userAssignedIdentities".into(), Value::Object(users));
    }
    Some(Value::Object(identity))
}

/// Whether `id` is the ARM id of a user-assigned managed identity.
fn user_identity_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    parts.len() == 9
        && parts[0].is_empty()
        && parts[1].eq_ignore_ascii_case("subscriptions")
        && parts[3].eq_ignore_ascii_case("resourceGroups")
        && parts[5].eq_ignore_ascii_case("providers")
        && parts[6].eq_ignore_ascii_case("Microsoft.ManagedIdentity")
        && parts[7].eq_ignore_ascii_case("userAssignedIdentities")
        && [parts[2], parts[4], parts[8]].iter().all(|p| {
            !p.is_empty()
                && p.len() <= 128
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c))
        })
}

/// ACI's `zones`: one availability zone, `1`, `2` or `3` (ACI places a group in a single zone).
pub fn zones(value: Value, path: &FieldPath, problems: &mut Problems) -> Option<Vec<String>> {
    match value {
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::String(zone) if ["1", "2", "3"].contains(&zone.as_str()) => {
                Some(vec![zone.clone()])
            }
            _ => {
                problems.add(&path.index(0), "a zone is \"1\", \"2\" or \"3\"");
                None
            }
        },
        Value::Array(_) => {
            problems.add(
                path,
                "a container group is placed in exactly one zone: [\"1\"]",
            );
            None
        }
        _ => {
            problems.add(path, "must be an array with one zone, e.g. [\"1\"]");
            None
        }
    }
}

/// A region name as ARM writes it (`westeurope`; `West Europe` also reads).
pub fn location(location: &str) -> Result<(), String> {
    let ok = !location.trim().is_empty()
        && location.len() <= 64
        && location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ');
    if ok {
        Ok(())
    } else {
        Err("must be a region name such as westeurope".into())
    }
}
