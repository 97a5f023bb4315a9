//! ACI's default quotas, enforced when asked (`Config::enforce_quotas`): container-group creates
//! per 5 minutes and per hour per subscription (`429` with `Retry-After`), and per region and
//! subscription the number of container groups and of standard cores (`400
//! ContainerGroupQuotaReached`, with ACI's message).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ArmError;

const FIVE_MINUTES: Duration = Duration::from_secs(300);
const ONE_HOUR: Duration = Duration::from_secs(3600);

/// The limits (ACI's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    /// Creates per 5 minutes per subscription (100).
    pub creates_per_5_minutes: usize,
    /// Creates per hour per subscription (300).
    pub creates_per_hour: usize,
    /// Standard cores per region per subscription (100).
    pub cores_per_region: f64,
    /// Standard container groups per region per subscription (100).
    pub groups_per_region: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            creates_per_5_minutes: 100,
            creates_per_hour: 300,
            cores_per_region: 100.0,
            groups_per_region: 100,
        }
    }
}

/// What a subscription has in a region now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RegionUsage {
    /// Container groups.
    pub groups: usize,
    /// Cores requested by groups that are not stopped.
    pub cores: f64,
}

/// The create windows per subscription.
#[derive(Debug, Default)]
pub struct CreateWindows {
    creates: HashMap<String, VecDeque<Instant>>,
}

/// The `x-ms-ratelimit-remaining-subscription-resource-requests-*` values after a create.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remaining {
    /// Creates left in the 5-minute window.
    pub five_minutes: usize,
    /// Creates left in the hour.
    pub hour: usize,
}

impl CreateWindows {
    /// Counts a create at `now` if the windows allow it; with `enforce` off it is always counted.
    pub fn admit(
        &mut self,
        quotas: &Quotas,
        subscription: &str,
        now: Instant,
        enforce: bool,
    ) -> Result<Remaining, ArmError> {
        let window = self.creates.entry(subscription.to_string()).or_default();
        while window
            .front()
            .is_some_and(|first| now.duration_since(*first) >= ONE_HOUR)
        {
            window.pop_front();
        }
        let in_five = window
            .iter()
            .filter(|at| now.duration_since(**at) < FIVE_MINUTES)
            .count();
        if enforce {
            let limits = [
                (
                    in_five,
                    quotas.creates_per_5_minutes,
                    FIVE_MINUTES,
                    "5 minutes",
                ),
                (window.len(), quotas.creates_per_hour, ONE_HOUR, "hour"),
            ];
            for (used, limit, span, label) in limits {
                if used >= limit {
                    // The create that must leave the window for one more to fit.
                    let oldest = window
                        .iter()
                        .rev()
                        .nth(limit.max(1) - 1)
                        .copied()
                        .unwrap_or(now);
                    let wait = (oldest + span).saturating_duration_since(now);
                    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    return Err(ArmError::throttled(
                        "SubscriptionRequestsThrottled",
                        format!(
                            "Number of container group creates for subscription '{subscription}' exceeded the limit of '{limit}' per {label}. Please try again after '{}' seconds.",
                            seconds.max(1)
                        ),
                        seconds.max(1),
                    ));
                }
            }
        }
        window.push_back(now);
        Ok(Remaining {
            five_minutes: quotas.creates_per_5_minutes.saturating_sub(in_five + 1),
            hour: quotas.creates_per_hour.saturating_sub(window.len()),
        })
    }
}

/// Checks a new group (or a grown one) against the regional quotas.
pub fn check_region(
    quotas: &Quotas,
    region: &str,
    usage: RegionUsage,
    new_group: bool,
    cores: f64,
) -> Result<(), ArmError> {
    let groups = usage.groups + usize::from(new_group);
    if groups > quotas.groups_per_region {
        return Err(quota_reached(
            "ContainerGroups",
            region,
            quotas.groups_per_region as f64,
            usage.groups as f64,
            1.0,
        ));
    }
    if usage.cores + cores > quotas.cores_per_region + 1e-9 {
        return Err(quota_reached(
            "StandardCores",
            region,
            quotas.cores_per_region,
            usage.cores,
            cores,
        ));
    }
    Ok(())
}

fn quota_reached(quota: &str, region: &str, limit: f64, usage: f64, requested: f64) -> ArmError {
    ArmError::bad_request(
        "ContainerGroupQuotaReached",
        format!(
            "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota '{quota}' exceeded in region '{region}'. Limit: '{}', Usage: '{}' Requested: '{}'.",
            number(limit),
            number(usage),
            number(requested)
        ),
    )
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_101st_create_in_five_minutes_is_throttled_until_the_window_moves() {
        let quotas = Quotas::default();
        let mut windows = CreateWindows::default();
        let start = Instant::now();
        for i in 0..100 {
            let remaining = windows
                .admit(&quotas, "sub", start + Duration::from_millis(i), true)
                .unwrap();
            assert_eq!(remaining.five_minutes, 99 - i as usize);
        }
        let error = windows
            .admit(&quotas, "sub", start + Duration::from_secs(10), true)
            .unwrap_err();
        assert_eq!(error.status.as_u16(), 429);
        assert_eq!(error.retry_after, Some(290));
        assert!(windows.admit(&quotas, "other", start, true).is_ok());
        assert!(
            windows
                .admit(&quotas, "sub", start + Duration::from_secs(301), true)
                .is_ok()
        );
    }

    #[test]
    fn without_enforcement_creates_are_only_counted() {
        let quotas = Quotas {
            creates_per_5_minutes: 1,
            ..Quotas::default()
        };
        let mut windows = CreateWindows::default();
        let now = Instant::now();
        windows.admit(&quotas, "s", now, false).unwrap();
        let remaining = windows.admit(&quotas, "s", now, false).unwrap();
        assert_eq!(remaining.five_minutes, 0);
    }

    #[test]
    fn cores_and_groups_per_region_give_acis_message() {
        let quotas = Quotas::default();
        let usage = RegionUsage {
            groups: 3,
            cores: 99.0,
        };
        let error = check_region(&quotas, "westus", usage, true, 2.0).unwrap_err();
        assert_eq!(error.code, "ContainerGroupQuotaReached");
        assert_eq!(
            error.message,
            "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' exceeded in region 'westus'. Limit: '100', Usage: '99' Requested: '2'."
        );
        assert!(check_region(&quotas, "westus", usage, true, 1.0).is_ok());
        let full = RegionUsage {
            groups: 100,
            cores: 0.0,
        };
        let error = check_region(&quotas, "westus", full, true, 1.0).unwrap_err();
        assert!(error.message.contains("'ContainerGroups'"));
        assert!(check_region(&quotas, "westus", full, false, 1.0).is_ok());
    }
}
