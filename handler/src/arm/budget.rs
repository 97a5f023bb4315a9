//! The ARM read budget: a token bucket whose reservations may be held for a later look.
//!
//! Azure allows a principal about 25 reads per second; Berth keeps to `BERTH_ARM_READS_PER_SECOND`.
//! Every read takes a token. When none is left, a read reserves the next free one (the bucket goes
//! below zero, and the reservations are served in order, one every `1 / rate` seconds). A short wait
//! is slept inline. A look at a group ([`ReadBudget::admit_look`]) that would wait longer does not
//! hold its worker: the reservation is held under the group's name and the caller is told when it
//! falls due, so the deployment can wake then and find its read waiting for it.
//!
//! Held reservations live in memory: after a restart a look simply reserves again. One whose look
//! never comes back (the deployment ended meanwhile) is dropped a while after it fell due.
//!
//! Looks are not all alike ([`Likelihood`]). One in its instance's expected exit window is
//! *likely* to see the exit: over budget it takes the earliest reservation held for a look that
//! is not, and each of those moves one turn later (the last to the end), in their order; a
//! look that comes back before its reservation is due is told how long is left. So likely looks
//! wait only for one another, whatever is queued. One before its window is unlikely to see an
//! exit: over budget, such a *patient* look does not reserve at all: it yields, for as long as the
//! reservations already made take (at least [`MIN_YIELD`]; the engine brings it back when its
//! window opens, see [`crate::engine::policy::deferred_look_until`]), so that likelier looks go
//! first, and tries again when it comes back. It goes once the budget has room, or reserves as
//! likely once its window has come. So while likelier looks spend the whole budget, looks before
//! a window wait: an exit long before its expected time is then seen at the window. Looks with
//! nothing known (the back-off, round robin) reserve in turn, first come first served.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::engine::policy::Likelihood;

/// Waits up to this long are slept inline rather than put off.
pub const INLINE_WAIT: Duration = Duration::from_millis(250);
/// A held reservation nobody came back for is dropped this long after it fell due.
const HELD_FOR: Duration = Duration::from_secs(300);
/// The shortest yield of a patient look (each yield costs its deployment a step).
pub const MIN_YIELD: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct State {
    /// Tokens in the bucket; below zero, that many reads are reserved ahead.
    tokens: f64,
    last: Instant,
    /// Reservations held for looks put off, by group name.
    held: HashMap<String, Held>,
    /// The reserved ones of `held` that are not likely, by when they fall due: a likely look
    /// takes the earliest.
    others: BTreeSet<(Instant, String)>,
    /// Prune `held` when it grows to this size.
    prune_at: usize,
}

/// A look put off.
#[derive(Clone, Copy, Debug)]
struct Held {
    /// When it falls due.
    due: Instant,
    /// Whether a token is reserved for it; a patient look that yielded has none.
    reserved: bool,
    /// Whether it is likely to see a change (it goes before the others).
    likely: bool,
}

impl Held {
    /// A patient look's yield until `due`.
    fn yielded(due: Instant) -> Self {
        Held {
            due,
            reserved: false,
            likely: false,
        }
    }
}

/// A token bucket for ARM reads.
#[derive(Debug)]
pub struct ReadBudget {
    per_second: f64,
    state: Mutex<State>,
}

impl State {
    /// Refills, takes a token (reserving one ahead when none is left) and says how long until it
    /// is due.
    fn reserve(&mut self, per_second: f64, now: Instant) -> Duration {
        let wait = self.refill(per_second, now);
        self.tokens -= 1.0;
        wait
    }

    /// [`Self::reserve`] for a look, `likely` or not: a likely one that would wait takes the turn
    /// of the earliest look held that is not likely (see [`Self::take_turn`]).
    fn reserve_look(&mut self, per_second: f64, likely: bool, now: Instant) -> Duration {
        let wait = self.reserve(per_second, now);
        if likely && wait > INLINE_WAIT {
            self.take_turn(now + wait, now)
                .saturating_duration_since(now)
        } else {
            wait
        }
    }

    /// For a likely look whose reservation falls due at `due`: the earliest turn held for a look
    /// that is not likely and not due yet, if before `due`. Each of those looks from that one on
    /// moves to the next one's turn, in their order, and the last of them to `due`.
    fn take_turn(&mut self, due: Instant, now: Instant) -> Instant {
        let moving: Vec<(Instant, String)> = self
            .others
            .iter()
            .skip_while(|(at, _)| *at <= now)
            .take_while(|(at, _)| *at < due)
            .cloned()
            .collect();
        let Some((first, _)) = moving.first().cloned() else {
            return due;
        };
        let turns = moving.iter().map(|(at, _)| *at).skip(1).chain([due]);
        for ((at, name), turn) in moving.iter().zip(turns) {
            self.others.remove(&(*at, name.clone()));
            self.others.insert((turn, name.clone()));
            if let Some(held) = self.held.get_mut(name) {
                held.due = turn;
            }
        }
        first
    }

    /// Refills the bucket up to `now` and says how long until a read taken now is due.
    fn refill(&mut self, per_second: f64, now: Instant) -> Duration {
        let tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * per_second)
            .min(per_second);
        self.tokens = tokens;
        self.last = now;
        if tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / per_second)
        }
    }

    /// How long a patient look yields now: the backlog (at least [`MIN_YIELD`]) while it is
    /// longer than an inline wait; `None` when the budget has room and it may reserve.
    fn yield_for(&mut self, per_second: f64, now: Instant) -> Option<Duration> {
        let backlog = self.refill(per_second, now);
        (backlog > INLINE_WAIT).then_some(backlog.max(MIN_YIELD))
    }

    fn hold(&mut self, name: &str, held: Held, now: Instant) {
        if self.held.len() >= self.prune_at {
            self.held.retain(|_, h| h.due + HELD_FOR > now);
            let held = &self.held;
            self.others
                .retain(|(at, name)| held.get(name).is_some_and(|h| h.due == *at));
            self.prune_at = (self.held.len() * 2).max(64);
        }
        self.unhold(name);
        if held.reserved && !held.likely {
            self.others.insert((held.due, name.to_owned()));
        }
        self.held.insert(name.to_owned(), held);
    }

    /// Takes the look at `name` off hold.
    fn unhold(&mut self, name: &str) -> Option<Held> {
        let held = self.held.remove(name)?;
        self.others.remove(&(held.due, name.to_owned()));
        Some(held)
    }
}

impl ReadBudget {
    /// A budget of `per_second` reads, with a full bucket (a burst of `per_second` reads).
    pub fn new(per_second: f64) -> Self {
        ReadBudget {
            per_second,
            state: Mutex::new(State {
                tokens: per_second,
                last: Instant::now(),
                held: HashMap::new(),
                others: BTreeSet::new(),
                prune_at: 64,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is numbers and maps: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token for a read, sleeping until its reservation is due.
    pub async fn take(&self) {
        let wait = self.lock().reserve(self.per_second, Instant::now());
        sleep(wait).await;
    }

    /// Takes a token only if one is spare now (nothing reserved ahead, no wait): reads that may be
    /// skipped (a running container's log) never delay a look.
    pub fn try_take(&self) -> bool {
        let mut state = self.lock();
        let spare = state.refill(self.per_second, Instant::now()).is_zero();
        if spare {
            state.tokens -= 1.0;
        }
        spare
    }

    /// Admits a look at group `name` with nothing known of its likelihood: `None` when the read
    /// may go now (after at most [`INLINE_WAIT`]), or how long until the reservation held for it
    /// falls due.
    pub async fn admit(&self, name: &str) -> Option<Duration> {
        self.admit_look(name, Likelihood::Unknown).await
    }

    /// [`Self::admit`] for a look as likely as `likelihood` to see a change: over budget, a
    /// likely look goes before the others, an unlikely (patient) one yields to all of them (see
    /// the module's notes).
    pub async fn admit_look(&self, name: &str, likelihood: Likelihood) -> Option<Duration> {
        let patient = likelihood == Likelihood::Unlikely;
        let likely = likelihood == Likelihood::Likely;
        let now = Instant::now();
        let wait = {
            let mut state = self.lock();
            let wait = match state.unhold(name) {
                // Its reservation: a look that became likely since takes an earlier turn if any.
                Some(held) if held.reserved => {
                    let due = if likely && !held.likely {
                        state.take_turn(held.due, now)
                    } else {
                        held.due
                    };
                    due.saturating_duration_since(now)
                }
                // A look that yielded and is no longer patient (its instance's exit window has
                // come): it stops yielding and reserves.
                Some(_) if !patient => state.reserve_look(self.per_second, likely, now),
                // Back before its yield is over: it keeps yielding, still without a token.
                Some(held) if held.due > now => {
                    let left = held.due - now;
                    state.hold(name, held, now);
                    return Some(left);
                }
                // A yield that is over, or a new patient look: yield while over budget.
                Some(_) | None if patient => match state.yield_for(self.per_second, now) {
                    Some(wait) => {
                        state.hold(name, Held::yielded(now + wait), now);
                        return Some(wait);
                    }
                    None => state.reserve(self.per_second, now),
                },
                Some(_) | None => state.reserve_look(self.per_second, likely, now),
            };
            if wait > INLINE_WAIT {
                let held = Held {
                    due: now + wait,
                    reserved: true,
                    likely,
                };
                state.hold(name, held, now);
                return Some(wait);
            }
            wait
        };
        sleep(wait).await;
        None
    }

    /// Reservations held for looks put off.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }
}

async fn sleep(wait: Duration) {
    if !wait.is_zero() {
        crate::metrics::read_budget_wait("inline");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_reads_are_spaced_by_the_rate() {
        let budget = ReadBudget::new(10.0);
        let start = Instant::now();
        for _ in 0..10 {
            budget.take().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        budget.take().await;
        budget.take().await;
        let spent = start.elapsed().as_secs_f64();
        assert!((0.19..0.21).contains(&spent), "{spent}");
    }

    #[tokio::test(start_paused = true)]
    async fn looks_over_budget_are_put_off_in_order_without_waiting() {
        let budget = ReadBudget::new(10.0);
        let start = Instant::now();
        let names: Vec<String> = (0..30).map(|i| format!("g{i}")).collect();
        let answers = futures::future::join_all(names.iter().map(|n| budget.admit(n))).await;
        let put_off: Vec<(usize, Duration)> = answers
            .into_iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, a?)))
            .collect();
        // Ten go from the full bucket, two more within the inline wait (0.1 s and 0.2 s), the
        // rest are put off, each 0.1 s after the one before.
        assert_eq!(put_off.len(), 18);
        assert_eq!(put_off[0].0, 12);
        assert!(put_off.windows(2).all(|w| w[1].1 > w[0].1));
        let last = put_off.last().unwrap().1.as_secs_f64();
        assert!((1.9..2.1).contains(&last), "{last}");
        assert!(start.elapsed() <= Duration::from_millis(210));
        assert_eq!(budget.held(), 18);

        // A look that comes back when its reservation falls due goes without another token.
        tokio::time::advance(put_off[0].1).await;
        assert_eq!(budget.admit("g12").await, None);
        // One that comes back early is told how long is left, and keeps its place.
        let left = budget.admit("g29").await.unwrap();
        assert!(left < put_off.last().unwrap().1);
        assert_eq!(budget.held(), 17);
    }

    #[tokio::test(start_paused = true)]
    async fn a_patient_look_over_budget_lets_likelier_looks_have_the_budget() {
        let budget = ReadBudget::new(10.0);
        let spend = |prefix: String, n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
            let budget = &budget;
            async move {
                futures::future::join_all(names.iter().map(|n| budget.admit(n))).await;
            }
        };
        // Spend the bucket: ten go, two within the inline wait, eight are queued (up to 1 s).
        spend("g".into(), 20).await;
        assert_eq!(budget.held(), 8);
        // A patient look yields (at least 30 s) without taking a place...
        let yielded = budget
            .admit_look("patient", Likelihood::Unlikely)
            .await
            .unwrap();
        assert_eq!(yielded, MIN_YIELD);
        assert_eq!(budget.held(), 9);
        // ...so a look after it is due right behind the queue (0.9 s), not a turn later.
        let next = budget.admit("next").await.unwrap();
        assert!((0.85..0.95).contains(&next.as_secs_f64()), "{next:?}");
        // Back early, it is told how long is left.
        let left = budget
            .admit_look("patient", Likelihood::Unlikely)
            .await
            .unwrap();
        assert!(left <= yielded);
        // Back when due with the budget spent by likelier looks, it yields again.
        tokio::time::advance(yielded).await;
        spend("more".into(), 80).await;
        let again = budget
            .admit_look("patient", Likelihood::Unlikely)
            .await
            .unwrap();
        assert_eq!(again, MIN_YIELD);
        let next = budget.admit("after").await.unwrap();
        assert!(next < again + Duration::from_millis(150), "{next:?}");
        // Once the budget has room, it goes.
        tokio::time::advance(again + Duration::from_secs(2)).await;
        assert_eq!(
            budget.admit_look("patient", Likelihood::Unlikely).await,
            None
        );
        // A look that yielded and comes back likely (its window came) stops yielding at once,
        // and takes the turn of the first look reserved meanwhile.
        spend("late".into(), 30).await;
        budget
            .admit_look("window", Likelihood::Unlikely)
            .await
            .unwrap();
        let asked = Instant::now();
        let behind = budget.admit("behind").await.unwrap();
        let turn = budget
            .admit_look("window", Likelihood::Likely)
            .await
            .unwrap_or(Duration::ZERO);
        assert!(turn < Duration::from_millis(350), "{turn:?} ({behind:?})");
        assert!(behind > Duration::from_secs(1), "{behind:?}");
        // The looks held meanwhile each moved a turn later, in their order.
        let moved = budget.admit("behind").await.unwrap();
        assert!(
            Instant::now() + moved > asked + behind,
            "{moved:?} {behind:?}"
        );
        // Under budget, a patient look goes like any other.
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(budget.admit_look("calm", Likelihood::Unlikely).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn likely_looks_go_before_looks_reserved_earlier_which_move_a_turn_later_each() {
        // 20 reads/s: 25 looks go at once (the bucket, then 0.25 s inline), 95 with nothing
        // known are queued behind them, up to 5 s.
        let budget = ReadBudget::new(20.0);
        let start = Instant::now();
        let names: Vec<String> = (0..120).map(|i| format!("unknown{i}")).collect();
        let answers = futures::future::join_all(names.iter().map(|n| budget.admit(n))).await;
        let put_off: Vec<(&String, Duration)> = names
            .iter()
            .zip(answers)
            .filter_map(|(n, a)| Some((n, a?)))
            .collect();
        assert_eq!(put_off.len(), 95);
        let (last, last_turn) = put_off[put_off.len() - 1];
        assert!(
            (4.95..5.05).contains(&last_turn.as_secs_f64()),
            "{last_turn:?}"
        );
        // A patient look yields to all of them.
        let patient = budget.admit_look("patient", Likelihood::Unlikely).await;
        assert_eq!(patient, Some(MIN_YIELD));
        // Twenty looks in their instances' exit windows: they go first, within the next second
        // (five inline, the rest queued one every 50 ms), not after the 5 s queued before them.
        let likely: Vec<String> = (0..20).map(|i| format!("likely{i}")).collect();
        let turns: Vec<Duration> = futures::future::join_all(
            likely
                .iter()
                .map(|n| budget.admit_look(n, Likelihood::Likely)),
        )
        .await
        .into_iter()
        .map(|a| a.unwrap_or(Duration::ZERO))
        .collect();
        assert_eq!(turns.iter().filter(|t| t.is_zero()).count(), 5);
        assert!(
            turns.iter().all(|t| *t <= Duration::from_secs(1)),
            "{turns:?}"
        );
        // The looks queued before them are told their new turn when they come back: a second
        // later than they were told first (the twenty likely reads), in their order.
        let first = budget.admit(put_off[0].0).await.unwrap();
        let moved = start.elapsed() + first - put_off[0].1;
        assert!((0.95..1.05).contains(&moved.as_secs_f64()), "{moved:?}");
        let later = budget.admit(last).await.unwrap();
        let moved = start.elapsed() + later - last_turn;
        assert!((0.95..1.05).contains(&moved.as_secs_f64()), "{moved:?}");
        // The likely looks find their reads when they come back at their turns.
        let (name, turn) = likely.iter().zip(&turns).max_by_key(|(_, t)| **t).unwrap();
        tokio::time::sleep_until(start + Duration::from_millis(250) + *turn).await;
        assert_eq!(budget.admit_look(name, Likelihood::Likely).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn held_reservations_nobody_came_back_for_are_dropped() {
        let budget = ReadBudget::new(1.0);
        for i in 0..100 {
            budget.admit(&format!("g{i}")).await;
        }
        assert_eq!(budget.held(), 99);
        tokio::time::advance(Duration::from_secs(100) + HELD_FOR).await;
        for i in 0..40 {
            budget.admit(&format!("late{i}")).await;
        }
        // The first of the late ones had a token; the 99 forgotten ones are gone.
        assert_eq!(budget.held(), 39);
    }
}
