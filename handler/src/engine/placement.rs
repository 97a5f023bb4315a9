//! Spot priority and regions, as the engine applies them to instances:
//!
//! - Each new instance gets its group's priority and its first location. A `Spot` instance whose
//!   index has been evicted `spot.fallbackToRegularAfter` times runs `Regular`.
//! - An eviction ends that attempt (verdict `evicted`) and starts the next one at once. Evictions
//!   do not count against the retry's `maxAttempts` (ACI took the capacity back; the job did not
//!   fail), but at most [`MAX_EVICTIONS`] of one index are retried, so that a group that only
//!   ever gets evicted ends.
//! - A create refused for capacity moves the instance to the next of its group's `locations`
//!   (history `LocationFallback`); refused in every one, the attempt fails naming each refusal.

use super::apply::note;
use super::state::{Deployment, Millis, Verdict};
use crate::spec::{Mode, Priority};

/// Most evictions of one instance index that are retried; the next one fails it.
pub const MAX_EVICTIONS: u32 = 10;

/// How many attempts of index `index` of group `slot` ended evicted.
pub fn evictions(d: &Deployment, slot: usize, index: u32) -> u32 {
    // Only Spot groups are evicted: the others (most, and the large fan-outs) skip the scan.
    if d.spec.priority_of(slot) != Some(Priority::Spot) {
        return 0;
    }
    d.instances
        .iter()
        .filter(|i| i.slot == slot && i.index == index)
        .filter(|i| i.verdict.as_ref().is_some_and(|v| v.evicted))
        .count() as u32
}

/// The priority and location of a new instance of index `index` of group `slot`, noting a
/// fallback to `Regular` in the history.
pub fn place(
    d: &mut Deployment,
    slot: usize,
    index: u32,
    name: &str,
    now: Millis,
) -> (Option<Priority>, Option<String>) {
    let location = d.spec.locations_of(slot).first().cloned();
    let mut priority = d.spec.priority_of(slot);
    if priority == Some(Priority::Spot)
        && let Some(after) = d.spec.spot_of(slot).fallback_to_regular_after
    {
        let evicted = evictions(d, slot, index);
        if evicted >= after {
            priority = Some(Priority::Regular);
            let detail = format!("{name}: Regular after {evicted} evictions");
            note(d, now, "PriorityFallback", detail);
        }
    }
    (priority, location)
}

/// Records an eviction ACI reported of a Spot instance. A job instance's attempt then ends (see [`judge`]); a
/// service's group is restarted in place by ACI and kept.
pub fn evicted(d: &mut Deployment, i: usize, reason: String, now: Millis) {
    let inst = &mut d.instances[i];
    let spot = inst.priority == Some(Priority::Spot);
    if !spot || inst.deleted || inst.verdict.is_some() || inst.evicted.is_some() {
        // Only Spot groups are evicted; anything else is not an eviction of this attempt.
        return;
    }
    inst.evicted = Some(reason.clone());
    inst.next_look = Some(now);
    if d.spec.mode == Mode::Service {
        let detail = format!("{}: {reason}; ACI restarts it in place", inst.aci_name);
        note(d, now, "Evicted", detail);
    }
}

/// Ends job instance `i`'s attempt as evicted, unless it has a verdict already.
pub fn judge(d: &mut Deployment, i: usize, reason: &str, now: Millis) {
    let inst = &mut d.instances[i];
    if inst.verdict.is_some() {
        return;
    }
    inst.verdict = Some(Verdict {
        succeeded: false,
        error: Some(format!("Evicted: {reason}")),
        exit_code: None,
        at: now,
        evicted: true,
    });
    inst.retiring = true;
    let (slot, index, name) = (inst.slot, inst.index, inst.aci_name.clone());
    let generation = inst.generation;
    let count = evictions(d, slot, index);
    let detail = if count > MAX_EVICTIONS {
        format!("{name}: {reason}; evicted {count} times, no further attempt")
    } else {
        format!("{name}: {reason}; attempt {} follows", generation + 1)
    };
    note(d, now, "Evicted", detail);
}

/// A create refused for capacity: the instance moves to its group's next location, or, with
/// none left, its create has failed for good; the error to fail it with is returned.
pub fn refused(d: &mut Deployment, i: usize, reason: &str, now: Millis) -> Option<String> {
    let slot = d.instances[i].slot;
    let locations = d.spec.locations_of(slot).to_vec();
    let inst = &mut d.instances[i];
    if inst.created.is_some() || inst.deleted {
        return None;
    }
    inst.claim_until = None;
    let from = inst.location.clone();
    inst.refused.push(format!(
        "{}: {reason}",
        from.as_deref().unwrap_or("the default location")
    ));
    let at = from
        .as_ref()
        .and_then(|from| locations.iter().position(|l| l == from));
    match at.and_then(|at| locations.get(at + 1)) {
        Some(to) => {
            inst.location = Some(to.clone());
            inst.failures = 0;
            inst.blocked_until = None;
            let detail = format!(
                "{}: from {} to {to}: {reason}",
                inst.aci_name,
                from.unwrap_or_default()
            );
            note(d, now, "LocationFallback", detail);
            None
        }
        None if locations.is_empty() => Some(format!(
            "creating container group {} was refused for capacity: {reason}",
            inst.aci_name
        )),
        None => Some(format!(
            "no capacity for container group {} in any of its locations ({})",
            inst.aci_name,
            inst.refused.join("; ")
        )),
    }
}
