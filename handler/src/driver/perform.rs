//! Performing a round's actions against ARM and the log store, each answered as events: the
//! engine never sees an ARM answer, only what the driver read from it.

use std::collections::BTreeMap;

use crate::arm::model::{ArmEvent, ContainerGroup};
use crate::arm::{ArmError, Look};
use crate::clock::parse_rfc3339;
use crate::engine::{
    Action, ActionKind, ContainerObservation, Deployment, Event, Millis, Observation, policy,
};

use super::Driver;
use super::admit::{Ticket, Verdict, normalize};

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
                check_first,
            } => {
                // Admission before the look when nothing can have been created yet, so a create
                // held again and again costs no ARM read; after a claim ran out, the look first
                // (the group may exist already, and then needs no capacity).
                let ticket = self.ticket(d, instance, *slot);
                if !check_first && let Some(held) = self.hold(&ticket).await {
                    return vec![held];
                }
                // Always a look first, not only after a claim ran out: a group of this name
                // that another deployment owns is never updated (its PUT would take it over).
                let at = self.clock.now();
                let looked = self.arm.get_group(instance).await;
                if !matches!(looked, Ok(None)) {
                    // No create follows: what admission reserved for it is free again.
                    self.admission.answered(&d.id, instance);
                }
                match looked {
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
                if *check_first && let Some(held) = self.hold(&ticket).await {
                    return vec![held];
                }
                let body = match self.group_body(d, *slot, *index, instance).await {
                    Ok(body) => body,
                    Err(error) => {
                        self.admission.answered(&d.id, instance);
                        return vec![Event::Failed {
                            instance: instance.clone(),
                            action: ActionKind::Create,
                            error,
                            transient: false,
                        }];
                    }
                };
                let put = self.arm.put_group(instance, &body).await;
                self.admission.answered(&d.id, instance);
                match put {
                    Ok(_) => {
                        tracing::info!(deployment.id = %d.id, aci.group = %instance, "container group created");
                        let mut events = vec![Event::Created {
                            instance: instance.clone(),
                        }];
                        events.extend(self.planned(d, instance, *slot).await);
                        events
                    }
                    Err(e) if e.code() == Some("ContainerGroupQuotaReached") => {
                        // ACI's own quota: held like a create that admission holds, not failed.
                        tracing::info!(deployment.id = %d.id, aci.group = %instance, error = %e, "create held by ACI's quota");
                        self.arm.forget_usage(&ticket.location);
                        self.admission.refused(&ticket);
                        let reason = match &e {
                            ArmError::Rejected { message, .. } => format!("quota: {message}"),
                            other => format!("quota: {other}"),
                        };
                        vec![self.held(instance, reason)]
                    }
                    Err(e) if e.is_capacity() => {
                        tracing::warn!(deployment.id = %d.id, aci.group = %instance, error = %e, "create refused for capacity");
                        vec![Event::CapacityRefused {
                            instance: instance.clone(),
                            reason: e.to_string(),
                        }]
                    }
                    Err(e) => {
                        tracing::warn!(deployment.id = %d.id, aci.group = %instance, error = %e, "create failed");
                        vec![failed(instance, ActionKind::Create, &e)]
                    }
                }
            }
            Action::Observe { instance } => {
                let at = self.clock.now();
                match self
                    .arm
                    .look_as(instance, self.likelihood(d, instance))
                    .await
                {
                    Ok(Look::Now(Some(group))) => {
                        let observation = observation(&group);
                        let mut events = self.read_running_logs(d, instance, &observation).await;
                        events.insert(
                            0,
                            Event::Observed {
                                instance: instance.clone(),
                                observation,
                                at,
                            },
                        );
                        if let Some(reason) = eviction(d, instance, &group) {
                            events.push(Event::Evicted {
                                instance: instance.clone(),
                                reason,
                            });
                        }
                        events
                    }
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
                    self.admission.deleted(&d.id, instance);
                    tracing::info!(deployment.id = %d.id, aci.group = %instance, "container group deleted");
                    vec![Event::Deleted {
                        instance: instance.clone(),
                    }]
                }
                Err(e) => vec![failed(instance, ActionKind::Delete, &e)],
            },
            Action::Schedule { .. } => Vec::new(),
            Action::Notify { id } => self.notify(d, id).await,
        }
    }

    /// One attempt at notification `id`, answered as `NotifySent` or `NotifyFailed`.
    async fn notify(&self, d: &Deployment, id: &str) -> Vec<Event> {
        let Some(n) = d.notifications.iter().find(|n| n.id == id) else {
            return Vec::new();
        };
        let body = crate::notify::event(d, n);
        let attempt = if n.event_grid {
            match &self.settings.event_grid {
                Some(topic) => topic.publish(body).await,
                None => crate::notify::Attempt::Failed {
                    error: "BERTH_EVENTGRID_TOPIC is no longer set".into(),
                    permanent: true,
                },
            }
        } else {
            let urls = self.notify_urls(d);
            let Some(url) = urls.get(n.target) else {
                tracing::warn!(deployment.id = %d.id, notification.id = %id, "notification URL not opened");
                crate::metrics::notification("given_up");
                return vec![Event::NotifyFailed {
                    id: id.to_owned(),
                    error: "its URL could not be opened (sealed under a key this Berth lacks)"
                        .into(),
                    permanent: true,
                }];
            };
            let key = d
                .notify_key
                .as_deref()
                .and_then(|k| self.open_key(k))
                .unwrap_or_default();
            self.notifier
                .send(url, id, body, &key, self.clock.now())
                .await
        };
        match attempt {
            crate::notify::Attempt::Delivered(status) => {
                crate::metrics::notification("delivered");
                tracing::info!(deployment.id = %d.id, notification.id = %id, status, "notification delivered");
                vec![Event::NotifySent {
                    id: id.to_owned(),
                    status,
                }]
            }
            crate::notify::Attempt::Failed { error, permanent } => {
                let last = permanent || n.attempts + 1 >= policy::NOTIFY_MAX_ATTEMPTS;
                crate::metrics::notification(if last { "given_up" } else { "failed" });
                tracing::warn!(deployment.id = %d.id, notification.id = %id, %error, permanent, "notification failed");
                vec![Event::NotifyFailed {
                    id: id.to_owned(),
                    error,
                    permanent,
                }]
            }
        }
    }

    /// What admission needs to know of instance `instance`'s create.
    fn ticket(&self, d: &Deployment, instance: &str, slot: usize) -> Ticket {
        let group = &d.spec.groups[slot];
        let location = group
            .location
            .as_deref()
            .unwrap_or(self.arm.target().location.as_str());
        let since = d
            .instances
            .iter()
            .find(|i| i.aci_name == instance)
            .and_then(|i| i.held.as_ref())
            .map_or_else(|| self.clock.now(), |h| h.since);
        Ticket {
            deployment: d.id.clone(),
            instance: instance.to_owned(),
            location: normalize(location),
            cores: group.shape().cpu,
            since,
        }
    }

    /// The hold of `ticket`'s create, when admission holds it.
    async fn hold(&self, ticket: &Ticket) -> Option<Event> {
        match self.admission.admit(&self.arm, ticket).await {
            Verdict::Go => None,
            Verdict::Hold(reason) => {
                tracing::debug!(deployment.id = %ticket.deployment, aci.group = %ticket.instance, reason, "create held");
                Some(self.held(&ticket.instance, reason))
            }
        }
    }

    fn held(&self, instance: &str, reason: String) -> Event {
        Event::CreateHeld {
            instance: instance.to_owned(),
            reason,
            retry_at: self.clock.now() + policy::HOLD_RETRY_MS,
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

/// Whether a Spot instance's group reports an eviction, and what it said. ACI restarts an evicted
/// Spot group by itself; its view shows an event naming the eviction (the emulator's
/// `SpotEvicted`), or, in a `Never` group, a container restarted without anyone asking (nothing
/// else restarts one).
fn eviction(d: &Deployment, instance: &str, group: &ContainerGroup) -> Option<String> {
    let spot = d
        .instances
        .iter()
        .find(|i| i.aci_name == instance)
        .is_some_and(|i| i.priority == Some(crate::spec::Priority::Spot));
    if !spot {
        return None;
    }
    let props = &group.properties;
    let mut events: Vec<&ArmEvent> = props
        .instance_view
        .as_ref()
        .map(|v| v.events.iter().collect())
        .unwrap_or_default();
    for container in &props.containers {
        if let Some(v) = &container.properties.instance_view {
            events.extend(v.events.iter());
        }
    }
    let named = events.into_iter().find(|e| {
        e.name
            .as_deref()
            .is_some_and(|name| name.to_ascii_lowercase().contains("evict"))
    });
    if let Some(event) = named {
        let name = event.name.clone().unwrap_or_default();
        return Some(match &event.message {
            Some(message) => format!("{name}: {message}"),
            None => name,
        });
    }
    let never = props
        .restart_policy
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("Never"));
    let restarted = props.containers.iter().find(|c| {
        c.properties
            .instance_view
            .as_ref()
            .and_then(|v| v.restart_count)
            .is_some_and(|n| n > 0)
    });
    match restarted {
        Some(container) if never => Some(format!(
            "container {} of a Never group was restarted by ACI",
            container.name
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::{Instance, StartOptions};
    use crate::spec::{Format, Priority, parse};

    /// A deployment with one instance, `g-1`, at `priority`.
    fn deployment(priority: Option<Priority>) -> Deployment {
        let spec = json!({ "id": "d", "groups": [{ "name": "g", "properties": { "containers": [
            { "name": "main", "properties": { "image": "busybox",
                "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }] });
        let spec = parse(spec.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
        let options = StartOptions::new("http://127.0.0.1:7071");
        let mut d = crate::engine::start(spec, None, "digest".into(), options, 0).next;
        let mut instance = Instance::new(0, 0, 1, "g-1".into());
        instance.priority = priority;
        d.instances.push(instance);
        d
    }

    fn group(policy: &str, restarts: i64, group_events: Value) -> ContainerGroup {
        serde_json::from_value(json!({ "name": "g-1", "properties": {
            "restartPolicy": policy,
            "instanceView": { "state": "Running", "events": group_events },
            "containers": [{ "name": "main", "properties": { "instanceView": {
                "restartCount": restarts, "currentState": { "state": "Running" } } } }] } }))
        .unwrap()
    }

    #[test]
    fn an_eviction_is_read_from_its_event_or_from_a_never_group_restarted() {
        let spot = deployment(Some(Priority::Spot));
        let event =
            json!([{ "name": "SpotEvicted", "message": "capacity taken back", "type": "Warning" }]);
        assert_eq!(
            eviction(&spot, "g-1", &group("Never", 0, event.clone())).as_deref(),
            Some("SpotEvicted: capacity taken back")
        );
        assert_eq!(
            eviction(&spot, "g-1", &group("Never", 1, json!([]))).as_deref(),
            Some("container main of a Never group was restarted by ACI")
        );
        // An OnFailure group restarts by itself; without an event that is no eviction.
        assert_eq!(
            eviction(&spot, "g-1", &group("OnFailure", 2, json!([]))),
            None
        );
        assert_eq!(eviction(&spot, "g-1", &group("Never", 0, json!([]))), None);
        // Only Spot instances are evicted.
        for priority in [None, Some(Priority::Regular)] {
            let d = deployment(priority);
            assert_eq!(eviction(&d, "g-1", &group("Never", 1, event.clone())), None);
        }
    }
}
