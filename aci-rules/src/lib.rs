//! # ACI's create-time rules
//!
//! The refusals Azure Container Instances makes when a container group is created that are about
//! combinations of fields (a limit against the group's requests, an IP type against subnets,
//! Windows against features Windows lacks, GPUs against a region), as one table. The ACI emulator
//! refuses a PUT that breaks one (`400` with the rule's code) and Berth's spec validator runs the
//! same table at submit, so the two cannot disagree. A crate of its own, with `serde_json` as its
//! only dependency, so that Berth's production binary links the rules without the emulator.
//!
//! Each rule works on a group's `properties` as JSON (camelCase, as on the wire) and names the
//! offending field as a path relative to `properties`. Each says where it comes from: an error
//! seen from the service (code and message as ACI sends them), or a documented limitation; for the
//! latter ACI's code is not published, and the code here is the emulator's own name, marked so.
//!
//! Region rules need the group's location. The GPU table holds only regions whose SKUs are
//! documented; in any other region the SKU is not checked (ACI decides at deployment). `local`,
//! the emulator's own location, is in the table with no GPU SKUs: the emulator runs no GPUs, and a
//! group that asks for one would otherwise run without it.

use serde_json::Value;

/// One broken rule: the code, the field (relative to the group's `properties`) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// ACI's error code, such as `ContainerLimitGreaterThanContainerGroupTotalRequest`.
    pub code: &'static str,
    /// The offending field, relative to `properties`: `containers[1].properties.resources.limits.cpu`.
    pub path: String,
    /// What is wrong, naming the values.
    pub message: String,
}

/// One of ACI's create-time rules.
pub struct Rule {
    /// ACI's error code for a group that breaks the rule.
    pub code: &'static str,
    /// The rule in one line, for the documentation table.
    pub summary: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
    /// The location the sample is created in.
    pub sample_location: &'static str,
    /// Group properties, otherwise valid, that break this rule and no other.
    pub sample: fn() -> Value,
    check: fn(&Value, Option<&str>) -> Option<Violation>,
}

impl Rule {
    /// Checks `properties` of a group created in `location` against this rule; with no location
    /// (not known yet), a region rule passes.
    pub fn check(&self, properties: &Value, location: Option<&str>) -> Option<Violation> {
        (self.check)(properties, location)
    }
}

/// GPU SKUs that may be requested in a region, for the regions where they are documented.
/// `eastus`: the example of the capabilities API (`Get-AzContainerInstanceCapability -Location
/// eastus` lists K80, P100 and V100 for Linux). `local`: the emulator, which runs no GPUs.
pub const GPU_REGIONS: &[(&str, &[&str])] = &[("eastus", &["K80", "P100", "V100"]), ("local", &[])];

/// GPU counts a container may request (ACI's GPU documentation: 1, 2 or 4 per container).
pub const GPU_COUNTS: [u64; 3] = [1, 2, 4];

/// Volume kinds ACI mounts only in Linux groups.
const LINUX_ONLY_VOLUMES: [&str; 3] = ["azureFile", "gitRepo", "secret"];

/// The table.
pub static RULES: &[Rule] = &[
    Rule {
        code: "ContainerLimitGreaterThanContainerGroupTotalRequest",
        summary: "no container's `limits.cpu` or `limits.memoryInGB` exceeds the sum of the group's requests",
        source: "error seen from ACI; resource limits in ACI's container-group documentation",
        sample_location: "westeurope",
        sample: || {
            group(vec![container_with(
                "main",
                serde_json::json!({ "requests": { "cpu": 1, "memoryInGB": 1 }, "limits": { "cpu": 2 } }),
            )])
        },
        check: limit_over_requests,
    },
    Rule {
        code: "PrivateIPAddressNotSupported",
        summary: "`ipAddress.type: Private` needs `subnetIds` (or the older `networkProfile`)",
        source: "error seen from ACI: \"Private IP address is only supported when network profile is defined\"",
        sample_location: "westeurope",
        sample: || {
            let mut properties = group(vec![container("main")]);
            properties["ipAddress"] =
                serde_json::json!({ "type": "Private", "ports": [{ "port": 80 }] });
            properties
        },
        check: private_ip_without_subnet,
    },
    Rule {
        code: "WindowsContainerGroupMultipleContainersNotSupported",
        summary: "a Windows group has one container",
        source: "documented: multi-container groups support only Linux containers (code is the emulator's name)",
        sample_location: "westeurope",
        sample: || windows(group(vec![container("main"), container("side")])),
        check: windows_several_containers,
    },
    Rule {
        code: "WindowsContainerGroupInitContainersNotSupported",
        summary: "a Windows group has no init containers",
        source: "documented: init containers run only in Linux groups (code is the emulator's name)",
        sample_location: "westeurope",
        sample: || {
            let mut properties = windows(group(vec![container("main")]));
            properties["initContainers"] = serde_json::json!([
                { "name": "setup", "properties": { "image": "busybox" } }
            ]);
            properties
        },
        check: windows_init_containers,
    },
    Rule {
        code: "WindowsContainerGroupVolumeNotSupported",
        summary: "a Windows group has no `azureFile`, `gitRepo` or `secret` volume",
        source: "documented: Azure Files, gitRepo and secret volumes are restricted to Linux containers (code is the emulator's name)",
        sample_location: "westeurope",
        sample: || {
            let mut properties = windows(group(vec![container("main")]));
            properties["volumes"] =
                serde_json::json!([{ "name": "certs", "secret": { "key": "aGk=" } }]);
            properties
        },
        check: windows_volume,
    },
    Rule {
        code: "InvalidGpuCount",
        summary: "a container's `requests.gpu.count` is 1, 2 or 4",
        source: "documented: GPU resources per container are 1, 2 or 4 (code is the emulator's name)",
        sample_location: "eastus",
        sample: || {
            group(vec![container_with(
                "main",
                serde_json::json!({ "requests": { "cpu": 1, "memoryInGB": 1, "gpu": { "count": 3, "sku": "V100" } } }),
            )])
        },
        check: gpu_count,
    },
    Rule {
        code: "GpuSkuNotAvailableInRegion",
        summary: "a container's `requests.gpu.sku` is offered in the group's location (see the region table)",
        source: "documented per region by the capabilities API (code is the emulator's name)",
        sample_location: "local",
        sample: || {
            group(vec![container_with(
                "main",
                serde_json::json!({ "requests": { "cpu": 1, "memoryInGB": 1, "gpu": { "count": 1, "sku": "K80" } } }),
            )])
        },
        check: gpu_sku_in_region,
    },
    Rule {
        code: "ConfidentialSkuNotSupportedForWindows",
        summary: "a group with `sku: Confidential` is a Linux group",
        source: "documented: confidential containers don't support Windows containers (code is the emulator's name)",
        sample_location: "westeurope",
        sample: || {
            let mut properties = windows(group(vec![container("main")]));
            properties["sku"] = Value::from("Confidential");
            properties
        },
        check: confidential_windows,
    },
];

/// Every rule `properties` of a group in `location` breaks, in table order; with no location,
/// the region rules are left out.
pub fn check(properties: &Value, location: Option<&str>) -> Vec<Violation> {
    RULES
        .iter()
        .filter_map(|rule| rule.check(properties, location))
        .collect()
}

/// ARM's normalised region name: lowercase without spaces (`West US` → `westus`).
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn containers(properties: &Value) -> impl Iterator<Item = (usize, &Value)> {
    properties
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn is(value: Option<&Value>, expected: &str) -> bool {
    value
        .and_then(Value::as_str)
        .is_some_and(|text| text.eq_ignore_ascii_case(expected))
}

fn is_windows(properties: &Value) -> bool {
    is(properties.get("osType"), "Windows")
}

fn resources<'a>(container: &'a Value, part: &str) -> Option<&'a Value> {
    container.get("properties")?.get("resources")?.get(part)
}

fn limit_over_requests(properties: &Value, _: Option<&str>) -> Option<Violation> {
    // `memoryInGb` is how `az container export` spells it.
    let amount = |part: &Value, key: &str| {
        part.get(key)
            .or_else(|| {
                (key == "memoryInGB")
                    .then(|| part.get("memoryInGb"))
                    .flatten()
            })
            .and_then(Value::as_f64)
    };
    let total = |key: &str| -> f64 {
        containers(properties)
            .filter_map(|(_, c)| resources(c, "requests"))
            .filter_map(|requests| amount(requests, key))
            .sum()
    };
    for (index, container) in containers(properties) {
        let Some(limits) = resources(container, "limits") else {
            continue;
        };
        for key in ["cpu", "memoryInGB"] {
            let total = total(key);
            if let Some(limit) = amount(limits, key)
                && limit > total + 1e-9
            {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("");
                return Some(Violation {
                    code: "ContainerLimitGreaterThanContainerGroupTotalRequest",
                    path: format!("containers[{index}].properties.resources.limits.{key}"),
                    message: format!(
                        "The '{key}' limit {limit} of container '{name}' is greater than the container group's total request {total}."
                    ),
                });
            }
        }
    }
    None
}

fn private_ip_without_subnet(properties: &Value, _: Option<&str>) -> Option<Violation> {
    let ip = properties.get("ipAddress")?;
    let has_subnet = properties
        .get("subnetIds")
        .and_then(Value::as_array)
        .is_some_and(|ids| !ids.is_empty())
        || properties
            .get("networkProfile")
            .is_some_and(Value::is_object);
    (is(ip.get("type"), "Private") && !has_subnet).then(|| Violation {
        code: "PrivateIPAddressNotSupported",
        path: "ipAddress.type".into(),
        message: "IP Address type 'Private' is only supported when the container group is deployed into a subnet (subnetIds).".into(),
    })
}

fn windows_several_containers(properties: &Value, _: Option<&str>) -> Option<Violation> {
    let count = containers(properties).count();
    (is_windows(properties) && count > 1).then(|| Violation {
        code: "WindowsContainerGroupMultipleContainersNotSupported",
        path: "containers[1]".into(),
        message: format!(
            "A Windows container group has one container, not {count}: multi-container groups are Linux only."
        ),
    })
}

fn windows_init_containers(properties: &Value, _: Option<&str>) -> Option<Violation> {
    let any = properties
        .get("initContainers")
        .and_then(Value::as_array)
        .is_some_and(|inits| !inits.is_empty());
    (is_windows(properties) && any).then(|| Violation {
        code: "WindowsContainerGroupInitContainersNotSupported",
        path: "initContainers".into(),
        message: "Init containers are supported only in Linux container groups.".into(),
    })
}

fn windows_volume(properties: &Value, _: Option<&str>) -> Option<Violation> {
    if !is_windows(properties) {
        return None;
    }
    let volumes = properties.get("volumes").and_then(Value::as_array)?;
    volumes.iter().enumerate().find_map(|(index, volume)| {
        let kind = LINUX_ONLY_VOLUMES
            .into_iter()
            .find(|kind| volume.get(*kind).is_some())?;
        Some(Violation {
            code: "WindowsContainerGroupVolumeNotSupported",
            path: format!("volumes[{index}].{kind}"),
            message: format!("A '{kind}' volume can be mounted only in a Linux container group."),
        })
    })
}

/// Each container's GPU request with its index.
fn gpus(properties: &Value) -> impl Iterator<Item = (usize, &Value)> {
    containers(properties)
        .filter_map(|(index, c)| Some((index, resources(c, "requests")?.get("gpu")?)))
}

fn gpu_count(properties: &Value, _: Option<&str>) -> Option<Violation> {
    gpus(properties).find_map(|(index, gpu)| {
        let count = gpu.get("count");
        let valid = count
            .and_then(Value::as_u64)
            .is_some_and(|n| GPU_COUNTS.contains(&n));
        (!valid).then(|| Violation {
            code: "InvalidGpuCount",
            path: format!("containers[{index}].properties.resources.requests.gpu.count"),
            message: format!(
                "The GPU count {} is invalid: a container asks for 1, 2 or 4 GPUs.",
                count.map_or_else(|| "(none)".to_owned(), Value::to_string)
            ),
        })
    })
}

fn gpu_sku_in_region(properties: &Value, location: Option<&str>) -> Option<Violation> {
    let location = normalize_location(location?);
    let (_, offered) = GPU_REGIONS.iter().find(|(region, _)| *region == location)?;
    gpus(properties).find_map(|(index, gpu)| {
        let sku = gpu.get("sku").and_then(Value::as_str).unwrap_or("");
        let available = offered.iter().any(|s| s.eq_ignore_ascii_case(sku));
        (!available).then(|| Violation {
            code: "GpuSkuNotAvailableInRegion",
            path: format!("containers[{index}].properties.resources.requests.gpu.sku"),
            message: if offered.is_empty() {
                format!("The GPU SKU '{sku}' is not available in location '{location}': it offers no GPUs.")
            } else {
                format!(
                    "The GPU SKU '{sku}' is not available in location '{location}': it offers {}.",
                    offered.join(", ")
                )
            },
        })
    })
}

fn confidential_windows(properties: &Value, _: Option<&str>) -> Option<Violation> {
    (is(properties.get("sku"), "Confidential") && is_windows(properties)).then(|| Violation {
        code: "ConfidentialSkuNotSupportedForWindows",
        path: "sku".into(),
        message: "Confidential container groups run Linux containers only.".into(),
    })
}

fn container(name: &str) -> Value {
    container_with(
        name,
        serde_json::json!({ "requests": { "cpu": 1, "memoryInGB": 1 } }),
    )
}

fn container_with(name: &str, resources: Value) -> Value {
    serde_json::json!({ "name": name, "properties": { "image": "busybox", "resources": resources } })
}

fn group(containers: Vec<Value>) -> Value {
    serde_json::json!({ "containers": containers, "osType": "Linux", "restartPolicy": "Never" })
}

fn windows(mut properties: Value) -> Value {
    properties["osType"] = Value::from("Windows");
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sample_breaks_its_own_rule_and_no_other() {
        for rule in RULES {
            let violations = check(&(rule.sample)(), Some(rule.sample_location));
            let codes: Vec<&str> = violations.iter().map(|v| v.code).collect();
            assert_eq!(codes, [rule.code], "{}", rule.code);
        }
    }

    #[test]
    fn gpus_pass_where_offered_and_in_regions_not_in_the_table() {
        let gpu = |sku: &str| {
            group(vec![container_with(
                "main",
                serde_json::json!({ "requests": { "cpu": 1, "memoryInGB": 1, "gpu": { "count": 2, "sku": sku } } }),
            )])
        };
        assert!(check(&gpu("V100"), Some("East US")).is_empty());
        assert!(check(&gpu("K80"), Some("westeurope")).is_empty());
        assert!(
            check(&gpu("K80"), None).is_empty(),
            "no location, no region rule"
        );
        assert_eq!(
            check(&gpu("K80"), Some("Local"))[0].code,
            "GpuSkuNotAvailableInRegion"
        );
    }

    #[test]
    fn a_limit_equal_to_the_total_request_or_a_subnet_is_accepted() {
        let mut properties = group(vec![
            container_with(
                "main",
                serde_json::json!({ "requests": { "cpu": 1, "memoryInGb": 1 }, "limits": { "cpu": 1.5, "memoryInGB": 2 } }),
            ),
            container("side"),
        ]);
        properties["ipAddress"] =
            serde_json::json!({ "type": "private", "ports": [{ "port": 80 }] });
        properties["subnetIds"] = serde_json::json!([{ "id": "/subscriptions/s/x" }]);
        assert!(check(&properties, Some("westeurope")).is_empty());
        properties["containers"][0]["properties"]["resources"]["limits"]["memoryInGB"] =
            Value::from(2.5);
        let violations = check(&properties, Some("westeurope"));
        assert_eq!(
            violations[0].path,
            "containers[0].properties.resources.limits.memoryInGB"
        );
    }
}
