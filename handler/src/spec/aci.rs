//! ACI's create-time rules at submit: the `aci_rules` table, which the emulator runs at PUT,
//! applied to each group's properties, so Berth refuses with a `400` what ACI would refuse at
//! create, and the emulator and Berth cannot disagree about a rule. The region rules need each
//! group's location (its own `location`, else `BERTH_LOCATION`, which the spec does not carry):
//! they run at submit, after parsing.

use aci_rules::{self as rules, Violation};
use serde_json::Value;

use super::error::{FieldPath, Problems};
use super::{Spec, SpecErrors};

/// Records every rule, other than the region rules, that a group's properties break.
pub fn group_rules(properties: &Value, path: &FieldPath, problems: &mut Problems) {
    record(rules::check(properties, None), path, problems);
}

/// Checks every group of `spec` against the rules, region rules included, in each of the group's
/// `locations`, else its own `location`, else `default_location`.
pub fn at_location(spec: &Spec, default_location: &str) -> Result<(), SpecErrors> {
    let mut problems = Problems::default();
    for (index, group) in spec.groups.iter().enumerate() {
        let path = FieldPath::root()
            .key("groups")
            .index(index)
            .key("properties");
        let single = [group.location.as_deref().unwrap_or(default_location)];
        let listed = spec.locations_of(index);
        let locations: Vec<&str> = if listed.is_empty() {
            single.to_vec()
        } else {
            listed.iter().map(String::as_str).collect()
        };
        let mut violations: Vec<Violation> = Vec::new();
        for location in locations {
            for violation in rules::check(&group.properties, Some(location)) {
                // Rules that do not depend on the region break once, not once per location.
                if !violations.contains(&violation) {
                    violations.push(violation);
                }
            }
        }
        record(violations, &path, &mut problems);
    }
    problems.finish()
}

fn record(violations: Vec<Violation>, path: &FieldPath, problems: &mut Problems) {
    for violation in violations {
        problems.add(
            &path.key(&violation.path),
            format!("{}: {}", violation.code, violation.message),
        );
    }
}
