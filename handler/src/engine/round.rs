//! A step's rounds, pure: [`Step`] holds what a worker knows while it runs one step message — the
//! saved checkpoint, the state ahead of it, the results not yet saved — and each
//! [`Step::round`] applies the pending events and says what must be saved before the round's
//! actions are performed. The driver is load → round → save → perform, and the engine's replay and
//! property suites drive the same `Step`, so they exercise the production rules:
//!
//! - **Batching.** A round applies every pending event, then decides once, on the final state:
//!   the intermediate states claim nothing and plan no work (a create claimed by an intermediate
//!   decision and subsumed by the final one would be held by a claim nobody acts on until it ran
//!   out), and acting on each would repeat work for every other group of the deployment.
//! - **Commit first.** A round's state is saved before its actions run ([`Save::Now`]), except
//!   when every event of the round is a result that may go unsaved ([`Event::may_go_unsaved`]:
//!   its action is safe to repeat and follows a saved decision) and the round creates nothing
//!   ([`Save::Later`]): the state then runs ahead of the checkpoint and is saved with the next
//!   round that must save. A create is never sent before its claim is saved, nor a notification
//!   before the state that queued it.
//! - **Conflict.** When a save loses the compare-and-swap, [`Step::conflict`] restarts from the
//!   reloaded checkpoint and applies again every event not yet saved.
//! - **Hand-over.** After [`policy::MAX_ROUNDS_PER_STEP`] rounds (or the configured most), the
//!   step saves what it learned (the results of its last actions, applied without claiming
//!   anything new), moves the deployment's wake to now under a new seq and ends, so a fresh
//!   message carries on rather than one worker holding the deployment for ever. No result is
//!   dropped: a `Created` left unsaved would leave its instance claimed, and nothing would touch it
//!   until the claim ran out.

use std::collections::VecDeque;

use super::apply::{Deciding, EngineError, apply_as};
use super::event::{Action, Event};
use super::state::{Deployment, Millis, Wake};

/// What must happen to a round's state before its actions run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Save {
    /// Nothing changed since the checkpoint: act at once.
    Unchanged,
    /// Save (compare-and-swap) first; act only once the save succeeded.
    Now,
    /// Act at once; the state is saved with a later round.
    Later,
}

/// One round: what to save, then what to perform.
#[derive(Debug)]
pub struct Round {
    pub save: Save,
    /// The work of the round's final state (scheduling is the save's: see [`Step::wake_message`]).
    pub actions: Vec<Action>,
    /// Events that could not apply (an unknown instance): logged by the driver, never saved.
    pub dropped: Vec<EngineError>,
}

/// A step message being run: the saved checkpoint, the state ahead of it and the events pending.
#[derive(Debug)]
pub struct Step {
    saved: Deployment,
    /// The round's state when it differs from `saved`: proposed (before a `Save::Now`) or ahead
    /// (after a `Save::Later`).
    ahead: Option<Deployment>,
    /// Results applied in `ahead` and not saved yet: applied again after a conflict.
    unsaved: Vec<Event>,
    /// The last round's events, until its state is saved.
    batch: Vec<Event>,
    pending: VecDeque<Event>,
    rounds: usize,
    max_rounds: usize,
    handing_over: bool,
}

impl Step {
    /// A step over the loaded checkpoint `saved`, starting with a [`Event::Wake`]; at most
    /// `max_rounds` rounds before it hands over.
    pub fn new(saved: Deployment, max_rounds: usize) -> Self {
        Step {
            saved,
            ahead: None,
            unsaved: Vec::new(),
            batch: Vec::new(),
            pending: VecDeque::from([Event::Wake]),
            rounds: 0,
            max_rounds,
            handing_over: false,
        }
    }

    /// The state the next round starts from and the actions act on: ahead of the checkpoint or
    /// the checkpoint itself.
    pub fn current(&self) -> &Deployment {
        self.ahead.as_ref().unwrap_or(&self.saved)
    }

    /// The checkpoint as last loaded or saved.
    pub fn saved(&self) -> &Deployment {
        &self.saved
    }

    /// Changes the current state outside the engine (the driver reseals secrets after a key
    /// rotation); the change is saved with the next save.
    pub fn amend(&mut self, change: impl FnOnce(&mut Deployment)) {
        let mut next = self.current().clone();
        change(&mut next);
        if next != *self.current() {
            self.ahead = Some(next);
        }
    }

    /// Results of performed actions, for the next round.
    pub fn push(&mut self, events: impl IntoIterator<Item = Event>) {
        self.pending.extend(events);
    }

    /// Makes the next round the hand-over (see the module): for a step that should not go on
    /// beside another one (a submit carrying its first step on, once an event raised meanwhile
    /// has scheduled a step of its own).
    pub fn hand_over_next(&mut self) {
        self.max_rounds = self.rounds;
    }

    /// The next round, or `None` when the step is over (no events pending).
    pub fn round(&mut self, now: Millis) -> Option<Round> {
        if self.pending.is_empty() || self.handing_over {
            return None;
        }
        self.rounds += 1;
        if self.rounds > self.max_rounds {
            return Some(self.hand_over(now));
        }
        self.batch = self.pending.drain(..).collect();
        let mut next = self.current().clone();
        let mut actions = Vec::new();
        let mut dropped = Vec::new();
        for event in &self.batch {
            match apply_as(&next, event.clone(), now, Deciding::Batched) {
                Ok(t) => next = t.next,
                Err(e) => dropped.push(e),
            }
        }
        // One decision on the final state: a `Wake` records nothing.
        let deciding = match self.batch.iter().all(Event::is_external) {
            true => Deciding::HandOver,
            false => Deciding::Perform,
        };
        if let Ok(t) = apply_as(&next, Event::Wake, now, deciding) {
            next = t.next;
            actions = t.actions;
        }
        actions.retain(|a| !matches!(a, Action::Schedule { .. }));
        // A create and a notification go out only once the state asking for them is saved.
        let unsaved_ok = !actions.is_empty()
            && self.batch.iter().all(Event::may_go_unsaved)
            && !actions
                .iter()
                .any(|a| matches!(a, Action::Create { .. } | Action::Notify { .. }));
        let save = if unsaved_ok {
            self.unsaved.append(&mut self.batch);
            Save::Later
        } else if next == self.saved {
            self.unsaved.clear();
            Save::Unchanged
        } else {
            Save::Now
        };
        self.ahead = (next != self.saved).then_some(next);
        Some(Round {
            save,
            actions,
            dropped,
        })
    }

    /// The current state was saved (after a [`Save::Now`]): it is the checkpoint now.
    pub fn committed(&mut self) {
        if let Some(next) = self.ahead.take() {
            self.saved = next;
        }
        self.unsaved.clear();
        self.batch.clear();
    }

    /// The save lost the compare-and-swap: start again from the reloaded checkpoint, with every
    /// event not saved yet pending again. A hand-over that conflicted is made again on the
    /// reloaded checkpoint, with the same results.
    pub fn conflict(&mut self, reloaded: Deployment) {
        self.saved = reloaded;
        self.ahead = None;
        self.handing_over = false;
        let mut again: VecDeque<Event> = self.unsaved.drain(..).collect();
        again.extend(self.batch.drain(..));
        again.append(&mut self.pending);
        self.pending = again;
    }

    /// The step message a save of the current state must send: one for the new wake, when the
    /// wake changed since the checkpoint.
    pub fn wake_message(&self) -> Option<Wake> {
        self.current().wake.filter(|w| Some(*w) != self.saved.wake)
    }

    /// Applies every result not saved yet without claiming anything new, and moves the wake to
    /// now under a new seq: the next step's message carries on from there.
    fn hand_over(&mut self, now: Millis) -> Round {
        let results: Vec<Event> = self
            .unsaved
            .drain(..)
            .chain(self.batch.drain(..))
            .chain(self.pending.drain(..))
            .collect();
        let mut next = self.saved.clone();
        let mut dropped = Vec::new();
        for event in &results {
            match apply_as(&next, event.clone(), now, Deciding::Batched) {
                Ok(t) => next = t.next,
                Err(e) => dropped.push(e),
            }
        }
        next.seq = next.seq.max(self.saved.seq) + 1;
        next.updated = now;
        if next.phase != super::state::Phase::Done {
            next.wake = Some(Wake {
                at: now,
                seq: next.seq,
            });
        }
        self.ahead = Some(next);
        // Kept until the save: a conflict makes the hand-over again with them.
        self.unsaved = results;
        self.handing_over = true;
        Round {
            save: Save::Now,
            actions: Vec::new(),
            dropped,
        }
    }
}
