//! The read-only ARM operations: get, list, logs, the status of an async operation, usage.

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::http::StatusCode;
use time::OffsetDateTime;

use super::arm::{INSTANT_LOG, ListPage, Target};
use super::operations::OpKind;
use super::{Emulator, Entry};
use crate::error::ArmError;
use crate::lifecycle::{Failure, Phase, Provisioning};
use crate::logs::{LogQuery, format_timestamp};
use crate::model::{CloudErrorBody, ContainerGroup, OperationStatus, Usage, UsageList, UsageName};
use crate::process::lock;
use crate::quotas::RegionUsage;
use crate::record::{GroupKey, View, normalize_location};

impl Emulator {
    /// GET: the group with its instance view.
    pub fn get(&self, target: Target<'_>) -> Result<ContainerGroup, ArmError> {
        let groups = lock(&self.groups);
        let entry = groups
            .get(&target.key())
            .ok_or_else(|| target.not_found())?;
        Ok(entry.record.render(View::Full))
    }

    /// Lists a subscription's groups (or one resource group's), after `after`, one page at a time.
    pub fn list(
        &self,
        subscription: &str,
        resource_group: Option<&str>,
        after: Option<GroupKey>,
    ) -> ListPage {
        let subscription = subscription.to_ascii_lowercase();
        let resource_group = resource_group.map(str::to_ascii_lowercase);
        let start = match after {
            Some(key) => Bound::Excluded(key),
            None => Bound::Included(GroupKey {
                subscription: subscription.clone(),
                resource_group: resource_group.clone().unwrap_or_default(),
                name: String::new(),
            }),
        };
        let groups = lock(&self.groups);
        let mut page = groups
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| {
                key.subscription == subscription
                    && resource_group
                        .as_ref()
                        .is_none_or(|rg| key.resource_group == *rg)
            });
        let mut value = Vec::new();
        let mut last = None;
        for (key, entry) in page.by_ref().take(self.config.page_size.max(1)) {
            value.push(entry.record.render(View::List));
            last = Some(key.clone());
        }
        let next = if page.next().is_some() { last } else { None };
        ListPage { value, next }
    }

    /// GET logs: the container's output (`404 ContainerLogNotAvailable` before it started).
    pub fn logs(
        &self,
        target: Target<'_>,
        container: &str,
        query: LogQuery,
    ) -> Result<String, ArmError> {
        let (buffer, stopped, finished) = {
            let groups = lock(&self.groups);
            let entry = groups
                .get(&target.key())
                .ok_or_else(|| target.not_found())?;
            let (slot, run) = entry
                .record
                .runtime
                .slots()
                .find(|(_, run)| run.name == container)
                .ok_or_else(|| {
                    ArmError::new(
                        StatusCode::NOT_FOUND,
                        "ContainerNotFound",
                        format!(
                            "The container '{container}' is not found in container group '{}'.",
                            target.name
                        ),
                    )
                })?;
            if !run.logs_available {
                return Err(ArmError::new(
                    StatusCode::NOT_FOUND,
                    "ContainerLogNotAvailable",
                    format!(
                        "Log of container '{container}' in container group '{}' is not available yet. Please check container 'InstanceView' for more information or retry later.",
                        target.name
                    ),
                ));
            }
            let finished = run.current.as_ref().and_then(|state| state.finish_time);
            (
                entry.log(slot).cloned(),
                run.phase != Phase::Running,
                finished,
            )
        };
        if self.config.instant {
            let mut line = String::new();
            if query.tail != Some(0) {
                if query.timestamps {
                    let at = finished.unwrap_or_else(OffsetDateTime::now_utc);
                    line.push_str(&format_timestamp(at));
                    line.push(' ');
                }
                line.push_str(INSTANT_LOG);
                line.push('\n');
            }
            return Ok(line);
        }
        Ok(buffer
            .map(|buffer| lock(&buffer).render(query, stopped))
            .unwrap_or_default())
    }

    /// The status behind an `Azure-AsyncOperation` URL.
    pub fn operation_status(&self, id: &str) -> Option<OperationStatus> {
        let operation = lock(&self.operations).get(id)?.clone();
        let groups = lock(&self.groups);
        let runtime = groups
            .get(&operation.key)
            .map(|entry| &entry.record.runtime);
        let ended = |provisioning: Provisioning, failure: Option<&Failure>| match provisioning {
            Provisioning::Failed => (
                "Failed",
                failure.map(|failure| CloudErrorBody {
                    code: Some(failure.code.clone()),
                    message: Some(failure.message.clone()),
                    target: None,
                    details: None,
                }),
            ),
            other => (other.as_str(), None),
        };
        let (status, error) = match (&operation.frozen, operation.kind, runtime) {
            (Some((provisioning, failure)), _, _) => ended(*provisioning, failure.as_ref()),
            (None, OpKind::Delete, None) => ("Succeeded", None),
            (None, OpKind::Delete, Some(runtime)) => {
                if runtime.provisioning == Provisioning::Deleting {
                    ("Deleting", None)
                } else {
                    ("Succeeded", None)
                }
            }
            (None, _, None) => ("Canceled", None),
            (None, _, Some(runtime)) if runtime.generation != operation.generation => {
                ("Canceled", None)
            }
            (None, _, Some(runtime)) => ended(runtime.provisioning, runtime.failure.as_ref()),
        };
        Some(OperationStatus {
            id: Some(operation.resource_id.clone()),
            name: Some(id.to_string()),
            status: status.to_string(),
            start_time: Some(operation.started),
            error,
        })
    }

    /// `Location_ListUsage`: container groups and cores in a region.
    pub fn usage(&self, subscription: &str, location: &str) -> UsageList {
        let location = normalize_location(location);
        let usage = region_usage(
            &lock(&self.groups),
            &subscription.to_ascii_lowercase(),
            &location,
        );
        let quotas = &self.config.quotas;
        let entry = |value: &str, label: &str, current: f64, limit: f64| Usage {
            unit: Some("Count".into()),
            current_value: Some(current.ceil() as i64),
            limit: Some(limit as i64),
            name: Some(UsageName {
                value: Some(value.into()),
                localized_value: Some(label.into()),
            }),
        };
        UsageList {
            value: vec![
                entry(
                    "ContainerGroups",
                    "Container Groups",
                    usage.groups as f64,
                    quotas.groups_per_region as f64,
                ),
                entry(
                    "StandardCores",
                    "Standard Cores",
                    usage.cores,
                    quotas.cores_per_region,
                ),
            ],
        }
    }

    /// The URL of an async operation, as ACI writes it.
    pub fn operation_url(
        base: &str,
        subscription: &str,
        location: &str,
        id: &str,
        api: &str,
    ) -> String {
        format!(
            "{base}/subscriptions/{subscription}/providers/Microsoft.ContainerInstance/locations/{location}/operations/{id}?api-version={api}"
        )
    }
}

/// What a subscription has in a region.
pub(super) fn region_usage(
    groups: &BTreeMap<GroupKey, Entry>,
    subscription: &str,
    location: &str,
) -> RegionUsage {
    let mut usage = RegionUsage::default();
    for (key, entry) in groups {
        if key.subscription == subscription && entry.record.location == location {
            usage.groups += 1;
            if !entry.record.runtime.stopped {
                usage.cores += entry.record.cores();
            }
        }
    }
    usage
}
