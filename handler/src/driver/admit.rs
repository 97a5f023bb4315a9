//! Capacity admission: before a create is sent, its group's cores must fit what is left in its
//! location, under ACI's standard-cores quota (read from `Location_ListUsage`, see
//! [`ArmClient::core_usage`]) and under `BERTH_MAX_CORES`. A create that does not fit is held:
//! the engine keeps the instance `Pending` with the reason ([`Event::CreateHeld`]) and tries
//! again a little later ([`policy::HOLD_RETRY_MS`]), so a fan-out never has to be tuned to the
//! quota by hand.
//!
//! - **Counted here, not only by ARM.** The usages are kept for a few seconds; creates this
//!   process admitted since are reserved in memory until a usage read sent after their answer
//!   includes them, so creates running together never overshoot between two reads.
//! - **Oldest first.** A held create keeps its place (`Hold::since`, saved in the checkpoint, so
//!   it survives a restart and a change of worker). A create is admitted only if it fits beside
//!   the older held creates this process saw recently, counted oldest first, each that fits in
//!   what the ones before it left: capacity freed goes to the oldest that fit, a younger one may
//!   pass an older only when the older is too big for what is free, and when there is room for
//!   all of them, none waits for the others' retries (which come in any order).
//! - **Across processes, approximately.** Holds and reservations live in each process: workers of
//!   one process share them exactly; separate processes (Functions instances scaled out) each
//!   see the others' creates at the next usage read, up to [`USAGES_TTL`] late, and their older
//!   waiters not at all. ACI enforces its own quota regardless: a create ARM refuses with
//!   `ContainerGroupQuotaReached` is held like one refused here, never failed. `BERTH_MAX_CORES`
//!   is Berth's alone, so separate processes may together pass it by the creates of one usage
//!   period.
//!
//! [`Event::CreateHeld`]: crate::engine::Event::CreateHeld

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::arm::{ArmClient, CoreUsage, USAGES_TTL};
use crate::engine::{Millis, policy};

/// `BERTH_MAX_CORES`: most standard cores in use per location, one for every location (`8`),
/// per location (`westeurope=8,northeurope=4`), or both (`8,northeurope=4`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaxCores {
    every: Option<f64>,
    by_location: BTreeMap<String, f64>,
}

impl MaxCores {
    /// Parses the setting's value; the error says what is wrong with which part.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut max = MaxCores::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (location, number) = match part.split_once('=') {
                Some((location, number)) => (Some(normalize(location)), number.trim()),
                None => (None, part),
            };
            let cores: f64 = number
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n > 0.0)
                .ok_or_else(|| format!("'{part}': cores must be a number above zero"))?;
            match location {
                Some(location) if location.is_empty() => {
                    return Err(format!("'{part}': a location is named before '='"));
                }
                Some(location) => {
                    if max.by_location.insert(location, cores).is_some() {
                        return Err(format!("'{part}': that location is given twice"));
                    }
                }
                None if max.every.is_some() => {
                    return Err(format!("'{part}': one value for every location at most"));
                }
                None => max.every = Some(cores),
            }
        }
        Ok(max)
    }

    /// The most cores in `location`, if any is set.
    pub fn of(&self, location: &str) -> Option<f64> {
        self.by_location
            .get(&normalize(location))
            .copied()
            .or(self.every)
    }
}

/// A location as ARM compares them: lower case, without spaces (`West Europe` is `westeurope`).
pub use aci_rules::normalize_location as normalize;

/// A create asking to be admitted.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub deployment: String,
    pub instance: String,
    pub location: String,
    pub cores: f64,
    /// Its place in the queue: when it was first held, else now.
    pub since: Millis,
}

impl Ticket {
    fn key(&self) -> (Millis, &str, &str) {
        (self.since, &self.deployment, &self.instance)
    }
}

/// A held create nobody asked about for this long has gone (its deployment ended, or moved to
/// another process): it no longer keeps younger ones waiting.
const WAITER_GONE: Duration = Duration::from_millis(4 * policy::HOLD_RETRY_MS as u64);

#[derive(Debug)]
struct Waiter {
    location: String,
    cores: f64,
    since: Millis,
    seen: Instant,
}

#[derive(Debug)]
struct Reservation {
    location: String,
    cores: f64,
    /// When ARM answered its create; `None` while the create is under way.
    answered: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    /// Held creates by (deployment, instance).
    waiters: HashMap<(String, String), Waiter>,
    /// Admitted creates not yet in a usage read, by (deployment, instance).
    reservations: HashMap<(String, String), Reservation>,
}

/// What admission says about a create.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Send it; report its answer with [`Admission::answered`].
    Go,
    /// Hold it, for this reason.
    Hold(String),
}

/// The admission of one process, shared by its workers.
#[derive(Debug)]
pub struct Admission {
    max_cores: MaxCores,
    state: Mutex<State>,
}

impl Admission {
    pub fn new(max_cores: MaxCores) -> Self {
        Admission {
            max_cores,
            state: Mutex::default(),
        }
    }

    /// Whether `ticket`'s create may be sent now. Usages that cannot be read do not stop it (ARM
    /// still enforces its quota; `BERTH_MAX_CORES` is then checked against this process's own
    /// creates alone).
    pub async fn admit(&self, arm: &ArmClient, ticket: &Ticket) -> Verdict {
        let usage = match arm.core_usage(&ticket.location).await {
            Ok(usage) => usage,
            Err(e) => {
                tracing::warn!(aci.location = %ticket.location, error = %e, "usages unreadable; admitting by BERTH_MAX_CORES alone");
                CoreUsage {
                    limit: None,
                    current: 0.0,
                    read_at: Instant::now() - USAGES_TTL,
                }
            }
        };
        self.decide(ticket, usage, Instant::now())
    }

    /// The decision, on a usage read.
    fn decide(&self, ticket: &Ticket, usage: CoreUsage, now: Instant) -> Verdict {
        let mut state = lock(&self.state);
        let key = (ticket.deployment.clone(), ticket.instance.clone());
        let location = &ticket.location;
        state
            .reservations
            .retain(|_, r| r.answered.is_none_or(|at| at >= usage.read_at));
        state
            .waiters
            .retain(|_, w| now.duration_since(w.seen) < WAITER_GONE);
        let setting = self.max_cores.of(location);
        let (capacity, what) = match (usage.limit, setting) {
            (Some(quota), Some(most)) if most < quota => (Some(most), "BERTH_MAX_CORES"),
            (Some(quota), _) => (Some(quota), "quota"),
            (None, Some(most)) => (Some(most), "BERTH_MAX_CORES"),
            (None, None) => (None, "quota"),
        };
        let Some(capacity) = capacity else {
            state.waiters.remove(&key);
            state.reservations.insert(key, reservation(ticket));
            return Verdict::Go;
        };
        let reserved: f64 = state
            .reservations
            .iter()
            .filter(|(k, r)| r.location == *location && **k != key)
            .map(|(_, r)| r.cores)
            .sum();
        let free = (capacity - usage.current - reserved).max(0.0);
        // What the older held creates of this location take of it, oldest first, each that fits
        // in what the ones before it left: those go before this one, the others do not block it.
        let mut older: Vec<_> = state
            .waiters
            .iter()
            .filter(|((d, i), w)| {
                w.location == *location && (w.since, d.as_str(), i.as_str()) < ticket.key()
            })
            .map(|((d, i), w)| ((w.since, d.as_str(), i.as_str()), w.cores))
            .collect();
        older.sort_by(|a, b| a.0.cmp(&b.0));
        let older_take = older.iter().fold(0.0, |taken, (_, cores)| {
            if taken + cores <= free + 1e-9 {
                taken + cores
            } else {
                taken
            }
        });
        if ticket.cores + older_take <= free + 1e-9 {
            state.waiters.remove(&key);
            state.reservations.insert(key, reservation(ticket));
            return Verdict::Go;
        }
        let waiter = Waiter {
            location: location.clone(),
            cores: ticket.cores,
            since: ticket.since,
            seen: now,
        };
        state.waiters.insert(key, waiter);
        let mut reason = format!(
            "{what}: needs {} core{}, {} of {} free in {location}",
            number(ticket.cores),
            if ticket.cores == 1.0 { "" } else { "s" },
            number(free),
            number(capacity),
        );
        if ticket.cores <= free + 1e-9 {
            reason.push_str("; older creates go first");
        }
        Verdict::Hold(reason)
    }

    /// ARM answered an admitted create (created or not): its cores are counted by the next usage
    /// read rather than by this process.
    pub fn answered(&self, deployment: &str, instance: &str) {
        let key = (deployment.to_owned(), instance.to_owned());
        if let Some(r) = lock(&self.state).reservations.get_mut(&key) {
            r.answered = Some(Instant::now());
        }
    }

    /// The group of an admitted create is deleted: its cores are free again, whatever the last
    /// usage read says. Without this, every group created and deleted within one usage period
    /// ([`USAGES_TTL`]) would still count: short jobs at a few dozen creates a second were held
    /// for a quota that nothing used.
    pub fn deleted(&self, deployment: &str, instance: &str) {
        let key = (deployment.to_owned(), instance.to_owned());
        lock(&self.state).reservations.remove(&key);
    }

    /// ARM refused a create for its quota: it waits in the queue like one held here.
    pub fn refused(&self, ticket: &Ticket) {
        let mut state = lock(&self.state);
        let key = (ticket.deployment.clone(), ticket.instance.clone());
        state.reservations.remove(&key);
        let waiter = Waiter {
            location: ticket.location.clone(),
            cores: ticket.cores,
            since: ticket.since,
            seen: Instant::now(),
        };
        state.waiters.insert(key, waiter);
    }
}

fn reservation(ticket: &Ticket) -> Reservation {
    Reservation {
        location: ticket.location.clone(),
        cores: ticket.cores,
        answered: None,
    }
}

fn number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded}")
    }
}

/// Locks the state, which stays consistent even if a holder panicked (each change is whole).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(instance: &str, cores: f64, since: Millis) -> Ticket {
        Ticket {
            deployment: "d".into(),
            instance: instance.into(),
            location: "westeurope".into(),
            cores,
            since,
        }
    }

    fn usage(limit: f64, current: f64, read_at: Instant) -> CoreUsage {
        CoreUsage {
            limit: Some(limit),
            current,
            read_at,
        }
    }

    #[test]
    fn max_cores_reads_one_value_per_location_and_names_the_bad_part() {
        let max = MaxCores::parse("8, northeurope=4,West Europe=2").unwrap();
        assert_eq!(max.of("northeurope"), Some(4.0));
        assert_eq!(max.of("westeurope"), Some(2.0));
        assert_eq!(max.of("eastus"), Some(8.0));
        assert_eq!(MaxCores::parse("").unwrap().of("eastus"), None);
        for (bad, says) in [
            ("eight", "'eight'"),
            ("westeurope=0", "above zero"),
            ("=4", "a location"),
            ("a=1,a=2", "twice"),
            ("1,2", "every location"),
        ] {
            let error = MaxCores::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn creates_in_flight_count_until_a_usage_read_includes_them() {
        let admission = Admission::new(MaxCores::parse("4").unwrap());
        let t0 = Instant::now();
        let read = usage(100.0, 1.0, t0);
        for i in 0..3 {
            let name = format!("i{i}");
            assert_eq!(
                admission.decide(&ticket(&name, 1.0, 0), read, t0),
                Verdict::Go
            );
        }
        let held = admission.decide(&ticket("i3", 1.0, 0), read, t0);
        assert_eq!(
            held,
            Verdict::Hold("BERTH_MAX_CORES: needs 1 core, 0 of 4 free in westeurope".into())
        );
        // Answered, then read again: the usages count them now, and one ended meanwhile.
        for i in 0..3 {
            admission.answered("d", &format!("i{i}"));
        }
        let later = t0 + Duration::from_secs(6);
        let read = usage(100.0, 3.0, later);
        assert_eq!(
            admission.decide(&ticket("i3", 1.0, 0), read, later),
            Verdict::Go
        );
        // The quota, when lower than the setting, is what holds.
        let quota = usage(3.5, 2.0, later);
        let held = admission.decide(&ticket("i4", 2.0, 0), quota, later);
        assert_eq!(
            held,
            Verdict::Hold("quota: needs 2 cores, 0.5 of 3.5 free in westeurope".into())
        );
    }

    #[test]
    fn a_deleted_group_frees_its_cores_before_the_next_usage_read() {
        let admission = Admission::new(MaxCores::parse("2").unwrap());
        let t0 = Instant::now();
        let read = usage(100.0, 0.0, t0);
        for i in 0..2 {
            let name = format!("i{i}");
            assert_eq!(
                admission.decide(&ticket(&name, 1.0, 0), read, t0),
                Verdict::Go
            );
            admission.answered("d", &name);
        }
        assert!(matches!(
            admission.decide(&ticket("i2", 1.0, 0), read, t0),
            Verdict::Hold(_)
        ));
        // A group answered and deleted within the same usage period: its core is free now.
        admission.deleted("d", "i0");
        assert_eq!(
            admission.decide(&ticket("i2", 1.0, 0), read, t0),
            Verdict::Go
        );
        // A group still running keeps its reservation: the next is held again.
        assert!(matches!(
            admission.decide(&ticket("i3", 1.0, 0), read, t0),
            Verdict::Hold(_)
        ));
    }

    #[test]
    fn the_oldest_held_create_that_fits_goes_first() {
        let admission = Admission::new(MaxCores::default());
        let t0 = Instant::now();
        let full = usage(4.0, 4.0, t0);
        assert!(matches!(
            admission.decide(&ticket("old", 1.0, 10), full, t0),
            Verdict::Hold(_)
        ));
        assert!(matches!(
            admission.decide(&ticket("big", 3.0, 5), full, t0),
            Verdict::Hold(_)
        ));
        // One core frees: the younger create waits for the older that fits; the oldest (3 cores)
        // does not fit, so it does not block them.
        let one_free = usage(4.0, 3.0, t0);
        let young = admission.decide(&ticket("young", 1.0, 20), one_free, t0);
        assert_eq!(
            young,
            Verdict::Hold(
                "quota: needs 1 core, 1 of 4 free in westeurope; older creates go first".into()
            )
        );
        assert_eq!(
            admission.decide(&ticket("old", 1.0, 10), one_free, t0),
            Verdict::Go
        );
        // An older waiter nobody asked about for a while no longer blocks.
        let later = t0 + WAITER_GONE + Duration::from_secs(1);
        let three_free = usage(4.0, 1.0, later);
        assert_eq!(
            admission.decide(&ticket("young", 1.0, 20), three_free, later),
            Verdict::Go
        );
    }

    #[test]
    fn with_room_for_every_older_held_create_a_younger_one_does_not_wait_for_them() {
        let admission = Admission::new(MaxCores::default());
        let t0 = Instant::now();
        let full = usage(100.0, 100.0, t0);
        for i in 0..20 {
            assert!(matches!(
                admission.decide(&ticket(&format!("held-{i}"), 0.5, i), full, t0),
                Verdict::Hold(_)
            ));
        }
        // The groups ended: 20 older creates need 10 of the 98.5 cores free. Their retries come
        // in any order, the youngest first: each goes at once.
        let free = usage(100.0, 1.5, t0);
        for i in (0..20).rev() {
            assert_eq!(
                admission.decide(&ticket(&format!("held-{i}"), 0.5, i), free, t0),
                Verdict::Go,
                "held-{i}"
            );
        }
        // Room for the older ones and not for this one as well: held behind them.
        let tight = usage(100.0, 99.0, t0);
        let admission = Admission::new(MaxCores::default());
        for i in 0..2 {
            assert!(matches!(
                admission.decide(&ticket(&format!("old-{i}"), 0.5, i), full, t0),
                Verdict::Hold(_)
            ));
        }
        assert_eq!(
            admission.decide(&ticket("young", 0.5, 10), tight, t0),
            Verdict::Hold(
                "quota: needs 0.5 cores, 1 of 100 free in westeurope; older creates go first"
                    .into()
            )
        );
        assert_eq!(
            admission.decide(&ticket("old-1", 0.5, 1), tight, t0),
            Verdict::Go
        );
    }

    #[test]
    fn without_a_quota_or_a_setting_everything_goes() {
        let admission = Admission::new(MaxCores::default());
        let t0 = Instant::now();
        let none = CoreUsage {
            limit: None,
            current: 50.0,
            read_at: t0,
        };
        assert_eq!(
            admission.decide(&ticket("a", 64.0, 0), none, t0),
            Verdict::Go
        );
    }
}
