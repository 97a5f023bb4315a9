//! The ARM read budget: a token bucket, and the looks waiting for its tokens in turn.
//!
//! Azure allows a principal about 25 reads per second; Berth keeps to `BERTH_ARM_READS_PER_SECOND`.
//! Every read takes a token. A plain read ([`ReadBudget::take`]) takes the next one and sleeps
//! until it is due. A look at a group ([`ReadBudget::admit_look`]) that would wait longer than
//! [`INLINE_WAIT`] does not hold its worker: it takes its place in the queue of looks waiting and
//! is told when its turn comes, so the deployment can wake then and find its read waiting for it.
//!
//! Looks are not all alike ([`Likelihood`]): one in its instance's expected exit window is likely
//! to see the exit, one before it unlikely, one with nothing known in between. Over budget the
//! queue serves likely looks first, then the others in the order they came: a likely look that
//! comes after a hundred others goes before them, and those are told their new turn when they come
//! back (a look's turn is never promised, only estimated). A look before its window (*patient*)
//! does not queue at all: while others wait, it yields for as long as they take (at least
//! [`MIN_YIELD`]), and goes when the budget has room or, its window come, queues as likely. So
//! while likelier looks spend the whole budget, looks before a window wait: an exit long before
//! its expected time is then seen at the window.
//!
//! The queue lives in memory: after a restart a look simply queues again. A look that does not
//! come back within [`LATE_AFTER`] of its turn stops holding back the ones behind it (it keeps its
//! place should it come), and is forgotten [`HELD_FOR`] later.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::engine::policy::Likelihood;

/// Waits up to this long are slept inline rather than put off.
pub const INLINE_WAIT: Duration = Duration::from_millis(250);
/// A queued look that has not come back this long after its turn no longer holds back the looks
/// behind it.
const LATE_AFTER: Duration = Duration::from_secs(2);
/// A queued or yielding look nobody came back for is dropped this long after it was due.
const HELD_FOR: Duration = Duration::from_secs(300);
/// The shortest yield of a patient look (each yield costs its deployment a step).
pub const MIN_YIELD: Duration = Duration::from_secs(30);

/// A queued look's place: likelier first, then first come.
type Place = (Reverse<Likelihood>, u64);

/// A look waiting its turn.
#[derive(Clone, Copy, Debug)]
struct Queued {
    place: Place,
    /// When it was last told its turn comes.
    due: Instant,
}

#[derive(Debug)]
struct State {
    /// Tokens in the bucket; below zero, that many reads are sleeping inline for theirs.
    tokens: f64,
    last: Instant,
    /// Looks waiting their turn, by place, and each one's place by group name.
    queue: BTreeMap<Place, String>,
    queued: HashMap<String, Queued>,
    /// Patient looks yielding, until when, by group name.
    yielded: HashMap<String, Instant>,
    /// Places are handed out in this order within a likelihood.
    next: u64,
    /// Prune the queue and the yields when they grow to this size.
    prune_at: usize,
}

/// A token bucket for ARM reads, with the looks waiting for its tokens.
#[derive(Debug)]
pub struct ReadBudget {
    per_second: f64,
    state: Mutex<State>,
}

impl State {
    /// Refills the bucket up to `now` (at most a second's worth of tokens).
    fn refill(&mut self, per_second: f64, now: Instant) {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * per_second)
            .min(per_second);
        self.last = now;
    }

    /// How long until a read with `ahead` reads before it is due.
    fn wait(&self, per_second: f64, ahead: usize) -> Duration {
        let short = ahead as f64 + 1.0 - self.tokens;
        if short <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(short / per_second)
        }
    }

    /// The queued looks before `place` (all of them without one) that are expected back: a look
    /// late for its turn does not hold back the others.
    fn ahead(&self, place: Option<Place>, now: Instant) -> usize {
        let expected = |name: &String| {
            self.queued
                .get(name)
                .is_some_and(|q| q.due + LATE_AFTER >= now)
        };
        match place {
            Some(place) => self
                .queue
                .range(..place)
                .filter(|(_, n)| expected(n))
                .count(),
            None => self.queue.values().filter(|n| expected(n)).count(),
        }
    }

    /// Takes the look at `name` out of the queue.
    fn dequeue(&mut self, name: &str) -> Option<Queued> {
        let queued = self.queued.remove(name)?;
        self.queue.remove(&queued.place);
        Some(queued)
    }

    /// Queues the look at `name` (or keeps it queued) as `likelihood`, told it is due at `due`:
    /// a look already queued keeps its turn among looks as likely.
    fn enqueue(&mut self, name: &str, likelihood: Likelihood, now: Instant) -> Place {
        let place = match self.dequeue(name) {
            Some(q) => (Reverse(likelihood), q.place.1),
            None => {
                self.next += 1;
                (Reverse(likelihood), self.next)
            }
        };
        if self.queued.len() + self.yielded.len() >= self.prune_at {
            self.prune(now);
        }
        self.queue.insert(place, name.to_owned());
        self.queued
            .insert(name.to_owned(), Queued { place, due: now });
        place
    }

    /// Forgets the looks nobody came back for.
    fn prune(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .queued
            .iter()
            .filter(|(_, q)| q.due + HELD_FOR < now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.dequeue(&name);
        }
        self.yielded.retain(|_, until| *until + HELD_FOR > now);
        self.prune_at = ((self.queued.len() + self.yielded.len()) * 2).max(64);
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
                queue: BTreeMap::new(),
                queued: HashMap::new(),
                yielded: HashMap::new(),
                next: 0,
                prune_at: 64,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is numbers and maps: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token for a read, sleeping until it is due (ahead of the looks queued).
    pub async fn take(&self) {
        let wait = {
            let mut state = self.lock();
            state.refill(self.per_second, Instant::now());
            let wait = state.wait(self.per_second, 0);
            state.tokens -= 1.0;
            wait
        };
        sleep(wait).await;
    }

    /// Takes a token only if one is spare now (no look waiting for it, no wait): reads that may
    /// be skipped (a running container's log) never delay a look.
    pub fn try_take(&self) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        state.refill(self.per_second, now);
        let ahead = state.ahead(None, now);
        let spare = state.wait(self.per_second, ahead).is_zero();
        if spare {
            state.tokens -= 1.0;
        }
        spare
    }

    /// Admits a look at group `name` with nothing known of its likelihood: `None` when the read
    /// may go now (after at most [`INLINE_WAIT`]), or how long until its turn.
    pub async fn admit(&self, name: &str) -> Option<Duration> {
        self.admit_look(name, Likelihood::Unknown).await
    }

    /// [`Self::admit`] for a look as likely as `likelihood` to see a change: likely looks go
    /// first, unlikely ones yield to all others (see the module's notes).
    pub async fn admit_look(&self, name: &str, likelihood: Likelihood) -> Option<Duration> {
        let now = Instant::now();
        let wait = {
            let mut state = self.lock();
            state.refill(self.per_second, now);
            if likelihood == Likelihood::Unlikely && !state.queued.contains_key(name) {
                if let Some(until) = state.yielded.get(name).copied() {
                    if until > now {
                        // Back before its yield is over: it keeps yielding.
                        return Some(until - now);
                    }
                    state.yielded.remove(name);
                }
                // Behind every look waiting: it goes only if that is soon, else yields to them.
                let ahead = state.ahead(None, now);
                let wait = state.wait(self.per_second, ahead);
                if wait > INLINE_WAIT {
                    let wait = wait.max(MIN_YIELD);
                    if state.queued.len() + state.yielded.len() >= state.prune_at {
                        state.prune(now);
                    }
                    state.yielded.insert(name.to_owned(), now + wait);
                    return Some(wait);
                }
                state.tokens -= 1.0;
                wait
            } else {
                // Likely or unknown (or unlikely but already queued, its plan changed): its turn
                // in the queue, kept from an earlier visit.
                state.yielded.remove(name);
                let likelihood = likelihood.max(Likelihood::Unknown);
                let place = state.enqueue(name, likelihood, now);
                let ahead = state.ahead(Some(place), now);
                let wait = state.wait(self.per_second, ahead);
                if wait > INLINE_WAIT {
                    if let Some(q) = state.queued.get_mut(name) {
                        q.due = now + wait;
                    }
                    return Some(wait);
                }
                state.dequeue(name);
                state.tokens -= 1.0;
                wait
            }
        };
        sleep(wait).await;
        None
    }

    /// Looks waiting their turn or yielding.
    pub fn held(&self) -> usize {
        let state = self.lock();
        state.queued.len() + state.yielded.len()
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
        // and goes before the looks queued meanwhile.
        spend("late".into(), 30).await;
        budget
            .admit_look("window", Likelihood::Unlikely)
            .await
            .unwrap();
        let behind = budget.admit("behind").await.unwrap();
        let turn = budget
            .admit_look("window", Likelihood::Likely)
            .await
            .unwrap_or(Duration::ZERO);
        assert!(turn < Duration::from_millis(350), "{turn:?} ({behind:?})");
        assert!(behind > Duration::from_secs(1), "{behind:?}");
        // Under budget, a patient look goes like any other.
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(budget.admit_look("calm", Likelihood::Unlikely).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn likely_looks_go_before_looks_queued_earlier_which_are_told_their_new_turn() {
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
