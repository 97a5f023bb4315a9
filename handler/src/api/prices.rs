//! The ACI price table behind `cost.estimatedUsd`: one rate per OS, SKU, priority and GPU.
//!
//! A container group is billed per second from the start of its first image pull until it is
//! stopped, for the vCPUs and memory it requests; Windows groups add a per-vCPU software meter,
//! GPU groups have meters of their own (per GPU, and their own vCPU and memory meters). The
//! defaults are Microsoft's retail list prices for `serviceName 'Container Instances'` in
//! `eastus`, USD, pay-as-you-go, as published by the Azure Retail Prices API
//! (<https://prices.azure.com/api/retail/prices>, the figures behind
//! <https://azure.microsoft.com/en-us/pricing/details/container-instances/>), read 2026-10-09:
//!
//! | meter | default |
//! |---|---|
//! | Standard vCPU Duration | $0.0405 per vCPU-hour |
//! | Standard Memory Duration | $0.00445 per GB-hour |
//! | Standard Spot vCPU Duration | $0.01215 per vCPU-hour |
//! | Standard Spot Memory Duration | $0.001335 per GB-hour |
//! | Standard Windows Software Duration | $0.000012 per vCPU-second ($0.0432 per vCPU-hour) |
//!
//! The Confidential SKU's meters and the K80, P100 and V100 GPU meters exist in the same price
//! list, but no reading of their figures could be checked, so they have no default: a group that
//! needs one is left out of `estimatedUsd` and named in `cost.unpriced` until `BERTH_PRICES` sets
//! it. Other regions differ by a few per cent; `BERTH_PRICES` overrides any entry.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::spec::GroupSpec;

/// What one vCPU and one GB of memory cost per hour.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rate {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

/// A GPU SKU's meters: per GPU, and the group's vCPUs and memory at the GPU SKU's own rates.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuRate {
    pub gpu_hour: f64,
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

/// Regular (pay-as-you-go) or Spot (evictable, billed at the Spot meters): the spec's own.
pub use crate::spec::Priority;

/// The price table (`BERTH_PRICES` over the defaults above).
#[derive(Clone, Debug, PartialEq)]
pub struct Prices {
    /// Linux, Standard SKU, Regular priority.
    pub standard: Rate,
    /// Linux, Standard SKU, Spot priority.
    pub spot: Rate,
    /// Linux, Confidential SKU (no default).
    pub confidential: Option<Rate>,
    /// Added per vCPU-hour for a Windows group.
    pub windows_vcpu_hour: f64,
    /// By GPU SKU (`K80`, `P100`, `V100`; no defaults).
    pub gpu: BTreeMap<String, GpuRate>,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            standard: Rate {
                vcpu_hour: 0.0405,
                gb_hour: 0.00445,
            },
            spot: Rate {
                vcpu_hour: 0.01215,
                gb_hour: 0.001335,
            },
            confidential: None,
            windows_vcpu_hour: 0.0432,
            gpu: BTreeMap::new(),
        }
    }
}

/// `BERTH_PRICES` as written: every entry optional, each one given replaces its default.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Overrides {
    standard: Option<Rate>,
    spot: Option<Rate>,
    confidential: Option<Rate>,
    windows_vcpu_hour: Option<f64>,
    #[serde(default)]
    gpu: BTreeMap<String, GpuRate>,
}

/// The GPU SKUs ACI offers.
const GPU_SKUS: [&str; 3] = ["K80", "P100", "V100"];

/// What a group is billed by: read from its ACI properties.
#[derive(Clone, Debug, PartialEq)]
pub struct Billing {
    pub windows: bool,
    /// ACI's `sku` (`Standard` when absent).
    pub sku: String,
    pub cpu: f64,
    pub memory_gb: f64,
    /// GPUs requested, by SKU.
    pub gpus: BTreeMap<String, f64>,
}

impl Billing {
    /// Reads a group's OS, SKU, requests and GPUs.
    pub fn of(group: &GroupSpec) -> Billing {
        let props = &group.properties;
        let shape = group.shape();
        let mut gpus = BTreeMap::new();
        for container in props
            .get("containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(gpu) = container.pointer("/properties/resources/requests/gpu") else {
                continue;
            };
            let count = gpu.get("count").and_then(Value::as_f64).unwrap_or(0.0);
            let sku = gpu.get("sku").and_then(Value::as_str).unwrap_or("");
            if count > 0.0 {
                *gpus.entry(sku.to_owned()).or_insert(0.0) += count;
            }
        }
        Billing {
            windows: props
                .get("osType")
                .and_then(Value::as_str)
                .is_some_and(|os| os.eq_ignore_ascii_case("Windows")),
            sku: props
                .get("sku")
                .and_then(Value::as_str)
                .unwrap_or("Standard")
                .to_owned(),
            cpu: shape.cpu,
            memory_gb: shape.memory_gb,
            gpus,
        }
    }
}

/// A price, or the meter the table has no price for.
pub type Priced = Result<f64, String>;

impl Prices {
    /// The default table with `BERTH_PRICES` over it: inline JSON (starting with `{`) or the path
    /// of a JSON file. An error names the entry at fault.
    pub fn parse(setting: &str) -> Result<Prices, String> {
        Prices::parse_over(Prices::default(), setting)
    }

    /// `base` with the entries of `setting` (as [`Prices::parse`] reads it) over it.
    pub fn parse_over(base: Prices, setting: &str) -> Result<Prices, String> {
        let text = setting.trim();
        let json = if text.starts_with('{') {
            text.to_owned()
        } else {
            std::fs::read_to_string(text).map_err(|e| format!("cannot read '{text}': {e}"))?
        };
        let overrides: Overrides = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        let mut prices = base;
        let rate = |name: &str, r: Rate| -> Result<Rate, String> {
            check(&format!("{name}.vcpuHour"), r.vcpu_hour)?;
            check(&format!("{name}.gbHour"), r.gb_hour)?;
            Ok(r)
        };
        if let Some(r) = overrides.standard {
            prices.standard = rate("standard", r)?;
        }
        if let Some(r) = overrides.spot {
            prices.spot = rate("spot", r)?;
        }
        if let Some(r) = overrides.confidential {
            prices.confidential = Some(rate("confidential", r)?);
        }
        if let Some(w) = overrides.windows_vcpu_hour {
            prices.windows_vcpu_hour = check("windowsVcpuHour", w)?;
        }
        for (sku, g) in overrides.gpu {
            if !GPU_SKUS.contains(&sku.as_str()) {
                return Err(format!(
                    "gpu.{sku}: not a GPU SKU (one of {})",
                    GPU_SKUS.join(", ")
                ));
            }
            check(&format!("gpu.{sku}.gpuHour"), g.gpu_hour)?;
            check(&format!("gpu.{sku}.vcpuHour"), g.vcpu_hour)?;
            check(&format!("gpu.{sku}.gbHour"), g.gb_hour)?;
            prices.gpu.insert(sku, g);
        }
        Ok(prices)
    }

    /// What `seconds` of a group billed as `billing` cost at `priority`, or the meter missing
    /// from the table.
    pub fn price(&self, billing: &Billing, priority: Priority, seconds: f64) -> Priced {
        let hours = seconds / 3600.0;
        let mut per_hour = 0.0;
        let rate = if let Some((sku, _)) = billing.gpus.iter().next() {
            let g = self.gpu.get(sku).ok_or_else(|| format!("gpu {sku}"))?;
            for (sku, count) in &billing.gpus {
                let g = self.gpu.get(sku).ok_or_else(|| format!("gpu {sku}"))?;
                per_hour += count * g.gpu_hour;
            }
            Rate {
                vcpu_hour: g.vcpu_hour,
                gb_hour: g.gb_hour,
            }
        } else if priority == Priority::Spot {
            self.spot
        } else if billing.sku.eq_ignore_ascii_case("Standard") {
            self.standard
        } else if billing.sku.eq_ignore_ascii_case("Confidential") {
            self.confidential.ok_or("sku Confidential")?
        } else {
            return Err(format!("sku {}", billing.sku));
        };
        per_hour += billing.cpu * rate.vcpu_hour + billing.memory_gb * rate.gb_hour;
        if billing.windows {
            per_hour += billing.cpu * self.windows_vcpu_hour;
        }
        Ok(per_hour * hours)
    }
}

/// A price must be a finite number, zero or more.
fn check(name: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "{name}: {value} is not a price (a number, zero or more)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn group(properties: Value) -> GroupSpec {
        let spec =
            json!({ "id": "d-price", "groups": [{ "name": "g", "properties": properties }] });
        let spec = crate::spec::parse(
            spec.to_string().as_bytes(),
            crate::spec::Format::Json,
            || unreachable!(),
        )
        .expect("the spec parses");
        spec.groups.into_iter().next().unwrap()
    }

    fn container(requests: Value) -> Value {
        json!({ "name": "main", "properties": { "image": "busybox", "resources": { "requests": requests } } })
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn a_linux_standard_hour_is_the_list_price() {
        let g = group(json!({ "containers": [container(json!({ "cpu": 1, "memoryInGB": 1.5 }))] }));
        let billing = Billing::of(&g);
        assert!(!billing.windows);
        let usd = Prices::default()
            .price(&billing, Priority::Regular, 3600.0)
            .unwrap();
        assert!(close(usd, 0.0405 + 1.5 * 0.00445), "{usd}");
        let spot = Prices::default()
            .price(&billing, Priority::Spot, 3600.0)
            .unwrap();
        assert!(close(spot, 0.01215 + 1.5 * 0.001335), "{spot}");
    }

    #[test]
    fn windows_adds_its_software_meter_per_vcpu() {
        let g = group(json!({
            "osType": "Windows",
            "containers": [container(json!({ "cpu": 2, "memoryInGB": 4 }))]
        }));
        let usd = Prices::default()
            .price(&Billing::of(&g), Priority::Regular, 60.0)
            .unwrap();
        let linux = 2.0 * 0.0405 + 4.0 * 0.00445;
        assert!(close(usd, (linux + 2.0 * 0.0432) / 60.0), "{usd}");
    }

    #[test]
    fn confidential_and_gpu_groups_are_unpriced_until_the_table_has_them() {
        let confidential = group(json!({
            "sku": "Confidential",
            "containers": [container(json!({ "cpu": 1, "memoryInGB": 2 }))]
        }));
        let gpu = group(json!({ "containers": [container(json!({
            "cpu": 6, "memoryInGB": 56, "gpu": { "count": 1, "sku": "V100" } }))] }));
        let defaults = Prices::default();
        let confidential = Billing::of(&confidential);
        let gpu = Billing::of(&gpu);
        assert_eq!(
            defaults.price(&confidential, Priority::Regular, 1.0),
            Err("sku Confidential".into())
        );
        assert_eq!(
            defaults.price(&gpu, Priority::Regular, 1.0),
            Err("gpu V100".into())
        );

        let table = Prices::parse(
            r#"{"confidential": {"vcpuHour": 0.05, "gbHour": 0.005},
                "gpu": {"V100": {"gpuHour": 3.0, "vcpuHour": 0.04, "gbHour": 0.004}}}"#,
        )
        .unwrap();
        let usd = table
            .price(&confidential, Priority::Regular, 7200.0)
            .unwrap();
        assert!(close(usd, 2.0 * (0.05 + 2.0 * 0.005)), "{usd}");
        let usd = table.price(&gpu, Priority::Regular, 3600.0).unwrap();
        assert!(close(usd, 3.0 + 6.0 * 0.04 + 56.0 * 0.004), "{usd}");
        // The entries not given keep their defaults.
        assert_eq!(table.standard, Prices::default().standard);
    }

    #[test]
    fn a_bad_table_is_an_error_naming_the_entry() {
        let err = |text: &str| Prices::parse(text).unwrap_err();
        assert!(err(r#"{"spot": {"vcpuHour": -1, "gbHour": 0}}"#).starts_with("spot.vcpuHour"));
        assert!(
            err(r#"{"gpu": {"A100": {"gpuHour": 1, "vcpuHour": 1, "gbHour": 1}}}"#)
                .starts_with("gpu.A100")
        );
        assert!(err(r#"{"standrd": {}}"#).contains("standrd"));
        assert!(err(r#"{"standard": {"vcpuHour": 1}}"#).contains("gbHour"));
        assert!(err("/nonexistent/prices.json").contains("/nonexistent/prices.json"));
    }

    #[test]
    fn the_table_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        std::fs::write(&path, r#"{"windowsVcpuHour": 0.05}"#).unwrap();
        let table = Prices::parse(path.to_str().unwrap()).unwrap();
        assert_eq!(table.windows_vcpu_hour, 0.05);
    }
}
