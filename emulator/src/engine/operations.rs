//! Long-running operations behind `Azure-AsyncOperation`: which group and attempt each one is
//! about. The newest ones are kept (a bounded number), their status is read from the group while
//! their attempt is the group's current one, and frozen when a later update, start, stop or delete
//! replaces an attempt that had ended, so that an operation that ended keeps its status.

use std::collections::{HashMap, VecDeque};

use time::OffsetDateTime;

use crate::lifecycle::{Failure, Provisioning};
use crate::record::GroupKey;

/// How many operations are remembered.
const KEPT: usize = 10_000;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// PUT (create or update).
    Put,
    /// POST start.
    Start,
    /// POST restart.
    Restart,
    /// DELETE (with a delete delay).
    Delete,
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The group.
    pub key: GroupKey,
    /// The group's resource id.
    pub resource_id: String,
    /// What it does.
    pub kind: OpKind,
    /// The group generation it started.
    pub generation: u64,
    /// When it began.
    pub started: OffsetDateTime,
    /// How its attempt ended (`Succeeded` or `Failed`), once a later one replaced it.
    pub settled: Option<(Provisioning, Option<Failure>)>,
}

/// The remembered operations.
#[derive(Debug, Default)]
pub struct Operations {
    by_id: HashMap<String, Operation>,
    order: VecDeque<String>,
    by_group: HashMap<GroupKey, Vec<String>>,
}

impl Operations {
    /// Remembers an operation and returns its id.
    pub fn add(&mut self, operation: Operation) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        if self.order.len() >= KEPT
            && let Some(old) = self.order.pop_front()
            && let Some(gone) = self.by_id.remove(&old)
            && let Some(ids) = self.by_group.get_mut(&gone.key)
        {
            ids.retain(|kept| *kept != old);
            if ids.is_empty() {
                self.by_group.remove(&gone.key);
            }
        }
        self.order.push_back(id.clone());
        self.by_group
            .entry(operation.key.clone())
            .or_default()
            .push(id.clone());
        self.by_id.insert(id.clone(), operation);
        id
    }

    /// Freezes the outcome of the group's operations of attempt `generation`, which ended as
    /// `provisioning` (with `failure`), before a later attempt replaces it.
    pub fn settle(
        &mut self,
        key: &GroupKey,
        generation: u64,
        provisioning: Provisioning,
        failure: Option<&Failure>,
    ) {
        for id in self.by_group.get(key).into_iter().flatten() {
            if let Some(operation) = self.by_id.get_mut(id)
                && operation.generation == generation
                && operation.kind != OpKind::Delete
                && operation.settled.is_none()
            {
                operation.settled = Some((provisioning, failure.cloned()));
            }
        }
    }

    /// Finds an operation.
    pub fn get(&self, id: &str) -> Option<&Operation> {
        self.by_id.get(id)
    }
}
