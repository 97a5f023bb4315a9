//! Fault injection for the reliability tests: throttling (`429` with `Retry-After`), server errors
//! (`500`), slow answers and dropped connections, at a rate or on the Nth call, plus the
//! `ContainerGroupTransitioning` window after a stop; and ACI's capacity conditions: creates
//! refused in a location out of capacity or without the SKU, and Spot groups evicted (see
//! `capacity`). Set at start (`Config::faults`, CLI flags) and at runtime with
//! `PUT /_emulator/faults`.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The fault knobs. Rates are fractions of eligible ARM requests (0 to 1), drawn independently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Answer `429` (`SubscriptionRequestsThrottled`) with `Retry-After`.
    pub throttle_rate: f64,
    /// The `Retry-After` seconds of injected `429`s.
    pub retry_after_seconds: u64,
    /// Answer `500` (`InternalServerError`).
    pub error_rate: f64,
    /// Delay the answer by `slow_ms` (then answer normally, or with another fault).
    pub slow_rate: f64,
    /// The delay of slow answers, in milliseconds.
    pub slow_ms: u64,
    /// Close the connection without answering.
    pub drop_rate: f64,
    /// Faults on given calls: the Nth eligible call (counted from 1 since the faults were set).
    pub nth: Vec<NthFault>,
    /// Only requests with these HTTP methods are eligible (all when empty).
    pub methods: Vec<String>,
    /// Seed of the random draws, for reproducible runs.
    pub seed: Option<u64>,
    /// `POST start` within this many seconds after a stop answers `409 ContainerGroupTransitioning`.
    pub transitioning_seconds: u64,
    /// Locations out of capacity: every create there answers `409 ServiceUnavailable`.
    pub out_of_capacity: Vec<String>,
    /// Fraction of creates refused `409 ServiceUnavailable` for capacity, in `capacityLocations`.
    pub capacity_rate: f64,
    /// Where `capacityRate` applies (every location when empty).
    pub capacity_locations: Vec<String>,
    /// Locations that do not offer the SKU: every create there answers `409 SkuNotAvailable`.
    pub sku_not_available: Vec<String>,
    /// Fraction of Spot groups evicted (once each), drawn at their create.
    pub spot_eviction_rate: f64,
    /// Spot groups to evict, by the order of their creates (the Nth Spot group, from 1, counted
    /// since the faults were set).
    pub spot_evict_nth: Vec<u64>,
    /// How long after its create an evicted Spot group is evicted (once it runs).
    pub spot_evict_after_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            throttle_rate: 0.0,
            retry_after_seconds: 1,
            error_rate: 0.0,
            slow_rate: 0.0,
            slow_ms: 1000,
            drop_rate: 0.0,
            nth: Vec::new(),
            methods: Vec::new(),
            seed: None,
            transitioning_seconds: 0,
            out_of_capacity: Vec::new(),
            capacity_rate: 0.0,
            capacity_locations: Vec::new(),
            sku_not_available: Vec::new(),
            spot_eviction_rate: 0.0,
            spot_evict_nth: Vec::new(),
            spot_evict_after_ms: 1000,
        }
    }
}

/// Why a create is refused for capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `409 ServiceUnavailable`: the location has no capacity for the request now.
    OutOfCapacity,
    /// `409 SkuNotAvailable`: the location does not offer the SKU.
    SkuNotAvailable,
}

/// A fault on one given call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NthFault {
    /// Which eligible call, from 1.
    pub call: u64,
    /// What to do to it.
    pub fault: FaultKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// `429` with `Retry-After`.
    Throttle,
    /// `500`.
    Error,
    /// A slow answer.
    Slow,
    /// A dropped connection.
    Drop,
}

impl FaultKind {
    /// Parses `throttle`, `error`, `slow` or `drop` (for the CLI).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "throttle" | "429" => Some(FaultKind::Throttle),
            "error" | "500" => Some(FaultKind::Error),
            "slow" => Some(FaultKind::Slow),
            "drop" => Some(FaultKind::Drop),
            _ => None,
        }
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Decision {
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// Then answer with this fault instead of the real answer (`Slow` never appears here).
    pub fault: Option<FaultKind>,
}

impl Faults {
    /// Checks the knobs; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttleRate", self.throttle_rate),
            ("errorRate", self.error_rate),
            ("slowRate", self.slow_rate),
            ("dropRate", self.drop_rate),
            ("capacityRate", self.capacity_rate),
            ("spotEvictionRate", self.spot_eviction_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        if self.spot_evict_nth.contains(&0) {
            return Err("spotEvictNth counts Spot groups from 1, not 0".into());
        }
        if let Some(bad) = self.nth.iter().find(|fault| fault.call == 0) {
            return Err(format!(
                "nth[].call counts from 1, not {} (fault {:?})",
                bad.call, bad.fault
            ));
        }
        Ok(())
    }

    /// Whether any fault can happen (so the fast path can skip the lock).
    pub fn is_quiet(&self) -> bool {
        self.throttle_rate == 0.0
            && self.error_rate == 0.0
            && self.slow_rate == 0.0
            && self.drop_rate == 0.0
            && self.nth.is_empty()
    }
}

/// The faults in force, their random source and the call counter.
#[derive(Debug)]
pub struct FaultState {
    faults: Faults,
    rng: StdRng,
    calls: u64,
    spot_groups: u64,
}

impl FaultState {
    /// Starts with `faults`, counting calls from zero.
    pub fn new(faults: Faults) -> Self {
        let rng = match faults.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        FaultState {
            faults,
            rng,
            calls: 0,
            spot_groups: 0,
        }
    }

    /// Whether a create in `location` is refused for capacity, and how.
    pub fn refusal(&mut self, location: &str) -> Option<Refusal> {
        let faults = &self.faults;
        let named = |list: &[String]| list.iter().any(|l| same_location(l, location));
        if named(&faults.sku_not_available) {
            return Some(Refusal::SkuNotAvailable);
        }
        if named(&faults.out_of_capacity) {
            return Some(Refusal::OutOfCapacity);
        }
        let applies = faults.capacity_locations.is_empty() || named(&faults.capacity_locations);
        let rate = faults.capacity_rate;
        (applies && rate > 0.0 && self.rng.random_bool(rate)).then_some(Refusal::OutOfCapacity)
    }

    /// Counts a Spot group's create; whether to evict it, and after how long.
    pub fn evict_spot(&mut self) -> Option<Duration> {
        self.spot_groups += 1;
        let faults = &self.faults;
        let after = Duration::from_millis(faults.spot_evict_after_ms);
        let rate = faults.spot_eviction_rate;
        let chosen = faults.spot_evict_nth.contains(&self.spot_groups)
            || (rate > 0.0 && self.rng.random_bool(rate));
        chosen.then_some(after)
    }

    /// The faults in force.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Decides the fate of a request with this HTTP method.
    pub fn decide(&mut self, method: &str) -> Decision {
        let faults = &self.faults;
        if faults.is_quiet() {
            return Decision::default();
        }
        let eligible = faults.methods.is_empty()
            || faults
                .methods
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(method));
        if !eligible {
            return Decision::default();
        }
        self.calls += 1;
        let slow = Duration::from_millis(faults.slow_ms);
        if let Some(nth) = faults.nth.iter().find(|fault| fault.call == self.calls) {
            return match nth.fault {
                FaultKind::Slow => Decision {
                    delay: Some(slow),
                    fault: None,
                },
                other => Decision {
                    delay: None,
                    fault: Some(other),
                },
            };
        }
        let (drop_rate, throttle_rate, error_rate, slow_rate) = (
            faults.drop_rate,
            faults.throttle_rate,
            faults.error_rate,
            faults.slow_rate,
        );
        let mut decision = Decision::default();
        if slow_rate > 0.0 && self.rng.random_bool(slow_rate) {
            decision.delay = Some(slow);
        }
        if drop_rate > 0.0 && self.rng.random_bool(drop_rate) {
            decision.fault = Some(FaultKind::Drop);
        } else if throttle_rate > 0.0 && self.rng.random_bool(throttle_rate) {
            decision.fault = Some(FaultKind::Throttle);
        } else if error_rate > 0.0 && self.rng.random_bool(error_rate) {
            decision.fault = Some(FaultKind::Error);
        }
        decision
    }
}

/// Locations as ARM compares them: case and spaces aside.
fn same_location(a: &str, b: &str) -> bool {
    let normal = |l: &str| l.replace(' ', "").to_ascii_lowercase();
    normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_call_fails_and_counting_respects_methods() {
        let mut state = FaultState::new(Faults {
            nth: vec![NthFault {
                call: 2,
                fault: FaultKind::Throttle,
            }],
            methods: vec!["PUT".into()],
            ..Faults::default()
        });
        assert_eq!(state.decide("PUT").fault, None);
        assert_eq!(state.decide("GET").fault, None, "GETs are not counted");
        assert_eq!(state.decide("put").fault, Some(FaultKind::Throttle));
        assert_eq!(state.decide("PUT").fault, None);
    }

    #[test]
    fn rates_are_reproducible_with_a_seed() {
        let faults = Faults {
            error_rate: 0.5,
            seed: Some(7),
            ..Faults::default()
        };
        let draw = |faults: &Faults| {
            let mut state = FaultState::new(faults.clone());
            (0..200)
                .map(|_| state.decide("GET").fault)
                .collect::<Vec<_>>()
        };
        let first = draw(&faults);
        assert_eq!(first, draw(&faults));
        let errors = first.iter().filter(|fault| fault.is_some()).count();
        assert!((60..140).contains(&errors), "{errors}");
    }

    #[test]
    fn rate_one_always_fires_and_zero_never() {
        let mut always = FaultState::new(Faults {
            drop_rate: 1.0,
            ..Faults::default()
        });
        assert!((0..50).all(|_| always.decide("GET").fault == Some(FaultKind::Drop)));
        let mut never = FaultState::new(Faults::default());
        assert!((0..50).all(|_| never.decide("GET") == Decision::default()));
    }

    #[test]
    fn validation_names_the_field() {
        let error = Faults {
            throttle_rate: 1.5,
            ..Faults::default()
        }
        .validate()
        .unwrap_err();
        assert!(error.starts_with("throttleRate"), "{error}");
        let error = serde_json::from_str::<Faults>(r#"{"throtleRate": 1}"#).unwrap_err();
        assert!(error.to_string().contains("throtleRate"), "{error}");
    }
}

#[cfg(test)]
mod capacity_tests {
    use super::*;

    #[test]
    fn listed_locations_refuse_and_others_do_not() {
        let mut state = FaultState::new(Faults {
            out_of_capacity: vec!["westeurope".into()],
            sku_not_available: vec!["North Europe".into()],
            ..Faults::default()
        });
        assert_eq!(state.refusal("WestEurope"), Some(Refusal::OutOfCapacity));
        assert_eq!(state.refusal("northeurope"), Some(Refusal::SkuNotAvailable));
        assert_eq!(state.refusal("eastus"), None);
    }

    #[test]
    fn the_capacity_rate_applies_only_where_it_is_set() {
        let mut state = FaultState::new(Faults {
            capacity_rate: 1.0,
            capacity_locations: vec!["westeurope".into()],
            ..Faults::default()
        });
        assert_eq!(state.refusal("westeurope"), Some(Refusal::OutOfCapacity));
        assert_eq!(state.refusal("northeurope"), None);
    }

    #[test]
    fn the_nth_spot_group_is_evicted_after_the_delay() {
        let mut state = FaultState::new(Faults {
            spot_evict_nth: vec![2],
            spot_evict_after_ms: 250,
            ..Faults::default()
        });
        assert_eq!(state.evict_spot(), None);
        assert_eq!(state.evict_spot(), Some(Duration::from_millis(250)));
        assert_eq!(state.evict_spot(), None);
        let error = Faults {
            spot_evict_nth: vec![0],
            ..Faults::default()
        };
        assert!(error.validate().unwrap_err().starts_with("spotEvictNth"));
        let error = Faults {
            spot_eviction_rate: 2.0,
            ..Faults::default()
        };
        assert!(
            error
                .validate()
                .unwrap_err()
                .starts_with("spotEvictionRate")
        );
    }
}
