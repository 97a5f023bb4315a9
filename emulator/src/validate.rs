//! What ACI checks in a PUT before accepting it: names, required settings, limits, references
//! between containers and volumes, and the update rules for an existing group. Every error names
//! the offending field (in `message` and `target`). Codes seen from the real service are used where
//! known (`ResourceRequestsNotSpecified`, `InvalidOsType`, `InvalidContainerGroupUpdate`, …); the
//! rest are `InvalidRequestContent`. The rules about combinations of fields (limits against
//! requests, Windows, GPUs per region, …) are the table in `rules`, which Berth's validator shares.

use std::collections::BTreeSet;

use base64::Engine as _;

use crate::error::ArmError;
use crate::model::{
    Container, ContainerGroup, EnvironmentVariable, IpAddressType, Priority, VolumeMount,
};
use crate::rules;

/// Containers per group (hard limit).
pub const MAX_CONTAINERS: usize = 60;
/// Volumes per group (hard limit).
pub const MAX_VOLUMES: usize = 20;
/// Ports per IP address (hard limit).
pub const MAX_PORTS: usize = 5;

/// Checks a container-group name: 1–63 lowercase letters, digits and hyphens, no hyphen first or
/// last, no `--`.
pub fn group_name(name: &str) -> Result<(), ArmError> {
    if dns_like(name, 1, 63) && !name.contains("--") {
        return Ok(());
    }
    Err(ArmError::bad_request(
        "InvalidResourceName",
        format!(
            "The container group name '{name}' is invalid. It must be 1 to 63 characters of lowercase letters, digits or '-', must not start or end with '-', and must not contain '--'."
        ),
    )
    .with_target("name"))
}

/// Checks a resource group name as ARM does: 1–90 letters, digits, `-`, `_`, `.`, `(`, `)`,
/// not ending with `.`.
pub fn resource_group_name(name: &str) -> bool {
    (1..=90).contains(&name.len())
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

/// Checks a subscription id: letters, digits and hyphens.
pub fn subscription_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Checks a PUT body for a group named `name`.
pub fn group(name: &str, group: &ContainerGroup) -> Result<(), ArmError> {
    group_name(name)?;
    if group
        .location
        .as_deref()
        .is_none_or(|location| location.trim().is_empty())
    {
        return Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        )
        .with_target("location"));
    }
    let properties = &group.properties;
    if properties.os_type.is_none() {
        return Err(ArmError::bad_request(
            "InvalidOsType",
            format!(
                "The 'osType' of container group '{name}' is not specified; it must be 'Linux' or 'Windows'."
            ),
        )
        .with_target("properties.osType"));
    }
    let containers = &properties.containers;
    if containers.is_empty() || containers.len() > MAX_CONTAINERS {
        return Err(ArmError::invalid_field(
            "properties.containers",
            format!(
                "properties.containers must have between 1 and {MAX_CONTAINERS} containers, not {}.",
                containers.len()
            ),
        ));
    }
    let volumes = properties.volumes.as_deref().unwrap_or_default();
    if volumes.len() > MAX_VOLUMES {
        return Err(ArmError::invalid_field(
            "properties.volumes",
            format!(
                "A container group may have at most {MAX_VOLUMES} volumes, not {}.",
                volumes.len()
            ),
        ));
    }
    let volume_names = check_volumes(group)?;
    let mut names = BTreeSet::new();
    for (index, container) in containers.iter().enumerate() {
        let field = format!("properties.containers[{index}]");
        check_container(name, &field, container, &volume_names)?;
        if !names.insert(container.name.as_str()) {
            return Err(ArmError::invalid_field(
                &format!("{field}.name"),
                format!(
                    "The container name '{}' is used twice in container group '{name}'.",
                    container.name
                ),
            ));
        }
    }
    for (index, init) in properties.init_containers.iter().flatten().enumerate() {
        let field = format!("properties.initContainers[{index}]");
        container_name(&format!("{field}.name"), &init.name)?;
        if init.properties.image.as_deref().is_none_or(str::is_empty) {
            return Err(ArmError::invalid_field(
                &format!("{field}.properties.image"),
                format!(
                    "The image of init container '{}' is not specified.",
                    init.name
                ),
            ));
        }
        check_env(&field, init.properties.environment_variables.as_deref())?;
        check_mounts(
            &field,
            init.properties.volume_mounts.as_deref(),
            &volume_names,
        )?;
        if !names.insert(init.name.as_str()) {
            return Err(ArmError::invalid_field(
                &format!("{field}.name"),
                format!(
                    "The container name '{}' is used twice in container group '{name}'.",
                    init.name
                ),
            ));
        }
    }
    check_rules(group)?;
    if let Some(ip) = &properties.ip_address {
        if ip.ports.is_empty() || ip.ports.len() > MAX_PORTS {
            return Err(ArmError::invalid_field(
                "properties.ipAddress.ports",
                format!(
                    "An IP address must expose between 1 and {MAX_PORTS} ports, not {}.",
                    ip.ports.len()
                ),
            ));
        }
        for (index, port) in ip.ports.iter().enumerate() {
            check_port(
                &format!("properties.ipAddress.ports[{index}].port"),
                port.port,
            )?;
        }
        if let Some(label) = &ip.dns_name_label
            && !dns_like(label, 5, 63)
        {
            return Err(ArmError::invalid_field(
                "properties.ipAddress.dnsNameLabel",
                format!(
                    "The DNS name label '{label}' is invalid: 5 to 63 lowercase letters, digits or '-', not starting or ending with '-'."
                ),
            ));
        }
        if properties.priority == Some(Priority::Spot) && ip.kind == IpAddressType::Public {
            return Err(ArmError::bad_request(
                "SpotPriorityContainerGroupNotSupportedForInboundConnectivity",
                format!("The Spot priority container group '{name}' does not support inbound connectivity (ipAddress)."),
            )
            .with_target("properties.ipAddress"));
        }
    }
    Ok(())
}

fn check_container(
    group: &str,
    field: &str,
    container: &Container,
    volume_names: &BTreeSet<&str>,
) -> Result<(), ArmError> {
    container_name(&format!("{field}.name"), &container.name)?;
    let properties = &container.properties;
    if properties
        .image
        .as_deref()
        .is_none_or(|image| image.trim().is_empty())
    {
        return Err(ArmError::invalid_field(
            &format!("{field}.properties.image"),
            format!(
                "The image of container '{}' in container group '{group}' is not specified.",
                container.name
            ),
        ));
    }
    let Some(resources) = &properties.resources else {
        return Err(ArmError::bad_request(
            "ResourceRequestsNotSpecified",
            format!(
                "The resource requests are not specified for container '{}'.",
                container.name
            ),
        )
        .with_target(format!("{field}.properties.resources.requests")));
    };
    let requests = &resources.requests;
    for (name, value) in [("cpu", requests.cpu), ("memoryInGB", requests.memory_in_gb)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(ArmError::invalid_field(
                &format!("{field}.properties.resources.requests.{name}"),
                format!(
                    "The '{name}' request of container '{}' must be a positive number, not {value}.",
                    container.name
                ),
            ));
        }
    }
    for (index, port) in properties.ports.iter().flatten().enumerate() {
        check_port(
            &format!("{field}.properties.ports[{index}].port"),
            port.port,
        )?;
    }
    check_env(field, properties.environment_variables.as_deref())?;
    check_mounts(field, properties.volume_mounts.as_deref(), volume_names)
}

fn check_env(field: &str, variables: Option<&[EnvironmentVariable]>) -> Result<(), ArmError> {
    let mut seen = BTreeSet::new();
    for (index, variable) in variables.unwrap_or_default().iter().enumerate() {
        let name = &variable.name;
        let valid = (1..=63).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with('_')
            && !name.ends_with('_');
        if !valid {
            return Err(ArmError::invalid_field(
                &format!("{field}.properties.environmentVariables[{index}].name"),
                format!(
                    "The environment variable name '{name}' is invalid: 1 to 63 letters, digits or '_', not starting or ending with '_'."
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(ArmError::invalid_field(
                &format!("{field}.properties.environmentVariables[{index}].name"),
                format!("The environment variable '{name}' is set twice."),
            ));
        }
        if variable.value.is_some() && variable.secure_value.is_some() {
            return Err(ArmError::invalid_field(
                &format!("{field}.properties.environmentVariables[{index}]"),
                format!("The environment variable '{name}' has both 'value' and 'secureValue'."),
            ));
        }
    }
    Ok(())
}

fn check_mounts(
    field: &str,
    mounts: Option<&[VolumeMount]>,
    volume_names: &BTreeSet<&str>,
) -> Result<(), ArmError> {
    let mut paths = BTreeSet::new();
    for (index, mount) in mounts.unwrap_or_default().iter().enumerate() {
        let here = format!("{field}.properties.volumeMounts[{index}]");
        if !volume_names.contains(mount.name.as_str()) {
            return Err(ArmError::invalid_field(
                &format!("{here}.name"),
                format!(
                    "The volume mount '{}' refers to no volume of the container group.",
                    mount.name
                ),
            ));
        }
        let path = &mount.mount_path;
        let clean = path.starts_with('/')
            && !path.contains(':')
            && !path.split('/').any(|part| part == "..")
            && !path.trim_end_matches('/').is_empty()
            && !path.starts_with("/proc");
        if !clean {
            return Err(ArmError::invalid_field(
                &format!("{here}.mountPath"),
                format!(
                    "The mount path '{path}' is invalid: it must be an absolute path other than '/', without ':' or '..'."
                ),
            ));
        }
        if !paths.insert(path.trim_end_matches('/')) {
            return Err(ArmError::invalid_field(
                &format!("{here}.mountPath"),
                format!("The mount path '{path}' is used twice in one container."),
            ));
        }
    }
    Ok(())
}

/// Checks the volumes and returns their names.
fn check_volumes(group: &ContainerGroup) -> Result<BTreeSet<&str>, ArmError> {
    let mut names = BTreeSet::new();
    for (index, volume) in group.properties.volumes.iter().flatten().enumerate() {
        let field = format!("properties.volumes[{index}]");
        let name = volume.name.as_str();
        if !dns_like(name, 5, 63) || name.contains("--") {
            return Err(ArmError::invalid_field(
                &format!("{field}.name"),
                format!(
                    "The volume name '{name}' is invalid: 5 to 63 lowercase letters, digits or '-', not starting or ending with '-', without '--'."
                ),
            ));
        }
        if !names.insert(name) {
            return Err(ArmError::invalid_field(
                &format!("{field}.name"),
                format!("The volume name '{name}' is used twice."),
            ));
        }
        let kinds = [
            volume.azure_file.is_some(),
            volume.empty_dir.is_some(),
            // A secret volume may take some files from values and others from references.
            volume.secret.is_some() || volume.secret_reference.is_some(),
            volume.git_repo.is_some(),
        ];
        if kinds.iter().filter(|set| **set).count() != 1 {
            return Err(ArmError::invalid_field(
                &field,
                format!(
                    "The volume '{name}' must set exactly one of azureFile, emptyDir, secret (with secretReference) or gitRepo."
                ),
            ));
        }
        if let Some(file) = &volume.azure_file {
            // ACI leaves share and account names to Azure Storage (the official examples use
            // `shareName`/`accountName`); the emulator only needs them to be one safe folder name.
            for (label, value, max) in [
                ("shareName", &file.share_name, 63),
                ("storageAccountName", &file.storage_account_name, 24),
            ] {
                let safe = (1..=max).contains(&value.len())
                    && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !value.starts_with('-');
                if !safe {
                    return Err(ArmError::invalid_field(
                        &format!("{field}.azureFile.{label}"),
                        format!(
                            "The {label} '{value}' of volume '{name}' is invalid: 1 to {max} letters, digits or '-', not starting with '-'."
                        ),
                    ));
                }
            }
        }
        for (file, content) in volume.secret.iter().flatten() {
            let file_ok = !file.is_empty()
                && !file.contains('/')
                && file != "."
                && file != ".."
                && file.len() <= 255;
            if !file_ok {
                return Err(ArmError::invalid_field(
                    &format!("{field}.secret"),
                    format!("The secret file name '{file}' in volume '{name}' is invalid."),
                ));
            }
            if base64::engine::general_purpose::STANDARD
                .decode(content.expose().trim())
                .is_err()
            {
                return Err(ArmError::invalid_field(
                    &format!("{field}.secret.{file}"),
                    format!("The value of secret '{file}' in volume '{name}' is not valid base64."),
                ));
            }
        }
    }
    Ok(names)
}

/// ACI's create-time rules about combinations of fields (`rules::RULES`), in the group's location.
fn check_rules(group: &ContainerGroup) -> Result<(), ArmError> {
    let properties = serde_json::to_value(&group.properties).map_err(|error| {
        ArmError::invalid_field(
            "properties",
            format!("The properties cannot be read: {error}."),
        )
    })?;
    match rules::check(&properties, group.location.as_deref())
        .into_iter()
        .next()
    {
        Some(violation) => Err(ArmError::bad_request(violation.code, violation.message)
            .with_target(format!("properties.{}", violation.path))),
        None => Ok(()),
    }
}

fn container_name(field: &str, name: &str) -> Result<(), ArmError> {
    if dns_like(name, 1, 63) {
        return Ok(());
    }
    Err(ArmError::invalid_field(
        field,
        format!(
            "The container name '{name}' is invalid: 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'."
        ),
    ))
}

fn check_port(field: &str, port: i32) -> Result<(), ArmError> {
    if (1..=65535).contains(&port) {
        return Ok(());
    }
    Err(ArmError::invalid_field(
        field,
        format!("The port {port} is invalid: ports are 1 to 65535."),
    ))
}

/// Lowercase letters, digits and hyphens, `min..=max` long, no hyphen first or last.
fn dns_like(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// The update rules: OS type, restart policy, CPU/memory/GPU, subnets and zones cannot change.
pub fn update(name: &str, old: &ContainerGroup, new: &ContainerGroup) -> Result<(), ArmError> {
    let (a, b) = (&old.properties, &new.properties);
    let resources = |group: &ContainerGroup| {
        let mut list: Vec<(String, String)> = group
            .properties
            .containers
            .iter()
            .map(|container| {
                let resources = container.properties.resources.as_ref().map(|r| {
                    format!(
                        "{}/{}/{:?}/{:?}",
                        r.requests.cpu, r.requests.memory_in_gb, r.requests.gpu, r.limits
                    )
                });
                (container.name.clone(), resources.unwrap_or_default())
            })
            .collect();
        list.sort();
        list
    };
    let forbidden = a.os_type != b.os_type
        || old.restart_policy() != new.restart_policy()
        || resources(old) != resources(new)
        || a.subnet_ids != b.subnet_ids
        || old.zones != new.zones;
    if forbidden {
        return Err(ArmError::bad_request(
            "InvalidContainerGroupUpdate",
            format!(
                "The updates on container group '{name}' are invalid. If you are going to update the os type, restart policy, network profile, CPU, memory or GPU resources for a container group, you must delete it first and then create a new one."
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
