//! What the engine is told about when an instance is likely to exit, so that its looks go where
//! an exit is likely: a run-time estimate learned from earlier runs of the same group spec, or a
//! fixed interval. The driver learns and stores the estimates; the engine only reads them (see
//! [`super::policy::planned_look_delay`]).

use serde::{Deserialize, Serialize};

use super::state::Millis;

/// How much of each new run an estimate takes in, at least (later runs count this much, so that
/// the estimate follows a spec whose run time drifts).
const MIN_WEIGHT: f64 = 0.2;

/// The expected run time of a group spec — from its create being accepted to its last container's
/// exit — as an exponentially weighted mean and mean absolute deviation of earlier successful runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEstimate {
    pub mean_ms: f64,
    pub spread_ms: f64,
    /// Runs taken in (saturating).
    pub runs: u32,
}

impl RunEstimate {
    /// The estimate after one run.
    pub fn first(run_ms: Millis) -> Self {
        RunEstimate {
            mean_ms: run_ms.max(0) as f64,
            spread_ms: 0.0,
            runs: 1,
        }
    }

    /// The estimate with one more run taken in: a plain mean over the first runs, then an
    /// exponentially weighted one (weight [`MIN_WEIGHT`]).
    pub fn with_run(self, run_ms: Millis) -> Self {
        let run = run_ms.max(0) as f64;
        let runs = self.runs.saturating_add(1);
        let weight = (1.0 / f64::from(runs)).max(MIN_WEIGHT);
        let deviation = (run - self.mean_ms).abs();
        RunEstimate {
            mean_ms: self.mean_ms + weight * (run - self.mean_ms),
            spread_ms: self.spread_ms + weight * (deviation - self.spread_ms),
            runs,
        }
    }

    /// Whether the numbers can plan looks (finite, not negative): a stored estimate is checked
    /// before use.
    pub fn is_usable(&self) -> bool {
        self.mean_ms.is_finite()
            && self.spread_ms.is_finite()
            && self.mean_ms >= 0.0
            && self.spread_ms >= 0.0
            && self.runs > 0
    }
}

/// How an instance watching for its containers' exit is looked at, when not by the default
/// back-off.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LookPlan {
    /// Around the expected exit: sparse before it, dense around it, backing off after it.
    Expect(RunEstimate),
    /// Every `ms` milliseconds whatever happens (under a spent read budget: round robin).
    Every(Millis),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_follows_runs_and_their_spread() {
        let e = RunEstimate::first(60_000);
        assert_eq!((e.mean_ms, e.spread_ms, e.runs), (60_000.0, 0.0, 1));
        // Plain mean at first: 60 s and 80 s give 70 s.
        let e = e.with_run(80_000);
        assert_eq!(e.mean_ms, 70_000.0);
        assert_eq!(e.spread_ms, 10_000.0);
        // Many runs of 100 s: the mean goes to 100 s, the spread to nothing.
        let e = (0..40).fold(e, |e, _| e.with_run(100_000));
        assert!((e.mean_ms - 100_000.0).abs() < 10.0, "{e:?}");
        assert!(e.spread_ms < 100.0, "{e:?}");
        assert_eq!(e.runs, 42);
        // One outlier moves it by a fifth, not all the way.
        let e = e.with_run(200_000);
        assert!((e.mean_ms - 120_000.0).abs() < 10.0, "{e:?}");
        assert!(e.is_usable());
        assert!(
            !RunEstimate {
                mean_ms: f64::NAN,
                ..e
            }
            .is_usable()
        );
        assert!(
            !RunEstimate {
                spread_ms: -1.0,
                ..e
            }
            .is_usable()
        );
    }

    #[test]
    fn plans_keep_their_json_shape() {
        let plan = LookPlan::Expect(RunEstimate::first(1_500));
        let json = serde_json::to_value(plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"expect": {"meanMs": 1500.0, "spreadMs": 0.0, "runs": 1}})
        );
        assert_eq!(serde_json::from_value::<LookPlan>(json).unwrap(), plan);
        assert_eq!(
            serde_json::to_value(LookPlan::Every(1_000)).unwrap(),
            serde_json::json!({"every": 1000})
        );
    }
}
