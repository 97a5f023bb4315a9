//! Performing a round's actions against ARM and the log store, each answered as events: the
//! engine never sees an ARM answer, only what the driver read from it.

use std::collections::BTreeMap;

use crate::arm::model::{ArmEvent, ContainerGroup};
use crate::arm::{ArmError, Look};
use crate::clock::parse_rfc3339;
use crate::engine::{
    Action, ActionKind, ContainerObservation, Deployment, Event, Millis, Observation,
};

use super::Driver;

/// Whether a container group's tags say it is `d`'s: its `berth-deployment` is `d`'s id and, for
/// deployments with a uid, its `berth-uid` is `d`'s (a group of a purged deployment under the same
/// id is not).
fn owns(d: &Deployment, tags: &BTreeMap<String, String>) -> bool {
    tags.get("berth-deployment") == Some(&d.id) && tags.get("berth-uid") == d.uid.as_ref()
}

impl Driver {
    /// Performs one action and says what happened, as events.
    pub(super) async fn perform(&self, d: &Deployment, action: &Action) -> Vec<Event> {
        let failed = |instance: &str, action: ActionKind, e: &ArmError| Event::Failed {
            instance: instance.to_owned(),
            action,
            error: e.to_string(),
            transient: e.is_transient(),
        };
        match action {
            Action::Create {
                instance,
                slot,
                index,
                ..
            } => {
                // Always a look first, not only after a claim ran out: a group of this name
                // that another deployment owns is never updated (its PUT would take it over).
                let at = self.clock.now();
                match self.arm.get_group(instance).await {
                    Ok(Some(group)) if owns(d, &group.tags) => {
                        let mut events = vec![Event::Observed {
                            instance: instance.clone(),
                            observation: observation(&group),
                            at,
                        }];
                        events.extend(self.planned(d, instance, *slot).await);
                        return events;
                    }
                    Ok(Some(group)) => {
                        let owner = group
                            .tags
                            .get("berth-deployment")
                            .map_or("", String::as_str);
                        tracing::warn!(deployment.id = %d.id, aci.group = %instance, owner, "group name taken");
                        return vec![Event::Failed {
                            instance: instance.clone(),
                            action: ActionKind::Create,
                            error: format!(
                                "container group {instance} exists and is not this deployment's (berth-deployment: '{owner}'); left untouched"
                            ),
                            transient: false,
                        }];
                    }
                    Ok(None) => {}
                    Err(e) => return vec![failed(instance, ActionKind::Create, &e)],
                }
                let body = match self.group_body(d, *slot, *index, instance).await {
                    Ok(body) => body,
                    Err(error) => {
                        return vec![Event::Failed {
                            instance: instance.clone(),
                            action: ActionKind::Create,
                            error,
                            transient: false,
                        }];
                    }
                };
                match self.arm.put_group(instance, &body).await {
                    Ok(_) => {
                        tracing::info!(deployment.id = %d.id, aci.group = %instance, "container group created");
                        let mut events = vec![Event::Created {
                            instance: instance.clone(),
                        }];
                        events.extend(self.planned(d, instance, *slot).await);
                        events
                    }
                    Err(e) => {
                        tracing::warn!(deployment.id = %d.id, aci.group = %instance, error = %e, "create failed");
                        vec![failed(instance, ActionKind::Create, &e)]
                    }
                }
            }
            Action::Observe { instance } => {
                let at = self.clock.now();
                match self.arm.look_as(instance, self.patient(d, instance)).await {
                    Ok(Look::Now(Some(group))) => vec![Event::Observed {
                        instance: instance.clone(),
                        observation: observation(&group),
                        at,
                    }],
                    Ok(Look::Now(None)) => vec![Event::Missing {
                        instance: instance.clone(),
                    }],
                    // The worker is not held: the deployment wakes when the read is due.
                    Ok(Look::Later(wait)) => vec![Event::LookDeferred {
                        instance: instance.clone(),
                        until: at + wait.as_millis() as Millis,
                    }],
                    Err(e) => vec![failed(instance, ActionKind::Observe, &e)],
                }
            }
            Action::Stop { instance } => match self.arm.stop_group(instance).await {
                Ok(()) => vec![Event::Stopped {
                    instance: instance.clone(),
                }],
                Err(e) if e.is_not_found() => vec![Event::Missing {
                    instance: instance.clone(),
                }],
                Err(e) => vec![failed(instance, ActionKind::Stop, &e)],
            },
            Action::CaptureLogs {
                instance,
                containers,
            } => self.capture_logs(d, instance, containers).await,
            Action::Delete { instance } => match self.arm.delete_group(instance).await {
                Ok(_) => {
                    tracing::info!(deployment.id = %d.id, aci.group = %instance, "container group deleted");
                    vec![Event::Deleted {
                        instance: instance.clone(),
                    }]
                }
                Err(e) => vec![failed(instance, ActionKind::Delete, &e)],
            },
            Action::Schedule { .. } => Vec::new(),
        }
    }

    /// The `LooksPlanned` event of a created instance of group `slot`, if it has a plan.
    async fn planned(&self, d: &Deployment, instance: &str, slot: usize) -> Option<Event> {
        let plan = self.look_plan(d, slot).await?;
        Some(Event::LooksPlanned {
            instance: instance.to_owned(),
            plan,
        })
    }

    async fn capture_logs(
        &self,
        d: &Deployment,
        instance: &str,
        containers: &[String],
    ) -> Vec<Event> {
        let group = d
            .instances
            .iter()
            .find(|i| i.aci_name == instance)
            .map(|i| d.spec.groups[i.slot].name.clone())
            .unwrap_or_default();
        let mut missing = Vec::new();
        for container in containers {
            let content = match self.arm.logs(instance, container, None).await {
                Ok(content) => content,
                Err(ArmError::NotFound { code, .. }) if code == "ContainerLogNotAvailable" => {
                    missing.push(container.clone());
                    String::new()
                }
                Err(e) if e.is_not_found() => {
                    return vec![Event::Missing {
                        instance: instance.to_owned(),
                    }];
                }
                Err(e) => {
                    return vec![Event::Failed {
                        instance: instance.to_owned(),
                        action: ActionKind::CaptureLogs,
                        error: e.to_string(),
                        transient: e.is_transient(),
                    }];
                }
            };
            if let Err(e) = self
                .store
                .put_logs(&d.id, &group, instance, container, &content)
                .await
            {
                return vec![Event::Failed {
                    instance: instance.to_owned(),
                    action: ActionKind::CaptureLogs,
                    error: e.to_string(),
                    transient: true,
                }];
            }
        }
        let note = (!missing.is_empty())
            .then(|| format!("no logs for {} (never started)", missing.join(", ")));
        vec![Event::LogsSaved {
            instance: instance.to_owned(),
            note,
        }]
    }
}

/// What Berth reads from a GET of a group: states, exit codes, restart counts, the last warning.
fn observation(group: &ContainerGroup) -> Observation {
    let props = &group.properties;
    let view = props.instance_view.as_ref();
    let mut problem = None;
    let mut warnings: Vec<&ArmEvent> = view.map(|v| v.events.iter().collect()).unwrap_or_default();
    for container in &props.containers {
        if let Some(v) = &container.properties.instance_view {
            warnings.extend(v.events.iter());
        }
    }
    if let Some(event) = warnings
        .iter()
        .rev()
        .find(|e| e.kind.as_deref() == Some("Warning"))
    {
        let name = event.name.clone().unwrap_or_default();
        problem = Some(format!(
            "{name}: {}",
            event.message.clone().unwrap_or_default()
        ));
    }
    let containers = props
        .containers
        .iter()
        .map(|c| {
            let view = c.properties.instance_view.as_ref();
            let current = view.and_then(|v| v.current_state.as_ref());
            ContainerObservation {
                name: c.name.clone(),
                state: current.and_then(|s| s.state.clone()).unwrap_or_default(),
                exit_code: current.and_then(|s| s.exit_code),
                restart_count: view.and_then(|v| v.restart_count).unwrap_or(0).max(0) as u32,
                detail: current
                    .and_then(|s| s.detail_status.clone())
                    .filter(|d| !d.is_empty()),
                start: current
                    .and_then(|s| s.start_time.as_deref())
                    .and_then(parse_rfc3339),
                finish: current
                    .and_then(|s| s.finish_time.as_deref())
                    .and_then(parse_rfc3339),
            }
        })
        .collect();
    Observation {
        provisioning_state: props.provisioning_state.clone().unwrap_or_default(),
        state: view.and_then(|v| v.state.clone()).unwrap_or_default(),
        containers,
        problem,
    }
}
