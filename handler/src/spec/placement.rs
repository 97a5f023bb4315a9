//! Where and at which priority a group runs: `priority` (`Regular` or `Spot`),
//! `spot.fallbackToRegularAfter` and `locations`, on the deployment or on a group (a group's own
//! win). The engine gives each instance its priority and location from these (a Spot instance
//! evicted often enough runs `Regular` next; a create refused for capacity moves to the next
//! location), and the driver writes them into the ARM body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{FieldPath, Problems};
use super::model::{GroupSpec, Spec};
use super::validate;

/// Most locations one list names.
pub const MAX_LOCATIONS: usize = 10;
/// Most evictions `fallbackToRegularAfter` may wait for.
pub const MAX_FALLBACK_AFTER: u32 = 100;

/// ACI's `priority` of a container group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Priority {
    Regular,
    Spot,
}

impl Priority {
    /// The ARM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Regular => "Regular",
            Priority::Spot => "Spot",
        }
    }

    /// Parses ACI's spelling, in any case (as ACI accepts it).
    pub fn parse(text: &str) -> Option<Self> {
        [Priority::Regular, Priority::Spot]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text))
    }
}

/// What to do about Spot evictions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpotPolicy {
    /// After this many evictions of one instance, its next attempt runs `Regular`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_to_regular_after: Option<u32>,
}

/// The placement fields of one object (the deployment or a group); none written when unset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// ACI's `priority` of the attempts (`Spot` may fall back to `Regular`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// What to do about Spot evictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<SpotPolicy>,
    /// Regions to create in, in order of preference: a create refused for capacity moves on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
}

/// The placement fields, for the messages that list an object's fields.
pub const FIELDS: [&str; 3] = ["priority", "spot", "locations"];

/// Takes `priority`, `spot` and `locations` out of `map`, each checked at its path.
pub fn take(map: &mut Map<String, Value>, path: &FieldPath, problems: &mut Problems) -> Placement {
    let mut placement = Placement::default();
    match map.remove("priority") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => match Priority::parse(&text) {
            Some(priority) => placement.priority = Some(priority),
            None => problems.add(
                &path.key("priority"),
                format!("'{text}' is not a priority; use Regular or Spot"),
            ),
        },
        Some(_) => problems.add(&path.key("priority"), "must be Regular or Spot"),
    }
    match map.remove("spot") {
        None | Some(Value::Null) => {}
        Some(Value::Object(mut spot)) => {
            let at = path.key("spot");
            let mut policy = SpotPolicy::default();
            match spot.remove("fallbackToRegularAfter") {
                None | Some(Value::Null) => {}
                Some(value) => match value.as_u64() {
                    Some(n) if (1..=u64::from(MAX_FALLBACK_AFTER)).contains(&n) => {
                        policy.fallback_to_regular_after = Some(n as u32);
                    }
                    _ => problems.add(
                        &at.key("fallbackToRegularAfter"),
                        format!(
                            "must be a whole number of evictions from 1 to {MAX_FALLBACK_AFTER}"
                        ),
                    ),
                },
            }
            problems.unknown_fields(&spot, &at, "spot has fallbackToRegularAfter");
            placement.spot = Some(policy);
        }
        Some(_) => problems.add(
            &path.key("spot"),
            "must be an object such as {\"fallbackToRegularAfter\": 2}",
        ),
    }
    match map.remove("locations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let at = path.key("locations");
            if items.is_empty() || items.len() > MAX_LOCATIONS {
                problems.add(
                    &at,
                    format!("names 1 to {MAX_LOCATIONS} regions, in order of preference"),
                );
            }
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(location) => match validate::location(&location) {
                        Ok(()) => {
                            let key = normalize(&location);
                            if placement.locations.iter().any(|l| normalize(l) == key) {
                                problems.add(&at.index(i), format!("'{location}' is named twice"));
                            } else {
                                placement.locations.push(location);
                            }
                        }
                        Err(message) => problems.add(&at.index(i), message),
                    },
                    _ => problems.add(&at.index(i), "must be a string, e.g. westeurope"),
                }
            }
        }
        Some(_) => problems.add(
            &path.key("locations"),
            "must be an array of regions, e.g. [\"westeurope\", \"northeurope\"]",
        ),
    }
    placement
}

/// A location as ARM compares them: lower case, without spaces.
fn normalize(location: &str) -> String {
    location.replace(' ', "").to_ascii_lowercase()
}

/// The checks of a group's placement against the rest of the group: `location` and `locations`
/// are not both given, and the priority is not also given inside `properties`, where Berth could
/// not switch it per attempt.
pub fn check_group(
    group: &GroupSpec,
    path: &FieldPath,
    spec_priority: bool,
    problems: &mut Problems,
) {
    if group.location.is_some() && !group.placement.locations.is_empty() {
        problems.add(
            &path.key("locations"),
            "give location or locations, not both",
        );
    }
    if (spec_priority || group.placement.priority.is_some())
        && group.properties.get("priority").is_some()
    {
        problems.add(
            &path.key("properties").key("priority"),
            "set the priority beside properties (on the group or the deployment), where Berth can switch it per attempt",
        );
    }
}

/// ACI refuses a Spot group with a public IP address
/// (`SpotPriorityContainerGroupNotSupportedForInboundConnectivity`): refused at submit.
pub fn check_spot(spec: &Spec, problems: &mut Problems) {
    for slot in 0..spec.groups.len() {
        if spec.priority_of(slot) != Some(Priority::Spot) {
            continue;
        }
        let public = spec.groups[slot]
            .properties
            .pointer("/ipAddress/type")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("Public"));
        if public {
            let path = FieldPath::root().key("groups").index(slot).key("priority");
            problems.add(
                &path,
                "a Spot group cannot have a public IP address (ACI: SpotPriorityContainerGroupNotSupportedForInboundConnectivity)",
            );
        }
    }
}

impl Spec {
    /// Group `slot`'s priority: its own, else the deployment's, else the one in its properties;
    /// `None` when nothing says (ACI's default, `Regular`).
    pub fn priority_of(&self, slot: usize) -> Option<Priority> {
        let group = &self.groups[slot];
        group
            .placement
            .priority
            .or(self.placement.priority)
            .or_else(|| {
                group
                    .properties
                    .get("priority")
                    .and_then(Value::as_str)
                    .and_then(Priority::parse)
            })
    }

    /// Group `slot`'s Spot policy: its own, else the deployment's.
    pub fn spot_of(&self, slot: usize) -> SpotPolicy {
        self.groups[slot]
            .placement
            .spot
            .or(self.placement.spot)
            .unwrap_or_default()
    }

    /// Group `slot`'s locations in order of preference: its own `locations`, else none when it
    /// names one `location`, else the deployment's. Empty: the group's `location`, else
    /// `BERTH_LOCATION`, and no fallback.
    pub fn locations_of(&self, slot: usize) -> &[String] {
        let group = &self.groups[slot];
        if !group.placement.locations.is_empty() {
            &group.placement.locations
        } else if group.location.is_some() {
            &[]
        } else {
            &self.placement.locations
        }
    }
}
