//! Timing policy, in one place: how soon to look again, how long a create claim lasts, how retries
//! back off. Everything here is a pure function of counts and the spec.

use super::state::Millis;

/// How long a worker owns a create before another may take it over (and check ARM first).
pub const CREATE_CLAIM_MS: Millis = 60_000;

/// When nothing is due, how long until a deployment looks at itself again anyway.
pub const IDLE_WAKE_MS: Millis = 60_000;

/// A step message this early for its wake still runs the step (queues deliver a little early,
/// and clocks differ); one earlier is sent again for its time.
pub const EARLY_STEP_MS: Millis = 1_000;

/// Most rounds one step message runs before it hands over to a fresh message (see
/// [`super::round`]): one worker never holds a deployment for ever.
pub const MAX_ROUNDS_PER_STEP: usize = 200;

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

/// Back-off after `failures` failed ARM actions in a row (1 s doubling, at most 5 min).
pub fn failure_delay(failures: u32) -> Millis {
    1_000i64
        .saturating_mul(1 << failures.min(9).saturating_sub(1))
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
    fn looks_slow_down_and_stay_bounded() {
        let delays: Vec<_> = (0..12).map(|n| next_look_delay(true, false, n)).collect();
        assert_eq!(delays[0], 0);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), 30_000);
        assert_eq!(next_look_delay(false, true, 50), 60_000);
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
