//! Timing policy, in one place: how soon to look again, how long a create claim lasts, how retries
//! back off. Everything here is a pure function of counts and the spec.

use super::looks::{LookPlan, RunEstimate};
use super::state::Millis;

/// How long a worker owns a create before another may take it over (and check ARM first).
pub const CREATE_CLAIM_MS: Millis = 60_000;

/// How long an API call carries on the step it causes before it answers (`BERTH_INLINE_STEP`): a
/// submit its deployment's first step (the creates of its first groups and the save of what ARM
/// answered), an instance's `completed` callback the wind-down it decides. What is left is done
/// by step messages (see `Driver::create_and_start` and `Driver::raise_and_perform`).
pub const INLINE_STEP_MS: Millis = 10_000;

/// Most steps carried on by API calls at once in one process: past that, a submit or a callback
/// leaves its step to a message, as with `BERTH_INLINE_STEP` at `0`, so that a flood of calls
/// makes no more ARM calls at once than this beside the workers' own.
pub const INLINE_STEPS_AT_ONCE: usize = 32;

/// When nothing is due, how long until a deployment looks at itself again anyway.
pub const IDLE_WAKE_MS: Millis = 60_000;

/// A step message this early for its wake still runs the step (queues deliver a little early,
/// and clocks differ); one earlier is sent again for its time.
pub const EARLY_STEP_MS: Millis = 1_000;

/// Most rounds one step message runs before it hands over to a fresh message (see
/// [`super::round`]): one worker never holds a deployment for ever.
pub const MAX_ROUNDS_PER_STEP: usize = 200;

/// Entries in one archived page of a deployment's history.
pub const HISTORY_PAGE: usize = 100;

/// Saved history entries in a checkpoint at which its oldest page is archived before the next
/// save: a checkpoint keeps between `HISTORY_ARCHIVE_AT - HISTORY_PAGE` and this many saved
/// entries, plus those of the save being made.
pub const HISTORY_ARCHIVE_AT: usize = 2 * HISTORY_PAGE;

/// How long an idle worker waits for a step message before it receives again.
pub const WORKER_IDLE_WAIT_MS: Millis = 5_000;

/// After a job's containers have all exited, how long to wait for a `completed` callback that
/// may still be on its way before calling the attempt failed (completion `callback`).
pub const CALLBACK_GRACE_MS: Millis = 30_000;

/// Looks at a job watching container exits: fast at first, then slower.
const JOB_LOOKS_MS: [Millis; 8] = [0, 500, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000];

/// How long after its create to look at a group first. A job completed by callback only is told
/// of its end by the callback: the first look only notices a group that failed to start, and
/// comes when a look after a change would. Everything else is looked at at once.
pub fn first_look_delay(callback_only: bool) -> Millis {
    if callback_only {
        next_look_delay(false, false, 0)
    } else {
        0
    }
}

/// How long to wait before looking at a group again, after `quiet_looks` looks that saw no change.
pub fn next_look_delay(watching_exit: bool, service: bool, quiet_looks: u32) -> Millis {
    if service {
        return if quiet_looks < 3 { 10_000 } else { 60_000 };
    }
    if !watching_exit {
        // Completion by callback: look now and then only to notice a crash.
        return if quiet_looks == 0 { 5_000 } else { 60_000 };
    }
    JOB_LOOKS_MS[(quiet_looks as usize).min(JOB_LOOKS_MS.len() - 1)]
}

/// The shortest gap between looks before an expected exit window, and the longest.
const BEFORE_EXIT_GAP_MS: (Millis, Millis) = (30_000, 300_000);
/// The narrowest half-width of an exit window: a run-time estimate is never trusted to better
/// than this, nor to better than [`EXIT_SPREAD_FLOOR`] of the run time (clocks, create latency).
const EXIT_SPREAD_MIN_MS: f64 = 500.0;
const EXIT_SPREAD_FLOOR: f64 = 0.02;
/// How far past its window a look waits at most, as with the back-off.
const AFTER_EXIT_GAP_MS: Millis = 30_000;

/// When an instance with `estimate` is likely to exit, in milliseconds after its create: the
/// window `(from, to)` from one spread before the mean to two after it, and the gap between looks
/// in it (one spread). So a run that ends as expected is seen by the look at the mean or the one
/// before it (two reads), and a late one within two spreads.
pub fn exit_window(estimate: &RunEstimate) -> (Millis, Millis, Millis) {
    let spread = estimate
        .spread_ms
        .max(estimate.mean_ms * EXIT_SPREAD_FLOOR)
        .max(EXIT_SPREAD_MIN_MS);
    let from = (estimate.mean_ms - spread).max(0.0);
    let to = estimate.mean_ms + 2.0 * spread;
    (from as Millis, to as Millis, spread as Millis)
}

/// How long to wait before looking again at an instance watched for its exit by `plan`, `since`
/// milliseconds after its create. With an estimate: before the exit window, one look every half
/// the time to the window (30 s to 5 min: an early crash is still seen, at that pace); in it, a
/// look every spread; after it, a back-off growing with the time past it (at most 30 s).
pub fn planned_look_delay(plan: &LookPlan, since: Millis) -> Millis {
    let estimate = match plan {
        LookPlan::Every(ms) => return (*ms).max(0),
        LookPlan::Expect(estimate) => estimate,
    };
    let (from, to, gap) = exit_window(estimate);
    let since = since.max(0);
    if since < from {
        let (least, most) = BEFORE_EXIT_GAP_MS;
        (from / 2).clamp(least, most).min(from - since)
    } else if since < to {
        gap.min(to - since).max(1)
    } else {
        ((since - to) / 2).clamp(1_000, AFTER_EXIT_GAP_MS)
    }
}

/// Whether a look at an instance watched by `plan`, `since` milliseconds after its create, is
/// unlikely to see its exit (it comes before the exit window): under a spent read budget such a
/// look lets likelier ones go first.
pub fn exit_unlikely(plan: &LookPlan, since: Millis) -> bool {
    look_likelihood(Some(plan), since) == Likelihood::Unlikely
}

/// Until when, in milliseconds after its create, to wait for a look at an instance watched by
/// `plan` that the read budget put off `until` then, `since` its create: never past the start of
/// its exit window when the look came before it. A look before the window yields to likelier
/// ones for as long as they take; it comes back when it becomes likely itself, and then goes
/// first, rather than after a yield that may have run past the window.
pub fn deferred_look_until(plan: Option<&LookPlan>, since: Millis, until: Millis) -> Millis {
    match plan {
        Some(LookPlan::Expect(estimate)) => {
            let from = exit_window(estimate).0;
            if since < from { until.min(from) } else { until }
        }
        _ => until,
    }
}

/// How long past its exit window a look at an instance with an estimate is still likely to see
/// the exit: one whose window looks came late (the budget was spent) still finds it soon after.
const LIKELY_PAST_WINDOW_MS: Millis = 30_000;

/// How likely a look is to see a change, which orders looks over a spent read budget: likely
/// looks go first, then the others in turn; unlikely ones yield to all others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Likelihood {
    /// Before its instance's exit window.
    Unlikely,
    /// Nothing known: the back-off, round robin, well past a window, anything not watched by a
    /// plan.
    Unknown,
    /// In its instance's exit window, or just past it.
    Likely,
}

/// How likely a look at an instance watched by `plan` (`None`: the back-off), `since`
/// milliseconds after its create, is to see its exit: with an estimate, unlikely before the exit
/// window, likely from its start to [`LIKELY_PAST_WINDOW_MS`] past its end.
pub fn look_likelihood(plan: Option<&LookPlan>, since: Millis) -> Likelihood {
    let Some(LookPlan::Expect(estimate)) = plan else {
        return Likelihood::Unknown;
    };
    let (from, to, _) = exit_window(estimate);
    if since < from {
        Likelihood::Unlikely
    } else if since <= to + LIKELY_PAST_WINDOW_MS {
        Likelihood::Likely
    } else {
        Likelihood::Unknown
    }
}

/// A running container's log is saved once this much of it is unsaved (half of what ACI keeps of
/// a stopped container's log: the rest survives its exit), in lines or bytes…
pub const LOG_SAVE_AT: (usize, usize) = (500, 8 * 1024);
/// …and read again before this much more would be unsaved, at the rate its timestamps show.
pub const LOG_READ_BEFORE: (usize, usize) = (750, 12 * 1024);
/// Gaps in its logs an instance's checkpoint and history list at most (its saved logs note
/// every one where it is).
pub const MOST_TRUNCATIONS_KEPT: usize = 20;
/// The shortest wait between two reads of a running container's log.
pub const LOG_READ_MIN_MS: Millis = 1_000;

/// How long until a log growing at `rate` (lines and bytes a second) with `unsaved` lines and
/// bytes not saved yet reaches [`LOG_READ_BEFORE`]: when to read it again. `None` when it does
/// not grow.
pub fn log_read_within(rate: (f64, f64), unsaved: (usize, usize)) -> Option<Millis> {
    let until = |limit: usize, have: usize, per_second: f64| {
        (per_second > 0.0).then(|| limit.saturating_sub(have) as f64 / per_second)
    };
    let (lines, bytes) = LOG_READ_BEFORE;
    let seconds = match (
        until(lines, unsaved.0, rate.0),
        until(bytes, unsaved.1, rate.1),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(((seconds * 1000.0) as Millis).max(LOG_READ_MIN_MS))
}

/// Back-off after `failures` failed ARM actions in a row (1 s doubling, at most 5 min).
pub fn failure_delay(failures: u32) -> Millis {
    1_000i64
        .saturating_mul(1 << failures.min(9).saturating_sub(1))
        .min(300_000)
}

/// Most attempts to deliver one notification: with [`notify_delay`], the last is about an hour
/// after the first (1 + 2 + … + 256 s, then every 5 min).
pub const NOTIFY_MAX_ATTEMPTS: u32 = 20;

/// How long one notification attempt may take, connection to response (its body is not read).
pub const NOTIFY_TIMEOUT_MS: Millis = 10_000;

/// Wait after `attempts` failed attempts to deliver a notification: 1 s doubling, at most 5 min.
pub fn notify_delay(attempts: u32) -> Millis {
    1_000i64
        .saturating_mul(1 << (attempts.clamp(1, 10) - 1))
        .min(300_000)
}

/// Wait before attempt `attempt` (2, 3, ...): the spec's back-off, doubled each further attempt.
pub fn retry_delay(backoff_ms: u64, attempt: u32) -> Millis {
    let doublings = attempt.saturating_sub(2).min(16);
    (backoff_ms as Millis).saturating_mul(1 << doublings)
}

/// How long a create held for capacity waits before it is tried again (and how long the driver
/// keeps a location's usages: see `driver::admit`): capacity freed is used within this long.
pub const HOLD_RETRY_MS: Millis = 5_000;

/// Whether a heartbeat at `now` is worth a checkpoint save, the last recorded one being `last`:
/// only when it moves the hung deadline by more than a quarter of `timeout_ms`. A container that
/// beats every few seconds then costs one save per quarter timeout, not one per beat; the
/// deadline runs from a recorded beat at most a quarter timeout older than the latest, so a
/// container beating at least every half timeout is never taken for hung.
pub fn beat_worth_saving(last: Option<Millis>, now: Millis, timeout_ms: Millis) -> bool {
    last.is_none_or(|last| now - last > timeout_ms / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_back_off_to_five_minutes_and_give_up_within_about_an_hour() {
        let delays: Vec<Millis> = (1..NOTIFY_MAX_ATTEMPTS).map(notify_delay).collect();
        assert_eq!(delays[..4], [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(*delays.last().unwrap(), 300_000);
        let total: Millis = delays.iter().sum();
        assert_eq!(total, 3_511_000);
    }

    #[test]
    fn a_log_is_read_again_before_its_unsaved_part_passes_what_aci_keeps() {
        // 100 lines (2 KB) a second, nothing unsaved: 750 lines away by lines, 12 KB by bytes.
        assert_eq!(log_read_within((100.0, 2_048.0), (0, 0)), Some(6_000));
        assert_eq!(log_read_within((100.0, 500.0), (0, 0)), Some(7_500));
        // Some unsaved already: sooner; past the mark or racing: the least gap.
        assert_eq!(
            log_read_within((100.0, 500.0), (700, 0)),
            Some(LOG_READ_MIN_MS)
        );
        assert_eq!(log_read_within((1e9, 1e9), (0, 0)), Some(LOG_READ_MIN_MS));
        assert_eq!(log_read_within((0.0, 0.0), (10, 10)), None);
    }

    #[test]
    fn looks_slow_down_and_stay_bounded() {
        let delays: Vec<_> = (0..12).map(|n| next_look_delay(true, false, n)).collect();
        assert_eq!(delays[0], 0);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), 30_000);
        assert_eq!(next_look_delay(false, true, 50), 60_000);
    }

    /// The looks of a plan from the create on, each after the one before, until `until`.
    fn looks(plan: &LookPlan, until: Millis) -> Vec<Millis> {
        let mut at = vec![0];
        while *at.last().unwrap() < until {
            let since = *at.last().unwrap();
            at.push(since + planned_look_delay(plan, since));
        }
        at
    }

    #[test]
    fn looks_gather_around_the_expected_exit() {
        // 120 s runs, 3 s spread: the window is 117 s to 126 s, a look every 3 s in it.
        let estimate = RunEstimate {
            mean_ms: 120_000.0,
            spread_ms: 3_000.0,
            runs: 5,
        };
        assert_eq!(exit_window(&estimate), (117_000, 126_000, 3_000));
        let plan = LookPlan::Expect(estimate);
        let at = looks(&plan, 200_000);
        // Before: the create's look, one half way, then the window's start.
        assert_eq!(at[..3], [0, 58_500, 117_000]);
        // In it: every spread.
        assert_eq!(at[3..6], [120_000, 123_000, 126_000]);
        // After: backing off, at most 30 s apart, never stuck.
        let after: Vec<Millis> = at[6..].windows(2).map(|w| w[1] - w[0]).collect();
        assert!(after.windows(2).all(|w| w[0] <= w[1]), "{after:?}");
        assert!(after.iter().all(|gap| (1_000..=30_000).contains(gap)));
        // Far fewer looks than the back-off before the window: 3 against 9.
        let backoff: Vec<Millis> = (0..)
            .scan(0, |since, n| {
                *since += next_look_delay(true, false, n);
                Some(*since)
            })
            .take_while(|since| *since < 117_000)
            .collect();
        assert_eq!(backoff.len(), 9);
        // Which looks are unlikely to see the exit: those before the window; likely: those in
        // it and shortly after; past that, nothing is known.
        assert!(exit_unlikely(&plan, 58_500));
        assert!(!exit_unlikely(&plan, 117_000));
        assert!(!exit_unlikely(&plan, 500_000));
        let likelihood = |since| look_likelihood(Some(&plan), since);
        assert_eq!(likelihood(116_999), Likelihood::Unlikely);
        assert_eq!(likelihood(117_000), Likelihood::Likely);
        assert_eq!(likelihood(126_000 + 30_000), Likelihood::Likely);
        assert_eq!(likelihood(126_000 + 30_001), Likelihood::Unknown);
        assert_eq!(look_likelihood(None, 117_000), Likelihood::Unknown);
        assert_eq!(
            look_likelihood(Some(&LookPlan::Every(1_000)), 117_000),
            Likelihood::Unknown
        );
        assert!(
            Likelihood::Unlikely < Likelihood::Unknown && Likelihood::Unknown < Likelihood::Likely
        );
        // A look before the window put off past its start comes back at the start; one in it
        // (or without a plan) waits as long as it was told.
        assert_eq!(deferred_look_until(Some(&plan), 58_500, 148_500), 117_000);
        assert_eq!(deferred_look_until(Some(&plan), 58_500, 88_500), 88_500);
        assert_eq!(deferred_look_until(Some(&plan), 117_000, 130_000), 130_000);
        assert_eq!(deferred_look_until(None, 0, 40_000), 40_000);
    }

    #[test]
    fn long_runs_are_still_looked_at_every_five_minutes_and_short_ones_at_their_window() {
        let hour = LookPlan::Expect(RunEstimate::first(3_600_000));
        let at = looks(&hour, 3_000_000);
        assert!(at.windows(2).all(|w| w[1] - w[0] <= 300_000), "{at:?}");
        assert_eq!(at[1], 300_000);
        // A 10 s run with no spread: the spread is the floor (0.5 s), the first look after the
        // create's is at 9.5 s.
        let short = LookPlan::Expect(RunEstimate::first(10_000));
        assert_eq!(
            exit_window(&RunEstimate::first(10_000)),
            (9_500, 11_000, 500)
        );
        assert_eq!(looks(&short, 11_000)[..4], [0, 9_500, 10_000, 10_500]);
        // A fixed interval is that interval, whatever the time.
        assert_eq!(planned_look_delay(&LookPlan::Every(1_000), 77_000), 1_000);
        assert!(!exit_unlikely(&LookPlan::Every(1_000), 0));
    }

    #[test]
    fn failures_and_retries_back_off() {
        assert_eq!(failure_delay(1), 1_000);
        assert_eq!(failure_delay(2), 2_000);
        assert_eq!(failure_delay(30), 256_000);
        assert_eq!(retry_delay(10_000, 2), 10_000);
        assert_eq!(retry_delay(10_000, 4), 40_000);
    }

    #[test]
    fn beats_are_saved_once_per_quarter_timeout() {
        assert!(beat_worth_saving(None, 0, 120_000));
        assert!(!beat_worth_saving(Some(0), 30_000, 120_000));
        assert!(beat_worth_saving(Some(0), 30_001, 120_000));
    }
}
