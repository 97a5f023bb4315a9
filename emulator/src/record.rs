//! A container group as the emulator holds it: its key, the spec as PUT (secrets included, for
//! restarts), its runtime view, and rendering into ARM answers (secrets stripped, read-only fields
//! filled, enums normalised, instance views only where ARM gives them).

/// ARM's normalised region name (`West US` → `westus`), as the create-time rules normalise it.
pub use aci_rules::normalize_location;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::lifecycle::{ContainerRun, Runtime};
use crate::model::{
    ContainerGroup, ContainerInstanceView, GroupInstanceView, Protocol, RESOURCE_TYPE, Sku,
};

/// Identifies a group: ARM names are case-insensitive, so every part is lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey {
    /// The subscription id.
    pub subscription: String,
    pub resource_group: String,
    /// The container group.
    pub name: String,
}

impl GroupKey {
    /// A key from names in any case.
    pub fn new(subscription: &str, resource_group: &str, name: &str) -> Self {
        GroupKey {
            subscription: subscription.to_ascii_lowercase(),
            resource_group: resource_group.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        }
    }
}

/// What is persisted per group, and held in memory while running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The subscription as first written.
    pub subscription: String,
    /// The resource group as first written.
    pub resource_group: String,
    /// The group's name as first written.
    pub name: String,
    /// The normalised region (`westus`).
    pub location: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The last PUT body (with secrets; never answered as is).
    pub spec: ContainerGroup,
    /// The runtime view.
    pub runtime: Runtime,
}

/// Which answer shape to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// GET/PUT/DELETE: with instance views.
    Full,
    /// List items: without instance views (ACI does not return them in lists).
    List,
}

impl Record {
    /// The key of this record.
    pub fn key(&self) -> GroupKey {
        GroupKey::new(&self.subscription, &self.resource_group, &self.name)
    }

    /// The ARM resource id.
    pub fn resource_id(&self) -> String {
        resource_id(&self.subscription, &self.resource_group, &self.name)
    }

    /// Cores the group requests.
    pub fn cores(&self) -> f64 {
        self.spec
            .properties
            .containers
            .iter()
            .filter_map(|container| container.properties.resources.as_ref())
            .map(|resources| resources.requests.cpu)
            .sum()
    }

    /// The answer for this group with its current runtime view.
    pub fn render(&self, view: View) -> ContainerGroup {
        self.render_with(&self.runtime, view)
    }

    /// The answer for this group as if its runtime were `runtime` (the `201` body of an instant
    /// group shows it `Pending`, like every freshly accepted group).
    pub fn render_with(&self, runtime: &Runtime, view: View) -> ContainerGroup {
        let mut group = self.spec.clone();
        group.redact();
        group.id = Some(self.resource_id());
        group.name = Some(self.name.clone());
        group.kind = Some(RESOURCE_TYPE.to_string());
        group.location = Some(self.location.clone());
        let properties = &mut group.properties;
        properties.provisioning_state = Some(runtime.provisioning.as_str().to_string());
        properties.restart_policy = Some(runtime.policy);
        properties.sku.get_or_insert(Sku::Standard);
        properties.init_containers.get_or_insert_with(Vec::new);
        properties.is_created_from_standby_pool = Some(false);
        if let Some(ip) = &mut properties.ip_address {
            ip.ip = Some("127.0.0.1".to_string());
            ip.fqdn = ip
                .dns_name_label
                .as_ref()
                .map(|label| format!("{label}.{}.azurecontainer.io", self.location));
            for port in &mut ip.ports {
                port.protocol.get_or_insert(Protocol::Tcp);
            }
        }
        let view_of = |run: Option<&ContainerRun>| {
            run.filter(|run| {
                view == View::Full && (run.current.is_some() || !run.events.is_empty())
            })
            .map(|run| ContainerInstanceView {
                restart_count: Some(run.restart_count),
                current_state: run.current.clone(),
                previous_state: run.previous.clone(),
                events: Some(run.events.clone()),
            })
        };
        for (index, container) in properties.containers.iter_mut().enumerate() {
            let props = &mut container.properties;
            props.environment_variables.get_or_insert_with(Vec::new);
            props.ports.get_or_insert_with(Vec::new);
            props.instance_view = view_of(runtime.containers.get(index));
        }
        for (index, init) in properties.init_containers.iter_mut().flatten().enumerate() {
            let props = &mut init.properties;
            props.environment_variables.get_or_insert_with(Vec::new);
            props.instance_view = view_of(runtime.init_containers.get(index));
        }
        properties.instance_view = match view {
            View::Full => Some(GroupInstanceView {
                events: Some(runtime.events.clone()),
                state: Some(runtime.state().as_str().to_string()),
            }),
            View::List => None,
        };
        group
    }
}

/// The ARM resource id of a container group.
pub fn resource_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{RESOURCE_TYPE}/{name}"
    )
}
